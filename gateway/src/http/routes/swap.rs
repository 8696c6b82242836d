//! `POST /swap-indexes` and renames (`PATCH /indexes/{uid}` with `uid`).
//!
//! The cluster's view changes in one committed `SwapIndexes`, so every gateway switches at the
//! map version that carries it. Nodes are sent their share first: each node holding a copy of
//! either index swaps them (or renames the one it holds), and only then is the change committed.
//! That order keeps node queues consistent with the coordinator's settings reconciler, which
//! recreates an index a node lacks: it can only act on the new names after the commit, when every
//! node's swap is already ahead of it in the node's queue. A node that could not take its share
//! has its copies marked stale before the commit; if that would lose quorum, or the commit is
//! refused, the nodes that took the swap are sent its inverse and nothing changed.

use miroir_meili::TaskKind;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use miroir::command::Command;
use miroir::ids::{NodeId, ShardId};
use miroir::task::{NewTask, TaskStatus};
use miroir::{CommandError, RoutingMap};
use miroir_meili::swap::IndexSwap;
use miroir_meili::MeiliError;
use miroir_node_client::{Method, NodeRequest};
use serde_json::{json, Value};

use super::accepted;
use crate::app::AppState;
use crate::cluster::ClusterError;
use crate::error::{AppError, AppResult, Code};
use crate::http::auth::Access;
use crate::http::extract::Json;
use crate::write::fanout::{self, index_nodes, Outcome};
use crate::write::tasks::now_millis;

fn refusal(r: MeiliError) -> AppError {
    r.into()
}

/// Why a swap did not happen: a refusal Meilisearch reports as a failed task, or an error.
pub enum SwapFailure {
    Refused(MeiliError),
    Error(AppError),
}

impl From<AppError> for SwapFailure {
    fn from(e: AppError) -> Self {
        SwapFailure::Error(e)
    }
}

/// What one node must do: the swaps restricted to the indexes it holds. A node holding only one
/// side of a swap renames it.
pub fn node_swaps(map: &RoutingMap, swaps: &[IndexSwap]) -> BTreeMap<NodeId, Vec<IndexSwap>> {
    let mut out: BTreeMap<NodeId, Vec<IndexSwap>> = BTreeMap::new();
    for s in swaps {
        let (a, b) = (&s.indexes.0, &s.indexes.1);
        let (on_a, on_b) = (index_nodes(map, a), index_nodes(map, b));
        for node in on_a.union(&on_b) {
            let swap = match (on_a.contains(node), on_b.contains(node)) {
                (true, true) => IndexSwap { indexes: (a.clone(), b.clone()), rename: false },
                (true, false) => IndexSwap { indexes: (a.clone(), b.clone()), rename: true },
                _ => IndexSwap { indexes: (b.clone(), a.clone()), rename: true },
            };
            out.entry(node.clone()).or_default().push(swap);
        }
    }
    out
}

fn swap_request(swaps: &[IndexSwap]) -> NodeRequest {
    NodeRequest::json(Method::Post, "/swap-indexes", &json!(swaps))
}

/// The swaps that undo `swaps` on a node that took them.
fn inverse(swaps: &[IndexSwap]) -> Vec<IndexSwap> {
    swaps
        .iter()
        .rev()
        .map(|s| match s.rename {
            true => IndexSwap { indexes: (s.indexes.1.clone(), s.indexes.0.clone()), rename: true },
            false => s.clone(),
        })
        .collect()
}

/// Every in-sync copy `node` holds of any index in `swaps`, by the names before the swap.
fn held_copies(map: &RoutingMap, swaps: &[IndexSwap], node: &str) -> Vec<(String, ShardId, String)> {
    let names: BTreeSet<&String> = swaps.iter().flat_map(|s| [&s.indexes.0, &s.indexes.1]).collect();
    names
        .into_iter()
        .flat_map(|i| fanout::in_sync_copies(map, i, node).into_iter().map(move |(s, g)| (i.clone(), s, g)))
        .collect()
}

