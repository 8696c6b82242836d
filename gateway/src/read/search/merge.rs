//! Merging shard answers into the answer one node holding every document would give. Pure: no
//! I/O, so it is tested on Meilisearch-shaped JSON alone.
//!
//! Hits are ordered the way Meilisearch's bucket sort orders them: entry by entry of each hit's
//! `_rankingScoreDetails` in their `order` (a rule's `score`, higher first; a sort criterion's
//! `value`, numbers before strings, strings case-insensitively, documents without the value last). Hits equal on every rule are ordered by primary key: one Meilisearch
//! orders them by internal id (insertion order), which a cluster cannot know; the two agree when
//! documents were inserted in key order (see docs/search.md).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// What the merge needs to know about the request and the index.
#[derive(Debug, Clone)]
pub struct MergeSpec {
    pub primary_key: String,
    /// First hit and number of hits of the window, before `maxTotalHits` clamping.
    pub start: usize,
    pub count: usize,
    pub max_total_hits: usize,
    pub max_values_per_facet: usize,
    /// Offset/limit mode (`false`: page mode with `hits_per_page`).
    pub offset_mode: bool,
    pub page: usize,
    pub hits_per_page: usize,
    /// The client's `faceting.sortFacetValuesBy` (facet name or `*` → `alpha` | `count`).
    pub facet_orders: Map<String, Value>,
    /// The exact number of matching documents when the shards' own totals cannot simply be
    /// summed (under `distinct`, a value can have documents in several shards).
    pub total_override: Option<usize>,
}

/// Sort values as Meilisearch compares them: numbers before strings, strings case-insensitively.
pub fn cmp_values(a: &Value, b: &Value) -> Ordering {
    match (a.as_f64(), b.as_f64(), a.as_str(), b.as_str()) {
        (Some(x), Some(y), ..) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        (Some(_), None, ..) => Ordering::Less,
        (None, Some(_), ..) => Ordering::Greater,
        (_, _, Some(x), Some(y)) => x.to_lowercase().cmp(&y.to_lowercase()),
        _ => Ordering::Equal,
    }
}

fn details(hit: &Value) -> Option<&Map<String, Value>> {
    hit.get("_rankingScoreDetails")?.as_object()
}

/// Compares a sort criterion's values; a missing value is last whatever the direction.
fn cmp_sort(a: Option<&Value>, b: Option<&Value>, asc: bool) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) => {
            let o = cmp_values(x, y);
            if asc {
                o
            } else {
                o.reverse()
            }
        }
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// The primary key as a sortable key: integers by value, then strings.
pub fn pk_key(hit: &Value, pk: &str) -> (u8, u64, String) {
    match hit.get(pk) {
        Some(Value::Number(n)) if n.as_u64().is_some() => (0, n.as_u64().unwrap_or(0), String::new()),
        Some(Value::String(s)) => match s.parse::<u64>() {
            Ok(n) => (0, n, String::new()),
            Err(_) => (1, 0, s.clone()),
        },
        Some(other) => (1, 0, other.to_string()),
        None => (2, 0, String::new()),
    }
}

/// The entries of a hit's ranking-score details in ranking order (their `order` field). Rules
/// that Meilisearch reports as several entries (`attribute` as `attributeRank` then
/// `wordPosition`) and sort criteria (`field:asc`) all come out in the order the bucket sort used.
fn ordered(d: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<(&String, &Value)> = d.iter().collect();
    entries.sort_by_key(|(_, v)| v.get("order").and_then(Value::as_u64).unwrap_or(u64::MAX));
    entries
}

/// Higher `_rankingScore` first; equal when either has none.
fn cmp_score(a: &Value, b: &Value) -> Ordering {
    match (a.get("_rankingScore").and_then(Value::as_f64), b.get("_rankingScore").and_then(Value::as_f64)) {
        (Some(x), Some(y)) => y.partial_cmp(&x).unwrap_or(Ordering::Equal),
        _ => Ordering::Equal,
    }
}

pub fn compare(a: &Value, b: &Value, spec: &MergeSpec) -> Ordering {
    let with_details = (details(a), details(b));
    if with_details.0.is_none() || with_details.1.is_none() {
        // A hit without details (a node that did not give them): the global score is all there
        // is to compare.
        return cmp_score(a, b).then_with(|| pk_key(a, &spec.primary_key).cmp(&pk_key(b, &spec.primary_key)));
    }
    if let (Some(da), Some(db)) = with_details {
        for (key, ea) in ordered(da) {
            let eb = db.get(key);
            let o = match key.rsplit_once(':') {
                // A semantic search's similarity: higher first, documents without one last.
                None if key == "vectorSort" => cmp_sort(
                    ea.get("similarity").filter(|v| !v.is_null()),
                    eb.and_then(|e| e.get("similarity")).filter(|v| !v.is_null()),
                    false,
                ),
                // A sort criterion (`price:asc`) or a custom ranking rule on a field.
                Some((_, dir)) if dir == "asc" || dir == "desc" => cmp_sort(
                    ea.get("value").filter(|v| !v.is_null()),
                    eb.and_then(|e| e.get("value")).filter(|v| !v.is_null()),
                    dir == "asc",
                ),
                _ => match (
                    ea.get("score").and_then(Value::as_f64),
                    eb.and_then(|e| e.get("score")).and_then(Value::as_f64),
                ) {
                    (Some(x), Some(y)) => y.partial_cmp(&x).unwrap_or(Ordering::Equal),
                    _ => Ordering::Equal,
                },
            };
            if o != Ordering::Equal {
                return o;
            }
        }
    }
    pk_key(a, &spec.primary_key).cmp(&pk_key(b, &spec.primary_key))
}

