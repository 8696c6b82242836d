//! Semantic and hybrid search across shards. A shard's own hybrid answer cannot be merged:
//! Meilisearch decides per index whether the keyword results are "good enough" to skip the
//! semantic side, and interleaves the two sides by ratio-weighted scores. So the gateway asks the
//! shards for each side separately (a keyword search, and the same search with `semanticRatio`
//! 1.0), merges each side as usual, and then does what milli's `execute_hybrid` does on the two
//! merged lists. Pure: tested on Meilisearch-shaped hits.

use std::cmp::Ordering;
use std::collections::HashSet;

use serde_json::{Map, Value};

use super::merge::{cmp_values, distinct_key, pk_key};

/// What Meilisearch's `search_kind` makes of a query (the order of the cases matters).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Keyword,
    Semantic,
    Hybrid { ratio: f64 },
}

pub fn kind(body: &Map<String, Value>) -> Kind {
    let placeholder = body.get("q").and_then(Value::as_str).is_none_or(|q| q.trim().is_empty());
    let vector = body.get("vector").is_some_and(|v| !v.is_null());
    let media = body.get("media").is_some_and(|v| !v.is_null());
    let Some(hybrid) = body.get("hybrid").filter(|h| !h.is_null()) else { return Kind::Keyword };
    let ratio = hybrid.get("semanticRatio").and_then(Value::as_f64).unwrap_or(0.5);
    if ratio == 0.0 || (placeholder && !vector && !media) {
        Kind::Keyword
    } else if ratio == 1.0 || placeholder {
        Kind::Semantic
    } else {
        Kind::Hybrid { ratio }
    }
}

/// One entry of milli's `score_values`.
enum ScoreValue<'a> {
    Score(f64),
    Sort(Option<&'a Value>, bool),
}

/// A hit's `score_values` from its `_rankingScoreDetails`: `vectorSort` is its similarity, a sort
/// criterion its value, and a run of ranking rules one score, for which the hit's global
/// `_rankingScore` stands (exact when no sort criterion splits the ranking rules: the details do
/// not carry the ranks milli merges such a run from).
fn score_values(hit: &Value) -> Vec<ScoreValue<'_>> {
    let global = hit.get("_rankingScore").and_then(Value::as_f64).unwrap_or(0.0);
    let Some(details) = hit.get("_rankingScoreDetails").and_then(Value::as_object) else {
        return vec![ScoreValue::Score(global)];
    };
    let mut entries: Vec<(&String, &Value)> = details.iter().collect();
    entries.sort_by_key(|(_, v)| v.get("order").and_then(Value::as_u64).unwrap_or(u64::MAX));
    let mut out = Vec::new();
    let mut in_run = false;
    for (name, v) in entries {
        if name == "vectorSort" {
            out.push(ScoreValue::Score(v.get("similarity").and_then(Value::as_f64).unwrap_or(0.0)));
            in_run = false;
        } else if let Some((_, dir @ ("asc" | "desc"))) = name.rsplit_once(':') {
            out.push(ScoreValue::Sort(v.get("value").filter(|x| !x.is_null()), dir == "asc"));
            in_run = false;
        } else if !in_run {
            out.push(ScoreValue::Score(global));
            in_run = true;
        }
    }
    out
}

/// milli's `compare_scores`: `Greater` when `a` (weighted by `wa`) ranks before `b`.
pub fn compare_scores(a: &Value, wa: f64, b: &Value, wb: f64) -> Ordering {
    let (la, lb) = (score_values(a), score_values(b));
    let (mut ia, mut ib) = (la.iter(), lb.iter());
    loop {
        match (ia.next(), ib.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(ScoreValue::Score(x)), Some(ScoreValue::Score(y))) => {
                let (x, y) = (x * wa, y * wb);
                if (x - y).abs() <= f64::EPSILON {
                    continue;
                }
                return x.partial_cmp(&y).unwrap_or(Ordering::Equal);
            }
            (Some(ScoreValue::Sort(x, asc)), Some(ScoreValue::Sort(y, _))) => {
                let o = match (x, y) {
                    (Some(x), Some(y)) if *asc => cmp_values(x, y).reverse(),
                    (Some(x), Some(y)) => cmp_values(x, y),
                    (Some(_), None) => Ordering::Greater,
                    (None, Some(_)) => Ordering::Less,
                    (None, None) => Ordering::Equal,
                };
                if o != Ordering::Equal {
                    return o;
                }
            }
            (Some(ScoreValue::Score(x)), Some(_)) => return if *x == 0.0 { Ordering::Less } else { Ordering::Greater },
            (Some(_), Some(ScoreValue::Score(y))) => return if *y == 0.0 { Ordering::Greater } else { Ordering::Less },
        }
    }
}

/// milli's `results_good_enough`: the keyword side alone answers when it has all `wanted` hits
/// and each has a weighted score of at least 0.45.
pub fn good_enough(keyword: &[Value], wanted: usize, ratio: f64) -> bool {
    keyword.len() >= wanted
        && keyword.iter().all(|h| h.get("_rankingScore").and_then(Value::as_f64).unwrap_or(0.0) * (1.0 - ratio) >= 0.45)
}

