//! Miroir kernel: the replicated cluster model and the pure logic around it.
//!
//! Nothing in this crate performs I/O, reads a clock or draws randomness: `apply` must give the
//! same state on every coordinator peer for the same log, and placement must give the same owners
//! on every gateway for the same map.

/// gRPC wire types generated from `proto/miroir.proto`.
pub mod proto {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("miroir.v1");
}
