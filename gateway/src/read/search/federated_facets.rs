//! Facets of a federated search (`federation.facetsByIndex`, `federation.mergeFacets`). Meilisearch
//! counts an index's facets over the documents any of its queries matches. Shards do not share
//! documents, so each node counts them for its shards (the same node-level federated search that
//! counts the index's matches, with `facetsByIndex` for that index) and the gateway adds the
//! counts up, then orders and cuts them as the index's settings say (`merge::merge_facets`, the
//! nodes returning every value). `mergeFacets` then sums the indexes' lists as Meilisearch's
//! `FederatedFacets::merge` does: in index uid order, each new value after the known ones, ordered
//! by the facet's order (the same in every index, or an error) and cut to its
//! `maxValuesPerFacet`; ties of count keep that first-seen order (Meilisearch sorts unstably).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::merge::{by_count, merge_facets};
use crate::error::{AppError, AppResult, Code};

pub use miroir_meili::federation::FacetRequest;

/// One index's facets from its nodes' `facetsByIndex` entries: summed, ordered and cut by the
/// index's `faceting` settings.
pub fn from_nodes(entries: &[Value], settings: &Value) -> Value {
    let answers: Vec<Value> = entries
        .iter()
        .map(|e| json!({"facetDistribution": e.get("distribution").cloned().unwrap_or_else(|| json!({})), "facetStats": e.get("stats").cloned().unwrap_or_else(|| json!({}))}))
        .collect();
    let max = settings.pointer("/faceting/maxValuesPerFacet").and_then(Value::as_u64).unwrap_or(100) as usize;
    let orders =
        settings.pointer("/faceting/sortFacetValuesBy").and_then(Value::as_object).cloned().unwrap_or_default();
    let (mut distribution, mut stats) = merge_facets(&answers, max, &orders);
    // `*` names Miroir's shard field too, on the nodes.
    for v in [&mut distribution, &mut stats] {
        if let Some(o) = v.as_object_mut() {
            o.shift_remove(crate::write::settings::SHARD_FIELD);
        }
    }
    json!({"distribution": distribution, "stats": stats})
}

/// The facet names a list asks of an index (`*`: its filterable attributes named in settings).
fn names(settings: &Value, facets: &[String]) -> Vec<String> {
    if facets.iter().any(|f| f == "*") {
        return settings
            .get("filterableAttributes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect();
    }
    facets.to_vec()
}

/// `mergeFacets` needs one order per facet across the indexes that facet it: facet → by count.
pub fn check_orders<'a>(
    indexes: impl Iterator<Item = (&'a str, &'a Value, &'a [String])>,
) -> AppResult<BTreeMap<String, bool>> {
    let mut seen: BTreeMap<String, (String, bool)> = BTreeMap::new();
    let word = |count: bool| if count { "by count" } else { "alphabetically" };
    for (uid, settings, facets) in indexes {
        let orders =
            settings.pointer("/faceting/sortFacetValuesBy").and_then(Value::as_object).cloned().unwrap_or_default();
        for f in names(settings, facets) {
            let order = by_count(&orders, &f);
            let (prev_uid, prev) = seen.entry(f.clone()).or_insert_with(|| (uid.to_string(), order));
            if *prev != order {
                return Err(AppError::new(
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
            let Some(entry) = entry.as_object_mut() else { continue };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_facets_sum_in_index_order_then_sort_and_cut() {
        let mut per_index = BTreeMap::new();
        per_index.insert(
            "a".to_string(),
            json!({"distribution": {"g": {"x": 2, "y": 5}}, "stats": {"p": {"min": 1.0, "max": 4.0}}}),
        );
        per_index.insert(
            "b".to_string(),
            json!({"distribution": {"g": {"z": 5, "x": 4}}, "stats": {"p": {"min": 0.5, "max": 3.0}}}),
        );
        let alpha = merge(&per_index, &BTreeMap::new(), None).unwrap();
        assert_eq!(alpha.0, json!({"g": {"x": 6, "y": 5, "z": 5}}));
        assert_eq!(alpha.1, json!({"p": {"min": 0.5, "max": 4.0}}));
        let counted = merge(&per_index, &BTreeMap::from([("g".to_string(), true)]), Some(2)).unwrap();
        let order: Vec<&String> = counted.0["g"].as_object().unwrap().keys().collect();
        assert_eq!(order, ["x", "y"], "count first, ties in first-seen order, cut to 2");
        assert!(merge(&BTreeMap::new(), &BTreeMap::new(), None).is_none());
    }

    #[test]
    fn orders_must_agree_across_indexes() {
        let alpha = json!({"filterableAttributes": ["g"]});
        let count = json!({"filterableAttributes": ["g"], "faceting": {"sortFacetValuesBy": {"*": "count"}}});
        let g = vec!["g".to_string()];
        let e = check_orders([("a", &alpha, g.as_slice()), ("b", &count, g.as_slice())].into_iter()).unwrap_err();
        assert_eq!(e.body()["code"], Code::INVALID_MULTI_SEARCH_FACET_ORDER);
        let ok = check_orders([("a", &count, g.as_slice()), ("b", &count, g.as_slice())].into_iter()).unwrap();
        assert!(ok["g"]);
    }
}
