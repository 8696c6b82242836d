//! Routes of the dev node: Meilisearch's paths, verbs and answers, plus `/_devnode/*` for faults.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::documents::{
    add_replace, add_update, browse_get, browse_post, clear, delete_batch, delete_document, delete_filter, edit,
    get_document,
};
use super::{json_body, now, Faults, Shared};
use crate::engine::{check_index_uid, federated, search, settings, task_query, Op};
use crate::error::{Code, DevResult, MeiliError};

pub(super) type St = State<Arc<Shared>>;
pub(super) type Res = Result<Response, MeiliError>;

const BODY_LIMIT: usize = 100_000_000;

/// The raw body, with axum's own rejections turned into Meilisearch errors.
pub struct Body(pub(super) Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = MeiliError;
    async fn from_request(req: Request, state: &S) -> Result<Self, MeiliError> {
        Bytes::from_request(req, state).await.map(Body).map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                MeiliError::new(
                    Code::PAYLOAD_TOO_LARGE,
                    format!(
                        "The provided payload reached the size limit. The maximum accepted payload size is {}.",
                        "100 MB"
                    ),
                )
            } else {
                MeiliError::bad_request(e.body_text())
            }
        })
    }
}

pub(super) fn ct(h: &HeaderMap) -> Option<&str> {
    h.get("content-type").and_then(|v| v.to_str().ok())
}

