//! State transitions of topology changes that go beyond one placement field: a missed write
//! during a migration, a node lost by the health prober, and a replica group filled.

use crate::apply::{index, invalid};
use crate::error::CommandError;
use crate::ids::{NodeId, ShardId};
use crate::state::{ClusterState, GroupStatus, MigrationPhase, NodeStatus, Placement};

type Result<T> = std::result::Result<T, CommandError>;

/// True when `group` holds, for every shard of every index, at least RF in-sync copies on nodes
/// that are not lost: it can serve every read on its own. A group without nodes is filled only
/// while there is no index.
pub fn group_filled(s: &ClusterState, group: &str) -> bool {
    let usable =
        |n: &NodeId| s.nodes.get(n).is_some_and(|n| matches!(n.status, NodeStatus::Active | NodeStatus::Draining));
    s.indexes.iter().all(|(uid, idx)| {
        let Some(shards) = s.placements.get(uid) else { return false };
        shards.len() == idx.shards as usize
            && shards.iter().all(|groups| {
                groups.get(group).is_some_and(|p| p.in_sync_owners().filter(|n| usable(n)).count() >= idx.rf as usize)
            })
    })
}

/// Every Initializing group that is filled becomes Active: it serves reads from now on. Called
/// after each command that changes routing, so the switch is part of the command that completed
/// the last copy (or deleted the last index it lacked) and needs no controller of its own.
pub fn activate_filled_groups(s: &mut ClusterState) {
    let filled: Vec<String> = s
        .groups
        .iter()
        .filter(|(id, g)| g.status == GroupStatus::Initializing && group_filled(s, id))
        .map(|(id, _)| id.clone())
        .collect();
    for id in filled {
        if let Some(g) = s.groups.get_mut(&id) {
            g.status = GroupStatus::Active;
        }
    }
}

/// `SetGroupStatus`: a group serves reads (Active) only once it holds every shard, the last
/// Active group cannot stop serving them, and only the cluster sets a group Initializing.
pub fn set_group_status(s: &mut ClusterState, id: &str, status: GroupStatus) -> Result<()> {
    let current = s.groups.get(id).ok_or_else(|| CommandError::GroupNotFound(id.into()))?.status;
    // Initializing is the cluster's own judgement (the group lacks copies): set by it, left by it.
    if status == GroupStatus::Initializing && current != GroupStatus::Initializing {
        return Err(invalid(
            "group status",
            format!("`{id}` cannot be set Initializing: set it Draining to stop its reads"),
        ));
    }
    if status == GroupStatus::Active && current != GroupStatus::Active && !group_filled(s, id) {
        return Err(invalid("group status", format!("`{id}` does not hold every shard yet: it cannot serve reads")));
    }
    if current == GroupStatus::Active && status != GroupStatus::Active && !other_active_group(s, id) {
        return Err(invalid("group status", format!("`{id}` is the last Active group: reads would stop")));
    }
    s.groups.get_mut(id).expect("checked").status = status;
    Ok(())
}

/// `RemoveGroup`: a group with nodes is removed only once Draining (it serves no reads; waiting
/// until every gateway installed that map is `miroirctl group remove`'s job) while another group
/// is Active, and with no migration into it. Its nodes are Removed with it: what they hold is
/// never read again.
pub fn remove_group(s: &mut ClusterState, id: &str) -> Result<()> {
    let group = s.groups.get(id).ok_or_else(|| CommandError::GroupNotFound(id.into()))?;
    let nodes: Vec<NodeId> = s
        .nodes
        .iter()
        .filter(|(_, n)| n.group == id && n.status != NodeStatus::Removed)
        .map(|(n, _)| n.clone())
        .collect();
    if !nodes.is_empty() && (group.status != GroupStatus::Draining || !other_active_group(s, id)) {
        return Err(CommandError::GroupNotEmpty { group: id.into(), nodes: nodes.len() });
    }
    if let Some(m) = s.migrations.values().find(|m| m.group == id) {
        return Err(CommandError::MigrationInFlight { index: m.index.clone(), shard: m.shard, group: id.into() });
    }
    s.groups.remove(id);
    for shards in s.placements.values_mut() {
        for groups in shards.iter_mut() {
            groups.remove(id);
        }
    }
    for n in &nodes {
        s.nodes.get_mut(n).expect("listed").status = NodeStatus::Removed;
    }
    for held in s.deleting.values_mut() {
        held.retain(|n| !nodes.contains(n));
    }
    s.deleting.retain(|_, held| !held.is_empty());
    Ok(())
}