/// `ScoreWithRatioResult::merge` of the two merged sides (each the best `offset + limit`): the
/// semantic hit first on equal scores, each document once, one per `distinct` value. Returns the
/// hits in order with whether each came from the semantic side.
pub fn merge(
    semantic: Vec<Value>,
    keyword: Vec<Value>,
    ratio: f64,
    pk: &str,
    distinct: Option<&str>,
) -> Vec<(Value, bool)> {
    let mut out = Vec::with_capacity(semantic.len() + keyword.len());
    let mut seen = HashSet::new();
    let mut seen_values = HashSet::new();
    let mut s = semantic.into_iter().peekable();
    let mut k = keyword.into_iter().peekable();
    loop {
        let from_semantic = match (s.peek(), k.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(a), Some(b)) => compare_scores(a, ratio, b, 1.0 - ratio).is_ge(),
        };
        let hit = if from_semantic { s.next() } else { k.next() }.expect("peeked");
        if !seen.insert(pk_key(&hit, pk)) {
            continue;
        }
        if let Some(attr) = distinct {
            if let Some(v) = distinct_key(&hit, attr) {
                if !seen_values.insert(v) {
                    continue;
                }
            }
        }
        out.push((hit, from_semantic));
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn kw(id: u64, score: f64) -> Value {
        json!({"id": id, "_rankingScore": score, "_rankingScoreDetails": {"words": {"order": 0, "score": score}}})
    }
    fn sem(id: u64, sim: f64) -> Value {
        json!({"id": id, "_rankingScore": sim, "_rankingScoreDetails": {"vectorSort": {"order": 0, "similarity": sim}}})
    }

    #[test]
    fn kinds_follow_meilisearch_search_kind() {
        let k = |v: Value| kind(v.as_object().unwrap());
        assert_eq!(k(json!({"q": "a"})), Kind::Keyword);
        assert_eq!(
            k(json!({"q": "a", "hybrid": {"embedder": "e", "semanticRatio": 0.0}, "vector": [1]})),
            Kind::Keyword
        );
        assert_eq!(k(json!({"hybrid": {"embedder": "e"}})), Kind::Keyword);
        assert_eq!(k(json!({"hybrid": {"embedder": "e"}, "vector": [1.0]})), Kind::Semantic);
        assert_eq!(k(json!({"q": "a", "hybrid": {"embedder": "e", "semanticRatio": 1.0}})), Kind::Semantic);
        assert_eq!(
            k(json!({"q": "a", "hybrid": {"embedder": "e", "semanticRatio": 0.7}})),
            Kind::Hybrid { ratio: 0.7 }
        );
        assert_eq!(k(json!({"q": "a", "hybrid": {"embedder": "e"}})), Kind::Hybrid { ratio: 0.5 });
    }

    #[test]
    fn merge_weighs_each_side_by_its_ratio() {
        // With ratio 0.8 a semantic 0.6 (0.48) beats a keyword 1.0 (0.2).
        let merged = merge(vec![sem(1, 0.6), sem(2, 0.1)], vec![kw(3, 1.0), kw(4, 0.9)], 0.8, "id", None);
        let ids: Vec<u64> = merged.iter().map(|(h, _)| h["id"].as_u64().unwrap()).collect();
        assert_eq!(ids, vec![1, 3, 4, 2]);
        assert_eq!(merged.iter().filter(|(_, s)| *s).count(), 2);
        // With ratio 0.2 the keyword side wins.
        let merged = merge(vec![sem(1, 0.6)], vec![kw(3, 1.0)], 0.2, "id", None);
        assert_eq!(merged[0].0["id"], 3);
    }

    #[test]
    fn merge_keeps_a_document_once_and_the_semantic_side_on_ties() {
        let merged = merge(vec![sem(1, 0.5), sem(2, 0.4)], vec![kw(1, 0.5), kw(5, 0.1)], 0.5, "id", None);
        let ids: Vec<(u64, bool)> = merged.iter().map(|(h, s)| (h["id"].as_u64().unwrap(), *s)).collect();
        assert_eq!(ids, vec![(1, true), (2, true), (5, false)]);
    }

    #[test]
    fn merge_applies_distinct_across_sides() {
        let mut a = sem(1, 0.9);
        a["g"] = json!("x");
        let mut b = kw(2, 0.8);
        b["g"] = json!("X");
        let merged = merge(vec![a], vec![b, kw(3, 0.1)], 0.5, "id", Some("g"));
        let ids: Vec<u64> = merged.iter().map(|(h, _)| h["id"].as_u64().unwrap()).collect();
        assert_eq!(ids, vec![1, 3]);
    }

    #[test]
    fn good_enough_needs_every_wanted_hit_scored_high() {
        let hits = vec![kw(1, 1.0), kw(2, 0.95)];
        assert!(good_enough(&hits, 2, 0.5));
        assert!(!good_enough(&hits, 3, 0.5));
        assert!(!good_enough(&hits, 2, 0.6));
        assert!(!good_enough(&[kw(1, 0.8)], 1, 0.5));
    }

    #[test]
    fn sort_values_compare_before_scores_that_follow() {
        let a = json!({"id": 1, "_rankingScore": 0.1, "_rankingScoreDetails": {"price:asc": {"order": 0, "value": 5}, "vectorSort": {"order": 1, "similarity": 0.1}}});
        let b = json!({"id": 2, "_rankingScore": 0.9, "_rankingScoreDetails": {"price:asc": {"order": 0, "value": 7}, "vectorSort": {"order": 1, "similarity": 0.9}}});
        assert_eq!(compare_scores(&a, 0.5, &b, 0.5), Ordering::Greater);
    }
}
