//! Sending one logical write to many nodes, and what happens when some of them fail.
//!
//! A write is acknowledged only when every in-sync owner it targeted has enqueued it. An owner
//! that did not is first marked stale by a committed `MarkStale`, so no in-sync copy ever lacks an
//! acknowledged write. If that would leave a shard without enough in-sync copies, `apply` refuses
//! and the write fails with `miroir_no_quorum` instead.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::join_all;
use miroir::command::Command;
use miroir::ids::{GroupId, NodeId, ShardId};
use miroir::state::{GroupStatus, Placement};
use miroir::task::Share;
use miroir::RoutingMap;
use miroir_node_client::{NodeClient, NodeError, NodeRequest, TransportError};

use crate::cluster::Cluster;
use crate::error::{AppError, AppResult, Code};
use crate::write::fence::WriteGuard;

/// What a fan-out produced: the node tasks to track, and the shards left below RF.
#[derive(Debug, Default)]
pub struct Outcome {
    pub node_tasks: Vec<(NodeId, u64)>,
    pub degraded: BTreeSet<ShardId>,
    /// `shares[i]`: what `node_tasks[i]` counts for in the task's document counts (empty when
    /// the task counts nothing from nodes).
    pub shares: Vec<Share>,
}

impl Outcome {
    /// Sets each node task's share: `share(node, i)` for the node's `i`-th request.
    pub fn with_shares(mut self, share: impl Fn(&NodeId, usize) -> Share) -> Self {
        let mut seen: BTreeMap<&NodeId, usize> = BTreeMap::new();
        self.shares = self
            .node_tasks
            .iter()
            .map(|(node, _)| {
                let i = seen.entry(node).or_default();
                *i += 1;
                share(node, *i - 1)
            })
            .collect();
        self
    }

    /// The nodes that took the write.
    pub fn nodes(&self) -> BTreeSet<NodeId> {
        self.node_tasks.iter().map(|(n, _)| n.clone()).collect()
    }
}

/// For each shard of `index`, the one node whose count stands for that shard in a task's counts:
/// the first write target (in group order) among `took` (the nodes that took the write).
pub fn counting_nodes(map: &RoutingMap, index: &str, took: &BTreeSet<NodeId>) -> BTreeMap<ShardId, NodeId> {
    let Some(shards) = map.placements.get(index) else { return BTreeMap::new() };
    shards
        .iter()
        .enumerate()
        .filter_map(|(shard, groups)| {
            let node = groups.values().flat_map(|p| p.write_targets()).find(|n| took.contains(*n))?;
            Some((shard as ShardId, node.clone()))
        })
        .collect()
}

/// The first write target of each shard (the copy that will count for it), before a write is sent.
pub fn first_targets(map: &RoutingMap, index: &str) -> BTreeMap<ShardId, NodeId> {
    let Some(shards) = map.placements.get(index) else { return BTreeMap::new() };
    shards
        .iter()
        .enumerate()
        .filter_map(|(shard, groups)| {
            Some((shard as ShardId, groups.values().flat_map(|p| p.write_targets()).next()?.clone()))
        })
        .collect()
}

/// Sends each node its requests (in order, one after another on that node; nodes in parallel).
///
/// Inside a tracked write (`fence`), nothing is sent once the lease the write began under lapsed,
/// and a request still unanswered when it lapses counts as failed: the coordinators may have
/// stopped waiting for this gateway, so the node might take it after the map moved on.
pub async fn send(
    nodes: &NodeClient,
    map: &RoutingMap,
    per_node: BTreeMap<NodeId, Vec<NodeRequest>>,
) -> Vec<(NodeId, Result<Vec<u64>, NodeError>)> {
    metrics::histogram!(crate::metrics::FANOUT, "kind" => "write").record(per_node.len() as f64);
    let write = WriteGuard::current();
    let calls = per_node.into_iter().map(|(node, reqs)| {
        let write = write.clone();
        async move {
            let Some(url) = map.nodes.get(&node).map(|n| n.url.clone()) else {
                let err = NodeError::Decode(format!("node `{node}` is not in the map"));
                return (node, Err(err));
            };
            let lapsed = |url: &str| NodeError::Transport(TransportError { url: url.into(), reason: LAPSED.into() });
            let mut uids = Vec::with_capacity(reqs.len());
            for (i, req) in reqs.into_iter().enumerate() {
                let answer = match &write {
                    Some(w) if !w.held() && i == 0 => Err(NodeError::NotSent(LAPSED.into())),
                    Some(w) if !w.held() => Err(lapsed(&url)),
                    Some(w) => tokio::select! {
                        answer = nodes.enqueue(&url, req) => answer,
                        () = w.lapsed() => Err(lapsed(&url)),
                    },
                    None => nodes.enqueue(&url, req).await,
                };
                match answer {
                    Ok(uid) => uids.push(uid),
                    Err(e) => return (node, Err(e)),
                }
            }
            (node, Ok(uids))
        }
    });
    join_all(calls).await
}

