//! Experimental-features reconciler: every node carries the cluster's experimental features,
//! including nodes that were down when they were set and nodes that join later.

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use miroir::ids::NodeId;
use miroir::state::NodeStatus;
use miroir_node_client::{Method, NodeClient, NodeRequest};
use serde_json::{Map, Value};

use crate::controller::LeaderTask;
use crate::node::Coordinator;

pub struct FeaturesReconciler {
    nodes: NodeClient,
    /// What this leader last applied to each node. Memory only: a new leader re-applies once.
    applied: BTreeMap<NodeId, Map<String, Value>>,
}

impl FeaturesReconciler {
    pub fn new(nodes: NodeClient) -> Self {
        FeaturesReconciler { nodes, applied: BTreeMap::new() }
    }
}

impl LeaderTask for FeaturesReconciler {
    fn name(&self) -> &'static str {
        "features-reconciler"
    }

    fn tick<'a>(&'a mut self, coord: &'a Coordinator) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let (features, nodes) = coord.state().read(|s| {
                let live =
                    s.nodes.iter().filter(|(_, n)| n.status != NodeStatus::Removed && n.status != NodeStatus::Failed);
                (s.experimental_features.clone(), live.map(|(id, n)| (id.clone(), n.url.clone())).collect::<Vec<_>>())
            });
            self.applied.retain(|id, _| nodes.iter().any(|(n, _)| n == id));
            if features.is_empty() {
                return;
            }
            for (id, url) in nodes {
                if self.applied.get(&id) == Some(&features) {
                    continue;
                }
                let req = NodeRequest::json(Method::Patch, "/experimental-features", &features);
                match self.nodes.json(&url, req).await {
                    Ok(_) => {
                        self.applied.insert(id, features.clone());
                    }
                    Err(e) => tracing::debug!(node = %id, error = %e, "experimental features not applied; will retry"),
                }
            }
        })
    }
}
