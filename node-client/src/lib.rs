//! How Miroir talks to Meilisearch nodes.
//!
//! Gateways and coordinator controllers reach nodes only through [`NodeTransport`]: HTTP in
//! production, a scripted transport in tests. [`NodeClient`] adds the typed calls
//! (enqueue a write, read tasks, page documents) on top of any transport.

mod client;
mod transport;

// The HTTP transport needs a real network; a simulation supplies its own transport.
#[cfg(not(madsim))]
mod http;
pub mod shard;
pub mod verify;

pub use client::{NodeClient, NodeError, NodeTaskView};
#[cfg(not(madsim))]
pub use http::HttpTransport;
pub use transport::{Method, NodeRequest, NodeResponse, NodeTransport, TransportError};