/// Why a node request of a write was abandoned.
const LAPSED: &str = "the gateway's lease lapsed before the node answered";

/// Every (shard, group) of `index` in which `node` holds an in-sync copy.
pub fn in_sync_copies(map: &RoutingMap, index: &str, node: &str) -> Vec<(ShardId, GroupId)> {
    copies_where(map, index, |p| p.owner(node).is_some_and(|o| o.in_sync))
}

/// Every (shard, group) of `index` that `node` is sent writes for: in-sync owner or incoming.
/// A miss on an incoming node must be reported too: it sends the migration back to Copy, so the
/// write is not lost at Cutover (see `Command::MarkStale`).
pub fn write_target_copies(map: &RoutingMap, index: &str, node: &str) -> Vec<(ShardId, GroupId)> {
    copies_where(map, index, |p| p.owner(node).is_some_and(|o| o.in_sync) || p.incoming.iter().any(|n| n == node))
}

/// Every (shard, group) of `index` whose placement satisfies `pred`.
fn copies_where(map: &RoutingMap, index: &str, pred: impl Fn(&Placement) -> bool) -> Vec<(ShardId, GroupId)> {
    let Some(shards) = map.placements.get(index) else { return vec![] };
    let pred = &pred;
    shards
        .iter()
        .enumerate()
        .flat_map(|(shard, groups)| {
            groups.iter().filter(move |(_, p)| pred(p)).map(move |(g, _)| (shard as ShardId, g.clone()))
        })
        .collect()
}

/// Turns per-node results into an acknowledgement: failed owners are marked stale (only for the
/// `copies` they were sent) before the write is reported successful.
pub async fn settle(
    cluster: &dyn Cluster,
    index: &str,
    results: Vec<(NodeId, Result<Vec<u64>, NodeError>)>,
    copies: impl Fn(&NodeId) -> Vec<(ShardId, GroupId)>,
) -> AppResult<Outcome> {
    let mut out = Outcome::default();
    let mut first_error = None;
    // Fenced before anything was sent: nothing to mark, the write just did not happen.
    if results.iter().all(|(_, r)| matches!(r, Err(NodeError::NotSent(_)))) && !results.is_empty() {
        return Err(AppError::writes_fenced());
    }
    for (node, result) in results {
        match result {
            Ok(uids) => out.node_tasks.extend(uids.into_iter().map(|u| (node.clone(), u))),
            Err(e) => {
                metrics::counter!(crate::metrics::NODE_ERRORS, "kind" => "write").increment(1);
                tracing::warn!(%node, index, error = %e, "node missed a write; marking its copies stale");
                let copies = if miroir::mutation::active(miroir::mutation::Mutation::SkipMarkStale) {
                    vec![]
                } else {
                    copies(&node)
                };
                for (shard, group) in copies {
                    let cmd = Command::MarkStale { index: index.into(), shard, group, node: node.clone() };
                    cluster.propose(cmd).await.map_err(AppError::from)?;
                    out.degraded.insert(shard);
                }
                first_error.get_or_insert(e);
            }
        }
    }
    if out.node_tasks.is_empty() {
        let reason = first_error.map_or_else(|| "no node to write to".to_string(), |e| e.to_string());
        return Err(AppError::new(
            Code::MIROIR_NO_QUORUM,
            format!("No copy of index `{index}` took the write: {reason}"),
        ));
    }
    Ok(out)
}

/// The shards of `index` that have fewer in-sync copies than RF in some group that serves reads
/// (a group being filled lacks copies by design; reads do not use it).
pub fn degraded_shards(map: &RoutingMap, index: &str) -> BTreeSet<ShardId> {
    let rf = map.indexes.get(index).map_or(1, |i| i.rf) as usize;
    let filling = |g: &str| map.groups.get(g).is_some_and(|g| g.status == GroupStatus::Initializing);
    map.placements
        .get(index)
        .map(|shards| {
            shards
                .iter()
                .enumerate()
                .filter(|(_, groups)| groups.iter().any(|(g, p)| !filling(g) && p.in_sync_owners().count() < rf))
                .map(|(s, _)| s as ShardId)
                .collect()
        })
        .unwrap_or_default()
}

/// Every node holding or receiving any copy of `index`.
pub fn index_nodes(map: &RoutingMap, index: &str) -> BTreeSet<NodeId> {
    map.placements
        .get(index)
        .into_iter()
        .flatten()
        .flat_map(|groups| groups.values())
        .flat_map(|p| p.owners.iter().map(|o| &o.node).chain(&p.incoming))
        .cloned()
        .collect()
}
