//! `POST`/`GET /indexes/{uid}/similar`. Only the shard holding the reference document has its
//! embedding, so the gateway reads it there (`retrieveVectors`) and asks every shard for a
//! semantic search on that vector, merged by similarity like any search. The reference document
//! is dropped from the hits and from the total, and documents without an embedding (a semantic
//! search ranks them last, with no similarity) are not hits, as in milli's `Similar`.

use miroir::placement::{canonical_doc_id, shard_of};
use miroir_node_client::{Method, NodeRequest};
use serde_json::{json, Map, Value};

use super::{add_search_rules, merged_search, new_request_uid};
use crate::app::AppState;
use crate::error::{AppError, AppResult, Code};
use crate::read::replicas::{read_candidates, send_with_failover};
use crate::read::scatter::MissingPolicy;
use miroir_meili::listed;
use miroir_meili::params::SIMILAR_PARAMS;

/// The shards were asked a search: their complaints about it are about the similar query.
fn as_similar(mut e: AppError) -> AppError {
    if let Some(f) = e.forwarded.as_mut() {
        if let Some(code) = f.1.get("code").and_then(Value::as_str).and_then(|c| c.strip_prefix("invalid_search_")) {
            let code = format!("invalid_similar_{code}");
            f.1["link"] = Value::from(format!("https://docs.meilisearch.com/errors#{code}"));
            f.1["code"] = Value::from(code);
        }
    }
    e
}

/// The body a `GET /indexes/{uid}/similar` stands for: its query string, typed as Meilisearch
/// types it.
pub fn query_to_body(raw: &str) -> AppResult<Map<String, Value>> {
    let mut body = Map::new();
    for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
        let (k, v) = (k.into_owned(), v.into_owned());
        let value = match k.as_str() {
            "offset" | "limit" => Value::from(v.parse::<u64>().map_err(|_| {
                AppError::new(
                    Code::for_param("invalid_similar", &k),
                    format!("Invalid value in parameter `{k}`: could not parse `{v}` as a positive integer"),
                )
            })?),
            "retrieveVectors" | "showRankingScore" | "showRankingScoreDetails" | "showPerformanceDetails" => {
                match v.as_str() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    _ => {
                        return Err(AppError::new(Code::for_param("invalid_similar", &k),
                            format!("Invalid value in parameter `{k}`: could not parse `{v}` as a boolean, expected either `true` or `false`"),
                        ));
                    }
                }
            }
            "rankingScoreThreshold" => v.parse::<f64>().map(Value::from).unwrap_or(Value::String(v)),
            "attributesToRetrieve" => Value::from(v.split(',').map(str::trim).map(String::from).collect::<Vec<_>>()),
            _ => Value::String(v),
        };
        body.insert(k, value);
    }
    Ok(body)
}

/// The reference document's embeddings for `embedder`, read from an in-sync copy of its shard;
/// `None` when the document does not exist (or the tenant token does not let the caller see it).
async fn reference(
    app: &AppState,
    uid: &str,
    id: &str,
    embedder: &str,
    tenant: Option<Value>,
) -> AppResult<Option<Vec<Value>>> {
    let map = app.map();
    let index = map.indexes.get(uid).ok_or_else(|| AppError::index_not_found(uid))?;
    let pk = index.primary_key.clone().unwrap_or_else(|| "id".into());
    let mut body = json!({"ids": [id], "fields": [pk], "retrieveVectors": true, "limit": 1});
    if let Some(rule) = tenant {
        body["filter"] = rule;
    }
    let request = NodeRequest::json(Method::Post, format!("/indexes/{uid}/documents/fetch"), &body);
    let candidates = read_candidates(&map, uid, shard_of(id, index.shards));
    let answer = send_with_failover(&app.nodes, &map, &candidates, request).await.map_err(as_similar)?;
    let Some(doc) = answer.get("results").and_then(Value::as_array).and_then(|r| r.first()) else {
        return Ok(None);
    };
    let embeddings = doc
        .pointer(&format!("/_vectors/{}/embeddings", embedder.replace('~', "~0").replace('/', "~1")))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    Ok(Some(embeddings))
}

