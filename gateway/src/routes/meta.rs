//! Health, version, global stats and readiness.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use miroir::state::NodeStatus;
use miroir_node_client::{Method, NodeRequest};
use serde_json::{json, Map, Value};

use super::json_ok;
use crate::app::AppState;
use crate::auth::Access;
use crate::error::{AppError, AppResult, Code};
use crate::read::get_with_failover;
use crate::tasks::rfc3339;

pub async fn health() -> Response {
    json_ok(json!({"status": "available"}))
}

/// The Meilisearch version of the nodes (SDKs check it), taken from any live node.
pub async fn version(State(app): State<Arc<AppState>>) -> AppResult<Response> {
    let map = app.map();
    let nodes: Vec<String> = map.nodes.keys().cloned().collect();
    Ok(json_ok(get_with_failover(&app, &map, &nodes, "/version").await?))
}

/// Ready when the gateway has a map and may write.
pub async fn ready(State(app): State<Arc<AppState>>) -> Response {
    let map = app.map();
    match app.check_writable() {
        Ok(()) if map.version > 0 => json_ok(json!({"status": "ready", "mapVersion": map.version})),
        _ => (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({"status": "starting", "mapVersion": map.version})))
            .into_response(),
    }
}

/// One replica group holds every document once, so its nodes' counts add up to the index's. A
/// node holds other shards too (RF > 1): its document count is taken for the shards it answers
/// for (a filtered search), and its other figures (sizes, embeddings, field distribution) are
/// scaled by the part of its documents those shards are. Nodes are asked concurrently.
pub async fn index_stats(app: &AppState, uid: &str) -> AppResult<Value> {
    let map = app.map();
    if !map.indexes.contains_key(uid) {
        return Err(AppError::index_not_found(uid));
    }
    let cover = crate::read::covering_set(&map, uid, 0).map_err(|missing| {
        AppError::new(
            Code::MIROIR_UNAVAILABLE,
            format!("No in-sync copy of shards {missing:?} of `{uid}` is available."),
        )
    })?;
    let calls = cover.into_iter().map(|(node, shards)| {
        let url = map.nodes.get(&node).map(|n| n.url.clone()).unwrap_or_default();
        async move {
            let filter = crate::read::shard_filter(&shards);
            let search = NodeRequest::json(
                Method::Post,
                format!("/indexes/{uid}/search"),
                &json!({"q": "", "limit": 0, "filter": filter}),
            );
            let (search, stats) = futures::join!(
                app.nodes.json(&url, search),
                app.nodes.json(&url, NodeRequest::get(format!("/indexes/{uid}/stats")))
            );
            let search = search.map_err(|e| AppError::new(Code::MIROIR_UNAVAILABLE, e.to_string()))?;
            let docs = search["estimatedTotalHits"].as_u64().or(search["totalHits"].as_u64()).unwrap_or(0);
            Ok::<_, AppError>((docs, stats.ok()))
        }
    });
    let mut docs = 0u64;
    let mut indexing = false;
    let (mut raw, mut embeddings, mut embedded) = (0f64, 0f64, 0f64);
    let mut fields: std::collections::BTreeMap<String, f64> = Default::default();
    for answer in futures::future::join_all(calls).await {
        let (mine, stats) = answer?;
        docs += mine;
        let Some(stats) = stats else { continue };
        indexing |= stats["isIndexing"].as_bool().unwrap_or(false);
        let held = stats["numberOfDocuments"].as_u64().unwrap_or(0);
        let part = if held == 0 { 0.0 } else { mine as f64 / held as f64 };
        let scaled = |k: &str| stats[k].as_u64().unwrap_or(0) as f64 * part;
        raw += scaled("rawDocumentDbSize");
        embeddings += scaled("numberOfEmbeddings");
        embedded += scaled("numberOfEmbeddedDocuments");
        for (k, v) in stats["fieldDistribution"].as_object().into_iter().flatten() {
            if k != crate::documents::route::SHARD_FIELD {
                *fields.entry(k.clone()).or_default() += v.as_u64().unwrap_or(0) as f64 * part;
            }
        }
    }
    let fields: Map<String, Value> = fields.into_iter().map(|(k, v)| (k, Value::from(v.round() as u64))).collect();
    let raw = raw.round() as u64;
    Ok(json!({
        "numberOfDocuments": docs,
        "rawDocumentDbSize": raw,
        "avgDocumentSize": raw.checked_div(docs).unwrap_or(0),
        "isIndexing": indexing,
        "numberOfEmbeddings": embeddings.round() as u64,
        "numberOfEmbeddedDocuments": embedded.round() as u64,
        "fieldDistribution": fields,
    }))
}

/// `GET /indexes/{uid}/stats`.
pub async fn index_stats_route(State(app): State<Arc<AppState>>, Path(uid): Path<String>) -> AppResult<Response> {
    if !miroir::placement::is_valid_index_uid(&uid) {
        return Err(AppError::invalid_index_uid(&uid));
    }
    Ok(json_ok(index_stats(&app, &uid).await?))
}

/// `GET /stats`: the stats of every index the key may see (concurrently), and the cluster's
/// database sizes: the sum over every node, replicas included, since that is the storage the
/// cluster uses.
pub async fn stats(State(app): State<Arc<AppState>>, access: Access) -> AppResult<Response> {
    let map = app.map();
    let visible: Vec<&String> = map.indexes.keys().filter(|uid| access.index_authorized(uid)).collect();
    let per_index = futures::future::join_all(visible.iter().map(|uid| index_stats(&app, uid)));
    let per_node =
        futures::future::join_all(map.nodes.iter().filter(|(_, n)| n.status != NodeStatus::Removed).map(|(_, n)| {
            let url = n.url.clone();
            let app = &app;
            async move { app.nodes.json(&url, NodeRequest::get("/stats")).await }
        }));
    let (per_index, per_node) = futures::join!(per_index, per_node);
    let mut indexes = Map::new();
    for (uid, stats) in visible.iter().zip(per_index) {
        indexes.insert((*uid).clone(), stats?);
    }
    let (mut size, mut used) = (0u64, 0u64);
    for node in per_node {
        let node = node
            .map_err(|e| AppError::new(Code::MIROIR_UNAVAILABLE, format!("A node could not report its size: {e}")))?;
        size += node["databaseSize"].as_u64().unwrap_or(0);
        used += node["usedDatabaseSize"].as_u64().unwrap_or(0);
    }
    let last_update = visible.iter().filter_map(|uid| map.indexes.get(*uid)).map(|i| i.updated_at).max();
    Ok(json_ok(json!({
        "databaseSize": size,
        "usedDatabaseSize": used,
        "lastUpdate": last_update.map(rfc3339),
        "indexes": indexes,
    })))
}
