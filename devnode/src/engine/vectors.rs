//! User-provided embeddings (`_vectors`), semantic and hybrid ranking, and `similar`, following
//! milli: a semantic search ranks by `vectorSort` where the first keyword rule stood, after or
//! before `sort` as the ranking rules place it; a hybrid search runs the keyword and the semantic
//! search and interleaves them by ratio-weighted scores (`hybrid.rs`).
//!
//! The similarity of two embeddings is `(1 + cos) / 2`: the dev node searches exhaustively, so
//! its answers are those of an exact nearest-neighbour index.

use std::cmp::Ordering;

use serde_json::{json, Map, Value};

use super::search::{cmp_values, Key, Ranked};
use super::{filter, Doc};
use crate::error::{Code, DevResult, MeiliError};

pub const FIELD: &str = "_vectors";

/// Rewrites a document's `_vectors` into the explicit form Meilisearch returns
/// (`{"embeddings": [[…]], "regenerate": false}` per embedder), from any form it accepts (one
/// embedding, a list of them, or the explicit form). A `null` embedder entry means none.
pub fn normalize(doc: &mut Doc) {
    let Some(Value::Object(vectors)) = doc.get_mut(FIELD) else { return };
    let entries = std::mem::take(vectors);
    for (name, v) in entries {
        let (embeddings, regenerate) = match v {
            // An explicit opt-out: no embedding, shown as an empty list.
            Value::Null => (json!([]), json!(false)),
            Value::Object(mut o) => {
                (o.remove("embeddings").unwrap_or(Value::Null), o.remove("regenerate").unwrap_or(json!(false)))
            }
            other => (other, json!(false)),
        };
        let embeddings = match embeddings {
            Value::Array(a) if a.first().is_some_and(Value::is_number) => json!([a]),
            Value::Null => json!([]),
            other => other,
        };
        vectors.insert(name, json!({"embeddings": embeddings, "regenerate": regenerate}));
    }
}

/// Meilisearch refuses a batch in which a document has no `_vectors` entry for a user-provided
/// embedder (`null` opts out), unless it only updates a document that keeps its own.
pub fn check_user_provided(
    idx: &super::Index,
    uid: &str,
    docs: &[Doc],
    ids: &[String],
    replace: bool,
) -> DevResult<()> {
    let settings = idx.settings();
    let Some(embedders) = settings.get("embedders").and_then(Value::as_object) else { return Ok(()) };
    for (name, conf) in embedders {
        if conf.get("source").and_then(Value::as_str) != Some("userProvided") {
            continue;
        }
        for (d, id) in docs.iter().zip(ids) {
            let given = d.get(FIELD).and_then(Value::as_object).is_some_and(|v| v.contains_key(name));
            let kept = !replace && idx.get(id).is_some_and(|old| old.get(FIELD).and_then(|v| v.get(name)).is_some());
            if !given && !kept {
                return Err(MeiliError::new(
                    Code::VECTOR_EMBEDDING_ERROR,
                    format!("Index `{uid}`: While embedding documents for embedder `{name}`: no vectors provided for document `{id}`\n- Note: `{name}` has `source: userProvided`, so documents must provide embeddings as an array in `_vectors.{name}`.\n- Hint: opt-out for a document with `_vectors.{name}: null`"),
                ));
            }
        }
    }
    Ok(())
}

/// Shows the stored document's `_vectors` in `out` (always, possibly empty, whatever fields were
/// selected) with `retrieveVectors`, hides it otherwise.
pub fn present(out: &mut Doc, stored: &Doc, retrieve: bool) {
    out.remove(FIELD);
    if retrieve {
        out.insert(FIELD.into(), stored.get(FIELD).cloned().unwrap_or_else(|| json!({})));
    }
}

/// The document's embeddings for `embedder`.
pub fn embeddings(doc: &Doc, embedder: &str) -> Vec<Vec<f64>> {
    let Some(list) = doc.get(FIELD).and_then(|v| v.get(embedder)).and_then(|e| e.get("embeddings")) else {
        return vec![];
    };
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.as_array().map(|xs| xs.iter().filter_map(Value::as_f64).collect()))
        .collect()
}

pub fn similarity(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() != b.len() || a.is_empty() {
        return None;
    }
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    if na == 0.0 || nb == 0.0 {
        return None;
    }
    Some((1.0 + (dot / (na * nb)).clamp(-1.0, 1.0)) / 2.0)
}

/// The best similarity of any of the document's embeddings to `target`.
fn best(doc: &Doc, embedder: &str, target: &[f64]) -> Option<f64> {
    embeddings(doc, embedder).iter().filter_map(|e| similarity(e, target)).reduce(f64::max)
}

