//! Index lifecycle: the cluster's view comes from the replicated state; nodes follow.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use miroir::command::Command;
use miroir::placement::is_valid_index_uid;
use miroir::state::Index;
use miroir::task::NewTask;
use miroir_node_client::{Method, NodeRequest};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{accepted, json_ok};
use crate::app::AppState;
use crate::auth::Access;
use crate::error::{AppError, AppResult, Code};
use crate::extract::{Json, Query};
use crate::fanout::{self, in_sync_copies, index_nodes};
use crate::settings::node_settings;
use crate::tasks::{now_millis, rfc3339};

pub fn index_view(uid: &str, idx: &Index) -> Value {
    json!({
        "uid": uid,
        "createdAt": rfc3339(idx.created_at),
        "updatedAt": rfc3339(idx.updated_at),
        "primaryKey": idx.primary_key,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Paging {
    offset: Option<usize>,
    limit: Option<usize>,
}

/// Only the indexes the key (and tenant token) may see, as Meilisearch lists them.
pub async fn list(State(app): State<Arc<AppState>>, access: Access, Query(p): Query<Paging>) -> AppResult<Response> {
    let map = app.map();
    let (offset, limit) = (p.offset.unwrap_or(0), p.limit.unwrap_or(20));
    let visible: Vec<_> = map.indexes.iter().filter(|(uid, _)| access.index_authorized(uid)).collect();
    let results: Vec<Value> = visible.iter().skip(offset).take(limit).map(|(uid, idx)| index_view(uid, idx)).collect();
    Ok(json_ok(json!({"results": results, "offset": offset, "limit": limit, "total": visible.len()})))
}

pub async fn get(State(app): State<Arc<AppState>>, Path(uid): Path<String>) -> AppResult<Response> {
    let map = app.map();
    let idx = map.indexes.get(&uid).ok_or_else(|| AppError::index_not_found(&uid))?;
    Ok(json_ok(index_view(&uid, idx)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateIndex {
    uid: String,
    primary_key: Option<String>,
}

fn header_u32(headers: &HeaderMap, name: &str) -> AppResult<Option<u32>> {
    let Some(v) = headers.get(name) else { return Ok(None) };
    v.to_str()
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .map(Some)
        .ok_or_else(|| AppError::new(Code::MIROIR_INVALID_HEADER, format!("`{name}` must be a positive integer.")))
}

pub async fn create(
    State(app): State<Arc<AppState>>,
    access: Access,
    headers: HeaderMap,
    Json(body): Json<CreateIndex>,
) -> AppResult<Response> {
    app.check_writable()?;
    if !is_valid_index_uid(&body.uid) {
        return Err(AppError::invalid_index_uid(&body.uid));
    }
    if !access.may_create_index(&body.uid) {
        return Err(crate::auth::invalid_api_key());
    }
    let cmd = Command::CreateIndex {
        uid: body.uid.clone(),
        primary_key: body.primary_key.clone(),
        shards: header_u32(&headers, "x-miroir-shards")?,
        rf: header_u32(&headers, "x-miroir-replicas")?,
        at: now_millis(),
    };
    let (_, version) = app.cluster.propose(cmd).await?;
    let map = app.wait_for_version(version).await?;
    let outcome = create_on_nodes(&app, &map, &body.uid).await?;
    let task = NewTask {
        index_uid: Some(body.uid.clone()),
        kind: "indexCreation".into(),
        details: json!({"primaryKey": body.primary_key}),
        node_tasks: vec![],
        finished: None,
    };
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
    let results = fanout::send(app, map, per_node).await;
    fanout::settle(app, uid, results, |n| in_sync_copies(map, uid, n)).await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateIndex {
    primary_key: Option<String>,
}

pub async fn update(
    State(app): State<Arc<AppState>>,
    Path(uid): Path<String>,
    Json(body): Json<UpdateIndex>,
) -> AppResult<Response> {
    app.check_writable()?;
    let map = app.map();
    if !map.indexes.contains_key(&uid) {
        return Err(AppError::index_not_found(&uid));
    }
    let map = match &body.primary_key {
        Some(pk) => {
            let (_, version) = app
                .cluster
                .propose(Command::SetPrimaryKey { uid: uid.clone(), primary_key: pk.clone(), at: now_millis() })
                .await?;
            app.wait_for_version(version).await?
        }
        None => map,
    };
    let per_node = index_nodes(&map, &uid)
        .into_iter()
        .map(|n| {
            (
                n,
                vec![NodeRequest::json(
                    Method::Patch,
                    format!("/indexes/{uid}"),
                    &json!({"primaryKey": body.primary_key}),
                )],
            )
        })
        .collect();
    let results = fanout::send(&app, &map, per_node).await;
    let outcome = fanout::settle(&app, &uid, results, |n| in_sync_copies(&map, &uid, n)).await?;
    let task = NewTask {
        index_uid: Some(uid),
        kind: "indexUpdate".into(),
        details: json!({"primaryKey": body.primary_key}),
        node_tasks: vec![],
        finished: None,
    };
    accepted(&app, task, outcome, vec![]).await
}

pub async fn delete(State(app): State<Arc<AppState>>, Path(uid): Path<String>) -> AppResult<Response> {
    app.check_writable()?;
    let before = app.map();
    if !before.indexes.contains_key(&uid) {
        return Err(AppError::index_not_found(&uid));
    }
    app.cluster.propose(Command::DeleteIndex { uid: uid.clone() }).await?;
    // The index is gone from the cluster's view; nodes that miss the delete keep an orphan that
    // no read can reach.
    let per_node = index_nodes(&before, &uid)
        .into_iter()
        .map(|n| (n, vec![NodeRequest::delete(format!("/indexes/{uid}"))]))
        .collect();
    let results = fanout::send(&app, &before, per_node).await;
    let mut outcome = fanout::Outcome::default();
    for (node, r) in results {
        match r {
            Ok(uids) => outcome.node_tasks.extend(uids.into_iter().map(|u| (node.clone(), u))),
            Err(e) => tracing::warn!(%node, index = %uid, error = %e, "node missed an index deletion"),
        }
    }
    let task = NewTask {
        index_uid: Some(uid),
        kind: "indexDeletion".into(),
        details: json!({"deletedDocuments": null}),
        node_tasks: vec![],
        finished: None,
    };
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
    for (node, result) in fanout::send(&app, &map, per_node).await {
        match result {
            Ok(uids) => outcome.node_tasks.extend(uids.into_iter().map(|u| (node.clone(), u))),
            Err(e) => tracing::warn!(%node, index = %uid, error = %e, "compaction not enqueued on this copy"),
        }
    }
    if outcome.node_tasks.is_empty() {
        return Err(AppError::new(Code::MIROIR_UNAVAILABLE, format!("No copy of `{uid}` could take the compaction.")));
    }
    let task = NewTask {
        index_uid: Some(uid.clone()),
        kind: "indexCompaction".into(),
        details: json!({"preCompactionSize": null, "postCompactionSize": null}),
        node_tasks: vec![],
        finished: None,
    };
    accepted(&app, task, outcome, vec![]).await
}
