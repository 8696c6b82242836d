//! The routing map: the part of the state gateways route by, sent to them on every change.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::ids::{GroupId, IndexUid, NodeId};
use crate::state::{ClusterState, Group, Index, Node, Placement};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoutingMap {
    pub version: u64,
    pub nodes: BTreeMap<NodeId, Node>,
    pub groups: BTreeMap<GroupId, Group>,
    pub indexes: BTreeMap<IndexUid, Index>,
    pub placements: BTreeMap<IndexUid, Vec<BTreeMap<GroupId, Placement>>>,
    /// Cluster-wide experimental features: gateways overlay them on what nodes report and honour
    /// those that change routing.
    #[serde(default)]
    pub experimental_features: serde_json::Map<String, serde_json::Value>,
    /// Webhooks by uuid (gateways serve `/webhooks` from the map; at most 20, so cheap to carry).
    #[serde(default)]
    pub webhooks: BTreeMap<String, crate::webhook::Webhook>,
    /// Dynamic search rules: gateways serve `/dynamic-search-rules` from the map and apply the
    /// rules to searches themselves (nodes never see them).
    #[serde(default)]
    pub search_rules: miroir_meili::search_rules::SearchRules,
    /// API keys by uid: gateways authorise every request locally against them.
    #[serde(default)]
    pub api_keys: BTreeMap<String, miroir_meili::keys::ApiKey>,
    #[serde(default)]
    pub default_api_keys_created: bool,
    /// Deleted indexes that nodes may still hold (see `ClusterState::deleting`): a gateway waits
    /// for them to be cleaned before it re-creates the index on those nodes.
    #[serde(default)]
    pub deleting: BTreeMap<IndexUid, BTreeSet<NodeId>>,
}

impl ClusterState {
    pub fn routing_map(&self) -> RoutingMap {
        RoutingMap {
            version: self.map_version,
            nodes: self.nodes.clone(),
            groups: self.groups.clone(),
            indexes: self.indexes.clone(),
            placements: self.placements.clone(),
            experimental_features: self.experimental_features.clone(),
            webhooks: self.webhooks.clone(),
            search_rules: self.search_rules.clone(),
            api_keys: self.api_keys.clone(),
            default_api_keys_created: self.default_api_keys_created,
            deleting: self.deleting.clone(),
        }
    }
}
