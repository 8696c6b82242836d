//! Health prober (leader controller): probes every node's `/health` each round. A node that
//! fails `failures` probes in a row is committed Failed (`NodeFailed`: reads avoid it and its
//! copies become stale); a Failed node that answers `recoveries` probes in a row is Active again
//! (its stale copies are then repaired by the rebalancer). Counters live in memory: a new leader
//! starts counting afresh, which only delays a status change by a few rounds.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::{join_all, BoxFuture};
use miroir::ids::NodeId;
use miroir::state::NodeStatus;
use miroir::Command;
use miroir_node_client::NodeClient;

use super::TopologyConfig;
use crate::controller::LeaderTask;
use crate::node::Coordinator;

#[derive(Default, Clone, Copy)]
struct Streak {
    failures: u32,
    successes: u32,
}

pub struct HealthProber {
    nodes: NodeClient,
    cfg: TopologyConfig,
    streaks: BTreeMap<NodeId, Streak>,
}

/// What one round decided for one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Failed,
    Recovered,
}

impl HealthProber {
    pub fn new(nodes: NodeClient, cfg: TopologyConfig) -> Self {
        HealthProber { nodes, cfg, streaks: BTreeMap::new() }
    }

    /// Records one probe result and says whether the node's status must change.
    pub fn record(&mut self, node: &str, status: NodeStatus, healthy: bool) -> Option<Verdict> {
        let s = self.streaks.entry(node.to_string()).or_default();
        if healthy {
            s.successes += 1;
            s.failures = 0;
        } else {
            s.failures += 1;
            s.successes = 0;
        }
        match status {
            NodeStatus::Failed if s.successes >= self.cfg.probe_recoveries => Some(Verdict::Recovered),
            NodeStatus::Active | NodeStatus::Draining | NodeStatus::Joining
                if s.failures >= self.cfg.probe_failures =>
            {
                Some(Verdict::Failed)
            }
            _ => None,
        }
    }

    async fn probe(&self, url: &str, timeout: Duration) -> bool {
        matches!(tokio::time::timeout(timeout, self.nodes.health(url)).await, Ok(Ok(())))
    }
}

impl LeaderTask for HealthProber {
    fn name(&self) -> &'static str {
        "health-prober"
    }

    fn tick<'a>(&'a mut self, coord: &'a Coordinator) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let nodes: Vec<(NodeId, String, NodeStatus, NodeStatus)> = coord.state().read(|s| {
                s.nodes
                    .iter()
                    .filter(|(_, n)| n.status != NodeStatus::Removed)
                    .map(|(id, n)| (id.clone(), n.url.clone(), n.status, n.recovered_status()))
                    .collect()
            });
            self.streaks.retain(|id, _| nodes.iter().any(|(n, ..)| n == id));
            let timeout = self.cfg.probe_timeout;
            let results = join_all(nodes.iter().map(|(_, url, ..)| self.probe(url, timeout))).await;
            for ((id, _, status, recovered), healthy) in nodes.into_iter().zip(results) {
                let cmd = match self.record(&id, status, healthy) {
                    Some(Verdict::Failed) => {
                        tracing::warn!(node = %id, "node failed its health probes: marking it Failed");
                        Command::NodeFailed { id: id.clone() }
                    }
                    Some(Verdict::Recovered) => {
                        tracing::info!(node = %id, status = ?recovered, "node answers its health probes again");
                        Command::SetNodeStatus { id: id.clone(), status: recovered }
                    }
                    None => continue,
                };
                match coord.propose(cmd, false).await {
                    Ok(_) => metrics::counter!("miroir_coordinator_node_status_changes_total").increment(1),
                    Err(e) => tracing::warn!(node = %id, error = %e, "could not commit a node status; retrying"),
                }
            }
            let failed = coord.state().read(|s| s.nodes.values().filter(|n| n.status == NodeStatus::Failed).count());
            metrics::gauge!("miroir_coordinator_nodes_failed").set(failed as f64);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    struct Never;
    impl miroir_node_client::NodeTransport for Never {
        fn send<'a>(
            &'a self,
            url: &'a str,
            _req: miroir_node_client::NodeRequest,
        ) -> BoxFuture<'a, Result<miroir_node_client::NodeResponse, miroir_node_client::TransportError>> {
            Box::pin(async move { Err(miroir_node_client::TransportError { url: url.into(), reason: "down".into() }) })
        }
    }

    #[test]
    fn thresholds_need_consecutive_results() {
        let cfg = TopologyConfig { probe_failures: 3, probe_recoveries: 2, ..TopologyConfig::default() };
        let mut p = HealthProber::new(NodeClient::new(Arc::new(Never)), cfg);
        assert_eq!(p.record("a", NodeStatus::Active, false), None);
        assert_eq!(p.record("a", NodeStatus::Active, false), None);
        assert_eq!(p.record("a", NodeStatus::Active, true), None, "a success resets the failure streak");
        assert_eq!(p.record("a", NodeStatus::Active, false), None);
        assert_eq!(p.record("a", NodeStatus::Active, false), None);
        assert_eq!(p.record("a", NodeStatus::Active, false), Some(Verdict::Failed));
        assert_eq!(p.record("a", NodeStatus::Failed, true), None);
        assert_eq!(p.record("a", NodeStatus::Failed, true), Some(Verdict::Recovered));
        assert_eq!(p.record("b", NodeStatus::Failed, false), None, "failed stays failed");
        assert_eq!(p.record("c", NodeStatus::Draining, false), None);
    }
}
