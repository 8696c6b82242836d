//! Settings reconciler (leader controller): every node holding a copy of an index has the index,
//! with the current settings version. Nodes that missed a broadcast (down, partitioned, added
//! later) are brought up to date without any client action.

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use miroir::ids::{IndexUid, NodeId};
use miroir::settings::node_settings;
use miroir::ClusterState;
use miroir_meili::settings::settings_keys;
use miroir_node_client::{Method, NodeClient, NodeError, NodeRequest};
use serde_json::{json, Map, Value};

use crate::controller::LeaderTask;
use crate::node::Coordinator;

/// What the leader has applied: (node, index) → settings version. Kept in memory only: a new
/// leader starts empty and re-applies once, which is idempotent.
pub struct SettingsReconciler {
    nodes: NodeClient,
    applied: BTreeMap<(NodeId, IndexUid), u64>,
}

/// The whole settings object a node must hold: every known setting, `null` (the default) where
/// the client set nothing, so a reset on the cluster is a reset on the node.
pub fn full_node_settings(stored: &Value) -> Value {
    let mut full = Map::new();
    for key in settings_keys() {
        full.insert(key.to_string(), stored.get(key).cloned().unwrap_or(Value::Null));
    }
    node_settings(&Value::Object(full))
}

/// One copy a node should hold: node, its URL, index, primary key, settings and their version.
type Copy = (NodeId, String, IndexUid, Option<String>, Value, u64);

impl SettingsReconciler {
    pub fn new(nodes: NodeClient) -> Self {
        SettingsReconciler { nodes, applied: BTreeMap::new() }
    }

    /// The copies whose settings this leader has not yet applied at their current version.
    fn outdated(&mut self, state: &ClusterState) -> Vec<Copy> {
        let mut out = Vec::new();
        self.applied.retain(|(n, i), _| state.nodes.contains_key(n) && state.indexes.contains_key(i));
        for (uid, idx) in &state.indexes {
            let holders: std::collections::BTreeSet<&NodeId> = state
                .placements
                .get(uid)
                .into_iter()
                .flatten()
                .flat_map(|g| g.values())
                .flat_map(|p| p.owners.iter().map(|o| &o.node).chain(&p.incoming))
                .collect();
            for node in holders {
                let key = (node.clone(), uid.clone());
                if self.applied.get(&key) == Some(&idx.settings_version) {
                    continue;
                }
                let Some(url) = state.nodes.get(node).map(|n| n.url.clone()) else { continue };
                out.push((
                    node.clone(),
                    url,
                    uid.clone(),
                    idx.primary_key.clone(),
                    idx.settings.clone(),
                    idx.settings_version,
                ));
            }
        }
        out
    }

    /// One round over every outdated copy; returns how many nodes were updated.
    pub async fn round(&mut self, state: &ClusterState) -> usize {
        let work = self.outdated(state);
        self.reconcile(work).await
    }

    async fn reconcile(&mut self, work: Vec<Copy>) -> usize {
        let mut updated = 0;
        for (node, url, uid, primary_key, settings, version) in work {
            match self.apply(&url, &uid, primary_key.as_deref(), &settings).await {
                Ok(()) => {
                    self.applied.insert((node, uid), version);
                    updated += 1;
                }
                Err(e) => tracing::debug!(%node, index = %uid, error = %e, "settings reconcile failed; will retry"),
            }
        }
        updated
    }

    async fn apply(&self, url: &str, uid: &str, primary_key: Option<&str>, settings: &Value) -> Result<(), NodeError> {
        // The index may be missing on a node that was down at creation: create it (an existing
        // index makes this task fail on the node, harmlessly).
        let create = NodeRequest::json(Method::Post, "/indexes", &json!({"uid": uid, "primaryKey": primary_key}));
        self.nodes.enqueue(url, create).await?;
        let patch = NodeRequest::json(Method::Patch, format!("/indexes/{uid}/settings"), &full_node_settings(settings));
        self.nodes.enqueue(url, patch).await.map(drop)
    }
}

impl LeaderTask for SettingsReconciler {
    fn name(&self) -> &'static str {
        "settings-reconciler"
    }

    fn tick<'a>(&'a mut self, coord: &'a Coordinator) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let work = coord.state().read(|s| self.outdated(s));
            if !work.is_empty() {
                let n = self.reconcile(work).await;
                metrics::counter!("miroir_coordinator_settings_reconciled_total").increment(n as u64);
            }
        })
    }
}
