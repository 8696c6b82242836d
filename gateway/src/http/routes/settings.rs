//! `/indexes/{uid}/settings` and every sub-route: stored versioned in the coordinator, then
//! broadcast to every node of the index. Reads come from a node (Meilisearch fills the defaults),
//! with Miroir's own field removed.

use miroir_meili::TaskKind;
use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{Method as HttpMethod, StatusCode};
use axum::response::{IntoResponse, Response};
use miroir::command::Command;
use miroir::task::NewTask;
use miroir_node_client::{Method, NodeError, NodeRequest};
use serde_json::{json, Map, Value};

use super::{accepted, json_ok};
use crate::app::AppState;
use crate::error::{AppError, AppResult, Code};
use crate::http::extract::Json;
use crate::read::replicas::read_from_owner;
use crate::write::fanout::{self, in_sync_copies, index_nodes};
use crate::write::settings::{
    by_segment, node_patch, node_settings, show_client_faceting, stored_settings, strip_shard_field,
};
use crate::write::tasks::now_millis;

pub async fn get_all(State(app): State<Arc<AppState>>, Path(uid): Path<String>) -> AppResult<Response> {
    let mut v = read_from_owner(&app.nodes, &app.map(), &uid, &format!("/indexes/{uid}/settings")).await?;
    strip_shard_field(&mut v);
    show_client_faceting(&mut v, &stored_settings(&app.map(), &uid));
    Ok(json_ok(v))
}

pub async fn update_all(
    State(app): State<Arc<AppState>>,
    Path(uid): Path<String>,
    Json(patch): Json<Value>,
) -> AppResult<Response> {
    let patch = patch
        .as_object()
        .cloned()
        .ok_or_else(|| AppError::new(Code::BAD_REQUEST, "Json deserialize error: expected an object"))?;
    apply_patch(&app, &uid, patch).await
}

pub async fn reset_all(State(app): State<Arc<AppState>>, Path(uid): Path<String>) -> AppResult<Response> {
    app.check_writable()?;
    // Like Meilisearch, a settings change creates a missing index.
    super::documents::ensure_index(&app, &uid).await?;
    let (_, version) = app.cluster.propose(Command::ResetSettings { uid: uid.clone(), at: now_millis() }).await?;
    let map = app.wait_for_version(version).await?;
    let per_node: BTreeMap<_, _> = index_nodes(&map, &uid)
        .into_iter()
        .map(|n| {
            let reqs = vec![
                NodeRequest::delete(format!("/indexes/{uid}/settings")),
                NodeRequest::json(Method::Patch, format!("/indexes/{uid}/settings"), &node_settings(&json!({}))),
            ];
            (n, reqs)
        })
        .collect();
    let results = fanout::send(&app.nodes, &map, per_node).await;
    let outcome = fanout::settle(app.cluster.as_ref(), &uid, results, |n| in_sync_copies(&map, &uid, n)).await?;
    let task = settings_task(&uid, json!({}));
    accepted(&app, task, outcome, vec![]).await
}

pub async fn get_one(
    State(app): State<Arc<AppState>>,
    Path((uid, segment)): Path<(String, String)>,
) -> AppResult<Response> {
    // An unknown sub-route is no route at all for Meilisearch: an empty 404.
    if by_segment(&segment).is_none() {
        return Ok(StatusCode::NOT_FOUND.into_response());
    }
    let mut v = read_from_owner(&app.nodes, &app.map(), &uid, &format!("/indexes/{uid}/settings/{segment}")).await?;
    if segment == "filterable-attributes" {
        strip_shard_field(&mut v);
    }
    if segment == "faceting" {
        show_client_faceting(&mut v, &stored_settings(&app.map(), &uid));
    }
    Ok(json_ok(v))
}

async fn set_one(app: &AppState, uid: &str, segment: &str, verb: HttpMethod, value: Value) -> AppResult<Response> {
    let Some((key, expected)) = by_segment(segment) else { return Ok(StatusCode::NOT_FOUND.into_response()) };
    if verb.as_str() != expected {
        return Ok(StatusCode::METHOD_NOT_ALLOWED.into_response());
    }
    let mut patch = Map::new();
    patch.insert(key.to_string(), value);
    apply_patch(app, uid, patch).await
}