/// What a search asks of the vector store, parsed and checked against the index's embedders.
#[derive(Debug, Clone)]
pub enum Kind {
    Keyword,
    Semantic { embedder: String, vector: Option<Vec<f64>> },
    Hybrid { embedder: String, vector: Option<Vec<f64>>, ratio: f64 },
}

fn err(code: Code, msg: String) -> MeiliError {
    MeiliError::new(code, msg)
}

/// milli's `search_kind`: the order of the cases matters.
pub fn kind(body: &Map<String, Value>, q_raw: &str, embedders: &Value) -> DevResult<Kind> {
    let vector = match body.get("vector") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => Some(a.iter().map(|x| x.as_f64()).collect::<Option<Vec<f64>>>().ok_or_else(|| {
            err(Code::INVALID_SEARCH_VECTOR, "Invalid value type at `.vector`: expected an array of numbers".into())
        })?),
        Some(v) => {
            return Err(err(
                Code::INVALID_SEARCH_VECTOR,
                format!("Invalid value type at `.vector`: expected an array, but found `{v}`"),
            ))
        }
    };
    let hybrid = match body.get("hybrid") {
        None | Some(Value::Null) => None,
        Some(Value::Object(h)) => {
            let embedder = match h.get("embedder") {
                Some(Value::String(e)) => e.clone(),
                _ => {
                    return Err(err(Code::INVALID_SEARCH_EMBEDDER, "Missing field `embedder` inside `.hybrid`".into()))
                }
            };
            let ratio = match h.get("semanticRatio") {
                None => 0.5,
                Some(v) => v.as_f64().filter(|r| (0.0..=1.0).contains(r)).ok_or_else(|| {
                    err(Code::INVALID_SEARCH_SEMANTIC_RATIO, "Invalid value at `.hybrid.semanticRatio`: the value of `semanticRatio` is invalid, expected a float between `0.0` and `1.0`.".into())
                })?,
            };
            Some((embedder, ratio))
        }
        Some(v) => {
            return Err(err(
                Code::INVALID_SEARCH_HYBRID_QUERY,
                format!("Invalid value type at `.hybrid`: expected an object, but found `{v}`"),
            ))
        }
    };
    let placeholder = q_raw.trim().is_empty();
    let check = |embedder: &str| -> DevResult<()> {
        let Some(conf) = embedders.get(embedder) else {
            return Err(err(Code::INVALID_SEARCH_EMBEDDER, format!("Cannot find embedder with name `{embedder}`.")));
        };
        if let (Some(v), Some(d)) = (&vector, conf.get("dimensions").and_then(Value::as_u64)) {
            if v.len() as u64 != d {
                return Err(err(
                    Code::INVALID_VECTOR_DIMENSIONS,
                    format!("Invalid vector dimensions: expected: `{d}`, found: `{}`.", v.len()),
                ));
            }
        }
        Ok(())
    };
    Ok(match (hybrid, &vector) {
        (None, Some(_)) => {
            return Err(err(
                Code::MISSING_SEARCH_HYBRID,
                "Passing `vector` as a parameter requires `hybrid` to be specified.".into(),
            ))
        }
        (Some((_, 0.0)), _) => Kind::Keyword,
        (_, None) if placeholder => Kind::Keyword,
        (Some((e, r)), v) if r == 1.0 || placeholder => {
            check(&e)?;
            Kind::Semantic { embedder: e, vector: v.clone() }
        }
        (Some((e, r)), v) => {
            check(&e)?;
            Kind::Hybrid { embedder: e, vector: v.clone(), ratio: r }
        }
        (None, None) => Kind::Keyword,
    })
}

