//! Rebalancer (leader controller): keeps one worker per migration in the state (resuming those a
//! previous leader started) and starts new ones from [`miroir::rebalance::plan`], at most
//! `max_migrations` at a time. Also publishes the placement health gauges.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::future::BoxFuture;
use miroir::ids::{MigrationId, NodeId};
use miroir::rebalance::{health_counts, plan};
use miroir::state::NodeStatus;
use miroir::Response;
use miroir_node_client::NodeClient;

use super::{migrate, TopologyConfig};
use crate::controller::LeaderTask;
use crate::node::{now_ms, Coordinator};

pub struct Rebalancer {
    nodes: NodeClient,
    cfg: TopologyConfig,
    /// Migrations with a live worker; a worker removes its id when it returns.
    running: Arc<Mutex<BTreeSet<MigrationId>>>,
    workers: Vec<tokio::task::JoinHandle<()>>,
    /// When this leader first saw each node Failed. Memory only: a new leader restarts the grace
    /// period, which only delays the restoration of RF.
    failed_since: BTreeMap<NodeId, Instant>,
}

impl Rebalancer {
    pub fn new(nodes: NodeClient, cfg: TopologyConfig) -> Self {
        Rebalancer { nodes, cfg, running: Arc::default(), workers: vec![], failed_since: BTreeMap::new() }
    }

    fn spawn(&mut self, coord: &Coordinator, id: MigrationId) {
        if !self.running.lock().unwrap_or_else(|p| p.into_inner()).insert(id) {
            return;
        }
        let (coord, nodes, cfg, running) = (coord.clone(), self.nodes.clone(), self.cfg.clone(), self.running.clone());
        self.workers.push(tokio::spawn(async move {
            migrate::drive(coord, nodes, cfg, id).await;
            running.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
        }));
    }
}

/// Workers die with the leadership that started them: the next leader resumes from the state.
impl Drop for Rebalancer {
    fn drop(&mut self) {
        for w in &self.workers {
            w.abort();
        }
    }
}

impl LeaderTask for Rebalancer {
    fn name(&self) -> &'static str {
        "rebalancer"
    }

    fn tick<'a>(&'a mut self, coord: &'a Coordinator) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.workers.retain(|w| !w.is_finished());
            let (in_flight, failed, below_rf, stale) = coord.state().read(|s| {
                let failed: Vec<NodeId> =
                    s.nodes.iter().filter(|(_, n)| n.status == NodeStatus::Failed).map(|(id, _)| id.clone()).collect();
                let (below_rf, stale) = health_counts(s);
                (s.migrations.keys().copied().collect::<Vec<_>>(), failed, below_rf, stale)
            });
            metrics::gauge!("miroir_coordinator_migrations_in_flight").set(in_flight.len() as f64);
            metrics::gauge!("miroir_coordinator_shards_below_rf").set(below_rf as f64);
            metrics::gauge!("miroir_coordinator_stale_copies").set(stale as f64);
            for id in &in_flight {
                self.spawn(coord, *id);
            }
            self.failed_since.retain(|n, _| failed.contains(n));
            for n in failed {
                self.failed_since.entry(n).or_insert_with(Instant::now);
            }
            let past_grace: BTreeSet<NodeId> = self
                .failed_since
                .iter()
                .filter(|(_, t)| t.elapsed() >= self.cfg.failed_grace)
                .map(|(n, _)| n.clone())
                .collect();
            let free = self.cfg.max_migrations.saturating_sub(in_flight.len());
            let moves = coord.state().read(|s| plan(s, &past_grace, free));
            for mv in moves {
                match coord.propose(mv.command(now_ms()), false).await {
                    Ok(p) => match p.outcome {
                        crate::Outcome::Response(r) => {
                            if let Ok(Response::Migration(id)) = serde_json::from_slice(&r) {
                                tracing::info!(migration = id, index = %mv.index, shard = mv.shard, group = %mv.group, from = ?mv.from, to = %mv.to, "migration started");
                                metrics::counter!("miroir_coordinator_migrations_started_total").increment(1);
                                self.spawn(coord, id);
                            }
                        }
                        crate::Outcome::Rejected(e) => {
                            tracing::debug!(refused = %String::from_utf8_lossy(&e), "migration not started")
                        }
                    },
                    Err(e) => {
                        tracing::warn!(error = %e, "could not start a migration");
                        return;
                    }
                }
            }
        })
    }
}
