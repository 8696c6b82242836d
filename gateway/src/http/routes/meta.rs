//! Health, version, global stats and readiness.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use miroir::state::NodeStatus;
use miroir_node_client::NodeRequest;
use serde_json::{json, Map, Value};

use super::json_ok;
use crate::app::AppState;
use crate::error::{AppError, AppResult, Code};
use crate::http::auth::Access;
use crate::read::replicas::get_with_failover;
use crate::write::tasks::rfc3339;

pub async fn health() -> Response {
    json_ok(json!({"status": "available"}))
}

/// The Meilisearch version of the nodes (SDKs check it), taken from any live node.
pub async fn version(State(app): State<Arc<AppState>>) -> AppResult<Response> {
    let map = app.map();
    let nodes: Vec<String> = map.nodes.keys().cloned().collect();
    Ok(json_ok(get_with_failover(&app.nodes, &map, &nodes, "/version").await?))
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

/// One replica group holds every document once: its shards' counts add up to the index's (exact,
/// from the shard facet, see stats.rs). Sizes and embedding counts are per node in Meilisearch:
/// they are estimated from the covering nodes' averages per document. Nodes are asked concurrently.
pub async fn index_stats(app: &AppState, uid: &str) -> AppResult<Value> {
    let map = app.map();
    if !map.indexes.contains_key(uid) {
        return Err(AppError::index_not_found(uid));
    }
    let cover = crate::read::replicas::covering_set(&map, uid, 0).map_err(|missing| {
        AppError::new(
            Code::MIROIR_UNAVAILABLE,
            format!("No in-sync copy of shards {missing:?} of `{uid}` is available."),
        )
    })?;
    // Counts from the shard facet (exact, uncapped) and every holder of the group; see stats.rs.
    let (docs, fields) = crate::read::stats::index_counts(&app.nodes, &map, uid, &cover).await?;
    let per_node = futures::future::join_all(cover.keys().map(|node| {
        let url = map.nodes.get(node).map(|n| n.url.clone()).unwrap_or_default();
        async move { app.nodes.json(&url, NodeRequest::get(format!("/indexes/{uid}/stats"))).await.ok() }
    }))
    .await;
    let mut indexing = false;
    let (mut held, mut raw, mut embeddings, mut embedded) = (0u64, 0u64, 0u64, 0u64);
    for stats in per_node.into_iter().flatten() {
        indexing |= stats["isIndexing"].as_bool().unwrap_or(false);
        held += stats["numberOfDocuments"].as_u64().unwrap_or(0);
        raw += stats["rawDocumentDbSize"].as_u64().unwrap_or(0);
        embeddings += stats["numberOfEmbeddings"].as_u64().unwrap_or(0);
        embedded += stats["numberOfEmbeddedDocuments"].as_u64().unwrap_or(0);
    }
    // Per document of the covering nodes, times the index's documents.
    let per_doc = |x: u64| if held == 0 { 0 } else { (x as f64 * docs as f64 / held as f64).round() as u64 };
    let raw = per_doc(raw);
    Ok(json!({
        "numberOfDocuments": docs,
        "rawDocumentDbSize": raw,
        "avgDocumentSize": raw.checked_div(docs).unwrap_or(0),
        "isIndexing": indexing,
        "numberOfEmbeddings": per_doc(embeddings),
        "numberOfEmbeddedDocuments": per_doc(embedded),
        "fieldDistribution": fields,
    }))
}

/// `GET /indexes/{uid}/stats`.
pub async fn index_stats_route(State(app): State<Arc<AppState>>, Path(uid): Path<String>) -> AppResult<Response> {
    if !miroir_meili::is_valid_index_uid(&uid) {
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
