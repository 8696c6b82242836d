//! Miroir gateway: the Meilisearch HTTP API over a sharded, replicated cluster.

pub mod app;
pub mod auth;
pub mod cluster;
pub mod config;
pub mod documents;
pub mod error;
pub mod extract;
pub mod fanout;
pub mod feature_gate;
pub mod grpc;
pub mod load;
pub mod local;
pub mod metrics;
pub mod node_tasks;
pub mod read;
pub mod routes;
pub mod scatter;
pub mod search;
pub mod settings;
pub mod stats;
pub mod sync;
pub mod tasks;
pub mod unsupported;