pub(super) fn query(raw: &Option<String>) -> Vec<(String, String)> {
    raw.as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(super) fn ok(status: StatusCode, v: Value) -> Res {
    Ok((status, Json(v)).into_response())
}

pub(super) fn enqueue(s: &Shared, uid: &str, op: Op) -> Res {
    let summary = s.engine().enqueue(uid, op, now());
    s.work.notify_one();
    ok(StatusCode::ACCEPTED, summary)
}

pub(super) fn object(v: Value) -> DevResult<Map<String, Value>> {
    match v {
        Value::Object(m) => Ok(m),
        other => Err(MeiliError::bad_request(format!(
            "Json deserialize error: invalid type: {other}, expected a map at line 1 column 0"
        ))),
    }
}

/// Faults, before anything else (every request, like a sick host).
async fn faults(State(s): St, req: Request, next: Next) -> Response {
    if req.uri().path().starts_with("/_devnode") {
        return next.run(req).await;
    }
    if s.stopped.load(Ordering::SeqCst) {
        return MeiliError::new(Code::MIROIR_DEVNODE_STOPPED, "The dev node is stopped.").into_response();
    }
    let faults = s.faults().clone();
    if !faults.delay.is_zero() {
        tokio::time::sleep(faults.delay).await;
    }
    let n = s.requests.fetch_add(1, Ordering::SeqCst);
    let mut fail = false;
    {
        let mut f = s.faults();
        if f.fail_next > 0 {
            f.fail_next -= 1;
            fail = true;
        }
    }
    // Deterministic rate: request n fails when floor((n+1)·rate) steps past floor(n·rate).
    if faults.fail_rate > 0.0 && ((n + 1) as f64 * faults.fail_rate).floor() > (n as f64 * faults.fail_rate).floor() {
        fail = true;
    }
    if fail {
        return MeiliError::new(Code::MIROIR_DEVNODE_INJECTED_FAULT, "Injected failure.").into_response();
    }
    next.run(req).await
}

/// The master key. Only on routes a handler answers: Meilisearch checks the key in each handler's
/// `GuardedData` extractor, so an unknown path is a 404 and a wrong verb a 405 without any key.
async fn auth(State(s): St, req: Request, next: Next) -> Response {
    if let Some(key) = &s.master_key {
        match req.headers().get("authorization").and_then(|v| v.to_str().ok()) {
            None => {
                return MeiliError::new(
                    Code::MISSING_AUTHORIZATION_HEADER,
                    "The Authorization header is missing. It must use the bearer authorization method.",
                )
                .into_response()
            }
            Some(h) if h.strip_prefix("Bearer ").map(str::trim) != Some(key.as_str()) => {
                return MeiliError::new(Code::INVALID_API_KEY, "The provided API key is invalid.").into_response()
            }
            _ => {}
        }
    }
    next.run(req).await
}

type Mr = MethodRouter<Arc<Shared>>;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let key = middleware::from_fn_with_state(shared.clone(), auth);
    // `route_layer` on a method router leaves its 405 fallback outside the layer.
    let g = |mr: Mr| mr.route_layer(key.clone());
    let mut r = Router::new()
        .route("/health", get(|| async { Json(json!({"status": "available"})) }))
        .route(
            "/version",
            g(get(|| async {
                Json(json!({"commitSha": "unknown", "commitDate": "unknown", "pkgVersion": env!("CARGO_PKG_VERSION")}))
            })),
        )
        .route("/stats", g(get(global_stats)))
        .route("/indexes", g(get(list_indexes).post(create_index)))
        .route("/indexes/{uid}", g(get(get_index).patch(update_index).delete(delete_index)))
        .route("/indexes/{uid}/stats", g(get(index_stats)))
        .route("/indexes/{uid}/compact", g(post(compact)))
        .route("/indexes/{uid}/documents", g(get(browse_get).post(add_replace).put(add_update).delete(clear)))
        .route("/indexes/{uid}/documents/fetch", g(post(browse_post)))
        .route("/indexes/{uid}/documents/delete-batch", g(post(delete_batch)))
        .route("/indexes/{uid}/documents/delete", g(post(delete_filter)))
        .route("/indexes/{uid}/documents/edit", g(post(edit)))
        .route("/indexes/{uid}/documents/{id}", g(get(get_document).delete(delete_document)))
        .route("/indexes/{uid}/search", g(get(search_get).post(search_post)))
        .route("/indexes/{uid}/facet-search", g(post(facet_search)))
        .route("/indexes/{uid}/similar", g(get(similar_get).post(similar_post)))
        .route("/indexes/{uid}/fields", g(post(list_fields)))
        .route("/multi-search", g(post(multi_search)))
        .route("/indexes/{uid}/settings", g(get(get_settings).patch(patch_settings).delete(reset_settings)))
        .route("/experimental-features", g(get(get_features).patch(patch_features)))
        .route("/swap-indexes", g(post(super::admin::swap_indexes)))
        .route("/dynamic-search-rules", g(post(super::search_rules::list).delete(super::search_rules::clear)))
        .route(
            "/dynamic-search-rules/{uid}",
            g(get(super::search_rules::get).patch(super::search_rules::update).delete(super::search_rules::delete)),
        )
        .route("/tasks", g(get(list_tasks).delete(super::admin::delete_tasks)))
        .route("/tasks/cancel", g(post(super::admin::cancel_tasks)))
        .route("/tasks/{uid}", g(get(get_task)))
        .route("/_devnode/faults", get(get_faults).post(set_faults));
    for &(segment, key, verb) in miroir_meili::settings::SETTINGS {
        let set = move |st: St, p: Path<String>, h: HeaderMap, b: Body| set_sub(st, p, h, b, key);
        let mr = get(move |st: St, p: Path<String>| get_sub(st, p, key))
            .delete(move |st: St, p: Path<String>| reset_sub(st, p, key));
        let mr = if verb == "PATCH" { mr.patch(set) } else { mr.put(set) };
        r = r.route(&format!("/indexes/{{uid}}/settings/{segment}"), g(mr));
    }
    r.fallback(|| async { StatusCode::NOT_FOUND })
        .layer(middleware::from_fn_with_state(shared.clone(), faults))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

async fn get_features(State(s): St) -> Res {
    ok(StatusCode::OK, s.engine().features_view())
}

async fn patch_features(State(s): St, h: HeaderMap, Body(b): Body) -> Res {
    let patch = object(json_body(ct(&h), &b)?)?;
    let view = s.engine().patch_features(&patch)?;
    ok(StatusCode::OK, view)
}

async fn get_faults(State(s): St) -> Json<Value> {
    let f = s.faults().clone();
    let paused = s.engine().paused;
    Json(
        json!({"delayMs": f.delay.as_millis() as u64, "failNext": f.fail_next, "failRate": f.fail_rate, "stopped": s.stopped.load(Ordering::SeqCst), "paused": paused}),
    )
}

/// `{delayMs, failNext, failRate, stopped, paused, clearData}`: every field optional. `paused`
/// holds the queue (tasks stay enqueued, only cancelations and deletions run).
async fn set_faults(State(s): St, h: HeaderMap, Body(b): Body) -> Res {
    let v = object(json_body(ct(&h), &b)?)?;
    let mut f: Faults = s.faults().clone();
    if let Some(d) = v.get("delayMs").and_then(Value::as_u64) {
        f.delay = std::time::Duration::from_millis(d);
    }
    if let Some(n) = v.get("failNext").and_then(Value::as_u64) {
        f.fail_next = n;
    }
    if let Some(r) = v.get("failRate").and_then(Value::as_f64) {
        f.fail_rate = r.clamp(0.0, 1.0);
    }
    if let Some(st) = v.get("stopped").and_then(Value::as_bool) {
        s.stopped.store(st, Ordering::SeqCst);
    }
    if v.get("clearData").and_then(Value::as_bool) == Some(true) {
        *s.engine() = Default::default();
    }
    if let Some(p) = v.get("paused").and_then(Value::as_bool) {
        s.engine().paused = p;
        s.work.notify_one();
    }
    *s.faults() = f;
    Ok(get_faults(State(s)).await.into_response())
}

fn page(params: &[(String, String)], code_prefix: &str) -> DevResult<(usize, usize)> {
    let mut offset = 0;
    let mut limit = 20;
    for (k, v) in params {
        let slot = match k.as_str() {
            "offset" => &mut offset,
            "limit" => &mut limit,
            _ => continue,
        };
        *slot = v.parse().map_err(|_| {
            let code = Code::for_param(&format!("invalid_{code_prefix}"), k);
            MeiliError::new(
                code,
                format!("Invalid value in parameter `{k}`: could not parse `{v}` as a positive integer"),
            )
        })?;
    }
    Ok((offset, limit))
}

async fn list_indexes(State(s): St, RawQuery(q): RawQuery) -> Res {
    let params = query(&q);
    // `ListIndexes` denies unknown parameters.
    if let Some((k, _)) = params.iter().find(|(k, _)| k != "offset" && k != "limit") {
        return Err(MeiliError::bad_request(format!("Unknown parameter `{k}`: expected one of `offset`, `limit`")));
    }
    let (offset, limit) = page(&params, "index")?;
    let e = s.engine();
    let results: Vec<Value> = e.indexes.values().skip(offset).take(limit).map(|i| i.view()).collect();
    ok(StatusCode::OK, json!({"results": results, "offset": offset, "limit": limit, "total": e.indexes.len()}))
}

fn primary_key_field(m: &Map<String, Value>, code: Code) -> DevResult<Option<String>> {
    match m.get("primaryKey") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(MeiliError::new(
            code,
            format!("Invalid value type at `.primaryKey`: expected a string, but found `{v}`"),
        )),
    }
}