/// Sends the migration of (index, shard, group), if it is in Copy or Verify, back to Copy.
///
/// Why: Verify compares the source with the incoming copy and Cutover trusts that comparison.
/// A write that one of them missed after (or while) it was compared would be lost at Cutover.
/// Since the rebalancer can only move Verify → Cutover, a reset committed before its Cutover
/// makes that Cutover fail, and the next Cutover follows a Verify that started after the miss.
/// DualWrite needs nothing (Copy follows anyway); from Cutover on the incoming node is an owner
/// and a miss marks it stale like any owner.
pub fn reset_migration(s: &mut ClusterState, index: &str, shard: ShardId, group: &str) {
    let Some(id) = s.placement(index, shard, group).and_then(|p| p.migration) else { return };
    let Some(m) = s.migrations.get_mut(&id) else { return };
    if matches!(m.phase, MigrationPhase::Copy | MigrationPhase::Verify) {
        m.phase = MigrationPhase::Copy;
        m.copied = 0;
        m.total = None;
        m.resets += 1;
    }
}

/// Marks `id` Failed and its in-sync copies stale wherever another in-sync copy (at least
/// `min_in_sync`) remains; the last copies stay in sync, as `MarkStale` would refuse them, except
/// in a group being filled (it serves no reads, another group holds the data).
pub fn node_failed(s: &mut ClusterState, id: &NodeId) {
    let min = s.defaults.min_in_sync as usize;
    if let Some(n) = s.nodes.get_mut(id) {
        n.status = NodeStatus::Failed;
    }
    let groups_status: std::collections::BTreeMap<String, GroupStatus> =
        s.groups.iter().map(|(id, g)| (id.clone(), g.status)).collect();
    let mut touched = Vec::new();
    for (index, shards) in s.placements.iter_mut() {
        for (shard, groups) in shards.iter_mut().enumerate() {
            for (group, p) in groups.iter_mut() {
                let in_sync = p.in_sync_owners().count();
                let Some(owner) = p.owners.iter_mut().find(|o| o.node == *id) else {
                    if p.incoming.contains(id) {
                        touched.push((index.clone(), shard as ShardId, group.clone()));
                    }
                    continue;
                };
                let serving = groups_status.get(group.as_str()) != Some(&GroupStatus::Initializing);
                if owner.in_sync && (in_sync > min || !serving) {
                    owner.in_sync = false;
                    touched.push((index.clone(), shard as ShardId, group.clone()));
                }
            }
        }
    }
    for (index, shard, group) in touched {
        reset_migration(s, &index, shard, &group);
    }
}

/// True when a group other than `id` is Active, or no index needs one.
fn other_active_group(s: &ClusterState, id: &str) -> bool {
    s.indexes.is_empty() || s.groups.iter().any(|(g, st)| g != id && st.status == GroupStatus::Active)
}

/// For a migration into a group that holds no placement of (index, shard) yet (a group being
/// filled), the empty placement it creates; `None` when the placement exists. Such a first copy
/// adds a copy (no `from`) and needs an in-sync copy in another group to be read from.
pub(crate) fn fill_placement(
    s: &ClusterState,
    i: &str,
    shard: ShardId,
    group: &str,
    from: Option<&NodeId>,
    to: &str,
) -> Result<Option<Placement>> {
    let shards = index(s, i)?.shards;
    if s.placement(i, shard, group).is_some() || shard >= shards {
        return Ok(None);
    }
    let g = s.groups.get(group).ok_or_else(|| CommandError::GroupNotFound(group.into()))?;
    if g.status == GroupStatus::Draining || from.is_some() {
        return Err(CommandError::PlacementNotFound { index: i.into(), shard, group: group.into() });
    }
    let source = s.placements.get(i).and_then(|p| p.get(shard as usize)).is_some_and(|groups| {
        groups.iter().any(|(g, p)| {
            s.groups.get(g).is_some_and(|g| g.status == GroupStatus::Active)
                && p.in_sync_owners().any(|n| s.nodes.get(n).is_some_and(|n| n.status == NodeStatus::Active))
        })
    });
    if !source {
        return Err(invalid(
            "migration",
            format!("no Active group holds an in-sync copy of shard {shard} of `{i}` to fill `{to}` from"),
        ));
    }
    Ok(Some(Placement::default()))
}