/// Sends every node its share, then commits. Returns the node tasks of the swap.
pub async fn swap_everywhere(
    app: &AppState,
    map: &RoutingMap,
    swaps: &[IndexSwap],
    request: impl Fn(&[IndexSwap]) -> NodeRequest,
) -> Result<Outcome, SwapFailure> {
    let shares = node_swaps(map, swaps);
    let per_node = shares.iter().map(|(n, s)| (n.clone(), vec![request(s)])).collect();
    let results = fanout::send(&app.nodes, map, per_node).await;
    let mut outcome = Outcome::default();
    let mut failed = Vec::new();
    for (node, r) in results {
        match r {
            Ok(uids) => outcome.node_tasks.extend(uids.into_iter().map(|u| (node.clone(), u))),
            Err(e) => {
                tracing::warn!(%node, error = %e, "node missed an index swap; marking its copies stale");
                failed.push(node);
            }
        }
    }
    let undo = |outcome: &Outcome| {
        let took: BTreeSet<&NodeId> = outcome.node_tasks.iter().map(|(n, _)| n).collect();
        took.into_iter().map(|n| (n.clone(), vec![request(&inverse(&shares[n]))])).collect::<BTreeMap<_, _>>()
    };
    let mut stale = Vec::new();
    for node in &failed {
        for (index, shard, group) in held_copies(map, swaps, node) {
            let cmd = Command::MarkStale { index: index.clone(), shard, group: group.clone(), node: node.clone() };
            if let Err(e) = app.cluster.propose(cmd).await {
                let _ = fanout::send(&app.nodes, map, undo(&outcome)).await;
                return Err(AppError::new(
                    Code::MIROIR_NO_QUORUM,
                    format!("The swap cannot be acknowledged: node `{node}` could not take it ({e})."),
                )
                .into());
            }
            stale.push(shard);
        }
    }
    outcome.degraded.extend(stale);
    if let Err(e) = app.cluster.propose(Command::SwapIndexes { swaps: swaps.to_vec() }).await {
        let _ = fanout::send(&app.nodes, map, undo(&outcome)).await;
        return Err(match e {
            ClusterError::Rejected(CommandError::SwapRefused { code, message }) => {
                // The kernel's refusal travelled as JSON; its code is one `miroir_meili::swap` gives.
                SwapFailure::Refused(MeiliError::new(Code::named(&code).unwrap_or(Code::BAD_REQUEST), message))
            }
            ClusterError::Rejected(e @ (CommandError::IndexMigrating(_) | CommandError::IndexStillOnNodes { .. })) => {
                migrating(&e.to_string()).into()
            }
            e => AppError::from(e).into(),
        });
    }
    Ok(outcome)
}

fn migrating(what: &str) -> AppError {
    AppError::new(Code::MIROIR_UNAVAILABLE, format!("The swap must wait: {what}; retry once it has finished."))
}

/// A swap Meilisearch would fail when processing it: registered as a failed task.
async fn failed_task(
    app: &AppState,
    index_uid: Option<String>,
    kind: TaskKind,
    details: Value,
    r: MeiliError,
) -> AppResult<Response> {
    let task = NewTask {
        index_uid,
        kind,
        details,
        node_tasks: vec![],
        finished: Some((TaskStatus::Failed, Some(refusal(r).body()))),
        shares: vec![],
    };
    accepted(app, task, Outcome::default(), vec![]).await
}

/// The map once no node still holds a deleted index of one of the names (the index cleaner
/// removes those; a node holding one would refuse the rename).
async fn map_without_deleted(app: &AppState, swaps: &[IndexSwap]) -> AppResult<Arc<RoutingMap>> {
    let names: Vec<&String> = swaps.iter().flat_map(|s| [&s.indexes.0, &s.indexes.1]).collect();
    app.wait_until(|m| names.iter().all(|n| !m.deleting.contains_key(*n))).await
}

/// Refuses what would pull an index from under a shard migration (Miroir's own condition).
fn check_not_migrating(map: &RoutingMap, swaps: &[IndexSwap]) -> AppResult<()> {
    for uid in swaps.iter().flat_map(|s| [&s.indexes.0, &s.indexes.1]) {
        let busy =
            map.placements.get(uid).into_iter().flatten().flat_map(|g| g.values()).any(|p| p.migration.is_some());
        if busy {
            return Err(migrating(&format!("index `{uid}` has a shard migration in flight")));
        }
    }
    Ok(())
}