async fn create_index(State(s): St, h: HeaderMap, Body(b): Body) -> Res {
    let m = object(json_body(ct(&h), &b)?)?;
    let uid = match m.get("uid") {
        None => return Err(MeiliError::new(Code::MISSING_INDEX_UID, "Missing field `uid`")),
        Some(Value::String(u)) => u.clone(),
        Some(v) => {
            return Err(MeiliError::new(
                Code::INVALID_INDEX_UID,
                format!("Invalid value type at `.uid`: expected a string, but found `{v}`"),
            ))
        }
    };
    check_index_uid(&uid)?;
    if let Some(k) = m.keys().find(|k| *k != "uid" && *k != "primaryKey") {
        return Err(MeiliError::bad_request(format!("Unknown field `{k}`: expected one of `uid`, `primaryKey`")));
    }
    let primary_key = primary_key_field(&m, Code::INVALID_INDEX_PRIMARY_KEY)?;
    enqueue(&s, &uid, Op::CreateIndex { primary_key })
}

async fn get_index(State(s): St, Path(uid): Path<String>) -> Res {
    check_index_uid(&uid)?;
    ok(StatusCode::OK, s.engine().index(&uid)?.view())
}

/// `GET /stats`: the in-memory node's sizes are the JSON size of its documents.
async fn global_stats(State(s): St) -> Res {
    let engine = s.engine();
    let indexes: Map<String, Value> = engine.indexes.iter().map(|(uid, i)| (uid.clone(), i.stats())).collect();
    let size: u64 = engine.indexes.values().map(|i| i.raw_size()).sum();
    ok(StatusCode::OK, json!({"databaseSize": size, "usedDatabaseSize": size, "lastUpdate": null, "indexes": indexes}))
}

async fn index_stats(State(s): St, Path(uid): Path<String>) -> Res {
    check_index_uid(&uid)?;
    ok(StatusCode::OK, s.engine().index(&uid)?.stats())
}

