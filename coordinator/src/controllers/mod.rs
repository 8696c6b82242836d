//! The leader's controllers that talk to Meilisearch nodes. Each is a [`LeaderTask`]: it reads the
//! replicated state, acts on nodes, and commits what it learned; a new leader starts them afresh.

mod features;
mod index_cleaner;
mod settings;
mod task_tracker;
#[cfg(not(madsim))]
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use miroir_node_client::{NodeClient, NodeTransport};

pub use features::FeaturesReconciler;
pub use index_cleaner::{leftovers, IndexCleaner};
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