pub async fn swap_indexes(
    State(app): State<Arc<AppState>>,
    access: Access,
    Json(body): Json<Value>,
) -> AppResult<Response> {
    app.check_writable()?;
    let swaps = miroir_meili::swap::parse(&body).map_err(refusal)?;
    if swaps.iter().any(|s| !access.index_authorized(&s.indexes.0) || !access.index_authorized(&s.indexes.1)) {
        return Err(crate::http::auth::invalid_api_key());
    }
    let details = json!({ "swaps": swaps });
    let map = map_without_deleted(&app, &swaps).await?;
    if let Err(r) = miroir_meili::swap::check_exist(|uid| map.indexes.contains_key(uid), &swaps) {
        return failed_task(&app, None, TaskKind::IndexSwap, details, r).await;
    }
    check_not_migrating(&map, &swaps)?;
    let outcome = match swap_everywhere(&app, &map, &swaps, swap_request).await {
        Ok(o) => o,
        // Another gateway changed one of the indexes meanwhile: as Meilisearch, a failed task.
        Err(SwapFailure::Refused(r)) => return failed_task(&app, None, TaskKind::IndexSwap, details, r).await,
        Err(SwapFailure::Error(e)) => return Err(e),
    };
    let task = NewTask {
        index_uid: None,
        kind: miroir_meili::TaskKind::IndexSwap,
        details,
        node_tasks: vec![],
        finished: None,
        shares: vec![],
    };
    accepted(&app, task, outcome, vec![]).await
}

/// `PATCH /indexes/{uid}` with a new `uid`: the index (and, with `primaryKey`, its primary key)
/// under its new name, one `indexUpdate` task with Meilisearch's details.
pub async fn rename(app: &AppState, uid: String, new_uid: String, primary_key: Option<String>) -> AppResult<Response> {
    app.check_writable()?;
    if !miroir_meili::is_valid_index_uid(&new_uid) {
        return Err(AppError::invalid_index_uid(&new_uid));
    }
    let details = json!({"primaryKey": primary_key, "oldIndexUid": uid, "newIndexUid": new_uid});
    let swaps = [IndexSwap { indexes: (uid.clone(), new_uid.clone()), rename: true }];
    let map = map_without_deleted(app, &swaps).await?;
    let Some(idx) = map.indexes.get(&uid) else {
        return super::failed(
            app,
            super::new_task(&uid, TaskKind::IndexUpdate, details),
            AppError::index_not_found(&uid),
        )
        .await;
    };
    if let (Some(current), Some(pk)) = (&idx.primary_key, &primary_key) {
        if current != pk {
            let e = CommandError::PrimaryKeyAlreadySet { index: uid.clone(), current: current.clone() };
            return super::failed(
                app,
                super::new_task(&uid, TaskKind::IndexUpdate, details),
                ClusterError::Rejected(e).into(),
            )
            .await;
        }
    }
    if map.indexes.contains_key(&new_uid) {
        let r = MeiliError::new(Code::INDEX_ALREADY_EXISTS, format!("Index `{new_uid}` already exists."));
        return failed_task(app, Some(uid), TaskKind::IndexUpdate, details, r).await;
    }
    check_not_migrating(&map, &swaps)?;
    let body = json!({"uid": new_uid, "primaryKey": primary_key});
    let request = |s: &[IndexSwap]| match s {
        // Forward the client's own request to nodes; the undo is a swap-indexes rename back.
        [one] if one.indexes.0 == uid && one.rename => {
            NodeRequest::json(Method::Patch, format!("/indexes/{uid}"), &body)
        }
        other => swap_request(other),
    };
    let outcome = match swap_everywhere(app, &map, &swaps, request).await {
        Ok(o) => o,
        Err(SwapFailure::Refused(r)) => return failed_task(app, Some(uid), TaskKind::IndexUpdate, details, r).await,
        Err(SwapFailure::Error(e)) => return Err(e),
    };
    if let Some(pk) = &primary_key {
        let cmd = Command::SetPrimaryKey { uid: new_uid.clone(), primary_key: pk.clone(), at: now_millis() };
        app.cluster.propose(cmd).await?;
    }
    accepted(app, super::new_task(&uid, TaskKind::IndexUpdate, details), outcome, vec![]).await
}