async fn compact(State(s): St, Path(uid): Path<String>) -> Res {
    check_index_uid(&uid)?;
    s.engine().index(&uid)?;
    enqueue(&s, &uid, Op::Compact)
}

async fn update_index(State(s): St, Path(uid): Path<String>, h: HeaderMap, Body(b): Body) -> Res {
    check_index_uid(&uid)?;
    let m = object(json_body(ct(&h), &b)?)?;
    // `UpdateIndexRequest` in 1.50: `primaryKey` and `uid` (a rename), nothing else.
    // `deny_immutable_fields_index`: the two timestamps have their own codes.
    if let Some(k) = m.keys().find(|k| *k != "uid" && *k != "primaryKey") {
        let msg = "expected one of `primaryKey`, `uid`";
        return Err(match k.as_str() {
            "createdAt" => {
                MeiliError::new(Code::IMMUTABLE_INDEX_CREATED_AT, format!("Immutable field `createdAt`: {msg}"))
            }
            "updatedAt" => {
                MeiliError::new(Code::IMMUTABLE_INDEX_UPDATED_AT, format!("Immutable field `updatedAt`: {msg}"))
            }
            _ => MeiliError::bad_request(format!("Unknown field `{k}`: {msg}")),
        });
    }
    let rename = match m.get("uid") {
        None | Some(Value::Null) => None,
        Some(Value::String(new_uid)) => {
            check_index_uid(new_uid)?;
            Some((uid.clone(), new_uid.clone()))
        }
        Some(v) => {
            return Err(MeiliError::new(
                Code::INVALID_INDEX_UID,
                format!("Invalid value type at `.uid`: expected a string, but found `{v}`"),
            ))
        }
    };
    let primary_key = primary_key_field(&m, Code::INVALID_INDEX_PRIMARY_KEY)?;
    enqueue(&s, &uid, Op::UpdateIndex { primary_key, rename })
}

async fn delete_index(State(s): St, Path(uid): Path<String>) -> Res {
    check_index_uid(&uid)?;
    enqueue(&s, &uid, Op::DeleteIndex)
}

/// Query-string parameters as the JSON body Meilisearch's POST variant takes.
pub(super) fn query_to_body(
    params: Vec<(String, String)>,
    lists: &[&str],
    numbers: &[&str],
    bools: &[&str],
    code_prefix: &str,
) -> DevResult<Map<String, Value>> {
    let mut m = Map::new();
    for (k, v) in params {
        let val = if lists.contains(&k.as_str()) {
            json!(v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect::<Vec<_>>())
        } else if numbers.contains(&k.as_str()) {
            match v.parse::<u64>() {
                Ok(n) => json!(n),
                Err(_) => {
                    let code = Code::for_param(&format!("invalid_{code_prefix}"), &k);
                    return Err(MeiliError::new(
                        code,
                        format!("Invalid value in parameter `{k}`: could not parse `{v}` as a positive integer"),
                    ));
                }
            }
        } else if bools.contains(&k.as_str()) {
            match v.as_str() {
                "true" => json!(true),
                "false" => json!(false),
                _ => {
                    let code = Code::for_param(&format!("invalid_{code_prefix}"), &k);
                    return Err(MeiliError::new(
                        code,
                        format!(
                            "Invalid value in parameter `{k}`: could not parse `{v}` as a boolean, expected either `true` or `false`"
                        ),
                    ));
                }
            }
        } else {
            json!(v)
        };
        m.insert(k, val);
    }
    Ok(m)
}

fn request_uid(s: &Shared) -> String {
    let n = s.requests.load(Ordering::SeqCst);
    format!("00000000-0000-4000-8000-{n:012x}")
}

async fn search_get(State(s): St, Path(uid): Path<String>, RawQuery(q): RawQuery) -> Res {
    check_index_uid(&uid)?;
    let body = query_to_body(
        query(&q),
        &[
            "attributesToRetrieve",
            "facets",
            "sort",
            "attributesToHighlight",
            "attributesToCrop",
            "attributesToSearchOn",
        ],
        &["offset", "limit", "page", "hitsPerPage", "cropLength"],
        &["showRankingScore", "showRankingScoreDetails", "showMatchesPosition", "retrieveVectors"],
        "search",
    )?;
    // A filter that parses as JSON (an array of conditions) is taken as JSON (`SearchQueryGet`'s
    // `TryFrom`).
    let mut body = body;
    if let Some(Value::String(f)) = body.get("filter") {
        if let Ok(parsed) = serde_json::from_str::<Value>(f) {
            body.insert("filter".into(), parsed);
        }
    }
    let e = s.engine();
    ok(StatusCode::OK, search::search(e.index(&uid)?, &body, request_uid(&s), e.active_search_rules())?)
}

