//! The link to the coordinators. What the gateway needs from them is a trait, `Cluster`: the gRPC
//! client (`grpc`) implements it in production, an in-process state machine (`local`) in tests;
//! `sync` follows the committed map and keeps the gateway's lease.

pub mod grpc;
pub mod local;
pub mod sync;

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use miroir::task::{Task, TaskFilter, TaskPage};
use miroir::{ClusterState, Command, CommandError, Response, RoutingMap};

use crate::error::{AppError, Code};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClusterError {
    /// The command was committed or checked and refused by `apply`.
    #[error(transparent)]
    Rejected(#[from] CommandError),
    /// No coordinator could commit it (no quorum, no leader, unreachable, timeout).
    #[error("coordinator unavailable: {0}")]
    Unavailable(String),
}

impl From<ClusterError> for AppError {
    fn from(e: ClusterError) -> Self {
        match e {
            ClusterError::Rejected(CommandError::IndexNotFound(uid)) => AppError::index_not_found(&uid),
            ClusterError::Rejected(CommandError::IndexExists(uid)) => {
                AppError::new(Code::INDEX_ALREADY_EXISTS, format!("Index `{uid}` already exists."))
            }
            ClusterError::Rejected(CommandError::InvalidIndexUid(uid)) => AppError::invalid_index_uid(&uid),
            ClusterError::Rejected(CommandError::PrimaryKeyAlreadySet { index, current }) => AppError::new(
                Code::INDEX_PRIMARY_KEY_ALREADY_EXISTS,
                format!("Index `{index}`: Index already has a primary key: `{current}`."),
            ),
            ClusterError::Rejected(e @ CommandError::WouldLoseQuorum { .. }) => {
                AppError::new(Code::MIROIR_NO_QUORUM, format!("The write cannot be acknowledged: {e}."))
            }
            ClusterError::Rejected(e @ (CommandError::NotEnoughNodes { .. } | CommandError::NoActiveGroup)) => {
                AppError::new(Code::MIROIR_NO_QUORUM, format!("The cluster cannot place this index: {e}."))
            }
            ClusterError::Rejected(CommandError::WebhookNotFound(uuid)) => {
                AppError::new(Code::WEBHOOK_NOT_FOUND, format!("Webhook `{uuid}` not found."))
            }
            ClusterError::Rejected(CommandError::TooManyWebhooks(_)) => AppError::new(
                Code::INVALID_WEBHOOKS,
                "Defining too many webhooks would crush the server. Please limit the number of webhooks to 20. You may use a third-party proxy server to dispatch events to more than 20 endpoints.",
            ),
            ClusterError::Rejected(e @ CommandError::ApiKeyExists(_)) => {
                AppError::new(Code::API_KEY_ALREADY_EXISTS, e.to_string())
            }
            ClusterError::Rejected(e @ CommandError::ApiKeyNotFound(_)) => {
                AppError::new(Code::API_KEY_NOT_FOUND, e.to_string())
            }
            ClusterError::Rejected(e @ CommandError::IndexScopedApiKeyWithGlobalAction(_)) => {
                AppError::new(Code::INDEX_SCOPED_API_KEY_WITH_GLOBAL_ACTION, e.to_string())
            }
            ClusterError::Rejected(e @ (CommandError::NodeNotFound(_) | CommandError::GroupNotFound(_))) => {
                AppError::new(Code::MIROIR_NOT_FOUND, e.to_string())
            }
            ClusterError::Rejected(e @ (CommandError::NodeExists(_) | CommandError::GroupExists(_))) => {
                AppError::new(Code::MIROIR_ALREADY_EXISTS, e.to_string())
            }
            ClusterError::Rejected(e @ (CommandError::NodeHasData { .. } | CommandError::GroupNotEmpty { .. })) => {
                AppError::new(Code::MIROIR_TOPOLOGY_REFUSED, e.to_string())
            }
            ClusterError::Rejected(e) => AppError::new(Code::BAD_REQUEST, e.to_string()),
            ClusterError::Unavailable(m) => {
                AppError::new(Code::MIROIR_UNAVAILABLE, format!("The Miroir coordinator is unavailable: {m}"))
            }
        }
    }
}

/// A gateway lease as the coordinator committed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// Lease end, ms since the Unix epoch by the coordinator leader's clock. Informational: the
    /// gateway fences itself by its own monotonic clock, from when it sent the request.
    pub expires_at: u64,
    pub log_index: u64,
    /// The cluster's map version when the lease was granted: writes wait until it is installed.
    pub map_version: u64,
}

pub trait Cluster: Send + Sync + 'static {
    /// Commits `cmd` through Raft (forwarded to the leader) and returns what `apply` answered,
    /// with the log index it was committed at (the map version, if it changed the map).
    fn propose(&self, cmd: Command) -> BoxFuture<'_, Result<(Response, u64), ClusterError>>;

    /// The routing map now, then every committed change, from `from_version` on.
    fn watch(&self, from_version: u64) -> BoxStream<'static, Result<Arc<RoutingMap>, ClusterError>>;

    /// Registers this gateway with a lease of `lease_ms`, timed by the coordinator leader's clock.
    fn register(&self, gateway: &str, address: &str, lease_ms: u64) -> BoxFuture<'_, Result<Lease, ClusterError>>;

    /// Renews the lease, acknowledging the installed map version `acked` when given. An unknown
    /// gateway gets `Rejected(GatewayNotFound)` (it registers again).
    fn heartbeat(&self, gateway: &str, lease_ms: u64, acked: Option<u64>)
        -> BoxFuture<'_, Result<Lease, ClusterError>>;

    fn task(&self, uid: u64) -> BoxFuture<'_, Result<Option<Task>, ClusterError>>;

    /// The whole replicated state, read linearizably: the admin API's views of migrations and
    /// copies need more than the routing map carries.
    fn state(&self) -> BoxFuture<'_, Result<ClusterState, ClusterError>>;

    fn tasks(
        &self,
        filter: TaskFilter,
        from: Option<u64>,
        limit: usize,
        reverse: bool,
    ) -> BoxFuture<'_, Result<TaskPage, ClusterError>>;
}
