//! The search routes: `/indexes/{uid}/search` (GET and POST), `/multi-search`,
//! `/indexes/{uid}/facet-search` and `/indexes/{uid}/similar`. Each handler checks what the HTTP
//! request carries (body shape, the missing-shards header, the caller's key and tenant token) and
//! hands the query to the read path (`crate::read::search`).

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::app::AppState;
use crate::error::{AppError, AppResult, Code};
use crate::http::auth::{invalid_api_key, Access};
use crate::http::extract::Json;
use crate::read::scatter::MissingPolicy;
use crate::read::search::{
    add_search_rules, facet_search, federated, get as get_query, multi_search, new_request_uid, search_value, similar,
};

/// `X-Miroir-Missing-Shards: error` turns a partial answer (some shard had no copy that answered)
/// into a 503; the default, `partial`, answers with what there is and names the missing shards.
pub const POLICY_HEADER: &str = "x-miroir-missing-shards";

pub(crate) fn policy(headers: &HeaderMap) -> AppResult<MissingPolicy> {
    match headers.get(POLICY_HEADER).map(|v| v.to_str().unwrap_or("")) {
        None | Some("partial") => Ok(MissingPolicy::Partial),
        Some("error") => Ok(MissingPolicy::Error),
        Some(other) => Err(AppError::new(
            Code::MIROIR_INVALID_HEADER,
            format!("`{POLICY_HEADER}` must be `partial` or `error`, not `{other}`."),
        )),
    }
}

/// The answer, with `X-Miroir-Degraded: shards=…` naming the shards no copy answered for, if any.
pub(crate) fn answer(body: impl serde::Serialize, missing: &[u32]) -> Response {
    (super::degraded_header(missing), axum::Json(body)).into_response()
}

fn object(body: Value, what: &str) -> AppResult<Map<String, Value>> {
    match body {
        Value::Object(body) => Ok(body),
        _ => Err(AppError::new(Code::BAD_REQUEST, format!("The {what} query must be a JSON object."))),
    }
}

/// `POST /indexes/{uid}/search` (`SIMILAR` false) and `POST /indexes/{uid}/similar` (true).
pub async fn post<const SIMILAR: bool>(
    State(app): State<Arc<AppState>>,
    access: Access,
    Path(uid): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> AppResult<Response> {
    let body = object(body, if SIMILAR { "similar" } else { "search" })?;
    run::<SIMILAR>(&app, &access, &uid, policy(&headers)?, body).await
}

/// The GET forms of the same routes: the same parameters in the query string.
pub async fn get<const SIMILAR: bool>(
    State(app): State<Arc<AppState>>,
    access: Access,
    Path(uid): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> AppResult<Response> {
    let policy = policy(&headers)?;
    let raw = raw.unwrap_or_default();
    let body = if SIMILAR { similar::query_to_body(&raw)? } else { get_query::query_to_body(&raw)? };
    run::<SIMILAR>(&app, &access, &uid, policy, body).await
}

/// One search, or one similar-documents search, under the caller's tenant token.
async fn run<const SIMILAR: bool>(
    app: &AppState,
    access: &Access,
    uid: &str,
    policy: MissingPolicy,
    mut body: Map<String, Value>,
) -> AppResult<Response> {
    if SIMILAR {
        let (found, missing) = similar::similar(app, access.search_filter(uid), uid, body, policy).await?;
        return Ok(answer(found, &missing));
    }
    add_search_rules(&mut body, access.search_filter(uid));
    // The hits stay raw JSON to the response (`raw::Answer`): no re-parse of documents.
    let (found, missing) = search_value(app, uid, body, policy, &new_request_uid()).await?;
    Ok(answer(found, &missing))
}

/// `POST /multi-search`: without federation, every query answered as its own search, in order;
/// with it, one merged list (see `federated`). Every query's index is authorised before any runs,
/// as in Meilisearch.
pub async fn multi(
    State(app): State<Arc<AppState>>,
    access: Access,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> AppResult<Response> {
    let policy = policy(&headers)?;
    let Some(Value::Array(queries)) = body.get("queries") else {
        return Err(AppError::new(Code::BAD_REQUEST, "Missing field `queries`"));
    };
    let refused = |i: usize| invalid_api_key().inside(&format!("Inside `.queries[{i}]`: "));
    if let Some(f) = body.get("federation").filter(|f| !f.is_null()) {
        let (window, facets) = federated::parse_federation(f)?;
        let mut parsed = Vec::with_capacity(queries.len());
        for (i, q) in queries.iter().enumerate() {
            parsed.push(federated::parse_query(i, q)?);
        }
        for q in parsed.iter_mut() {
            if !access.index_authorized(&q.index_uid) {
                return Err(refused(q.position));
            }
            add_search_rules(&mut q.body, access.search_filter(&q.index_uid));
        }
        let (found, missing) = federated::search(&app, parsed, window, &facets, policy, &new_request_uid()).await?;
        return Ok(answer(found, &missing));
    }
    let mut parsed = Vec::with_capacity(queries.len());
    for (i, q) in queries.iter().enumerate() {
        let mut q = q.as_object().cloned().unwrap_or_default();
        let Some(uid) = q.remove("indexUid").and_then(|v| v.as_str().map(str::to_string)) else {
            return Err(AppError::new(
                Code::MISSING_INDEX_UID,
                format!("Missing field `indexUid` inside `.queries[{i}]`"),
            ));
        };
        parsed.push((uid, q));
    }
    for (i, (uid, q)) in parsed.iter_mut().enumerate() {
        if !access.index_authorized(uid) {
            return Err(refused(i));
        }
        add_search_rules(q, access.search_filter(uid));
    }
    let (found, missing) = multi_search(&app, parsed, policy).await?;
    Ok(answer(found, &missing))
}

pub async fn facet_search(
    State(app): State<Arc<AppState>>,
    access: Access,
    Path(uid): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> AppResult<Response> {
    let policy = policy(&headers)?;
    let mut body = object(body, "facet search")?;
    // A tenant token's filter narrows facet search as it does search (Meilisearch's
    // `add_search_rules` in the facet-search route).
    add_search_rules(&mut body, access.search_filter(&uid));
    let (found, missing) = facet_search::facet_search(&app, &uid, body, policy).await?;
    Ok(answer(found, &missing))
}
