//! Index cleaner (leader controller): a deleted index is deleted on every node that held a copy,
//! including nodes that were down or partitioned when the client deleted it. Until a node is
//! known clean it stays in the state's `deleting` set, and `apply` places no new index of the
//! same uid on it, so re-creating the index can never bring old documents back.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use futures::future::BoxFuture;
use miroir::ids::{IndexUid, NodeId};
use miroir::state::NodeStatus;
use miroir::{ClusterState, Command};
use miroir_node_client::{NodeClient, NodeError, NodeRequest};

use crate::controller::LeaderTask;
use crate::node::Coordinator;

/// A deletion already enqueued on a node is given this long before it is enqueued again.
const RESEND_AFTER: Duration = Duration::from_secs(10);

/// A node that may still hold a deleted index: index, node, the node's URL.
pub type Leftover = (IndexUid, NodeId, String);

/// Every (deleted index, node) pair to check, skipping nodes known to be unreachable.
pub fn leftovers(state: &ClusterState) -> Vec<Leftover> {
    let mut out = Vec::new();
    for (uid, nodes) in &state.deleting {
        for id in nodes {
            let Some(node) = state.nodes.get(id) else { continue };
            if matches!(node.status, NodeStatus::Failed | NodeStatus::Removed) {
                continue;
            }
            out.push((uid.clone(), id.clone(), node.url.clone()));
        }
    }
    out
}

pub struct IndexCleaner {
    nodes: NodeClient,
    /// When this leader last enqueued each deletion (memory only: a new leader sends once more,
    /// which is harmless: a second deletion fails on the node with `index_not_found`).
    sent: BTreeMap<(IndexUid, NodeId), Instant>,
}

impl IndexCleaner {
    pub fn new(nodes: NodeClient) -> Self {
        IndexCleaner { nodes, sent: BTreeMap::new() }
    }

    /// One round: asks each node whether it still has the index, enqueues its deletion where it
    /// does, and returns the commands recording the nodes found clean.
    pub async fn round(&mut self, work: Vec<Leftover>) -> Vec<Command> {
        self.sent.retain(|k, _| work.iter().any(|(i, n, _)| (i, n) == (&k.0, &k.1)));
        let mut clean = Vec::new();
        for (uid, node, url) in work {
            match self.nodes.json(&url, NodeRequest::get(format!("/indexes/{uid}"))).await {
                Err(NodeError::Status { status: 404, .. }) => {
                    clean.push(Command::IndexDeletedOn { uid, node });
                }
                Ok(_) => {
                    let key = (uid.clone(), node.clone());
                    if self.sent.get(&key).is_some_and(|at| at.elapsed() < RESEND_AFTER) {
                        continue;
                    }
                    match self.nodes.enqueue(&url, NodeRequest::delete(format!("/indexes/{uid}"))).await {
                        Ok(_) => {
                            tracing::info!(%node, index = %uid, "deleting a copy of a deleted index left on a node");
                            self.sent.insert(key, Instant::now());
                        }
                        Err(e) => tracing::debug!(%node, index = %uid, error = %e, "index deletion not enqueued"),
                    }
                }
                Err(e) => tracing::debug!(%node, index = %uid, error = %e, "node not reachable for index cleanup"),
            }
        }
        clean
    }
}

impl LeaderTask for IndexCleaner {
    fn name(&self) -> &'static str {
        "index-cleaner"
    }

    fn tick<'a>(&'a mut self, coord: &'a Coordinator) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let work = coord.state().read(leftovers);
            if work.is_empty() {
                return;
            }
            for cmd in self.round(work).await {
                if let Err(e) = coord.propose(cmd, false).await {
                    tracing::warn!(error = %e, "could not record a cleaned node; retrying next round");
                    return;
                }
                metrics::counter!("miroir_coordinator_indexes_cleaned_total").increment(1);
            }
        })
    }
}