/// Whether a facet's values are ordered by count: its own entry, else `*`'s (milli's
/// `OrderByMap::get`); alphabetical by default.
pub fn by_count(orders: &Map<String, Value>, facet: &str) -> bool {
    orders.get(facet).or_else(|| orders.get("*")).and_then(Value::as_str) == Some("count")
}

/// Orders summed values by count as milli's `count_iterate_over_facet_distribution` does: numbers
/// before strings, each by count (higher first), ties by value, the greater first (its heap pops
/// the greatest bound first).
fn order_by_count(values: &mut [(String, (String, u64))]) {
    values.sort_by(|(ka, (_, ca)), (kb, (_, cb))| {
        let (na, nb) = (ka.parse::<f64>().ok(), kb.parse::<f64>().ok());
        nb.is_some().cmp(&na.is_some()).then(cb.cmp(ca)).then_with(|| match (na, nb) {
            (Some(x), Some(y)) => y.partial_cmp(&x).unwrap_or(Ordering::Equal),
            _ => kb.cmp(ka),
        })
    });
}

/// Sums facet counts (values grouped case-insensitively, first spelling kept), orders them as
/// `sortFacetValuesBy` says (alphabetically by default, or by count) and truncates to
/// `maxValuesPerFacet`. Exact in both orders because nodes return every value they have (their
/// own `maxValuesPerFacet` is Miroir's, see `miroir::settings::NODE_MAX_VALUES_PER_FACET`).
pub fn merge_facets(answers: &[Value], max_values: usize, orders: &Map<String, Value>) -> (Value, Value) {
    let mut dist: BTreeMap<String, BTreeMap<String, (String, u64)>> = BTreeMap::new();
    let mut stats: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for a in answers {
        if let Some(d) = a.get("facetDistribution").and_then(Value::as_object) {
            for (facet, values) in d {
                if !order.contains(facet) {
                    order.push(facet.clone());
                }
                let entry = dist.entry(facet.clone()).or_default();
                for (value, count) in values.as_object().into_iter().flatten() {
                    let e = entry.entry(value.to_lowercase()).or_insert((value.clone(), 0));
                    e.1 += count.as_u64().unwrap_or(0);
                }
            }
        }
        if let Some(s) = a.get("facetStats").and_then(Value::as_object) {
            for (facet, st) in s {
                let (Some(lo), Some(hi)) = (st["min"].as_f64(), st["max"].as_f64()) else { continue };
                let e = stats.entry(facet.clone()).or_insert((lo, hi));
                e.0 = e.0.min(lo);
                e.1 = e.1.max(hi);
            }
        }
    }
    let mut out = Map::new();
    for facet in order {
        let mut values: Vec<(String, (String, u64))> = dist.remove(&facet).unwrap_or_default().into_iter().collect();
        if by_count(orders, &facet) {
            order_by_count(&mut values);
        }
        let m: Map<String, Value> =
            values.into_iter().take(max_values).map(|(_, (shown, c))| (shown, Value::from(c))).collect();
        out.insert(facet, Value::Object(m));
    }
    let stats: Map<String, Value> =
        stats.into_iter().map(|(f, (lo, hi))| (f, serde_json::json!({"min": lo, "max": hi}))).collect();
    (Value::Object(out), Value::Object(stats))
}

/// The value `distinct` compares for a hit: the first value at `attr` (a dotted path into nested
/// objects, or a key holding dots), strings compared case-insensitively like facet values. `None`:
/// the hit has no value and is never deduplicated.
pub fn distinct_key(hit: &Value, attr: &str) -> Option<String> {
    fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
        let obj = v.as_object()?;
        if let Some(found) = obj.get(path) {
            return Some(found);
        }
        let mut cut = path.char_indices().filter(|(_, c)| *c == '.').map(|(i, _)| i);
        cut.find_map(|i| lookup(obj.get(&path[..i])?, &path[i + 1..]))
    }
    fn first_leaf(v: &Value) -> Option<&Value> {
        match v {
            Value::Array(a) => a.iter().find_map(first_leaf),
            Value::Null | Value::Object(_) => None,
            v => Some(v),
        }
    }
    let v = first_leaf(lookup(hit, attr)?)?;
    Some(v.as_str().map_or_else(|| v.to_string(), str::to_lowercase))
}

