//! Document routes: hash-routed writes and reads, broadcast deletions, and a globally paginated
//! browse over one covering set of copies.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use miroir::command::Command;
use miroir::ids::{GroupId, NodeId, ShardId};
use miroir::placement::{canonical_doc_id, shard_of};
use miroir::task::NewTask;
use miroir::RoutingMap;
use miroir_node_client::{Method, NodeError, NodeRequest};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{accepted, json_ok};
use crate::app::AppState;
use crate::documents::payload::{self, Format};
use crate::documents::route::{check_documents, plan_by_node, resolve_primary_key, shard_documents, SHARD_FIELD};
use crate::error::{AppError, AppResult, Code};
use crate::extract::{Json, Query, RawBody};
use crate::fanout::{self, degraded_shards, index_nodes};
use crate::read::{covering_set, get_with_failover, read_candidates, shard_filter};
use crate::tasks::now_millis;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteParams {
    primary_key: Option<String>,
    csv_delimiter: Option<String>,
}

pub async fn add_or_replace(
    State(app): State<Arc<AppState>>,
    Path(uid): Path<String>,
    Query(p): Query<WriteParams>,
    body: RawBody,
) -> AppResult<Response> {
    add_documents(&app, uid, p, body, Method::Post).await
}

pub async fn add_or_update(
    State(app): State<Arc<AppState>>,
    Path(uid): Path<String>,
    Query(p): Query<WriteParams>,
    body: RawBody,
) -> AppResult<Response> {
    add_documents(&app, uid, p, body, Method::Put).await
}