/// Ranks one document for a semantic search: `vectorSort` where the first keyword rule stands,
/// sort criteria and custom rules where they stand.
pub(super) fn rank(
    internal: u64,
    doc: &Doc,
    embedder: &str,
    target: Option<&[f64]>,
    rules: &[String],
    sort: &[(String, bool)],
) -> Ranked {
    let mut keys = Vec::new();
    let mut details = Map::new();
    let mut vector_done = false;
    let mut sim = None;
    let mut sorted = false;
    for rule in rules {
        let order = details.len();
        match rule.as_str() {
            "words" | "typo" | "proximity" | "attribute" | "attributeRank" | "wordPosition" | "exactness" => {
                if !vector_done {
                    vector_done = true;
                    sim = target.and_then(|t| best(doc, embedder, t));
                    details.insert("vectorSort".into(), json!({"order": order, "similarity": sim}));
                    keys.push(Key::Score(sim.unwrap_or(-1.0)));
                }
            }
            "sort" if !sorted => {
                sorted = true;
                for (field, asc) in sort {
                    let v = super::search::sort_value(doc, field, *asc);
                    let name = format!("{field}:{}", if *asc { "asc" } else { "desc" });
                    details.insert(name, json!({"order": details.len(), "value": v.clone().unwrap_or(Value::Null)}));
                    keys.push(Key::Sort(v, *asc));
                }
            }
            custom => {
                if let Some((field, dir @ ("asc" | "desc"))) = custom.rsplit_once(':') {
                    let asc = dir == "asc";
                    let v = super::search::sort_value(doc, field, asc);
                    details
                        .insert(custom.to_string(), json!({"order": order, "value": v.clone().unwrap_or(Value::Null)}));
                    keys.push(Key::Sort(v, asc));
                }
            }
        }
    }
    let mut r = Ranked::new(internal, keys, details, sim.unwrap_or(0.0));
    r.semantic = true;
    r
}

/// One value of milli's `score_values`: a score (weighted by the side's ratio) or a sort value.
enum ScoreValue<'a> {
    Score(f64),
    Sort(Option<&'a Value>, bool),
}

/// A hit's `score_values` read from its ranking details: a run of ranking rules counts as one
/// score (the hit's global score stands for it), `vectorSort` as its similarity, a sort
/// criterion as its value. Shared in spirit with the gateway's hybrid merge, which reads the
/// same details from the shards' answers.
fn score_values<'a>(details: &'a Map<String, Value>, global: f64) -> Vec<ScoreValue<'a>> {
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

/// milli's `compare_scores` over two hits' details, each with its side's ratio.
pub fn compare_scores(a: (&Map<String, Value>, f64, f64), b: (&Map<String, Value>, f64, f64)) -> Ordering {
    let (la, lb) = (score_values(a.0, a.1), score_values(b.0, b.1));
    let mut ia = la.iter();
    let mut ib = lb.iter();
    loop {
        match (ia.next(), ib.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(ScoreValue::Score(x)), Some(ScoreValue::Score(y))) => {
                let (x, y) = (x * a.2, y * b.2);
                if (x - y).abs() <= f64::EPSILON {
                    continue;
                }
                return x.partial_cmp(&y).unwrap_or(Ordering::Equal);
            }
            (Some(ScoreValue::Sort(x, asc)), Some(ScoreValue::Sort(y, _))) => {
                // Greater is better: a smaller value ranks higher under `asc`.
                let o = match (x, y) {
                    (Some(x), Some(y)) => {
                        let o = cmp_values(x, y);
                        if *asc {
                            o.reverse()
                        } else {
                            o
                        }
                    }
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

/// milli's `results_good_enough`: enough keyword hits, all with a weighted score ≥ 0.45.
pub fn good_enough<'a>(keyword_scores: impl ExactSizeIterator<Item = f64> + 'a, wanted: usize, ratio: f64) -> bool {
    if keyword_scores.len() < wanted {
        return false;
    }
    let mut scores = keyword_scores;
    scores.all(|s| s * (1.0 - ratio) >= 0.45)
}

/// `ScoreWithRatioResult::merge`: both sides (already cut to `offset + limit`) interleaved, the
/// semantic side first on equal scores, each document once, then `distinct`.
pub(super) fn merge<'a>(
    semantic: Vec<(Ranked, &'a Doc)>,
    keyword: Vec<(Ranked, &'a Doc)>,
    ratio: f64,
    distinct: Option<&str>,
) -> Vec<(Ranked, &'a Doc)> {
    let mut out: Vec<(Ranked, &Doc)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut seen_values = std::collections::HashSet::new();
    let mut s = semantic.into_iter().peekable();
    let mut k = keyword.into_iter().peekable();
    loop {
        let take_semantic = match (s.peek(), k.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some((a, _)), Some((b, _))) => {
                compare_scores((a.details(), a.score(), ratio), (b.details(), b.score(), 1.0 - ratio)).is_ge()
            }
        };
        let (r, d) = if take_semantic { s.next() } else { k.next() }.expect("peeked");
        if !seen.insert(r.internal()) {
            continue;
        }
        if let Some(attr) = distinct {
            if let Some(v) = filter::leaf_values(d, attr).first() {
                if !seen_values.insert(super::search::facet_key(v).to_lowercase()) {
                    continue;
                }
            }
        }
        out.push((r, d));
    }
    out
}
