//! A Meilisearch-compatible in-memory node for tests and the local cluster.
//!
//! `engine` is pure (no I/O, no clock) so a simulation can drive it; `http` serves Meilisearch's
//! HTTP API over it with axum.

pub mod engine;
pub mod error;
#[cfg(not(madsim))]
pub mod http;

pub use error::{DevResult, MeiliError};
#[cfg(not(madsim))]
pub use http::{start, DevNode, DevNodeConfig, Faults};
