//! Miroir simulation and end-to-end test support: the Meilisearch-compatible dev node.

// The dev node serves real HTTP (axum on tokio's network types); simulations do not use it.
#[cfg(not(madsim))]
pub mod devnode;
