//! Why a command was refused. A refused command changes nothing.

use serde::{Deserialize, Serialize};

use crate::ids::{GatewayId, GroupId, IndexUid, MigrationId, NodeId, ShardId, TaskUid};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum CommandError {
    #[error("node `{0}` already exists")]
    NodeExists(NodeId),
    #[error("node `{0}` not found")]
    NodeNotFound(NodeId),
    #[error("node `{node}` still owns {placements} shard copies; drain it first")]
    NodeHasData { node: NodeId, placements: usize },
    #[error("replica group `{0}` already exists")]
    GroupExists(GroupId),
    #[error("replica group `{0}` not found")]
    GroupNotFound(GroupId),
    #[error(
        "replica group `{group}` still has {nodes} nodes: it is removed only while Draining, with another group Active"
    )]
    GroupNotEmpty { group: GroupId, nodes: usize },
    #[error("index `{0}` already exists")]
    IndexExists(IndexUid),
    #[error("index `{0}` not found")]
    IndexNotFound(IndexUid),
    /// A swap Meilisearch would refuse, with its error code and message.
    #[error("{message}")]
    SwapRefused { code: String, message: String },
    #[error("index `{0}` has a shard migration in flight")]
    IndexMigrating(IndexUid),
    #[error("index `{index}` already has primary key `{current}`")]
    PrimaryKeyAlreadySet { index: IndexUid, current: String },
    #[error("invalid index uid `{0}`: use only A-Z a-z 0-9 - _, at most 400 bytes")]
    InvalidIndexUid(String),
    #[error("invalid {what}: {reason}")]
    InvalidArgument { what: String, reason: String },
    #[error("replica group `{group}` has {eligible} active nodes, fewer than replication factor {rf}")]
    NotEnoughNodes { group: GroupId, eligible: usize, rf: u32 },
    #[error("no replica group has active nodes")]
    NoActiveGroup,
    #[error("shard {shard} of `{index}` has no placement in group `{group}`")]
    PlacementNotFound { index: IndexUid, shard: ShardId, group: GroupId },
    #[error("node `{node}` is not an owner of shard {shard} of `{index}` in group `{group}`")]
    NotAnOwner { index: IndexUid, shard: ShardId, group: GroupId, node: NodeId },
    #[error("marking `{node}` stale would leave shard {shard} of `{index}` in group `{group}` with {left} in-sync copies, fewer than {min}")]
    WouldLoseQuorum { index: IndexUid, shard: ShardId, group: GroupId, node: NodeId, left: usize, min: u32 },
    #[error("shard {shard} of `{index}` in group `{group}` already has a migration in flight")]
    MigrationInFlight { index: IndexUid, shard: ShardId, group: GroupId },
    #[error("migration {0} not found")]
    MigrationNotFound(MigrationId),
    #[error("migration {id} is in phase {from}; it cannot move to {to}")]
    InvalidPhaseTransition { id: MigrationId, from: String, to: String },
    #[error("gateway `{0}` not registered")]
    GatewayNotFound(GatewayId),
    #[error("task {0} not found")]
    TaskNotFound(TaskUid),
    #[error("webhook `{0}` not found")]
    WebhookNotFound(String),
    #[error("at most {0} webhooks can be defined")]
    TooManyWebhooks(usize),
    #[error("`uid` field value `{0}` is already an existing API key.")]
    ApiKeyExists(String),
    #[error("API key `{0}` not found.")]
    ApiKeyNotFound(String),
    #[error("cannot create index-scoped API key with global action `\"{0}\"`\n  - Hint: remove action `\"{0}\"` from the action list, or remove `indexes` to make the key global")]
    IndexScopedApiKeyWithGlobalAction(String),
    #[error("index `{uid}` was deleted but nodes {nodes:?} may still hold it; it cannot be placed again until the index cleaner deleted it there")]
    IndexStillOnNodes { uid: IndexUid, nodes: Vec<NodeId> },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Refusals travel from the leader to proposers as JSON: every variant must round-trip.
    #[test]
    fn errors_round_trip_through_json() {
        let errors = [
            CommandError::InvalidArgument { what: "rf".into(), reason: "0".into() },
            CommandError::WouldLoseQuorum {
                index: "i".into(),
                shard: 1,
                group: "g".into(),
                node: "n".into(),
                left: 0,
                min: 1,
            },
            CommandError::IndexExists("movies".into()),
        ];
        for e in errors {
            let bytes = serde_json::to_vec(&e).unwrap();
            let back: CommandError = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(back, e);
        }
    }
}
