//! Index lifecycle: the cluster's view comes from the replicated state; nodes follow.

use miroir_meili::TaskKind;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use miroir::command::Command;
use miroir::state::Index;
use miroir::CommandError;
use miroir_meili::is_valid_index_uid;
use miroir_node_client::{Method, NodeRequest};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{accepted, failed, json_ok, new_task};
use crate::app::AppState;
use crate::cluster::ClusterError;
use crate::error::{AppError, AppResult, Code};
use crate::http::auth::Access;
use crate::http::extract::{uint_param, Json, Query};
use crate::write::fanout::{self, in_sync_copies, index_nodes};
use crate::write::settings::node_settings;
use crate::write::tasks::{now_millis, rfc3339};

pub fn index_view(uid: &str, idx: &Index) -> Value {
    json!({
        "uid": uid,
        "createdAt": rfc3339(idx.created_at),
        "updatedAt": rfc3339(idx.updated_at),
        "primaryKey": idx.primary_key,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Paging {
    offset: Option<String>,
    limit: Option<String>,
}

/// Only the indexes the key (and tenant token) may see, as Meilisearch lists them.
pub async fn list(State(app): State<Arc<AppState>>, access: Access, Query(p): Query<Paging>) -> AppResult<Response> {
    let offset = uint_param(p.offset.as_deref(), "offset", Code::INVALID_INDEX_OFFSET)?.unwrap_or(0);
    let limit = uint_param(p.limit.as_deref(), "limit", Code::INVALID_INDEX_LIMIT)?.unwrap_or(20);
    let map = app.map();
    let visible: Vec<_> = map.indexes.iter().filter(|(uid, _)| access.index_authorized(uid)).collect();
    let results: Vec<Value> = visible.iter().skip(offset).take(limit).map(|(uid, idx)| index_view(uid, idx)).collect();
    Ok(json_ok(json!({"results": results, "offset": offset, "limit": limit, "total": visible.len()})))
}

pub async fn get(State(app): State<Arc<AppState>>, Path(uid): Path<String>) -> AppResult<Response> {
    check_uid(&uid)?;
    let map = app.map();
    let idx = map.indexes.get(&uid).ok_or_else(|| AppError::index_not_found(&uid))?;
    Ok(json_ok(index_view(&uid, idx)))
}

fn check_uid(uid: &str) -> AppResult<()> {
    if is_valid_index_uid(uid) {
        Ok(())
    } else {
        Err(AppError::invalid_index_uid(uid))
    }
}

fn wrong_type(code: Code, field: &str, v: &Value) -> AppError {
    AppError::new(
        code,
        format!("Invalid value type at `.{field}`: expected a string, but found {}", miroir_meili::json::found(v)),
    )
}

/// `primaryKey` of an index creation or update body: a string or null.
fn primary_key_field(body: &serde_json::Map<String, Value>) -> AppResult<Option<String>> {
    match body.get("primaryKey") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(pk)) => Ok(Some(pk.clone())),
        Some(v) => Err(wrong_type(Code::INVALID_INDEX_PRIMARY_KEY, "primaryKey", v)),
    }
}

/// The body of `POST /indexes`, checked field by field with Meilisearch's codes and messages.
fn create_body(body: &Value) -> AppResult<(String, Option<String>)> {
    let Some(body) = body.as_object() else {
        return Err(AppError::new(
            Code::BAD_REQUEST,
            format!("Invalid value type: expected an object, but found {}", miroir_meili::json::found(body)),
        ));
    };
    if let Some(k) = body.keys().find(|k| !["uid", "primaryKey"].contains(&k.as_str())) {
        return Err(AppError::new(
            Code::BAD_REQUEST,
            format!("Unknown field `{k}`: expected one of `uid`, `primaryKey`"),
        ));
    }
    let uid = match body.get("uid") {
        None => return Err(AppError::new(Code::MISSING_INDEX_UID, "Missing field `uid`")),
        Some(Value::String(uid)) if is_valid_index_uid(uid) => uid.clone(),
        Some(Value::String(uid)) => {
            let e = AppError::invalid_index_uid(uid);
            return Err(AppError::new(Code::INVALID_INDEX_UID, format!("Invalid value at `.uid`: {}", e.message)));
        }
        Some(v) => return Err(wrong_type(Code::INVALID_INDEX_UID, "uid", v)),
    };
    Ok((uid, primary_key_field(body)?))
}

fn header_u32(headers: &HeaderMap, name: &str) -> AppResult<Option<u32>> {
    let Some(v) = headers.get(name) else { return Ok(None) };
    v.to_str()
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .map(Some)
        .ok_or_else(|| AppError::new(Code::MIROIR_INVALID_HEADER, format!("`{name}` must be a positive integer.")))
}

/// Commits an index creation. Nodes that may still hold a deleted index of the same uid get no
/// copy of the new one (see `ClusterState::deleting`); if they are needed, the creation waits a
/// little for the index cleaner, then gives up with the kernel's refusal.
pub async fn propose_create(app: &AppState, cmd: Command) -> Result<u64, ClusterError> {
    let deadline = tokio::time::Instant::now() + CLEANUP_WAIT;
    loop {
        match app.cluster.propose(cmd.clone()).await {
            Ok((_, version)) => return Ok(version),
            Err(ClusterError::Rejected(CommandError::IndexStillOnNodes { .. }))
                if tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            // A proposal whose answer was lost is retried on another coordinator and then finds
            // its own index: that creation is this one if it carries the same instant.
            Err(e @ ClusterError::Rejected(CommandError::IndexExists(_))) => {
                let Command::CreateIndex { uid, at, .. } = &cmd else { return Err(e) };
                let ours = |m: &miroir::RoutingMap| m.indexes.get(uid).is_some_and(|i| i.created_at == *at);
                return match app.wait_until(|m| m.indexes.contains_key(uid)).await {
                    Ok(map) if ours(&map) => Ok(map.version),
                    _ => Err(e),
                };
            }
            Err(e) => return Err(e),
        }
    }
}

/// How long an index creation waits for the cleanup of a deleted index of the same uid.
const CLEANUP_WAIT: Duration = Duration::from_secs(10);

pub async fn create(
    State(app): State<Arc<AppState>>,
    access: Access,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> AppResult<Response> {
    app.check_writable()?;
    let (uid, primary_key) = create_body(&body)?;
    if !access.may_create_index(&uid) {
        return Err(crate::http::auth::invalid_api_key());
    }
    let shards = header_u32(&headers, "x-miroir-shards")?;
    let rf = header_u32(&headers, "x-miroir-replicas")?;
    let task = new_task(&uid, TaskKind::IndexCreation, json!({"primaryKey": primary_key}));
    let exists = || AppError::new(Code::INDEX_ALREADY_EXISTS, format!("Index `{uid}` already exists."));
    if app.map().indexes.contains_key(&uid) {
        return failed(&app, task, exists()).await;
    }
    let cmd = Command::CreateIndex { uid: uid.clone(), primary_key: primary_key.clone(), shards, rf, at: now_millis() };
    let version = match propose_create(&app, cmd).await {
        Ok(v) => v,
        Err(ClusterError::Rejected(CommandError::IndexExists(_))) => return failed(&app, task, exists()).await,
        Err(e) => return Err(e.into()),
    };
    let map = app.wait_for_version(version).await?;
    let outcome = create_on_nodes(&app, &map, &uid).await?;
    accepted(&app, task, outcome, vec![]).await
}

/// Creates the index on every node that holds a copy, with the node-side settings Miroir needs
/// (`_miroir_shard` filterable), so shard-filtered reads and cleanups work from the first write.
pub async fn create_on_nodes(app: &AppState, map: &miroir::RoutingMap, uid: &str) -> AppResult<fanout::Outcome> {
    let idx = map.indexes.get(uid).ok_or_else(|| AppError::index_not_found(uid))?;
    let settings = node_settings(&idx.settings);
    let per_node: BTreeMap<_, _> = index_nodes(map, uid)
        .into_iter()
        .map(|node| {
            let reqs = vec![
                NodeRequest::json(Method::Post, "/indexes", &json!({"uid": uid, "primaryKey": idx.primary_key})),
                NodeRequest::json(Method::Patch, format!("/indexes/{uid}/settings"), &settings),
            ];
            (node, reqs)
        })
        .collect();
    let results = fanout::send(&app.nodes, map, per_node).await;
    fanout::settle(app.cluster.as_ref(), uid, results, |n| in_sync_copies(map, uid, n)).await
}

/// The body of `PATCH /indexes/{uid}`: `primaryKey`, and `uid` for a rename (Meilisearch 1.50).
fn update_body(body: &Value) -> AppResult<(Option<String>, Option<String>)> {
    let Some(obj) = body.as_object() else {
        return Err(AppError::new(
            Code::BAD_REQUEST,
            format!("Invalid value type: expected an object, but found {}", miroir_meili::json::found(body)),
        ));
    };
    if let Some(k) = obj.keys().find(|k| k.as_str() != "primaryKey" && k.as_str() != "uid") {
        let immutable = match k.as_str() {
            "createdAt" => Some(Code::IMMUTABLE_INDEX_CREATED_AT),
            "updatedAt" => Some(Code::IMMUTABLE_INDEX_UPDATED_AT),
            _ => None,
        };
        return Err(match immutable {
            Some(code) => AppError::new(code, format!("Immutable field `{k}`: expected one of `primaryKey`, `uid`")),
            None => {
                AppError::new(Code::BAD_REQUEST, format!("Unknown field `{k}`: expected one of `primaryKey`, `uid`"))
            }
        });
    }
    let new_uid = match obj.get("uid") {
        None | Some(Value::Null) => None,
        Some(Value::String(u)) => Some(u.clone()),
        Some(v) => return Err(wrong_type(Code::INVALID_INDEX_UID, "uid", v)),
    };
    Ok((primary_key_field(obj)?, new_uid))
}

pub async fn update(
    State(app): State<Arc<AppState>>,
    Path(uid): Path<String>,
    Json(body): Json<Value>,
) -> AppResult<Response> {
    app.check_writable()?;
    check_uid(&uid)?;
    let (primary_key, new_uid) = update_body(&body)?;
    if let Some(new_uid) = new_uid.filter(|n| *n != uid) {
        return super::swap::rename(&app, uid, new_uid, primary_key).await;
    }
    let task = new_task(&uid, TaskKind::IndexUpdate, json!({"primaryKey": primary_key}));
    let map = app.map();
    if !map.indexes.contains_key(&uid) {
        return failed(&app, task, AppError::index_not_found(&uid)).await;
    }
    let map = match &primary_key {
        Some(pk) => {
            let cmd = Command::SetPrimaryKey { uid: uid.clone(), primary_key: pk.clone(), at: now_millis() };
            match app.cluster.propose(cmd).await {
                Ok((_, version)) => app.wait_for_version(version).await?,
                Err(e @ ClusterError::Rejected(CommandError::PrimaryKeyAlreadySet { .. })) => {
                    return failed(&app, task, e.into()).await
                }
                Err(e) => return Err(e.into()),
            }
        }
        None => map,
    };
    let per_node = index_nodes(&map, &uid)
        .into_iter()
        .map(|n| {
            let req = NodeRequest::json(Method::Patch, format!("/indexes/{uid}"), &json!({"primaryKey": primary_key}));
            (n, vec![req])
        })
        .collect();
    let results = fanout::send(&app.nodes, &map, per_node).await;
    let outcome = fanout::settle(app.cluster.as_ref(), &uid, results, |n| in_sync_copies(&map, &uid, n)).await?;
    accepted(&app, task, outcome, vec![]).await
}

/// Deletes the index from the cluster, then from its nodes. Every node that held a copy is
/// recorded in the state (`deleting`) by the commit itself; the leader's index cleaner deletes
/// the index on nodes that miss this request, and no new index of the same uid is placed on them
/// before. The task counts the documents the index held (read before the deletion) and is done
/// once the nodes that took the request deleted their copy.
pub async fn delete(State(app): State<Arc<AppState>>, Path(uid): Path<String>) -> AppResult<Response> {
    app.check_writable()?;
    check_uid(&uid)?;
    let before = app.map();
    let mut task = new_task(&uid, TaskKind::IndexDeletion, json!({"deletedDocuments": null}));
    if !before.indexes.contains_key(&uid) {
        return failed(&app, task, AppError::index_not_found(&uid)).await;
    }
    if let Ok(stats) = super::meta::index_stats(&app, &uid).await {
        task.details["deletedDocuments"] = stats["numberOfDocuments"].clone();
    }
    app.cluster.propose(Command::DeleteIndex { uid: uid.clone() }).await?;
    let per_node = index_nodes(&before, &uid)
        .into_iter()
        .map(|n| (n, vec![NodeRequest::delete(format!("/indexes/{uid}"))]))
        .collect();
    let results = fanout::send(&app.nodes, &before, per_node).await;
    let mut outcome = fanout::Outcome::default();
    for (node, r) in results {
        match r {
            Ok(uids) => outcome.node_tasks.extend(uids.into_iter().map(|u| (node.clone(), u))),
            Err(e) => {
                tracing::warn!(%node, index = %uid, error = %e, "node missed an index deletion; the index cleaner will delete it there")
            }
        }
    }
    accepted(&app, task, outcome, vec![]).await
}

/// `POST /indexes/{uid}/compact`: every copy compacts itself. Compaction changes no document, so
/// a node that cannot take it is logged and left out, never marked stale; the task follows the
/// copies that took it. Sizes are per node, so the cluster task reports none.
pub async fn compact(State(app): State<Arc<AppState>>, Path(uid): Path<String>) -> AppResult<Response> {
    app.check_writable()?;
    let map = app.map();
    if !map.indexes.contains_key(&uid) {
        return Err(AppError::index_not_found(&uid));
    }
    let per_node: BTreeMap<_, _> = index_nodes(&map, &uid)
        .into_iter()
        .map(|n| (n, vec![NodeRequest::json(Method::Post, format!("/indexes/{uid}/compact"), &json!({}))]))
        .collect();
    let mut outcome = fanout::Outcome::default();
    for (node, result) in fanout::send(&app.nodes, &map, per_node).await {
        match result {
            Ok(uids) => outcome.node_tasks.extend(uids.into_iter().map(|u| (node.clone(), u))),
            Err(e) => tracing::warn!(%node, index = %uid, error = %e, "compaction not enqueued on this copy"),
        }
    }
    if outcome.node_tasks.is_empty() {
        return Err(AppError::new(Code::MIROIR_UNAVAILABLE, format!("No copy of `{uid}` could take the compaction.")));
    }
    let task =
        new_task(&uid, TaskKind::IndexCompaction, json!({"preCompactionSize": null, "postCompactionSize": null}));
    accepted(&app, task, outcome, vec![]).await
}