pub async fn put_one(
    State(app): State<Arc<AppState>>,
    Path((uid, segment)): Path<(String, String)>,
    Json(value): Json<Value>,
) -> AppResult<Response> {
    set_one(&app, &uid, &segment, HttpMethod::PUT, value).await
}

pub async fn patch_one(
    State(app): State<Arc<AppState>>,
    Path((uid, segment)): Path<(String, String)>,
    Json(value): Json<Value>,
) -> AppResult<Response> {
    set_one(&app, &uid, &segment, HttpMethod::PATCH, value).await
}

pub async fn reset_one(
    State(app): State<Arc<AppState>>,
    Path((uid, segment)): Path<(String, String)>,
) -> AppResult<Response> {
    let Some((key, _)) = by_segment(&segment) else { return Ok(StatusCode::NOT_FOUND.into_response()) };
    let mut patch = Map::new();
    patch.insert(key.to_string(), Value::Null);
    apply_patch(&app, &uid, patch).await
}

fn settings_task(uid: &str, details: Value) -> NewTask {
    super::new_task(uid, TaskKind::SettingsUpdate, details)
}

/// The scratch index on which one node judges a settings patch without applying it to any copy.
const PROBE_INDEX: &str = "_miroir_settings_probe";

/// Meilisearch validates settings when they arrive, so one node judges the patch first: if it
/// refuses, the client gets that node's own error and nothing is committed. It judges it on a
/// scratch index, not on its copy: a patch that then fails to commit must leave no copy with
/// settings the cluster does not have. Then the patch is committed (bumping the settings
/// version) and sent to every node of the index; a node that misses it is marked stale and the
/// settings reconciler brings it up to date.
async fn apply_patch(app: &AppState, uid: &str, patch: Map<String, Value>) -> AppResult<Response> {
    app.check_writable()?;
    let details = Value::Object(patch.clone());
    let body = node_patch(&details);
    let map = super::documents::ensure_index(app, uid).await?;
    judge_on_scratch_index(app, &map, uid, &body).await?;
    let cmd = Command::UpdateSettings { uid: uid.into(), patch: details.clone(), at: now_millis() };
    let (_, version) = app.cluster.propose(cmd).await?;
    let map = app.wait_for_version(version).await?;
    let request = || NodeRequest::json(Method::Patch, format!("/indexes/{uid}/settings"), &body);
    let per_node: BTreeMap<_, _> = index_nodes(&map, uid).into_iter().map(|n| (n, vec![request()])).collect();
    let results = fanout::send(&app.nodes, &map, per_node).await;
    let outcome = fanout::settle(app.cluster.as_ref(), uid, results, |n| in_sync_copies(&map, uid, n)).await?;
    let shown = miroir_meili::settings::task_details(details.as_object().unwrap_or(&Map::new()));
    accepted(app, settings_task(uid, shown), outcome, vec![]).await
}

/// Sends the patch to the scratch index of the first node of `uid` that answers; a 4xx is the
/// client's error. The scratch index is deleted again in the background.
async fn judge_on_scratch_index(app: &AppState, map: &miroir::RoutingMap, uid: &str, body: &Value) -> AppResult<()> {
    for node in index_nodes(map, uid) {
        let Some(url) = map.nodes.get(&node).map(|n| n.url.clone()) else { continue };
        let req = NodeRequest::json(Method::Patch, format!("/indexes/{PROBE_INDEX}/settings"), body);
        match app.nodes.enqueue(&url, req).await {
            Err(NodeError::Status { status, body }) if status < 500 => {
                return Err(AppError::forwarded(status, strip_probe_name(body, uid)))
            }
            Err(e) => tracing::debug!(%node, error = %e, "settings probe failed, trying the next node"),
            Ok(_) => {
                let nodes = app.nodes.clone();
                tokio::spawn(async move {
                    let _ = nodes.enqueue(&url, NodeRequest::delete(format!("/indexes/{PROBE_INDEX}"))).await;
                });
                return Ok(());
            }
        }
    }
    // No node could judge it: the writes below fail the same way and say why.
    Ok(())
}

/// A node's error about the scratch index, as if it were about the client's index.
fn strip_probe_name(mut body: Value, uid: &str) -> Value {
    if let Some(m) = body.get("message").and_then(Value::as_str).map(|m| m.replace(PROBE_INDEX, uid)) {
        body["message"] = Value::from(m);
    }
    body
}
