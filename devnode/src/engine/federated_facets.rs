//! Facets of a federated search (`federation.facetsByIndex`, `federation.mergeFacets`), as
//! Meilisearch's `perform_federated_search` computes them: per index, over the documents any of
//! its queries matches, ordered and cut as the index's own settings say; merged, the indexes'
//! lists summed value by value (in index uid order, each new value after the known ones), then
//! ordered by the facet's order (which must be the same in every index) and cut to
//! `mergeFacets.maxValuesPerFacet` if given. Ties of count keep that first-seen order (Meilisearch
//! sorts them unstably).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::facets::facet_distribution;
use super::settings::View;
use super::{Doc, Index};
use crate::error::{Code, DevResult, MeiliError};

pub use miroir_meili::federation::FacetRequest;

/// The facet names a list asks of an index (`*`: every filterable attribute), each checked.
fn names(view: &View, facets: &[String]) -> DevResult<Vec<String>> {
    if facets.iter().any(|f| f == "*") {
        return Ok(view.filterable.clone());
    }
    for f in facets {
        if !view.is_filterable(f) {
            return Err(MeiliError::new(
                Code::INVALID_SEARCH_FACETS,
                format!(
                    // Meilisearch 1.50's words for `facetsByIndex` (checked against a real node).
                    "Invalid facet distribution: Pattern `{f}` is not filterable. Available filterable attributes patterns are: `{}`.",
                    view.filterable.join(", ")
                ),
            ));
        }
    }
    Ok(facets.to_vec())
}

/// `{distribution, stats}` of one index over the documents its queries matched.
pub fn compute<'a>(idx: &Index, docs: impl Iterator<Item = &'a Doc> + Clone, facets: &[String]) -> DevResult<Value> {
    let view = View::from_full(&idx.settings());
    let names = names(&view, facets)?;
    let (distribution, stats) = facet_distribution(docs, &names, view.max_values_per_facet, &view.facet_orders);
    Ok(json!({"distribution": distribution, "stats": stats}))
}

/// An index listed in `facetsByIndex` that no query uses: only checked.
pub fn check_unused(idx: &Index, facets: &[String]) -> DevResult<()> {
    names(&View::from_full(&idx.settings()), facets).map(|_| ())
}

/// Whether `facet` is ordered by count in `view` (its own entry, else `*`'s).
fn by_count(view: &View, facet: &str) -> bool {
    View::by_count(&view.facet_orders, facet)
}

/// `mergeFacets` needs one order per facet across the indexes that facet it: facet → by count.
pub fn check_orders<'a>(
    indexes: impl Iterator<Item = (&'a str, &'a Index, &'a [String])>,
) -> DevResult<BTreeMap<String, bool>> {
    let mut seen: BTreeMap<String, (String, bool)> = BTreeMap::new();
    let word = |count: bool| if count { "by count" } else { "alphabetically" };
    for (uid, idx, facets) in indexes {
        let view = View::from_full(&idx.settings());
        for f in names(&view, facets)? {
            let order = by_count(&view, &f);
            let (prev_uid, prev) = seen.entry(f.clone()).or_insert_with(|| (uid.to_string(), order));
            if *prev != order {
                return Err(MeiliError::new(
                    Code::INVALID_MULTI_SEARCH_FACET_ORDER,
                    format!("Inconsistent order for values in facet `{f}`: index `{prev_uid}` orders {}, but index `{uid}` orders {}.\n - Hint: Remove `federation.mergeFacets` or change `faceting.sortFacetValuesBy` to be consistent in settings.", word(*prev), word(order)),
                ));
            }
        }
    }
    Ok(seen.into_iter().map(|(f, (_, count))| (f, count)).collect())
}

/// `FederatedFacets::merge`: the indexes' facets (in uid order) summed, ordered, cut.
pub fn merge(
    per_index: &BTreeMap<String, Value>,
    by_count: &BTreeMap<String, bool>,
    max: Option<usize>,
) -> Option<(Value, Value)> {
    if per_index.is_empty() {
        return None;
    }
    let mut dist: Map<String, Value> = Map::new();
    let mut stats: Map<String, Value> = Map::new();
    for facets in per_index.values() {
        for (facet, values) in facets["distribution"].as_object().into_iter().flatten() {
            let entry = dist.entry(facet.clone()).or_insert_with(|| json!({}));
            let entry = entry.as_object_mut().expect("object");
            for (value, n) in values.as_object().into_iter().flatten() {
                let sum = entry.get(value).and_then(Value::as_u64).unwrap_or(0) + n.as_u64().unwrap_or(0);
                entry.insert(value.clone(), json!(sum));
            }
        }
        for (facet, s) in facets["stats"].as_object().into_iter().flatten() {
            let (lo, hi) = (s["min"].as_f64().unwrap_or(f64::MAX), s["max"].as_f64().unwrap_or(f64::MIN));
            let merged = match stats.get(facet) {
                Some(p) => {
                    json!({"min": lo.min(p["min"].as_f64().unwrap_or(lo)), "max": hi.max(p["max"].as_f64().unwrap_or(hi))})
                }
                None => json!({"min": lo, "max": hi}),
            };
            stats.insert(facet.clone(), merged);
        }
    }
    for (facet, values) in dist.iter_mut() {
        let mut list: Vec<(String, u64)> =
            values.as_object().into_iter().flatten().map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0))).collect();
        if by_count.get(facet).copied().unwrap_or(false) {
            list.sort_by_key(|e| std::cmp::Reverse(e.1));
        } else {
            list.sort_by(|a, b| a.0.cmp(&b.0));
        }
        if let Some(m) = max {
            list.truncate(m);
        }
        *values = Value::Object(list.into_iter().map(|(k, n)| (k, json!(n))).collect());
    }
    Some((Value::Object(dist), Value::Object(stats)))
}
