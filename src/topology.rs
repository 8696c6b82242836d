//! State transitions of topology changes that go beyond one placement field: a missed write
//! during a migration, and a node lost by the health prober.

use crate::ids::{NodeId, ShardId};
use crate::state::{ClusterState, MigrationPhase, NodeStatus};

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
/// `min_in_sync`) remains; the last copies stay in sync, as `MarkStale` would refuse them.
pub fn node_failed(s: &mut ClusterState, id: &NodeId) {
    let min = s.defaults.min_in_sync as usize;
    if let Some(n) = s.nodes.get_mut(id) {
        n.status = NodeStatus::Failed;
    }
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
                if owner.in_sync && in_sync > min {
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
