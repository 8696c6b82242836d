//! The leader's controllers that talk to Meilisearch nodes. Each is a [`LeaderTask`]: it reads the
//! replicated state, acts on nodes, and commits what it learned; a new leader starts them afresh.

mod features;
mod health;
mod index_cleaner;
mod migrate;
mod rebalancer;
mod settings;
mod task_tracker;
#[cfg(not(madsim))]
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use miroir_node_client::{NodeClient, NodeTransport};

pub use features::FeaturesReconciler;
pub use health::HealthProber;
pub use index_cleaner::{leftovers, IndexCleaner};
pub use migrate::{diff, phase_name, repair};
pub use rebalancer::Rebalancer;
pub use settings::{full_node_settings, SettingsReconciler};
pub use task_tracker::{pending, TaskTracker};

use crate::controller::TaskFactory;

/// The controllers every leader runs, reaching nodes through `transport`.
pub fn node_controllers(transport: Arc<dyn NodeTransport>) -> Vec<TaskFactory> {
    let nodes = NodeClient::new(transport);
    let (a, b, c, d) = (nodes.clone(), nodes.clone(), nodes.clone(), nodes);
    vec![
        Box::new(move || Box::new(TaskTracker::new(a.clone()))),
        Box::new(move || Box::new(SettingsReconciler::new(b.clone()))),
        Box::new(move || Box::new(FeaturesReconciler::new(c.clone()))),
        Box::new(move || Box::new(IndexCleaner::new(d.clone()))),
    ]
}

/// Node controllers over HTTP, authenticated with the nodes' master key.
#[cfg(not(madsim))]
pub fn http_controllers(master_key: Option<String>, timeout: Duration) -> Vec<TaskFactory> {
    let mut controllers = node_controllers(Arc::new(miroir_node_client::HttpTransport::new(master_key, timeout)));
    controllers.push(Box::new(|| Box::new(webhooks::WebhookNotifier::new())));
    controllers
}

/// How long one controller round may wait on a node before moving on.
pub const NODE_TIMEOUT: Duration = Duration::from_secs(10);

/// Health probing and migration settings (coordinator flags `--probe-*`, `--failed-grace-ms`,
/// `--max-migrations`, `--copy-*`; see docs/migrations.md).
#[derive(Debug, Clone)]
pub struct TopologyConfig {
    /// Consecutive failed probes before a node is Failed.
    pub probe_failures: u32,
    /// Consecutive good probes before a Failed node is Active again.
    pub probe_recoveries: u32,
    pub probe_timeout: Duration,
    /// How long a node stays Failed before its copies are rebuilt elsewhere.
    pub failed_grace: Duration,
    /// Migrations in flight at once, cluster-wide.
    pub max_migrations: usize,
    /// Documents per page copied.
    pub copy_batch: usize,
    /// Documents per second copied by one migration; 0 = unthrottled.
    pub copy_rate: u64,
}

impl Default for TopologyConfig {
    fn default() -> Self {
        TopologyConfig {
            probe_failures: 3,
            probe_recoveries: 2,
            probe_timeout: Duration::from_secs(2),
            failed_grace: Duration::from_secs(300),
            max_migrations: 4,
            copy_batch: 1000,
            copy_rate: 20_000,
        }
    }
}

/// The health prober and the rebalancer, over HTTP.
#[cfg(not(madsim))]
pub fn topology_controllers(master_key: Option<String>, cfg: TopologyConfig) -> Vec<TaskFactory> {
    topology_controllers_over(Arc::new(miroir_node_client::HttpTransport::new(master_key, NODE_TIMEOUT)), cfg)
}

/// The health prober and the rebalancer (which runs the migrations), reaching nodes through
/// `transport`: HTTP in production, a simulated network in a simulation.
pub fn topology_controllers_over(transport: Arc<dyn NodeTransport>, cfg: TopologyConfig) -> Vec<TaskFactory> {
    let nodes = NodeClient::new(transport);
    let (a, b, c1, c2) = (nodes.clone(), nodes, cfg.clone(), cfg);
    vec![
        Box::new(move || Box::new(HealthProber::new(a.clone(), c1.clone()))),
        Box::new(move || Box::new(Rebalancer::new(b.clone(), c2.clone()))),
    ]
}
