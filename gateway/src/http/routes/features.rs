//! `/experimental-features`: one cluster-wide set of flags. A PATCH is validated by a node (so the
//! accepted names and types are exactly the running Meilisearch's), committed to the replicated
//! state, then sent to every node; the leader's reconciler brings nodes that missed it (or join
//! later) to the same flags. A GET is a node's answer with the committed flags laid over it.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use miroir::command::Command;
use miroir::state::NodeStatus;
use miroir::RoutingMap;
use miroir_node_client::{Method, NodeError, NodeRequest};
use serde_json::{Map, Value};

use super::json_ok;
use crate::app::AppState;
use crate::error::{AppError, AppResult, Code};
use crate::http::extract::Json;

const PATH: &str = "/experimental-features";

fn serving_nodes(map: &RoutingMap) -> Vec<(String, String)> {
    map.nodes
        .iter()
        .filter(|(_, n)| n.status != NodeStatus::Failed && n.status != NodeStatus::Removed)
        .map(|(id, n)| (id.clone(), n.url.clone()))
        .collect()
}

/// Sends `req` to the first node that answers; a node's 4xx is the client's answer.
async fn first_answer(app: &AppState, nodes: &[(String, String)], req: &NodeRequest) -> AppResult<(String, Value)> {
    let mut last = None;
    for (id, url) in nodes {
        match app.nodes.json(url, req.clone()).await {
            Ok(v) => return Ok((id.clone(), v)),
            Err(NodeError::Status { status, body }) if status < 500 => return Err(AppError::forwarded(status, body)),
            Err(e) => last = Some(e),
        }
    }
    Err(AppError::new(
        Code::MIROIR_UNAVAILABLE,
        format!("No node could answer: {}", last.map_or_else(|| "no node in the cluster".into(), |e| e.to_string())),
    ))
}

fn overlay(mut answer: Value, flags: &Map<String, Value>) -> Value {
    if let Some(obj) = answer.as_object_mut() {
        for (k, v) in flags {
            obj.insert(k.clone(), v.clone());
        }
    }
    answer
}

pub async fn get(State(app): State<Arc<AppState>>) -> AppResult<Response> {
    let map = app.map();
    let (_, answer) = first_answer(&app, &serving_nodes(&map), &NodeRequest::get(PATH)).await?;
    Ok(json_ok(overlay(answer, &map.experimental_features)))
}

pub async fn patch(State(app): State<Arc<AppState>>, Json(body): Json<Value>) -> AppResult<Response> {
    app.check_writable()?;
    let map = app.map();
    let nodes = serving_nodes(&map);
    let req = NodeRequest::json(Method::Patch, PATH, &body);
    // The probe validates: an unknown flag or a wrong type comes back as Meilisearch's own error.
    let (probed, answer) = first_answer(&app, &nodes, &req).await?;
    let Value::Object(features) = body else {
        return Err(AppError::new(Code::BAD_REQUEST, "The experimental features must be a JSON object."));
    };
    let (_, version) = app.cluster.propose(Command::SetExperimentalFeatures { features }).await?;
    let others = nodes.iter().filter(|(id, _)| *id != probed);
    let sends = others.map(|(id, url)| {
        let (app, req) = (app.clone(), req.clone());
        async move {
            if let Err(e) = app.nodes.json(url, req).await {
                tracing::info!(node = %id, error = %e, "experimental features not applied; the reconciler will retry");
            }
        }
    });
    futures::future::join_all(sends).await;
    let map = app.wait_for_version(version).await?;
    Ok(json_ok(overlay(answer, &map.experimental_features)))
}
