//! What the rebalancer should do next: pure planning over the state, no I/O.
//!
//! For each (index, shard, group) without a migration in flight, compare the owners with
//! [`target_owners`] (the top-RF Active nodes of the group) and propose at most one migration:
//! - a stale owner that is still a target is repaired in place (`from = None`, `to` = it);
//! - a target node that holds no copy receives one, replacing (`from`) an owner that should
//!   leave: a removed or unknown node, a draining node, a failed node whose grace period is
//!   over, a stale copy, then a healthy node displaced by a better-ranked new one; or adding a
//!   copy (`from = None`) when the placement has fewer than RF owners.
//!
//! A failed owner inside its grace period is never replaced: it may come back. A migration
//! needs a source ([`copy_source`]): an in-sync owner that is not failed, in the same group if
//! one is left, else in another Active group (every in-sync copy holds every acknowledged write).
//!
//! A group that holds no placement of a shard yet (a replica group being filled) gets one
//! migration per shard onto its best-ranked node, copied from another group; the copies it
//! still lacks below RF then come from inside the group, like any RF restore.

use std::collections::BTreeSet;

use crate::ids::{GroupId, IndexUid, Millis, NodeId, ShardId};
use crate::placement::target_owners;
use crate::state::{ClusterState, GroupStatus, NodeStatus, Placement};
use crate::Command;

/// One migration to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub index: IndexUid,
    pub shard: ShardId,
    pub group: GroupId,
    pub from: Option<NodeId>,
    pub to: NodeId,
}

impl Move {
    pub fn command(&self, at: Millis) -> Command {
        Command::StartMigration {
            index: self.index.clone(),
            shard: self.shard,
            group: self.group.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
            at,
        }
    }
}

/// Up to `limit` migrations to start now. `failed_past_grace`: failed nodes whose copies may be
/// replaced. Nodes already receiving a migration are not given a second one in the same plan,
/// so concurrent copies spread over the cluster.
pub fn plan(s: &ClusterState, failed_past_grace: &BTreeSet<NodeId>, limit: usize) -> Vec<Move> {
    let mut out = Vec::new();
    if limit == 0 {
        return out;
    }
    let mut busy: BTreeSet<NodeId> = s.migrations.values().map(|m| m.to.clone()).collect();
    for (index, shards) in &s.placements {
        for (shard, groups) in shards.iter().enumerate() {
            for group in s.groups.iter().filter(|(g, _)| !groups.contains_key(*g)).map(|(g, _)| g) {
                let Some(m) = fill_move(s, index, shard as ShardId, group) else { continue };
                if !busy.insert(m.to.clone()) {
                    continue;
                }
                out.push(m);
                if out.len() >= limit {
                    return out;
                }
            }
            for (group, p) in groups {
                if p.migration.is_some() || s.groups.get(group).is_none_or(|g| g.status == GroupStatus::Draining) {
                    continue;
                }
                let Some(m) = next_move(s, index, shard as ShardId, group, p, failed_past_grace) else { continue };
                if !busy.insert(m.to.clone()) {
                    continue;
                }
                out.push(m);
                if out.len() >= limit {
                    return out;
                }
            }
        }
    }
    out
}

fn status(s: &ClusterState, node: &str) -> Option<NodeStatus> {
    s.nodes.get(node).map(|n| n.status)
}

/// The in-sync copy a migration onto `to` reads (index, shard) from: an Active (then Draining)
/// in-sync owner in `group`, else one in another Active group. Owners in a Draining group are
/// not used: that group is on its way out.
pub fn copy_source(s: &ClusterState, index: &str, shard: ShardId, group: &str, to: &str) -> Option<NodeId> {
    let groups = s.placements.get(index)?.get(shard as usize)?;
    groups
        .iter()
        .filter(|(g, _)| *g == group || s.groups.get(*g).is_some_and(|g| g.status == GroupStatus::Active))
        .flat_map(|(g, p)| p.in_sync_owners().map(move |n| (g, n)))
        .filter(|(_, n)| *n != to)
        .filter_map(|(g, n)| {
            let rank = match status(s, n)? {
                NodeStatus::Active => 0,
                NodeStatus::Draining => 1,
                _ => return None,
            };
            Some((g != group, rank, n))
        })
        .min()
        .map(|(_, _, n)| n.clone())
}

/// The first copy of (index, shard) in a group that has no placement of it: onto the group's
/// best-ranked node, from a copy in another group. Draining groups and groups without Active
/// nodes are not filled.
fn fill_move(s: &ClusterState, index: &str, shard: ShardId, group: &str) -> Option<Move> {
    if s.groups.get(group)?.status == GroupStatus::Draining {
        return None;
    }
    let held = s.deleting.get(index);
    let to = target_owners(s, index, shard, group).into_iter().find(|n| !held.is_some_and(|h| h.contains(n)))?;
    copy_source(s, index, shard, group, &to)?;
    Some(Move { index: index.into(), shard, group: group.into(), from: None, to })
}

/// The move that brings this placement closer to its target, if any can start now.
pub fn next_move(
    s: &ClusterState,
    index: &str,
    shard: ShardId,
    group: &str,
    p: &Placement,
    failed_past_grace: &BTreeSet<NodeId>,
) -> Option<Move> {
    let has_source = |to: &str| copy_source(s, index, shard, group, to).is_some();
    let target = target_owners(s, index, shard, group);
    let mv = |from: Option<NodeId>, to: NodeId| Move { index: index.into(), shard, group: group.into(), from, to };

    if let Some(o) = p.owners.iter().find(|o| !o.in_sync && target.contains(&o.node)) {
        return has_source(&o.node).then(|| mv(None, o.node.clone()));
    }
    let to = target.iter().find(|n| p.owner(n).is_none())?.clone();
    if !has_source(&to) {
        return None;
    }
    let rf = s.indexes.get(index).map_or(s.defaults.rf, |i| i.rf) as usize;
    if p.owners.len() < rf {
        return Some(mv(None, to));
    }
    // Leaving owners, most urgent first; a failed owner inside its grace period stays.
    let rank = |node: &NodeId, in_sync: bool| -> Option<u8> {
        match status(s, node) {
            None | Some(NodeStatus::Removed) => Some(0),
            Some(NodeStatus::Draining | NodeStatus::Joining) => Some(1),
            Some(NodeStatus::Failed) => failed_past_grace.contains(node).then_some(2),
            Some(NodeStatus::Active) if !in_sync => Some(3),
            Some(NodeStatus::Active) => Some(4),
        }
    };
    let from = p
        .owners
        .iter()
        .filter(|o| !target.contains(&o.node))
        .filter_map(|o| rank(&o.node, o.in_sync).map(|r| (r, o.node.clone())))
        .min()?
        .1;
    Some(mv(Some(from), to))
}

/// Placements with fewer in-sync copies than RF, and stale copies, across all indexes.
pub fn health_counts(s: &ClusterState) -> (usize, usize) {
    let mut below_rf = 0;
    let mut stale = 0;
    for (index, shards) in &s.placements {
        let rf = s.indexes.get(index).map_or(s.defaults.rf, |i| i.rf) as usize;
        for p in shards.iter().flat_map(|g| g.values()) {
            let in_sync = p
                .in_sync_owners()
                .filter(|n| !matches!(status(s, n), None | Some(NodeStatus::Failed | NodeStatus::Removed)))
                .count();
            below_rf += usize::from(in_sync < rf);
            stale += p.owners.iter().filter(|o| !o.in_sync).count();
        }
    }
    (below_rf, stale)
}
