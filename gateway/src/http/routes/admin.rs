//! The admin API under `/_miroir/…` (master key only, see auth/policy.rs): the topology operations
//! of `miroirctl` for operators who reach the cluster only through its gateways. Every change is one
//! committed command; nothing here talks to a node except `verify`, which reads every copy.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use miroir::command::Command;
use miroir::state::{GroupStatus, MigrationPhase, NodeStatus};
use miroir::CommandError;
use serde::Deserialize;
use serde_json::json;

use super::json_ok;
use crate::app::AppState;
use crate::cluster::ClusterError;
use crate::error::{AppError, AppResult, Code};
use crate::http::extract::Json;

/// What an operator gets back from a change: the log index it was committed at (the map version
/// when it changed the map) and the kernel's answer.
async fn commit(app: &AppState, cmd: Command) -> AppResult<Response> {
    let (response, log_index) = app.cluster.propose(cmd).await?;
    Ok(json_ok(json!({"logIndex": log_index, "response": response})))
}

pub async fn list_nodes(State(app): State<Arc<AppState>>) -> Response {
    let map = app.map();
    json_ok(json!({"nodes": map.nodes, "mapVersion": map.version}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewNode {
    id: String,
    url: String,
    group: String,
}

/// Adds a node to a group, creating the group first when the cluster has none of that name.
pub async fn add_node(State(app): State<Arc<AppState>>, Json(n): Json<NewNode>) -> AppResult<Response> {
    if !app.map().groups.contains_key(&n.group) {
        match app.cluster.propose(Command::AddGroup { id: n.group.clone() }).await {
            // Another operator may have created it in between: that is fine.
            Ok(_) | Err(ClusterError::Rejected(CommandError::GroupExists(_))) => {}
            Err(e) => return Err(e.into()),
        }
    }
    commit(&app, Command::AddNode { id: n.id, url: n.url, group: n.group }).await
}

/// Stops placing shards on the node; the rebalancer moves its copies away. Follow it with
/// `GET /_miroir/migrations`, then `DELETE /_miroir/nodes/{id}` once it holds nothing.
pub async fn drain_node(State(app): State<Arc<AppState>>, Path(id): Path<String>) -> AppResult<Response> {
    commit(&app, Command::SetNodeStatus { id, status: NodeStatus::Draining }).await
}

/// Removes a node; refused (`miroir_topology_refused`) while it still owns copies.
pub async fn remove_node(State(app): State<Arc<AppState>>, Path(id): Path<String>) -> AppResult<Response> {
    commit(&app, Command::RemoveNode { id }).await
}

pub async fn list_groups(State(app): State<Arc<AppState>>) -> Response {
    let map = app.map();
    json_ok(json!({"groups": map.groups, "mapVersion": map.version}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewGroup {
    id: String,
}

pub async fn add_group(State(app): State<Arc<AppState>>, Json(g): Json<NewGroup>) -> AppResult<Response> {
    commit(&app, Command::AddGroup { id: g.id }).await
}

/// Stops reads from the group (refused for the last Active group); then `DELETE` removes it.
pub async fn drain_group(State(app): State<Arc<AppState>>, Path(id): Path<String>) -> AppResult<Response> {
    commit(&app, Command::SetGroupStatus { id, status: GroupStatus::Draining }).await
}

/// Removes a group, as `miroirctl group remove` does but without waiting: a group with nodes must
/// be Draining, every gateway with a live lease must have installed the current map (none can still
/// read the group) and no copy may be on its way into it (those not cut over yet are aborted here).
/// Until then the answer is `miroir_topology_refused`, to retry.
pub async fn remove_group(State(app): State<Arc<AppState>>, Path(id): Path<String>) -> AppResult<Response> {
    let state = app.cluster.state().await?;
    let Some(group) = state.groups.get(&id) else {
        return Err(ClusterError::Rejected(CommandError::GroupNotFound(id)).into());
    };
    let has_nodes = state.nodes.values().any(|n| n.group == id && n.status != NodeStatus::Removed);
    if has_nodes && group.status == GroupStatus::Draining {
        let moving: Vec<_> = state.migrations.iter().filter(|(_, m)| m.group == id).collect();
        for (mid, m) in &moving {
            if m.phase < MigrationPhase::Cutover {
                // A refusal means the migration moved on meanwhile: the retry sees it.
                let _ = app.cluster.propose(Command::AbortMigration { id: **mid }).await;
            }
        }
        let caught_up = state.gateways_acked(state.map_version, crate::write::tasks::now_millis());
        let wait = match (moving.len(), caught_up) {
            (0, true) => None,
            (0, false) => Some("some gateway has not installed the map in which it drains yet".to_string()),
            (n, _) => Some(format!("{n} copies are still moving into it")),
        };
        if let Some(why) = wait {
            let msg = format!("Replica group `{id}` cannot be removed yet: {why}. Retry shortly.");
            return Err(AppError::new(Code::MIROIR_TOPOLOGY_REFUSED, msg));
        }
    }
    commit(&app, Command::RemoveGroup { id }).await
}

/// Migrations in flight with their progress, and the copies the cluster is short of.
pub async fn migrations(State(app): State<Arc<AppState>>) -> AppResult<Response> {
    let state = app.cluster.state().await?;
    let rows = miroir::progress::migration_rows(&state, crate::write::tasks::now_millis());
    let (below_rf, stale) = miroir::rebalance::health_counts(&state);
    Ok(json_ok(json!({"migrations": rows, "shardsBelowRf": below_rf, "staleCopies": stale})))
}

/// Compares every in-sync copy of every shard of the index, document by document.
pub async fn verify(State(app): State<Arc<AppState>>, Path(uid): Path<String>) -> AppResult<Response> {
    let state = app.cluster.state().await?;
    let report = miroir_node_client::verify::verify_index(&app.nodes, &state, &uid)
        .await
        .ok_or_else(|| AppError::index_not_found(&uid))?;
    Ok(json_ok(report))
}