async fn search_post(State(s): St, Path(uid): Path<String>, h: HeaderMap, Body(b): Body) -> Res {
    check_index_uid(&uid)?;
    let body = object(json_body(ct(&h), &b)?)?;
    let e = s.engine();
    ok(StatusCode::OK, search::search(e.index(&uid)?, &body, request_uid(&s), e.active_search_rules())?)
}

async fn similar_get(State(s): St, Path(uid): Path<String>, RawQuery(q): RawQuery) -> Res {
    check_index_uid(&uid)?;
    let body = query_to_body(
        query(&q),
        &["attributesToRetrieve"],
        &["offset", "limit"],
        &["showRankingScore", "showRankingScoreDetails", "showPerformanceDetails", "retrieveVectors"],
        "similar",
    )?;
    let e = s.engine();
    ok(StatusCode::OK, crate::engine::similar::similar(e.index(&uid)?, &body)?)
}

async fn similar_post(State(s): St, Path(uid): Path<String>, h: HeaderMap, Body(b): Body) -> Res {
    check_index_uid(&uid)?;
    let body = object(json_body(ct(&h), &b)?)?;
    let e = s.engine();
    ok(StatusCode::OK, crate::engine::similar::similar(e.index(&uid)?, &body)?)
}

async fn facet_search(State(s): St, Path(uid): Path<String>, h: HeaderMap, Body(b): Body) -> Res {
    check_index_uid(&uid)?;
    let body = object(json_body(ct(&h), &b)?)?;
    let e = s.engine();
    ok(StatusCode::OK, search::facet_search(e.index(&uid)?, &body)?)
}

/// The body is checked before the index is looked up (Meilisearch extracts it first); only a
/// reserved uid is refused, any other unknown one is not found.
async fn list_fields(State(s): St, Path(uid): Path<String>, h: HeaderMap, Body(b): Body) -> Res {
    let req = miroir_meili::fields::parse(&json_body(ct(&h), &b)?)?;
    miroir_meili::fields::check_uid(&uid)?;
    let e = s.engine();
    ok(StatusCode::OK, crate::engine::fields::list(e.index(&uid)?, &req))
}

async fn multi_search(State(s): St, h: HeaderMap, Body(b): Body) -> Res {
    let body = object(json_body(ct(&h), &b)?)?;
    if let Some(k) = body.keys().find(|k| *k != "queries" && *k != "federation") {
        return Err(MeiliError::bad_request(format!("Unknown field `{k}`: expected one of `queries`, `federation`")));
    }
    let Some(Value::Array(queries)) = body.get("queries") else {
        return Err(MeiliError::new(Code::BAD_REQUEST, "Missing field `queries`"));
    };
    if let Some(f) = body.get("federation").filter(|f| !f.is_null()) {
        let (window, facets) = federated::parse_federation(f)?;
        let e = s.engine();
        return ok(
            StatusCode::OK,
            federated::search(|uid| e.index(uid), queries, window, &facets, request_uid(&s), e.active_search_rules())?,
        );
    }
    let e = s.engine();
    let mut results = Vec::new();
    // One request uid for the whole multi-search, shown in every result (`perform_search` sets
    // `request_uid: Some(..)` for each query of a non-federated multi-search).
    let uid_of_request = request_uid(&s);
    for (i, q) in queries.iter().enumerate() {
        let mut q = q.as_object().cloned().unwrap_or_default();
        let Some(uid) = q.remove("indexUid").and_then(|v| v.as_str().map(str::to_string)) else {
            return Err(MeiliError::new(
                Code::MISSING_INDEX_UID,
                format!("Missing field `indexUid` inside `.queries[{i}]`"),
            ));
        };
        // `FederationOptionsInNonFederatedRequest` (`routes/multi_search.rs`).
        if q.remove("federationOptions").is_some_and(|f| !f.is_null()) {
            return Err(MeiliError::new(Code::INVALID_MULTI_SEARCH_FEDERATION_OPTIONS, format!("Inside `.queries[{i}]`: Using `federationOptions` is not allowed in a non-federated search.\n - Hint: remove `federationOptions` from the query or add `federation` to the request.")));
        }
        let r = e
            .index(&uid)
            .and_then(|idx| search::search(idx, &q, uid_of_request.clone(), e.active_search_rules()))
            .map_err(|err| {
                // An unknown index is the request's fault here, not the URL's: 400, as in
                // Meilisearch 1.50 (checked against a real node).
                let code = if err.code == Code::INDEX_NOT_FOUND { err.code.with_status(400) } else { err.code };
                MeiliError::new(code, format!("Inside `.queries[{i}]`: {}", err.message))
            })?;
        let r = r.as_object().cloned().unwrap_or_default();
        let mut out = Map::new();
        out.insert("indexUid".into(), json!(uid));
        out.extend(r);
        results.push(Value::Object(out));
    }
    ok(StatusCode::OK, json!({"results": results}))
}

