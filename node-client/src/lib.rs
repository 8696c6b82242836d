//! How Miroir talks to Meilisearch nodes.
//!
//! Gateways and coordinator controllers reach nodes only through [`NodeTransport`]: HTTP in
//! production, a scripted transport in tests. [`NodeClient`] adds the typed calls
//! (enqueue a write, read tasks, page documents) on top of any transport.

mod client;
mod transport;

#[cfg(not(madsim))]
mod http;
#[cfg(not(madsim))]
pub mod shard;
#[cfg(not(madsim))]
pub mod verify;

pub use client::{NodeClient, NodeError, NodeTaskView};
#[cfg(not(madsim))]
pub use http::HttpTransport;
pub use transport::{Method, NodeRequest, NodeResponse, NodeTransport, TransportError};
