//! What a canceled write leaves behind. A cancelation reaches each node separately, so a node may
//! have processed the write before it arrived while another canceled it: the copies of a shard then
//! differ. The Miroir task reports `succeeded` (the cancelation was not effective, as on one
//! Meilisearch when a task finishes first) and the copies that canceled it are marked stale, to be
//! repaired from those that hold it.

use std::collections::BTreeSet;

use crate::ids::{NodeId, TaskUid};
use crate::state::ClusterState;
use crate::task::{NodeTaskReport, TaskStatus};

/// Marks stale the copies that canceled a write their shard's other copies processed, for the
/// tasks `reports` finished. Returns whether any copy changed (the map version must then move).
pub(crate) fn stale_diverged(state: &mut ClusterState, reports: &[NodeTaskReport]) -> bool {
    let tasks: BTreeSet<TaskUid> = reports.iter().map(|r| r.task).collect();
    let mut changed = false;
    for uid in tasks {
        let Some(task) = state.tasks.get(uid) else { continue };
        if task.status != TaskStatus::Succeeded {
            continue;
        }
        let with = |s: TaskStatus| -> BTreeSet<NodeId> {
            task.node_tasks.iter().filter(|n| n.status == s).map(|n| n.node.clone()).collect()
        };
        let (done, canceled) = (with(TaskStatus::Succeeded), with(TaskStatus::Canceled));
        let Some(index) = task.index_uid.clone() else { continue };
        if done.is_empty() || canceled.is_empty() {
            continue;
        }
        let Some(shards) = state.placements.get_mut(&index) else { continue };
        for p in shards.iter_mut().flat_map(|groups| groups.values_mut()) {
            // Only a shard with an in-sync copy that has the write loses the others: one whose
            // copies all canceled it is consistent, and keeps serving.
            if !p.owners.iter().any(|o| o.in_sync && done.contains(&o.node)) {
                continue;
            }
            for o in p.owners.iter_mut().filter(|o| o.in_sync && canceled.contains(&o.node) && !done.contains(&o.node))
            {
                o.in_sync = false;
                changed = true;
            }
        }
    }
    changed
}
