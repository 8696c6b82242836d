//! The replicated cluster state: the whole Raft state machine.
//!
//! Every map is a `BTreeMap` so that serialising the same state always gives the same bytes:
//! peers can be compared byte for byte, and snapshots are deterministic.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{GatewayId, GroupId, IndexUid, MigrationId, Millis, NodeId, ShardId, TaskUid};
use crate::task::TaskLog;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterState {
    pub defaults: ClusterDefaults,
    pub nodes: BTreeMap<NodeId, Node>,
    pub groups: BTreeMap<GroupId, Group>,
    pub indexes: BTreeMap<IndexUid, Index>,
    /// `placements[index][shard][group]`: materialised, so migrations and stale copies are state.
    pub placements: BTreeMap<IndexUid, Vec<BTreeMap<GroupId, Placement>>>,
    pub migrations: BTreeMap<MigrationId, Migration>,
    pub next_migration_id: MigrationId,
    pub gateways: BTreeMap<GatewayId, Gateway>,
    pub tasks: TaskLog,
    /// Raft log index of the last command that changed what gateways route by.
    pub map_version: u64,
    /// Experimental features set cluster-wide; a flag never set keeps the node's default.
    #[serde(default)]
    pub experimental_features: serde_json::Map<String, serde_json::Value>,
    /// Webhooks by uuid.
    #[serde(default)]
    pub webhooks: BTreeMap<String, crate::webhook::Webhook>,
    /// Dynamic search rules (`/dynamic-search-rules`).
    #[serde(default)]
    pub search_rules: miroir_meili::search_rules::SearchRules,
    /// API keys by uid (no secret: values are derived from the master key by gateways).
    #[serde(default)]
    pub api_keys: BTreeMap<String, miroir_meili::keys::ApiKey>,
    /// Set once the default keys were created, so they are never created twice.
    #[serde(default)]
    pub default_api_keys_created: bool,
    /// Nodes that may still hold a copy of a deleted index (they held one when it was deleted).
    /// The leader's index cleaner deletes it there and then clears the entry; until then no new
    /// index of the same uid is placed on such a node, so old documents cannot come back.
    #[serde(default)]
    pub deleting: BTreeMap<IndexUid, BTreeSet<NodeId>>,
    /// Recent proposal ids and what they answered, so a retried proposal is applied once.
    #[serde(default)]
    pub proposals: crate::proposal::ProposalTable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterDefaults {
    /// Shard count S for new indexes.
    pub shards: u32,
    /// Copies of each shard inside each replica group.
    pub rf: u32,
    /// A write fails rather than leave a shard with fewer in-sync copies than this.
    pub min_in_sync: u32,
    /// Finished tasks kept in the log; the oldest finished ones are compacted beyond this.
    pub task_retention: u32,
}

impl Default for ClusterDefaults {
    fn default() -> Self {
        Self { shards: 8, rf: 1, min_in_sync: 1, task_retention: 100_000 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum NodeStatus {
    /// Known but not yet serving; owns no data.
    Joining,
    /// Healthy and eligible to own shards.
    Active,
    /// Being emptied: keeps serving what it owns, gets nothing new.
    Draining,
    /// Unreachable according to the health prober; reads avoid it.
    Failed,
    /// Gone; kept as a tombstone so the id is not silently reused with stale data.
    Removed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// Meilisearch base URL, e.g. `http://10.0.0.5:7700`.
    pub url: String,
    pub group: GroupId,
    pub status: NodeStatus,
    /// An operator drained the node (and did not make it Active since): it is Draining again
    /// when it recovers from Failed, rather than Active, so the drain is not forgotten.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub draining: bool,
}

impl Node {
    /// The status a Failed node returns to once it answers its probes again.
    pub fn recovered_status(&self) -> NodeStatus {
        if self.draining {
            NodeStatus::Draining
        } else {
            NodeStatus::Active
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum GroupStatus {
    /// Being filled from a healthy group; serves no reads yet.
    Initializing,
    Active,
    /// Being emptied before removal; serves no reads.
    Draining,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub status: GroupStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub primary_key: Option<String>,
    pub shards: u32,
    pub rf: u32,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// The settings object as the client last set it (only keys that differ from the defaults).
    pub settings: Value,
    /// Bumped by every settings change; nodes are reconciled up to it.
    pub settings_version: u64,
    /// The name rendezvous hashing places this index's shards by: the uid it was created under,
    /// kept through swaps and renames so they move no data. `None`: its uid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Owner {
    pub node: NodeId,
    /// An in-sync owner holds every acknowledged write; only in-sync owners serve reads.
    pub in_sync: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    pub owners: Vec<Owner>,
    /// Nodes receiving writes ahead of becoming owners (migration in DualWrite or later).
    pub incoming: Vec<NodeId>,
    pub migration: Option<MigrationId>,
}

impl Placement {
    pub fn in_sync_owners(&self) -> impl Iterator<Item = &NodeId> {
        self.owners.iter().filter(|o| o.in_sync).map(|o| &o.node)
    }

    /// Every node a write to this shard must reach.
    pub fn write_targets(&self) -> impl Iterator<Item = &NodeId> {
        self.in_sync_owners().chain(self.incoming.iter())
    }

    pub fn owner(&self, node: &str) -> Option<&Owner> {
        self.owners.iter().find(|o| o.node == node)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MigrationPhase {
    DualWrite,
    Copy,
    Verify,
    Cutover,
    Cleanup,
}

impl MigrationPhase {
    /// The only phase that may follow this one.
    pub fn next(self) -> Option<Self> {
        match self {
            Self::DualWrite => Some(Self::Copy),
            Self::Copy => Some(Self::Verify),
            Self::Verify => Some(Self::Cutover),
            Self::Cutover => Some(Self::Cleanup),
            Self::Cleanup => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Migration {
    pub index: IndexUid,
    pub shard: ShardId,
    pub group: GroupId,
    /// The owner being replaced; `None` when a copy is added (RF restore) or a stale one repaired.
    pub from: Option<NodeId>,
    pub to: NodeId,
    pub phase: MigrationPhase,
    /// The map version at which the current phase took effect (the gateway ack barrier target).
    pub phase_version: u64,
    pub started_at: Millis,
    pub phase_started_at: Millis,
    pub copied: u64,
    pub total: Option<u64>,
    /// Times a missed write sent the migration back to Copy (see `MarkStale`).
    #[serde(default)]
    pub resets: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gateway {
    pub address: String,
    pub registered_at: Millis,
    pub lease_expires_at: Millis,
    /// Highest map version this gateway has installed and acknowledged.
    pub acked_version: u64,
}

impl ClusterState {
    pub fn placement(&self, index: &str, shard: ShardId, group: &str) -> Option<&Placement> {
        self.placements.get(index)?.get(shard as usize)?.get(group)
    }

    /// Number of (index, shard, group) copies in which `node` is an owner or incoming.
    pub fn placements_of(&self, node: &str) -> usize {
        self.placements
            .values()
            .flatten()
            .flat_map(|groups| groups.values())
            .filter(|p| p.owner(node).is_some() || p.incoming.iter().any(|n| n == node))
            .count()
    }

    /// Nodes of `group` that new copies may be placed on.
    pub fn eligible_nodes<'a>(&'a self, group: &'a str) -> impl Iterator<Item = &'a NodeId> + 'a {
        self.nodes.iter().filter(move |(_, n)| n.group == group && n.status == NodeStatus::Active).map(|(id, _)| id)
    }

    /// True when every gateway whose lease is live at `now` has acknowledged `version`.
    /// The migration protocol waits on this before relying on a map change being seen.
    pub fn gateways_acked(&self, version: u64, now: Millis) -> bool {
        self.gateways.values().all(|g| g.lease_expires_at <= now || g.acked_version >= version)
    }

    pub fn task(&self, uid: TaskUid) -> Option<&crate::task::Task> {
        self.tasks.get(uid)
    }
}
