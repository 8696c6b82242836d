//! A Meilisearch-compatible in-memory node for tests and the local cluster.
//!
//! `engine` is pure (no I/O, no clock) so a simulation can drive it; `http` serves Meilisearch's
//! HTTP API over it with axum.

pub mod engine;
pub mod error;
pub mod http;
pub mod transport;

pub use error::{DevResult, MeiliError};
pub use http::{in_memory, DevNodeConfig, Faults, MemNode};
#[cfg(not(madsim))]
pub use http::{start, DevNode};
