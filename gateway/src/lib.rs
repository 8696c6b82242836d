//! Miroir gateway: the Meilisearch HTTP API over a sharded, replicated cluster.
//!
//! The folders follow a request's way through the gateway:
//! - `http/`: the HTTP surface — routes (thin handlers), extractors, auth, the unsupported-route
//!   fallback;
//! - `write/`: the write path — payload parsing, routing documents to shards, fan-out to every
//!   write target, task registration;
//! - `read/`: the read path — replica choice, scatter-gather, and the merge (`read/search/`:
//!   ranking merge, distinct, hybrid, pins of search rules, federation, facets);
//! - `cluster/`: the link to the coordinators — the `Cluster` trait, its gRPC and in-process
//!   implementations, the map watch and the lease.
//!
//! `app.rs` puts them together: the state handlers share and the router. `error.rs` is the one
//! error type every layer answers with.

pub mod app;
pub mod cluster;
pub mod config;
pub mod error;
pub mod http;
pub mod metrics;
pub mod read;
pub mod write;
