//! Miroir gateway: the Meilisearch HTTP API over a sharded, replicated cluster.

pub mod documents;
pub mod error;