/// Makes sure the index exists in the cluster, creating it like Meilisearch does on a first write.
async fn ensure_index(app: &AppState, uid: &str) -> AppResult<Arc<RoutingMap>> {
    let map = app.map();
    if map.indexes.contains_key(uid) {
        return Ok(map);
    }
    if !miroir::placement::is_valid_index_uid(uid) {
        return Err(AppError::invalid_index_uid(uid));
    }
    let cmd = Command::CreateIndex { uid: uid.into(), primary_key: None, shards: None, rf: None, at: now_millis() };
    match app.cluster.propose(cmd).await {
        Ok((_, version)) => {
            let map = app.wait_for_version(version).await?;
            super::indexes::create_on_nodes(app, &map, uid).await?;
            Ok(map)
        }
        // Another write created it concurrently: wait until its creation reaches this gateway.
        Err(crate::cluster::ClusterError::Rejected(miroir::CommandError::IndexExists(_))) => {
            app.wait_until(|m| m.indexes.contains_key(uid)).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn add_documents(
    app: &AppState,
    uid: String,
    p: WriteParams,
    body: RawBody,
    method: Method,
) -> AppResult<Response> {
    app.check_writable()?;
    // Everything about the payload is checked before anything is written anywhere.
    let format = Format::from_content_type(body.content_type.as_deref(), p.csv_delimiter.as_deref())?;
    let docs = payload::parse(&body.bytes, format)?;
    let declared = app.map().indexes.get(&uid).and_then(|i| i.primary_key.clone());
    let pk = resolve_primary_key(&uid, declared.as_deref(), p.primary_key.as_deref(), docs.first())?;
    if !miroir::placement::is_valid_index_uid(&uid) {
        return Err(AppError::invalid_index_uid(&uid));
    }
    let count = docs.len();
    check_documents(&docs, &pk.name)?;

    let mut map = ensure_index(app, &uid).await?;
    if pk.newly_set && map.indexes.get(&uid).and_then(|i| i.primary_key.as_ref()) != Some(&pk.name) {
        let cmd = Command::SetPrimaryKey { uid: uid.clone(), primary_key: pk.name.clone(), at: now_millis() };
        let (_, version) = app.cluster.propose(cmd).await?;
        map = app.wait_for_version(version).await?;
    }
    let idx = map.indexes.get(&uid).ok_or_else(|| AppError::index_not_found(&uid))?;
    let stamped = shard_documents(docs, &pk.name, idx.shards)?;
    let shard_of_doc: Vec<ShardId> = stamped.iter().map(|(s, _)| *s).collect();
    let plan = plan_by_node(&map, &uid, stamped)?;
    let path = format!("/indexes/{uid}/documents?primaryKey={}", pk.name);
    let per_node: BTreeMap<NodeId, Vec<NodeRequest>> = plan
        .into_iter()
        .map(|(node, docs)| {
            let body = serde_json::to_vec(&docs).expect("documents serialise");
            let req = NodeRequest {
                method,
                path: path.clone(),
                body: Some(body.into()),
                content_type: Some("application/json"),
            };
            (node, vec![req])
        })
        .collect();
    let results = fanout::send(app, &map, per_node).await;
    let copies = |node: &NodeId| written_copies(&map, &uid, node, &shard_of_doc);
    let outcome = fanout::settle(app, &uid, results, copies).await?;
    let task = NewTask {
        index_uid: Some(uid.clone()),
        kind: "documentAdditionOrUpdate".into(),
        details: json!({"receivedDocuments": count, "indexedDocuments": null}),
        node_tasks: vec![],
        finished: None,
    };
    let degraded = degraded_shards(&app.map(), &uid).into_iter().collect();
    accepted(app, task, outcome, degraded).await
}

/// The copies (in-sync or incoming) `node` was sent in a write touching `shards`.
fn written_copies(map: &RoutingMap, index: &str, node: &str, shards: &[ShardId]) -> Vec<(ShardId, GroupId)> {
    let touched: std::collections::BTreeSet<ShardId> = shards.iter().copied().collect();
    fanout::write_target_copies(map, index, node).into_iter().filter(|(s, _)| touched.contains(s)).collect()
}

fn strip(mut doc: Value) -> Value {
    if let Some(o) = doc.as_object_mut() {
        o.remove(SHARD_FIELD);
    }
    doc
}

#[derive(Deserialize)]
pub struct FieldsParam {
    fields: Option<String>,
}

pub async fn get_one(
    State(app): State<Arc<AppState>>,
    Path((uid, id)): Path<(String, String)>,
    Query(q): Query<FieldsParam>,
) -> AppResult<Response> {
    let map = app.map();
    let idx = map.indexes.get(&uid).ok_or_else(|| AppError::index_not_found(&uid))?;
    let not_found = || AppError::new(Code::DOCUMENT_NOT_FOUND, format!("Document `{id}` not found."));
    let canonical = canonical_doc_id(&Value::String(id.clone())).map_err(|_| not_found())?;
    let shard = shard_of(&canonical, idx.shards);
    let mut path = format!("/indexes/{uid}/documents/{canonical}");
    if let Some(f) = &q.fields {
        path.push_str(&format!("?fields={}", urlencode(f)));
    }
    let doc = get_with_failover(&app, &map, &read_candidates(&map, &uid, shard), &path).await?;
    Ok(json_ok(strip(doc)))
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b',' | b'*' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A deletion routed by ids: each id goes to the copies of its shard.
async fn delete_ids(app: &AppState, uid: &str, ids: Vec<Value>) -> AppResult<Response> {
    app.check_writable()?;
    let map = app.map();
    let idx = map.indexes.get(uid).ok_or_else(|| AppError::index_not_found(uid))?;
    let provided = ids.len();
    let mut by_shard: BTreeMap<ShardId, Vec<String>> = BTreeMap::new();
    for id in &ids {
        // An id that is not a valid document id cannot name a stored document: nothing to route.
        if let Ok(c) = canonical_doc_id(id) {
            by_shard.entry(shard_of(&c, idx.shards)).or_default().push(c);
        }
    }
    let placements = map.placements.get(uid).ok_or_else(|| AppError::index_not_found(uid))?;
    let mut per_node_ids: BTreeMap<NodeId, Vec<String>> = BTreeMap::new();
    for (shard, ids) in &by_shard {
        for p in placements[*shard as usize].values() {
            for node in p.write_targets() {
                per_node_ids.entry(node.clone()).or_default().extend(ids.iter().cloned());
            }
        }
    }
    let per_node = per_node_ids
        .into_iter()
        .map(|(n, ids)| {
            (n, vec![NodeRequest::json(Method::Post, format!("/indexes/{uid}/documents/delete-batch"), &ids)])
        })
        .collect();
    let results = fanout::send(app, &map, per_node).await;
    let shards: Vec<ShardId> = by_shard.keys().copied().collect();
    let outcome = if shards.is_empty() {
        fanout::Outcome::default()
    } else {
        fanout::settle(app, uid, results, |n| written_copies(&map, uid, n, &shards)).await?
    };
    let task = NewTask {
        index_uid: Some(uid.into()),
        kind: "documentDeletion".into(),
        details: json!({"providedIds": provided, "deletedDocuments": null}),
        node_tasks: vec![],
        finished: None,
    };
    accepted(app, task, outcome, vec![]).await
}

pub async fn delete_one(
    State(app): State<Arc<AppState>>,
    Path((uid, id)): Path<(String, String)>,
) -> AppResult<Response> {
    let id = id.parse::<u64>().map(Value::from).unwrap_or(Value::String(id));
    delete_ids(&app, &uid, vec![id]).await
}

pub async fn delete_batch(
    State(app): State<Arc<AppState>>,
    Path(uid): Path<String>,
    Json(ids): Json<Vec<Value>>,
) -> AppResult<Response> {
    delete_ids(&app, &uid, ids).await
}

/// A write every node of the index must apply; one node judges it first so a refused request
/// (a bad filter, say) changes nothing anywhere.
async fn broadcast(app: &AppState, uid: &str, request: impl Fn() -> NodeRequest, task: NewTask) -> AppResult<Response> {
    app.check_writable()?;
    let map = app.map();
    if !map.indexes.contains_key(uid) {
        return Err(AppError::index_not_found(uid));
    }
    let mut nodes = index_nodes(&map, uid);
    let probe = nodes.pop_first().ok_or_else(|| AppError::internal("index has no nodes"))?;
    let url = map.nodes.get(&probe).map(|n| n.url.clone()).unwrap_or_default();
    let probed = match app.nodes.enqueue(&url, request()).await {
        Err(NodeError::Status { status, body }) if status < 500 => return Err(AppError::forwarded(status, body)),
        r => r.map(|u| vec![u]),
    };
    let per_node = nodes.into_iter().map(|n| (n, vec![request()])).collect();
    let mut results = fanout::send(app, &map, per_node).await;
    results.push((probe, probed));
    let outcome = fanout::settle(app, uid, results, |n| fanout::write_target_copies(&map, uid, n)).await?;
    accepted(app, task, outcome, vec![]).await
}

pub async fn delete_by_filter(
    State(app): State<Arc<AppState>>,
    Path(uid): Path<String>,
    Json(body): Json<Value>,
) -> AppResult<Response> {
    let filter = body.get("filter").cloned().unwrap_or(Value::Null);
    let task = NewTask {
        index_uid: Some(uid.clone()),
        kind: "documentDeletion".into(),
        details: json!({"providedIds": 0, "deletedDocuments": null, "originalFilter": filter.to_string()}),
        node_tasks: vec![],
        finished: None,
    };
    let path = format!("/indexes/{uid}/documents/delete");
    broadcast(&app, &uid, || NodeRequest::json(Method::Post, path.clone(), &body), task).await
}

pub async fn clear(State(app): State<Arc<AppState>>, Path(uid): Path<String>) -> AppResult<Response> {
    let task = NewTask {
        index_uid: Some(uid.clone()),
        kind: "documentDeletion".into(),
        details: json!({"providedIds": 0, "deletedDocuments": null, "originalFilter": null}),
        node_tasks: vec![],
        finished: None,
    };
    let path = format!("/indexes/{uid}/documents");
    broadcast(&app, &uid, || NodeRequest::delete(path.clone()), task).await
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct BrowseQuery {
    offset: Option<usize>,
    limit: Option<usize>,
    fields: Option<Value>,
    filter: Option<Value>,
    ids: Option<Vec<Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BrowseParams {
    offset: Option<usize>,
    limit: Option<usize>,
    fields: Option<String>,
    filter: Option<String>,
    ids: Option<String>,
}

pub async fn browse(
    State(app): State<Arc<AppState>>,
    Path(uid): Path<String>,
    Query(p): Query<BrowseParams>,
) -> AppResult<Response> {
    let q = BrowseQuery {
        offset: p.offset,
        limit: p.limit,
        fields: p.fields.map(|f| Value::from(f.split(',').map(str::trim).collect::<Vec<_>>())),
        filter: p.filter.map(Value::from),
        ids: p.ids.map(|ids| ids.split(',').map(|s| Value::from(s.trim())).collect()),
    };
    browse_documents(&app, &uid, q).await
}

pub async fn fetch(
    State(app): State<Arc<AppState>>,
    Path(uid): Path<String>,
    Json(q): Json<BrowseQuery>,
) -> AppResult<Response> {
    browse_documents(&app, &uid, q).await
}

static ROUND_ROBIN: AtomicUsize = AtomicUsize::new(0);

/// Ordering key of a document in a cluster-wide browse: one node orders by its internal ids, which
/// a cluster cannot reproduce, so Miroir orders by primary key (integers numerically first).
fn browse_key(doc: &Value, pk: &str) -> (u8, i128, String) {
    match doc.get(pk) {
        Some(Value::Number(n)) => (0, n.as_i64().map_or(i128::MAX, i128::from), String::new()),
        Some(Value::String(s)) => (1, 0, s.clone()),
        _ => (2, 0, String::new()),
    }
}

async fn browse_documents(app: &AppState, uid: &str, q: BrowseQuery) -> AppResult<Response> {
    let map = app.map();
    let idx = map.indexes.get(uid).ok_or_else(|| AppError::index_not_found(uid))?;
    let (offset, limit) = (q.offset.unwrap_or(0), q.limit.unwrap_or(20));
    let pk = idx.primary_key.clone().unwrap_or_default();
    let cover = covering_set(&map, uid, ROUND_ROBIN.fetch_add(1, Ordering::Relaxed)).map_err(|missing| {
        AppError::new(
            Code::MIROIR_UNAVAILABLE,
            format!("No in-sync copy of shards {missing:?} of `{uid}` is available."),
        )
    })?;
    // The primary key is needed to order the merged pages; it is dropped again if not asked for.
    let fields = q.fields.as_ref().and_then(Value::as_array).cloned();
    let drop_pk = fields.as_ref().is_some_and(|f| !f.iter().any(|v| v == "*" || v == pk.as_str()));
    let node_fields = fields.map(|mut f| {
        if drop_pk {
            f.push(Value::from(pk.clone()));
        }
        f
    });
    let calls = cover.into_iter().map(|(node, shards)| {
        let mut filter = vec![Value::from(shard_filter(&shards))];
        match &q.filter {
            Some(Value::Array(parts)) => filter.extend(parts.iter().cloned()),
            Some(Value::Null) | None => {}
            Some(f) => filter.push(f.clone()),
        }
        let mut body = json!({"offset": 0, "limit": offset + limit, "filter": filter});
        if let Some(f) = &node_fields {
            body["fields"] = Value::from(f.clone());
        }
        if let Some(ids) = &q.ids {
            body["ids"] = Value::from(ids.clone());
        }
        let url = map.nodes.get(&node).map(|n| n.url.clone()).unwrap_or_default();
        let path = format!("/indexes/{uid}/documents/fetch");
        async move { app.nodes.json(&url, NodeRequest::json(Method::Post, path, &body)).await }
    });
    let mut docs = Vec::new();
    let mut total = 0u64;
    for answer in futures::future::join_all(calls).await {
        let answer = answer.map_err(|e| match e {
            NodeError::Status { status, body } if status < 500 => AppError::forwarded(status, body),
            e => AppError::new(Code::MIROIR_UNAVAILABLE, e.to_string()),
        })?;
        total += answer["total"].as_u64().unwrap_or(0);
        if let Some(results) = answer["results"].as_array() {
            docs.extend(results.iter().cloned());
        }
    }
    docs.sort_by_cached_key(|d| browse_key(d, &pk));
    let results: Vec<Value> = docs
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|d| {
            let mut d = strip(d);
            if drop_pk {
                d.as_object_mut().map(|o| o.remove(&pk));
            }
            d
        })
        .collect();
    Ok(json_ok(json!({"results": results, "offset": offset, "limit": limit, "total": total})))
}
