//! Document routes: hash-routed writes and reads, broadcast deletions, and a globally paginated
//! browse over one covering set of copies.

use miroir_meili::TaskKind;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use miroir::command::Command;
use miroir::ids::{GroupId, NodeId, ShardId};
use miroir::placement::{canonical_doc_id, shard_of};
use miroir::task::{NewTask, Share};
use miroir::RoutingMap;
use miroir_node_client::{Method, NodeError, NodeRequest};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{accepted, failed, json_ok, new_task};
use crate::app::AppState;
use crate::error::{AppError, AppResult, Code};
use crate::http::extract::{bool_param, uint_param, Json, Query, RawBody};
use crate::read::replicas::{covering_set, get_with_failover, read_candidates, scoped_filter};
use crate::write::fanout::{self, degraded_shards, index_nodes};
use crate::write::payload::{self, Format};
use crate::write::shard::{check_documents, plan_by_node, resolve_primary_key, shard_documents, SHARD_FIELD};
use crate::write::tasks::now_millis;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WriteParams {
    primary_key: Option<String>,
    csv_delimiter: Option<String>,
}

pub async fn add_or_replace(
    State(app): State<Arc<AppState>>,
    access: crate::http::auth::Access,
    Path(uid): Path<String>,
    Query(p): Query<WriteParams>,
    body: RawBody,
) -> AppResult<Response> {
    add_documents(&app, &access, uid, p, body, Method::Post).await
}

pub async fn add_or_update(
    State(app): State<Arc<AppState>>,
    access: crate::http::auth::Access,
    Path(uid): Path<String>,
    Query(p): Query<WriteParams>,
    body: RawBody,
) -> AppResult<Response> {
    add_documents(&app, &access, uid, p, body, Method::Put).await
}

