//! `POST`/`GET /indexes/{uid}/similar`: milli's `Similar`, exhaustively. The reference document
//! is never a hit; documents without an embedding for the embedder are counted in
//! `estimatedTotalHits` (they are in the filtered universe) but never returned.

use serde_json::{json, Map, Value};

use super::search::{checked_filter, project, string_list};
use super::settings::View;
use super::vectors::{self, embeddings, similarity};
use super::{payload, Index};
use crate::error::{Code, DevResult, MeiliError};
use miroir_meili::listed;
use miroir_meili::params::SIMILAR_PARAMS;

fn flag(body: &Map<String, Value>, key: &str) -> DevResult<bool> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => Err(MeiliError::new(
            Code::for_param("invalid_similar", key),
            format!("Invalid value type at `.{key}`: expected a boolean, but found `{v}`"),
        )),
    }
}

pub fn similar(idx: &Index, body: &Map<String, Value>) -> DevResult<Value> {
    if let Some(k) = body.keys().find(|k| !SIMILAR_PARAMS.contains(&k.as_str())) {
        let all = listed(SIMILAR_PARAMS);
        return Err(MeiliError::bad_request(format!("Unknown field `{k}`: expected one of {all}")));
    }
    let Some(id_value) = body.get("id") else {
        return Err(MeiliError::bad_request("Missing field `id`".to_string()));
    };
    let embedder = match body.get("embedder") {
        None => return Err(MeiliError::bad_request("Missing field `embedder`".to_string())),
        Some(Value::String(e)) => e.clone(),
        Some(v) => {
            return Err(MeiliError::new(
                Code::INVALID_SIMILAR_EMBEDDER,
                format!("Invalid value type at `.embedder`: expected a string, but found `{v}`"),
            ))
        }
    };
    let count = |k: &str| -> DevResult<usize> {
        match body.get(k) {
            None | Some(Value::Null) => Ok(if k == "limit" { 20 } else { 0 }),
            Some(v) => v.as_u64().map(|n| n as usize).ok_or_else(|| {
                MeiliError::new(
                    Code::for_param("invalid_similar", k),
                    format!(
                        "Invalid value type at `.{k}`: expected a positive integer, but found {}",
                        miroir_meili::json::found(v)
                    ),
                )
            }),
        }
    };
    let offset = count("offset")?;
    let limit = count("limit")?;
    let fields = string_list(body, "attributesToRetrieve", Code::INVALID_SIMILAR_ATTRIBUTES_TO_RETRIEVE)?;
    let retrieve = flag(body, "retrieveVectors")?;
    let show_score = flag(body, "showRankingScore")?;
    let show_details = flag(body, "showRankingScoreDetails")?;
    flag(body, "showPerformanceDetails")?;
    let threshold = match body.get("rankingScoreThreshold") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_f64().filter(|t| (0.0..=1.0).contains(t)).ok_or_else(|| {
            MeiliError::new(Code::INVALID_SIMILAR_RANKING_SCORE_THRESHOLD, "Invalid value at `.rankingScoreThreshold`: the value of `rankingScoreThreshold` is invalid, expected a float between `0.0` and `1.0`.")
        })?),
    };
    let view = View::from_full(&idx.settings());
    if idx.settings().pointer(&format!("/embedders/{embedder}")).is_none() {
        return Err(MeiliError::new(
            Code::INVALID_SIMILAR_EMBEDDER,
            format!("Cannot find embedder with name `{embedder}`."),
        ));
    }
    let filter = checked_filter(body.get("filter").unwrap_or(&Value::Null), &view, Code::INVALID_SIMILAR_FILTER)?;
    let id = payload::document_id(id_value).ok_or_else(|| {
        let e = payload::invalid_id(id_value);
        MeiliError::new(Code::INVALID_SIMILAR_ID, format!("Invalid value at `.id`: {}", e.message))
    })?;
    let Some(&internal) = idx.ids.get(&id) else {
        return Err(MeiliError::new(Code::NOT_FOUND_SIMILAR_ID, format!("Document `{id}` not found.")));
    };
    let reference = embeddings(&idx.docs[&internal], &embedder);

    let universe: Vec<(u64, &super::Doc)> = idx
        .docs
        .iter()
        .filter(|(i, d)| **i != internal && filter.as_ref().is_none_or(|f| f.matches(d)))
        .map(|(i, d)| (*i, d))
        .collect();
    let mut scored: Vec<(f64, u64, &super::Doc)> = universe
        .iter()
        .filter_map(|(i, d)| {
            let best = embeddings(d, &embedder)
                .iter()
                .flat_map(|e| reference.iter().filter_map(move |r| similarity(e, r)))
                .reduce(f64::max)?;
            Some((best, *i, *d))
        })
        .collect();
    scored.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal).then(a.1.cmp(&b.1)));
    let mut total = universe.len();
    let mut hits = Vec::new();
    for (rank, (score, _, doc)) in scored.iter().enumerate().skip(offset).take(limit) {
        if threshold.is_some_and(|t| *score < t) {
            // milli keeps only the documents seen before the first one under the threshold.
            total = rank;
            break;
        }
        let mut h = project(doc, &view, fields.as_deref());
        vectors::present(&mut h, doc, retrieve);
        if show_score {
            h.insert("_rankingScore".into(), json!(score));
        }
        if show_details {
            h.insert("_rankingScoreDetails".into(), json!({"vectorSort": {"order": 0, "similarity": score}}));
        }
        hits.push(Value::Object(h));
    }
    Ok(json!({
        "hits": hits,
        "id": id,
        "processingTimeMs": 0,
        "limit": limit,
        "offset": offset,
        "estimatedTotalHits": total,
    }))
}
