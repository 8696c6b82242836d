//! Task tracker: reads the state of the node tasks behind every unfinished Miroir task and commits
//! what changed (`ReportNodeTasks`), so `apply` folds them into the Miroir task's status: failed if
//! any node task failed (with its error), succeeded when all did.

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use miroir::ids::{NodeId, TaskUid};
use miroir::task::{NodeTaskReport, TaskStatus};
use miroir::{ClusterState, Command};
use miroir_node_client::NodeClient;

use crate::controller::LeaderTask;
use crate::node::Coordinator;

/// Most node task uids asked of one node per round: keeps the query string short.
const MAX_UIDS_PER_QUERY: usize = 200;

/// Node tasks still running, per node: its URL and (node task uid → (Miroir task, last status)).
pub type Pending = BTreeMap<NodeId, (String, BTreeMap<u64, (TaskUid, TaskStatus)>)>;

pub fn pending(state: &ClusterState) -> Pending {
    let mut out = Pending::new();
    for task in state.tasks.tasks.values().filter(|t| !t.status.is_finished()) {
        for nt in task.node_tasks.iter().filter(|nt| !nt.status.is_finished()) {
            let Some(node) = state.nodes.get(&nt.node) else { continue };
            out.entry(nt.node.clone())
                .or_insert_with(|| (node.url.clone(), BTreeMap::new()))
                .1
                .insert(nt.uid, (task.uid, nt.status));
        }
    }
    out
}

pub struct TaskTracker {
    nodes: NodeClient,
}

impl TaskTracker {
    pub fn new(nodes: NodeClient) -> Self {
        TaskTracker { nodes }
    }

    /// Asks each node about its pending tasks; returns the reports of those whose status changed.
    /// A node that cannot answer is skipped this round.
    pub async fn poll(&self, pending: Pending) -> Vec<NodeTaskReport> {
        let mut reports = Vec::new();
        for (node, (url, tasks)) in pending {
            let uids: Vec<u64> = tasks.keys().copied().take(MAX_UIDS_PER_QUERY).collect();
            let views = match self.nodes.tasks(&url, &uids).await {
                Ok(v) => v,
                Err(e) => {
                    tracing::debug!(%node, error = %e, "task tracker could not reach node");
                    continue;
                }
            };
            for v in views {
                let Some((task, known)) = tasks.get(&v.uid) else { continue };
                if v.status != *known {
                    reports.push(NodeTaskReport {
                        task: *task,
                        node: node.clone(),
                        node_task: v.uid,
                        status: v.status,
                        error: v.error,
                        started_at: v.started_at,
                        finished_at: v.finished_at,
                        details: v.status.is_finished().then_some(v.details).flatten(),
                    });
                }
            }
        }
        reports
    }
}

impl LeaderTask for TaskTracker {
    fn name(&self) -> &'static str {
        "task-tracker"
    }

    fn tick<'a>(&'a mut self, coord: &'a Coordinator) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let pending = coord.state().read(pending);
            if pending.is_empty() {
                return;
            }
            let reports = self.poll(pending).await;
            if reports.is_empty() {
                return;
            }
            let n = reports.len();
            match coord.propose(Command::ReportNodeTasks { reports }, false).await {
                Ok(_) => metrics::counter!("miroir_coordinator_node_task_reports_total").increment(n as u64),
                Err(e) => tracing::warn!(error = %e, "could not commit node task reports; retrying next round"),
            }
        })
    }
}
