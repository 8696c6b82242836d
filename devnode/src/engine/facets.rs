//! Facet distribution and stats over a set of documents, and facet search.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::filter;
use super::search::{checked_filter, facet_key, rank, tokens, Query};
use super::settings::View;
use super::{Doc, Index};
use crate::error::{Code, DevResult, MeiliError};

/// Orders a facet's values by count as milli's `count_iterate_over_facet_distribution` does: number
/// values before strings, each by count, higher first, ties by value, the greater first (its heap
/// pops the greatest left bound).
fn order_by_count(counts: BTreeMap<String, (String, u64)>, numbers: &BTreeMap<String, f64>) -> Vec<(String, u64)> {
    let mut values: Vec<(String, (String, u64))> = counts.into_iter().collect();
    values.sort_by(|(ka, (_, ca)), (kb, (_, cb))| {
        let (na, nb) = (numbers.get(ka), numbers.get(kb));
        nb.is_some().cmp(&na.is_some()).then(cb.cmp(ca)).then_with(|| match (na, nb) {
            (Some(x), Some(y)) => y.partial_cmp(x).unwrap_or(std::cmp::Ordering::Equal),
            _ => kb.cmp(ka),
        })
    });
    values.into_iter().map(|(_, v)| v).collect()
}

pub(super) fn facet_distribution<'a>(
    docs: impl Iterator<Item = &'a Doc> + Clone,
    names: &[String],
    max: usize,
    orders: &Map<String, Value>,
) -> (Value, Value) {
    let mut dist = Map::new();
    let mut stats = Map::new();
    for name in names {
        // Values group case-insensitively and show the first spelling seen, like Meilisearch.
        let mut counts: BTreeMap<String, (String, u64)> = BTreeMap::new();
        let mut numbers: BTreeMap<String, f64> = BTreeMap::new();
        let (mut min, mut max_v): (Option<f64>, Option<f64>) = (None, None);
        for d in docs.clone() {
            let mut vals = filter::leaf_values(d, name);
            vals.dedup();
            let mut seen = Vec::new();
            for v in vals {
                if let Some(n) = v.as_f64() {
                    min = Some(min.map_or(n, |m| m.min(n)));
                    max_v = Some(max_v.map_or(n, |m| m.max(n)));
                }
                let shown = facet_key(&v);
                let norm = shown.to_lowercase();
                if let Some(n) = v.as_f64() {
                    numbers.insert(norm.clone(), n);
                }
                if seen.contains(&norm) {
                    continue;
                }
                seen.push(norm.clone());
                counts.entry(norm).or_insert((shown, 0)).1 += 1;
            }
        }
        let ordered = if View::by_count(orders, name) {
            order_by_count(counts, &numbers)
        } else {
            counts.into_values().collect()
        };
        let m: Map<String, Value> = ordered.into_iter().take(max).map(|(k, c)| (k, json!(c))).collect();
        dist.insert(name.clone(), Value::Object(m));
        if let (Some(lo), Some(hi)) = (min, max_v) {
            stats.insert(name.clone(), json!({"min": lo, "max": hi}));
        }
    }
    (Value::Object(dist), Value::Object(stats))
}

/// `POST /indexes/{uid}/facet-search`.
pub fn facet_search(idx: &Index, body: &Map<String, Value>) -> DevResult<Value> {
    let view = View::from_full(&idx.settings());
    let Some(name) = body.get("facetName").and_then(Value::as_str) else {
        return Err(MeiliError::new(Code::MISSING_FACET_SEARCH_FACET_NAME, "Missing field `facetName`"));
    };
    if !view.is_filterable(name) {
        return Err(MeiliError::new(Code::INVALID_FACET_SEARCH_FACET_NAME, format!("Attribute `{name}` is not facet-searchable. Available facet-searchable attributes patterns are: `{}`. To make it facet-searchable add it to the `filterableAttributes` index settings.", view.filterable.join(", "))));
    }
    let fq = body.get("facetQuery").and_then(Value::as_str).unwrap_or("").to_lowercase();
    let mut inner: Map<String, Value> = body
        .iter()
        .filter(|(k, _)| ["q", "filter"].contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    inner.insert("limit".into(), json!(usize::MAX >> 1));
    inner.insert("attributesToRetrieve".into(), json!(["*"]));
    let matching: Vec<Doc> = {
        let filter = checked_filter(inner.get("filter").unwrap_or(&Value::Null), &view, Code::INVALID_SEARCH_FILTER)?;
        let q_raw = inner.get("q").and_then(Value::as_str).unwrap_or("");
        let q = tokens(q_raw);
        let q_text = q.join(" ");
        idx.docs
            .iter()
            .filter(|(_, d)| filter.as_ref().is_none_or(|f| f.matches(d)))
            .filter(|(i, d)| {
                rank(**i, d, &Query { words: &q, prefix_last: true, text: &q_text }, &view.ranking_rules, &[], &view)
                    .is_some()
            })
            .map(|(_, d)| d.clone())
            .collect()
    };
    let (dist, _) = facet_distribution(matching.iter(), &[name.to_string()], usize::MAX, &Map::new());
    let mut matching: Vec<(&String, u64)> = dist[name]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| tokens(k).iter().any(|t| t.starts_with(&fq)) || fq.is_empty())
                .map(|(k, c)| (k, c.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    // By count: milli's `ValuesCollection::into_sorted_vec`, count then value, greatest first.
    if View::by_count(&view.facet_orders, name) {
        matching.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(a.0)));
    }
    let hits: Vec<Value> =
        matching.into_iter().take(view.max_values_per_facet).map(|(k, c)| json!({"value": k, "count": c})).collect();
    Ok(
        json!({"facetHits": hits, "facetQuery": body.get("facetQuery").cloned().unwrap_or(Value::Null), "processingTimeMs": 0}),
    )
}