/// `/similar`: the reference document's embedding read from its shard (under the tenant token's
/// filter `tenant`), then every shard searched with it. Also returns the shards no copy answered.
pub async fn similar(
    app: &AppState,
    tenant: Option<Value>,
    uid: &str,
    mut body: Map<String, Value>,
    policy: MissingPolicy,
) -> AppResult<(Value, Vec<u32>)> {
    let started = std::time::Instant::now();
    if let Some(k) = body.keys().find(|k| !SIMILAR_PARAMS.contains(&k.as_str())) {
        let all = listed(SIMILAR_PARAMS);
        return Err(AppError::new(Code::BAD_REQUEST, format!("Unknown field `{k}`: expected one of {all}")));
    }
    let Some(id_value) = body.remove("id") else {
        return Err(AppError::new(Code::BAD_REQUEST, "Missing field `id`"));
    };
    let embedder = match body.get("embedder") {
        None => return Err(AppError::new(Code::BAD_REQUEST, "Missing field `embedder`")),
        Some(Value::String(e)) => e.clone(),
        Some(v) => {
            return Err(AppError::new(
                Code::INVALID_SIMILAR_EMBEDDER,
                format!("Invalid value type at `.embedder`: expected a string, but found `{v}`"),
            ))
        }
    };
    let count = |k: &str| -> AppResult<Option<usize>> {
        match body.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_u64().map(|n| Some(n as usize)).ok_or_else(|| {
                AppError::new(
                    Code::for_param("invalid_similar", k),
                    format!(
                        "Invalid value type at `.{k}`: expected a positive integer, but found {}",
                        miroir_meili::json::found(v)
                    ),
                )
            }),
        }
    };
    let offset = count("offset")?.unwrap_or(0);
    let limit = count("limit")?.unwrap_or(20);
    let map = app.map();
    let index = map.indexes.get(uid).ok_or_else(|| AppError::index_not_found(uid))?;
    let pk = index.primary_key.clone().unwrap_or_else(|| "id".into());
    if index.settings.get("embedders").and_then(|e| e.get(&embedder)).is_none() {
        return Err(AppError::new(
            Code::INVALID_SIMILAR_EMBEDDER,
            format!("Cannot find embedder with name `{embedder}`."),
        ));
    }
    let id = canonical_doc_id(&id_value).map_err(|_| {
        AppError::new(Code::INVALID_SIMILAR_ID,
            format!("Invalid value at `.id`: Document identifier `{id_value}` is invalid. A document identifier can be of type integer or string, only composed of alphanumeric characters (a-z A-Z 0-9), hyphens (-) and underscores (_), and can not be more than 511 bytes."),
        )
    })?;
    let Some(embeddings) = reference(app, uid, &id, &embedder, tenant.clone()).await? else {
        return Err(AppError::new(Code::NOT_FOUND_SIMILAR_ID, format!("Document `{id}` not found.")));
    };
    let show_score = body.get("showRankingScore").and_then(Value::as_bool).unwrap_or(false);
    let show_details = body.get("showRankingScoreDetails").and_then(Value::as_bool).unwrap_or(false);
    let strip_pk = match body.get_mut("attributesToRetrieve") {
        Some(Value::Array(attrs)) if !attrs.iter().any(|a| a == "*" || a.as_str() == Some(pk.as_str())) => {
            attrs.push(Value::from(pk.clone()));
            true
        }
        _ => false,
    };
    add_search_rules(&mut body, tenant);
    body.remove("embedder");
    body.remove("showPerformanceDetails");
    body.insert("hybrid".into(), json!({"embedder": embedder, "semanticRatio": 1.0}));
    body.insert("offset".into(), Value::from(0));
    // The reference document is a candidate of the shards' searches: one more hit covers it.
    body.insert("limit".into(), Value::from(offset + limit + 1));
    body.insert("showRankingScore".into(), Value::Bool(true));
    body.insert("showRankingScoreDetails".into(), Value::Bool(true));

    let (mut hits, mut total, missing) = match embeddings.first() {
        Some(vector) => {
            body.insert("vector".into(), vector.clone());
            let (answer, missing) =
                merged_search(app, uid, body, policy, &new_request_uid(), false).await.map_err(as_similar)?;
            let answer = answer.into_value();
            let total = answer.get("estimatedTotalHits").and_then(Value::as_u64).unwrap_or(0) as usize;
            let hits = answer.get("hits").and_then(Value::as_array).cloned().unwrap_or_default();
            (hits, total, missing)
        }
        // No embedding: no hits, but the filtered documents other than the reference count.
        None => {
            body.remove("hybrid");
            body.insert("limit".into(), Value::from(0));
            let filter = body.get("filter").cloned();
            let (answer, missing) =
                merged_search(app, uid, body, policy, &new_request_uid(), false).await.map_err(as_similar)?;
            let answer = answer.into_value();
            let mut total = answer.get("estimatedTotalHits").and_then(Value::as_u64).unwrap_or(0) as usize;
            if reference(app, uid, &id, &embedder, filter.filter(|f| !f.is_null())).await?.is_some() {
                total = total.saturating_sub(1);
            }
            (vec![], total, missing)
        }
    };
    let is_reference = |h: &Value| h.get(&pk).and_then(|v| canonical_doc_id(v).ok()).as_deref() == Some(id.as_str());
    if hits.iter().any(is_reference) {
        total = total.saturating_sub(1);
    }
    hits.retain(|h| {
        !is_reference(h) && h.pointer("/_rankingScoreDetails/vectorSort/similarity").is_some_and(|s| !s.is_null())
    });
    let mut hits: Vec<Value> = hits.into_iter().skip(offset).take(limit).collect();
    for h in hits.iter_mut().filter_map(Value::as_object_mut) {
        if strip_pk {
            h.remove(&pk);
        }
        if !show_details {
            h.remove("_rankingScoreDetails");
        }
        if !show_score {
            h.remove("_rankingScore");
        }
    }
    let answer = json!({
        "hits": hits,
        "id": id,
        "processingTimeMs": started.elapsed().as_millis() as u64,
        "limit": limit,
        "offset": offset,
        "estimatedTotalHits": total,
    });
    Ok((answer, missing))
}