/// Keeps the first (best ranked) hit of every distinct value, in order.
pub fn dedupe(hits: &mut Vec<Value>, attr: &str) {
    let mut seen = std::collections::HashSet::new();
    hits.retain(|h| distinct_key(h, attr).is_none_or(|k| seen.insert(k)));
}

/// The exact number of distinct matches: every shard's documents without a value (its distinct
/// total minus the values it has) plus the values of all shards, each counted once. `answers`:
/// each shard answer's total and the keys of its facet distribution of the distinct attribute.
pub fn distinct_total<'a>(answers: impl IntoIterator<Item = (usize, Vec<&'a str>)>) -> usize {
    let mut values = std::collections::HashSet::new();
    let mut without = 0;
    for (total, keys) in answers {
        without += total.saturating_sub(keys.len());
        values.extend(keys.into_iter().map(str::to_lowercase));
    }
    without + values.len()
}

/// Merges node answers (each holding its own best `start + count` hits) into the client's answer.
/// `distinct`: the attribute whose values must be unique across shards, if any.
pub fn merge(answers: Vec<Value>, spec: &MergeSpec, distinct: Option<&str>) -> Value {
    let mut template = answers.first().cloned().unwrap_or_else(|| Value::Object(Map::new()));
    let total: usize = answers
        .iter()
        .map(|a| {
            a.get(if spec.offset_mode { "estimatedTotalHits" } else { "totalHits" })
                .and_then(Value::as_u64)
                .unwrap_or(0) as usize
        })
        .sum();
    let total = spec.total_override.unwrap_or(total);
    let mut hits: Vec<Value> = Vec::new();
    for a in &answers {
        if let Some(h) = a.get("hits").and_then(Value::as_array) {
            hits.extend(h.iter().cloned());
        }
    }
    hits.sort_by(|a, b| compare(a, b, spec));
    if let Some(attr) = distinct {
        dedupe(&mut hits, attr);
    }
    // Meilisearch 1.50 reports the whole count: `maxTotalHits` bounds the hits a page can reach,
    // not `estimatedTotalHits`/`totalHits` (checked against a real node).
    let capped = total;
    let start = spec.start.min(spec.max_total_hits);
    let count = spec.count.min(spec.max_total_hits.saturating_sub(start));
    let end = (start + count).min(capped).min(hits.len().max(start));
    let window: Vec<Value> = hits.into_iter().skip(start).take(end.saturating_sub(start)).collect();
    let (facets, stats) = merge_facets(&answers, spec.max_values_per_facet, &spec.facet_orders);
    if let Some(obj) = template.as_object_mut() {
        obj.insert("hits".into(), Value::Array(window));
        if spec.offset_mode {
            // Meilisearch echoes the requested limit, clamped or not (`perform_search`).
            obj.insert("limit".into(), Value::from(spec.count));
            obj.insert("offset".into(), Value::from(start));
            obj.insert("estimatedTotalHits".into(), Value::from(capped));
        } else {
            let h = spec.hits_per_page;
            obj.insert("hitsPerPage".into(), Value::from(h));
            obj.insert("page".into(), Value::from(spec.page));
            obj.insert("totalPages".into(), Value::from(if h == 0 { 0 } else { capped.div_ceil(h) }));
            obj.insert("totalHits".into(), Value::from(capped));
        }
        // Each node counted its own page; the caller counts the merged one (see `hybrid`).
        obj.remove("semanticHitCount");
        if obj.contains_key("facetDistribution") {
            obj.insert("facetDistribution".into(), facets);
            obj.insert("facetStats".into(), stats);
        }
    }
    template
}

/// Merges `facet-search` answers: counts summed per value (grouped case-insensitively, first
/// spelling kept), in alphabetical order or, by count, as milli's `ValuesCollection` sorts them
/// (count, then value, greatest first), cut to `max_values`.
pub fn merge_facet_hits(answers: &[Value], max_values: usize, by_count: bool) -> Vec<Value> {
    let mut values: BTreeMap<String, (String, u64)> = BTreeMap::new();
    for a in answers {
        for h in a.get("facetHits").and_then(Value::as_array).into_iter().flatten() {
            let (Some(v), Some(c)) = (h.get("value").and_then(Value::as_str), h.get("count").and_then(Value::as_u64))
            else {
                continue;
            };
            values.entry(v.to_lowercase()).or_insert((v.to_string(), 0)).1 += c;
        }
    }
    let mut hits: Vec<(String, u64)> = values.into_values().collect();
    if by_count {
        hits.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
    }
    hits.into_iter()
        .take(max_values)
        .map(|(value, count)| serde_json::json!({"value": value, "count": count}))
        .collect()
}
