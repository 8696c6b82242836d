//! Miroir simulation and end-to-end test support: the Meilisearch-compatible dev node and a
//! harness that runs a whole cluster as real processes.

// The dev node serves real HTTP (axum on tokio's network types); simulations do not use it.
#[cfg(not(madsim))]
pub mod devnode;

#[cfg(not(madsim))]
pub mod harness;

#[cfg(not(madsim))]
pub mod in_process;

pub mod rng;
