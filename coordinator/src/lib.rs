//! Miroir coordinator: Raft peers over gRPC, the cluster API (propose, linearizable reads, map
//! watch, gateway leases, membership), leader-only controllers and metrics.

pub mod config;

pub use miroir::proto::propose_reply::Outcome;

/// What `apply` answered, as it travels in `ProposeReply`.
pub fn outcome(r: &miroir_raft_store::CommandResult) -> Outcome {
    let json = |v: Result<Vec<u8>, serde_json::Error>| v.unwrap_or_else(|e| format!("{e:?}").into_bytes());
    match r {
        Ok(resp) => Outcome::Response(json(serde_json::to_vec(resp))),
        Err(e) => Outcome::Rejected(json(serde_json::to_vec(e))),
    }
}

pub mod client;
pub mod cluster_service;
pub mod controller;
pub mod controllers;
pub mod error;
pub mod metrics;
pub mod network;
pub mod node;
pub mod ops;
pub mod peer;
pub mod raft_service;
pub mod watch;

pub use error::{Error, Result};
pub use node::Coordinator;
