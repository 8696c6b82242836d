//! Every change to the cluster state is one of these, applied through Raft.
//! Time travels inside commands (`at`) because `apply` must not read a clock.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{GatewayId, GroupId, IndexUid, MigrationId, Millis, NodeId, ShardId, TaskUid};
use crate::state::{GroupStatus, MigrationPhase, NodeStatus};
use crate::task::{NewTask, NodeTaskReport, TaskStatus};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Command {
    /// Cluster defaults for new indexes; `None` keeps the current value.
    SetDefaults {
        shards: Option<u32>,
        rf: Option<u32>,
        min_in_sync: Option<u32>,
        task_retention: Option<u32>,
    },

    AddGroup {
        id: GroupId,
    },
    SetGroupStatus {
        id: GroupId,
        status: GroupStatus,
    },
    RemoveGroup {
        id: GroupId,
    },

    /// A new node is Active at once: the rebalancer then moves to it the shards it should own.
    AddNode {
        id: NodeId,
        url: String,
        group: GroupId,
    },
    SetNodeStatus {
        id: NodeId,
        status: NodeStatus,
    },
    /// The health prober lost the node: it is Failed, and each of its in-sync copies is marked
    /// stale where another in-sync copy remains (a node that comes back may have lost its data,
    /// so it serves reads again only once repaired).
    NodeFailed {
        id: NodeId,
    },
    /// Tombstones a node that owns nothing any more.
    RemoveNode {
        id: NodeId,
    },

    /// Creates the index and places every shard in every group (owners all in sync: it is empty).
    CreateIndex {
        uid: IndexUid,
        primary_key: Option<String>,
        shards: Option<u32>,
        rf: Option<u32>,
        at: Millis,
    },
    /// Removes the index from the cluster; every node that held a copy is recorded in
    /// `deleting` until the index cleaner has deleted it there.
    DeleteIndex {
        uid: IndexUid,
    },
    /// `node` no longer holds the deleted index `uid` (the index cleaner checked).
    IndexDeletedOn {
        uid: IndexUid,
        node: NodeId,
    },
    /// `POST /swap-indexes` and renames: exchanges (or, with `rename`, moves) everything kept
    /// under the index uids, in one map version.
    SwapIndexes {
        swaps: Vec<crate::swap::IndexSwap>,
    },
    /// Fixes the primary key of an index that has none yet.
    SetPrimaryKey {
        uid: IndexUid,
        primary_key: String,
        at: Millis,
    },
    /// Meilisearch's PATCH semantics: keys replace, `null` resets to the default.
    UpdateSettings {
        uid: IndexUid,
        patch: Value,
        at: Millis,
    },
    ResetSettings {
        uid: IndexUid,
        at: Millis,
    },

    /// A write target missed a write. An in-sync owner stops serving reads until repaired. If the
    /// shard is being migrated (Copy or Verify), the migration goes back to Copy, so its Cutover
    /// waits for a Verify that started after the miss: a dual-write lost on the incoming node
    /// (or on the copy source) is never cut over. A node holding no copy here is left alone.
    MarkStale {
        index: IndexUid,
        shard: ShardId,
        group: GroupId,
        node: NodeId,
    },
    MarkInSync {
        index: IndexUid,
        shard: ShardId,
        group: GroupId,
        node: NodeId,
    },

    /// Adds `to` as incoming owner (DualWrite). `from` is the owner it will replace, if any.
    StartMigration {
        index: IndexUid,
        shard: ShardId,
        group: GroupId,
        from: Option<NodeId>,
        to: NodeId,
        at: Millis,
    },
    /// Moves a migration to the next phase; Cutover swaps the owners.
    AdvanceMigration {
        id: MigrationId,
        phase: MigrationPhase,
        at: Millis,
    },
    MigrationProgress {
        id: MigrationId,
        copied: u64,
        total: Option<u64>,
    },
    /// Ends a migration after Cleanup.
    FinishMigration {
        id: MigrationId,
    },
    /// Drops a migration before Cutover; the placement is as it was.
    AbortMigration {
        id: MigrationId,
    },

    RegisterGateway {
        id: GatewayId,
        address: String,
        at: Millis,
        lease_ms: u64,
    },
    /// Renews the lease and, with `acked_version`, acknowledges an installed map version.
    GatewayHeartbeat {
        id: GatewayId,
        at: Millis,
        lease_ms: u64,
        acked_version: Option<u64>,
    },
    DeregisterGateway {
        id: GatewayId,
    },

    /// Group commit: many gateways' writes registered by one Raft entry.
    RegisterTasks {
        tasks: Vec<NewTask>,
        at: Millis,
    },
    ReportNodeTasks {
        reports: Vec<NodeTaskReport>,
    },
    CancelTasks {
        uids: Vec<TaskUid>,
        canceled_by: TaskUid,
        at: Millis,
    },
    /// Finishes a task whose work the coordinator itself did (task cancelation or deletion, say).
    FinishTask {
        uid: TaskUid,
        status: TaskStatus,
        error: Option<Value>,
        details: Option<Value>,
        at: Millis,
    },
    DeleteTasks {
        uids: Vec<TaskUid>,
    },

    /// Cluster-wide experimental features (`PATCH /experimental-features`): the given flags are
    /// set, the others keep their value; every node is brought to the result.
    SetExperimentalFeatures {
        features: serde_json::Map<String, Value>,
    },

    /// Creates (`create`) or replaces a webhook; the gateway validated it.
    PutWebhook {
        uuid: String,
        webhook: crate::webhook::Webhook,
        create: bool,
    },
    DeleteWebhook {
        uuid: String,
    },
    /// `PATCH /dynamic-search-rules/{uid}`: creates the rule or changes the given fields; the
    /// gateway validated the update.
    PutSearchRule {
        uid: String,
        update: Box<miroir_meili::search_rules::RuleUpdate>,
        at: Millis,
    },
    /// Deleting a rule that does not exist succeeds, as in Meilisearch.
    DeleteSearchRule {
        uid: String,
    },
    ClearSearchRules,
    /// The leader sent these finished tasks to the webhooks (or gave up on them): not again.
    MarkTasksNotified {
        uids: Vec<TaskUid>,
    },

    /// Creates an API key (`POST /keys`); the gateway parsed it, `apply` validates it again.
    CreateApiKey {
        key: miroir_meili::keys::ApiKey,
    },
    /// `PATCH /keys/{key}`: only the name and description change.
    UpdateApiKey {
        uid: String,
        name: miroir_meili::keys::FieldChange,
        description: miroir_meili::keys::FieldChange,
        at: Millis,
    },
    DeleteApiKey {
        uid: String,
    },
    /// Creates Meilisearch's default keys with these uids, once in the cluster's life: any later
    /// proposal (another gateway racing, a restart) is a no-op.
    CreateDefaultApiKeys {
        uids: Vec<String>,
        at: Millis,
    },
}

/// What a successful command answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "camelCase")]
pub enum Response {
    #[default]
    Done,
    /// Uids assigned by `RegisterTasks`, in order.
    Tasks(Vec<TaskUid>),
    Migration(MigrationId),
    /// A gateway's lease end after `RegisterGateway` / `GatewayHeartbeat` (ms, the leader's clock),
    /// and the map version at that moment: the gateway writes only once it has installed it.
    #[serde(rename_all = "camelCase")]
    Lease {
        expires_at: Millis,
        map_version: u64,
    },
}

/// Commands appear in Raft's logs; their JSON, cut short, is what an operator needs there.
impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const MAX: usize = 200;
        let json = serde_json::to_string(self).unwrap_or_else(|e| format!("<unserialisable command: {e}>"));
        match json.char_indices().nth(MAX) {
            Some((cut, _)) => write!(f, "{}…", &json[..cut]),
            None => f.write_str(&json),
        }
    }
}
