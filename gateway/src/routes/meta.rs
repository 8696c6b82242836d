//! Health, version, global stats and readiness.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use miroir_node_client::NodeRequest;
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

/// One replica group holds every document once: its shards' counts add up to the index's.
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
    // Counts from the shard facet (exact, uncapped) and every holder of the group; see stats.rs.
    let (docs, fields) = crate::stats::index_counts(app, &map, uid, &cover).await?;
    let mut indexing = false;
    for node in cover.keys() {
        let url = map.nodes.get(node).map(|n| n.url.clone()).unwrap_or_default();
        if let Ok(stats) = app.nodes.json(&url, NodeRequest::get(format!("/indexes/{uid}/stats"))).await {
            indexing |= stats["isIndexing"].as_bool().unwrap_or(false);
        }
    }
    Ok(json!({"numberOfDocuments": docs, "isIndexing": indexing, "fieldDistribution": fields}))
}

/// Only the indexes the key may see count, as in Meilisearch.
pub async fn stats(State(app): State<Arc<AppState>>, access: Access) -> AppResult<Response> {
    let map = app.map();
    let mut indexes = Map::new();
    let mut last_update = None;
    for (uid, idx) in map.indexes.iter().filter(|(uid, _)| access.index_authorized(uid)) {
        indexes.insert(uid.clone(), index_stats(&app, uid).await?);
        last_update = last_update.max(Some(idx.updated_at));
    }
    Ok(json_ok(json!({
        "databaseSize": null,
        "lastUpdate": last_update.map(rfc3339),
        "indexes": indexes,
    })))
}
