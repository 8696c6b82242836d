//! openraft storage for Miroir: the type configuration, a RocksDB log store, an in-memory twin for
//! simulations, and the state machine that applies kernel commands to the `ClusterState`.
//!
//! Durability contract: an append or a vote is reported to openraft only after the WAL holding it
//! was synced. The state machine lives in memory and is made durable by its snapshots (written,
//! synced, before openraft may purge the log they cover); on restart openraft replays the log after
//! the snapshot, so the state after a crash is the state of the durable log.

pub use openraft;

mod codec;
mod memory;
pub mod runtime;
mod snapshot_store;
mod state_machine;

#[cfg(not(madsim))]
mod rocks;

pub use memory::{open_memory, MemLogStore, MemStore};
pub use snapshot_store::SnapshotStore;
pub use state_machine::{MapChange, StateHandle, StateMachine};

#[cfg(not(madsim))]
pub use rocks::{open_rocks, RocksLogStore};

/// A coordinator peer's id.
pub type NodeId = u64;

/// What applying one command answered; it travels back to the proposer.
pub type CommandResult = miroir::CommandResult;

/// What applying one log entry answered (a duplicate proposal answers its original result).
pub type Applied = miroir::Applied;

openraft::declare_raft_types!(
    /// Miroir's one openraft type configuration.
    pub TypeConfig:
        D = miroir::Proposal,
        R = miroir::Applied,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        AsyncRuntime = runtime::MiroirRuntime,
);

/// A snapshot is the serialised state machine (see [`state_machine`]).
pub type SnapshotData = Vec<u8>;

pub type Raft = openraft::Raft<TypeConfig, StateMachine>;
pub type Entry = openraft::type_config::alias::EntryOf<TypeConfig>;
pub type LogId = openraft::type_config::alias::LogIdOf<TypeConfig>;
pub type Vote = openraft::type_config::alias::VoteOf<TypeConfig>;
pub type StoredMembership = openraft::type_config::alias::StoredMembershipOf<TypeConfig>;
pub type SnapshotMeta = openraft::type_config::alias::SnapshotMetaOf<TypeConfig>;
pub type Snapshot = openraft::type_config::alias::SnapshotOf<TypeConfig, SnapshotData>;