async fn get_settings(State(s): St, Path(uid): Path<String>) -> Res {
    check_index_uid(&uid)?;
    let e = s.engine();
    let mut full = e.index(&uid)?.settings();
    if let Some(m) = full.as_object_mut() {
        for (key, feature, ..) in settings::GATED {
            if !e.features.get(*feature).copied().unwrap_or(false) {
                m.remove(*key);
            }
        }
    }
    ok(StatusCode::OK, full)
}

async fn patch_settings(State(s): St, Path(uid): Path<String>, h: HeaderMap, Body(b): Body) -> Res {
    check_index_uid(&uid)?;
    let mut patch = object(json_body(ct(&h), &b)?)?;
    settings::validate(&patch)?;
    check_features(&s, &patch)?;
    settings::normalize(&mut patch);
    enqueue(&s, &uid, Op::Settings(patch))
}

async fn reset_settings(State(s): St, Path(uid): Path<String>) -> Res {
    check_index_uid(&uid)?;
    let patch: Map<String, Value> = settings::defaults()
        .as_object()
        .map(|m| m.keys().map(|k| (k.clone(), Value::Null)).collect())
        .unwrap_or_default();
    enqueue(&s, &uid, Op::Settings(patch))
}

async fn get_sub(State(s): St, Path(uid): Path<String>, key: &'static str) -> Res {
    check_index_uid(&uid)?;
    let full = s.engine().index(&uid)?.settings();
    ok(StatusCode::OK, full.get(key).cloned().unwrap_or(Value::Null))
}

async fn set_sub(State(s): St, Path(uid): Path<String>, h: HeaderMap, Body(b): Body, key: &'static str) -> Res {
    check_index_uid(&uid)?;
    let v = json_body(ct(&h), &b)?;
    let mut patch = Map::new();
    patch.insert(key.to_string(), v);
    settings::validate(&patch)?;
    check_features(&s, &patch)?;
    settings::normalize(&mut patch);
    enqueue(&s, &uid, Op::Settings(patch))
}

async fn reset_sub(State(s): St, Path(uid): Path<String>, key: &'static str) -> Res {
    check_index_uid(&uid)?;
    let mut patch = Map::new();
    patch.insert(key.to_string(), Value::Null);
    enqueue(&s, &uid, Op::Settings(patch))
}

fn check_features(s: &Shared, patch: &Map<String, Value>) -> DevResult<()> {
    let e = s.engine();
    settings::check_features(patch, |f| e.features.get(f).copied().unwrap_or(false))
}

async fn list_tasks(State(s): St, RawQuery(q): RawQuery) -> Res {
    let tasks = s.engine().visible_tasks();
    ok(StatusCode::OK, task_query::list_tasks(&tasks, &query(&q))?)
}

async fn get_task(State(s): St, Path(uid): Path<String>) -> Res {
    // `TaskId` is a u32; anything else is `index_scheduler::Error::InvalidTaskUid`.
    let n: u32 = uid.parse().map_err(|_| {
        MeiliError::new(
            Code::INVALID_TASK_UIDS,
            format!("Task uid `{uid}` is invalid. It should only contain numeric characters."),
        )
    })?;
    let e = s.engine();
    let t = e
        .tasks
        .get(n as usize)
        .filter(|t| !e.deleted.contains(&t.uid))
        .ok_or_else(|| MeiliError::new(Code::TASK_NOT_FOUND, format!("Task `{n}` not found.")))?;
    ok(StatusCode::OK, t.view())
}