/// Makes sure the index exists in the cluster, creating it like Meilisearch does on a first write
/// (document additions and settings updates create a missing index).
pub(super) async fn ensure_index(app: &AppState, uid: &str) -> AppResult<Arc<RoutingMap>> {
    let map = app.map();
    if map.indexes.contains_key(uid) {
        return Ok(map);
    }
    if !miroir_meili::is_valid_index_uid(uid) {
        return Err(AppError::invalid_index_uid(uid));
    }
    let cmd = Command::CreateIndex { uid: uid.into(), primary_key: None, shards: None, rf: None, at: now_millis() };
    match super::indexes::propose_create(app, cmd).await {
        Ok(version) => {
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

/// Primary key errors Meilisearch reports in a failed task rather than as a refused request.
fn is_primary_key_error(e: &AppError) -> bool {
    [
        Code::INDEX_PRIMARY_KEY_ALREADY_EXISTS,
        Code::INDEX_PRIMARY_KEY_NO_CANDIDATE_FOUND,
        Code::INDEX_PRIMARY_KEY_MULTIPLE_CANDIDATES_FOUND,
    ]
    .contains(&e.code)
}

async fn add_documents(
    app: &AppState,
    access: &crate::http::auth::Access,
    uid: String,
    p: WriteParams,
    body: RawBody,
    method: Method,
) -> AppResult<Response> {
    app.check_writable()?;
    if !miroir_meili::is_valid_index_uid(&uid) {
        return Err(AppError::invalid_index_uid(&uid));
    }
    // Everything about the payload is checked before anything is written anywhere.
    let format = Format::from_content_type(body.content_type.as_deref(), p.csv_delimiter.as_deref())?;
    let docs = payload::parse(&body.bytes, format)?;
    let count = docs.len();
    let task = new_task(
        &uid,
        TaskKind::DocumentAdditionOrUpdate,
        json!({"receivedDocuments": count, "indexedDocuments": null}),
    );
    let declared = app.map().indexes.get(&uid).and_then(|i| i.primary_key.clone());
    let pk = match resolve_primary_key(&uid, declared.as_deref(), p.primary_key.as_deref(), docs.first()) {
        Ok(pk) => pk,
        Err(e) if is_primary_key_error(&e) => return failed(app, task, e).await,
        Err(e) => return Err(e),
    };
    check_documents(&docs, &pk.name)?;
    let details = json!({"receivedDocuments": count, "indexedDocuments": null});
    if !app.map().indexes.contains_key(&uid) && !access.may_create_index(&uid) {
        // Meilisearch accepts the write and fails its task: the key may not create the index.
        return refused_creation(app, &uid, TaskKind::DocumentAdditionOrUpdate, details).await;
    }

    let mut map = ensure_index(app, &uid).await?;
    if pk.newly_set && map.indexes.get(&uid).and_then(|i| i.primary_key.as_ref()) != Some(&pk.name) {
        let cmd = Command::SetPrimaryKey { uid: uid.clone(), primary_key: pk.name.clone(), at: now_millis() };
        match app.cluster.propose(cmd).await {
            Ok((_, version)) => map = app.wait_for_version(version).await?,
            // Another write fixed a different key first: this one fails like on one node.
            Err(e @ crate::cluster::ClusterError::Rejected(miroir::CommandError::PrimaryKeyAlreadySet { .. })) => {
                return failed(app, task, e.into()).await
            }
            Err(e) => return Err(e.into()),
        }
    }
    let idx = map.indexes.get(&uid).ok_or_else(|| AppError::index_not_found(&uid))?;
    let stamped = shard_documents(docs, &pk.name, idx.shards)?;
    let shard_of_doc: Vec<ShardId> = stamped.iter().map(|(s, _)| *s).collect();
    let plan = plan_by_node(&map, &uid, stamped)?;
    let sent: BTreeMap<NodeId, u64> = plan.iter().map(|(n, docs)| (n.clone(), docs.len() as u64)).collect();
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
    let results = fanout::send(&app.nodes, &map, per_node).await;
    let copies = |node: &NodeId| written_copies(&map, &uid, node, &shard_of_doc);
    let outcome = fanout::settle(app.cluster.as_ref(), &uid, results, copies).await?;
    // Each document counts on one copy: the first copy of its shard that took the write.
    let counting = fanout::counting_nodes(&map, &uid, &outcome.nodes());
    let mut counted: BTreeMap<&NodeId, u64> = BTreeMap::new();
    for shard in &shard_of_doc {
        if let Some(node) = counting.get(shard) {
            *counted.entry(node).or_default() += 1;
        }
    }
    let share = |n: &NodeId, _| Share {
        sent: sent.get(n).copied().unwrap_or(0),
        counted: counted.get(n).copied().unwrap_or(0),
    };
    let outcome = outcome.with_shares(share);
    let degraded = degraded_shards(&app.map(), &uid).into_iter().collect();
    accepted(app, task, outcome, degraded).await
}

/// A write to a missing index by a key that may not create it: a failed task, as Meilisearch
/// registers it (`index_not_found`), and nothing written.
async fn refused_creation(app: &AppState, uid: &str, kind: TaskKind, details: Value) -> AppResult<Response> {
    failed(app, new_task(uid, kind, details), AppError::index_not_found(uid)).await
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
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FieldsParam {
    fields: Option<String>,
    retrieve_vectors: Option<String>,
}

pub async fn get_one(
    State(app): State<Arc<AppState>>,
    Path((uid, id)): Path<(String, String)>,
    Query(q): Query<FieldsParam>,
) -> AppResult<Response> {
    let retrieve =
        bool_param(q.retrieve_vectors.as_deref(), "retrieveVectors", Code::INVALID_DOCUMENT_RETRIEVE_VECTORS)?;
    let map = app.map();
    let idx = map.indexes.get(&uid).ok_or_else(|| AppError::index_not_found(&uid))?;
    let not_found = || AppError::new(Code::DOCUMENT_NOT_FOUND, format!("Document `{id}` not found."));
    let canonical = canonical_doc_id(&Value::String(id.clone())).map_err(|_| not_found())?;
    let shard = shard_of(&canonical, idx.shards);
    let mut path = format!("/indexes/{uid}/documents/{canonical}");
    let mut params = Vec::new();
    if let Some(f) = &q.fields {
        params.push(format!("fields={}", urlencode(f)));
    }
    if let Some(r) = retrieve {
        params.push(format!("retrieveVectors={r}"));
    }
    if !params.is_empty() {
        path.push_str(&format!("?{}", params.join("&")));
    }
    let doc = get_with_failover(&app.nodes, &map, &read_candidates(&map, &uid, shard), &path).await?;
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

/// A deletion routed by ids: each id goes to the copies of its shard. Each node gets the ids of
/// the shards it counts for (it is their first copy) apart from the others, so the task's
/// `deletedDocuments` counts each document once however many copies deleted it.
async fn delete_ids(app: &AppState, uid: &str, ids: Vec<Value>) -> AppResult<Response> {
    app.check_writable()?;
    if !miroir_meili::is_valid_index_uid(uid) {
        return Err(AppError::invalid_index_uid(uid));
    }
    let map = app.map();
    let task = new_task(
        uid,
        TaskKind::DocumentDeletion,
        json!({"providedIds": ids.len(), "deletedDocuments": null, "originalFilter": null}),
    );
    let (Some(idx), Some(placements)) = (map.indexes.get(uid), map.placements.get(uid)) else {
        return failed(app, task, AppError::index_not_found(uid)).await;
    };
    let mut by_shard: BTreeMap<ShardId, Vec<String>> = BTreeMap::new();
    for id in &ids {
        // An id that is not a valid document id cannot name a stored document: nothing to route.
        if let Ok(c) = canonical_doc_id(id) {
            by_shard.entry(shard_of(&c, idx.shards)).or_default().push(c);
        }
    }
    let first = fanout::first_targets(&map, uid);
    // Per node: (ids it counts for, the other ids it holds copies of).
    let mut per_node_ids: BTreeMap<NodeId, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for (shard, ids) in &by_shard {
        for p in placements[*shard as usize].values() {
            for node in p.write_targets() {
                let entry = per_node_ids.entry(node.clone()).or_default();
                let list = if first.get(shard) == Some(node) { &mut entry.0 } else { &mut entry.1 };
                list.extend(ids.iter().cloned());
            }
        }
    }
    let mut shares: BTreeMap<NodeId, Vec<Share>> = BTreeMap::new();
    let per_node = per_node_ids
        .into_iter()
        .map(|(n, (counted, others))| {
            let path = format!("/indexes/{uid}/documents/delete-batch");
            let mut reqs = vec![];
            for (list, counts) in [(counted, true), (others, false)] {
                if !list.is_empty() {
                    let sent = list.len() as u64;
                    shares.entry(n.clone()).or_default().push(Share { sent, counted: if counts { sent } else { 0 } });
                    reqs.push(NodeRequest::json(Method::Post, path.clone(), &list));
                }
            }
            (n, reqs)
        })
        .collect();
    let results = fanout::send(&app.nodes, &map, per_node).await;
    let shards: Vec<ShardId> = by_shard.keys().copied().collect();
    // No valid id: nothing to delete anywhere, and the task is registered already succeeded.
    let outcome = if shards.is_empty() {
        fanout::Outcome::default()
    } else {
        fanout::settle(app.cluster.as_ref(), uid, results, |n| written_copies(&map, uid, n, &shards)).await?
    };
    let outcome = outcome.with_shares(|n, i| shares[n][i]);
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

/// The shards of `index` of which `node` holds or receives a copy.
fn shards_on(map: &RoutingMap, index: &str, node: &str) -> Vec<ShardId> {
    let Some(shards) = map.placements.get(index) else { return vec![] };
    shards
        .iter()
        .enumerate()
        .filter(|(_, groups)| groups.values().any(|p| p.owner(node).is_some() || p.incoming.iter().any(|n| n == node)))
        .map(|(s, _)| s as ShardId)
        .collect()
}

/// How a broadcast splits the shards a node holds into requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Split {
    /// One request for the shards the node counts for, one for the others.
    CountedAndOthers,
    /// One request per shard: what a node task does to a shard then depends on that shard's
    /// documents only, so all its copies fail or succeed alike (a document edition can fail on
    /// some documents and not on others).
    PerShard,
}

/// A write every node of the index must apply, scoped per request to a set of shards by
/// `request(shards)`: each node applies it in the shards it counts for (it is their first copy)
/// apart from the others, so the task counts each document once. One node judges the request
/// first, so a refused request (a bad filter, say) changes nothing anywhere.
pub(super) async fn broadcast(
    app: &AppState,
    uid: &str,
    request: impl Fn(&[ShardId]) -> NodeRequest,
    task: NewTask,
    split: Split,
) -> AppResult<Response> {
    app.check_writable()?;
    if !miroir_meili::is_valid_index_uid(uid) {
        return Err(AppError::invalid_index_uid(uid));
    }
    let map = app.map();
    if !map.indexes.contains_key(uid) {
        return failed(app, task, AppError::index_not_found(uid)).await;
    }
    let first = fanout::first_targets(&map, uid);
    let mut shares: BTreeMap<NodeId, Vec<Share>> = BTreeMap::new();
    let mut per_node: BTreeMap<NodeId, Vec<NodeRequest>> = index_nodes(&map, uid)
        .into_iter()
        .map(|node| {
            let held = shards_on(&map, uid, &node);
            let counts = |s: &ShardId| u64::from(first.get(s) == Some(&node));
            let lists: Vec<(Vec<ShardId>, u64)> = match split {
                Split::CountedAndOthers => {
                    let (counted, others): (Vec<ShardId>, Vec<ShardId>) =
                        held.into_iter().partition(|s| counts(s) == 1);
                    vec![(counted, 1), (others, 0)]
                }
                Split::PerShard => held.into_iter().map(|s| (vec![s], counts(&s))).collect(),
            };
            let mut reqs = vec![];
            for (list, counts) in lists {
                if !list.is_empty() {
                    shares.entry(node.clone()).or_default().push(Share { sent: 1, counted: counts });
                    reqs.push(request(&list));
                }
            }
            (node, reqs)
        })
        .collect();
    let (probe, mut probe_reqs) = per_node.pop_first().ok_or_else(|| AppError::internal("index has no nodes"))?;
    let url = map.nodes.get(&probe).map(|n| n.url.clone()).unwrap_or_default();
    let first_req = probe_reqs.remove(0);
    let probed = match app.nodes.enqueue(&url, first_req).await {
        Err(NodeError::Status { status, body }) if status < 500 => return Err(AppError::forwarded(status, body)),
        r => r.map(|u| vec![u]),
    };
    if probed.is_ok() && !probe_reqs.is_empty() {
        per_node.insert(probe.clone(), probe_reqs);
    }
    let mut results = vec![(probe, probed)];
    results.extend(fanout::send(&app.nodes, &map, per_node).await);
    let outcome =
        fanout::settle(app.cluster.as_ref(), uid, results, |n| fanout::write_target_copies(&map, uid, n)).await?;
    let outcome = outcome.with_shares(|n, i| shares[n][i]);
    accepted(app, task, outcome, vec![]).await
}

pub async fn delete_by_filter(
    State(app): State<Arc<AppState>>,
    Path(uid): Path<String>,
    Json(body): Json<Value>,
) -> AppResult<Response> {
    let Some(filter) = body.get("filter").cloned() else {
        return Err(AppError::new(Code::MISSING_DOCUMENT_FILTER, "Missing field `filter`"));
    };
    let details = json!({"providedIds": 0, "deletedDocuments": null, "originalFilter": filter.to_string()});
    let task = new_task(&uid, TaskKind::DocumentDeletion, details);
    let path = format!("/indexes/{uid}/documents/delete");
    let request = |shards: &[ShardId]| {
        NodeRequest::json(Method::Post, path.clone(), &json!({"filter": scoped_filter(shards, Some(&filter))}))
    };
    broadcast(&app, &uid, request, task, Split::CountedAndOthers).await
}

/// Clearing an index deletes, on each copy, the documents of the shards it holds (every document
/// a node holds carries its shard), so the count is exact like any scoped deletion.
pub async fn clear(State(app): State<Arc<AppState>>, Path(uid): Path<String>) -> AppResult<Response> {
    let task = new_task(
        &uid,
        TaskKind::DocumentDeletion,
        json!({"providedIds": 0, "deletedDocuments": null, "originalFilter": null}),
    );
    let path = format!("/indexes/{uid}/documents/delete");
    let request = |shards: &[ShardId]| {
        NodeRequest::json(Method::Post, path.clone(), &json!({"filter": scoped_filter(shards, None)}))
    };
    broadcast(&app, &uid, request, task, Split::CountedAndOthers).await
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct BrowseQuery {
    offset: Option<usize>,
    limit: Option<usize>,
    fields: Option<Value>,
    filter: Option<Value>,
    ids: Option<Vec<Value>>,
    retrieve_vectors: Option<bool>,
}

/// `GET /documents` parameters, in Meilisearch's order (its "unknown parameter" error lists them).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BrowseParams {
    offset: Option<String>,
    limit: Option<String>,
    fields: Option<String>,
    retrieve_vectors: Option<String>,
    ids: Option<String>,
    filter: Option<String>,
    sort: Option<String>,
}

pub async fn browse(
    State(app): State<Arc<AppState>>,
    Path(uid): Path<String>,
    Query(p): Query<BrowseParams>,
) -> AppResult<Response> {
    let retrieve_vectors =
        bool_param(p.retrieve_vectors.as_deref(), "retrieveVectors", Code::INVALID_DOCUMENT_RETRIEVE_VECTORS)?;
    if p.sort.is_some() {
        return Err(AppError::new(
            Code::MIROIR_NOT_SUPPORTED,
            "Sorting a document browse is not supported by Miroir yet.",
        ));
    }
    let q = BrowseQuery {
        offset: uint_param(p.offset.as_deref(), "offset", Code::INVALID_DOCUMENT_OFFSET)?,
        limit: uint_param(p.limit.as_deref(), "limit", Code::INVALID_DOCUMENT_LIMIT)?,
        fields: p.fields.map(|f| Value::from(f.split(',').map(str::trim).collect::<Vec<_>>())),
        filter: p.filter.map(Value::from),
        ids: p.ids.map(|ids| ids.split(',').map(|s| Value::from(s.trim())).collect()),
        retrieve_vectors,
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
        let filter = scoped_filter(&shards, q.filter.as_ref());
        let mut body = json!({"offset": 0, "limit": offset + limit, "filter": filter});
        if let Some(f) = &node_fields {
            body["fields"] = Value::from(f.clone());
        }
        if let Some(ids) = &q.ids {
            body["ids"] = Value::from(ids.clone());
        }
        if let Some(r) = q.retrieve_vectors {
            body["retrieveVectors"] = Value::from(r);
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
