//! Miroir kernel: the replicated cluster model and the pure logic around it.
//!
//! Nothing in this crate performs I/O, reads a clock or draws randomness: `apply` must give the
//! same state on every coordinator peer for the same log, and placement must give the same owners
//! on every gateway for the same map.
//!
//! What Meilisearch means by a name (error codes, task types, request checks, API keys, search
//! rules) is `miroir_meili`'s; this crate is what Miroir adds: nodes, groups, placements,
//! migrations, the task log and the commands that change them.

pub mod apply;
pub mod cancel;
pub mod command;
pub mod edit;
pub mod error;
pub mod ids;
pub mod map;
pub mod mutation;
pub mod placement;
pub mod progress;
pub mod proposal;
pub mod rebalance;
pub mod settings;
pub mod state;
pub mod swap;
pub mod task;
pub mod task_view;
pub mod topology;
pub mod webhook;

pub use apply::{apply, changes_routing};
pub use command::{Command, Response};
pub use error::CommandError;
pub use map::RoutingMap;
pub use proposal::{apply_proposal, Applied, Proposal, ProposalId};
pub use state::ClusterState;

/// What applying a command yields; this is also the Raft response type.
pub type CommandResult = Result<Response, CommandError>;

/// gRPC wire types generated from `proto/miroir.proto`.
pub mod proto {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("miroir.v1");

    /// Largest gRPC message any Miroir client or server sends or accepts (tonic's default is
    /// 4 MiB to decode). A whole `ClusterState` or a task page can outgrow 4 MiB; every client and
    /// server uses this one limit so that what one side may send, the other accepts.
    pub const MAX_MESSAGE_BYTES: usize = 256 << 20;
}
