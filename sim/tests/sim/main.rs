//! Miroir's deterministic simulations, one test binary (madsim; build with
//! `RUSTFLAGS="--cfg madsim"`, see docs/simulation.md):
//! - `cluster`: the whole cluster (coordinators, gateways, nodes, clients) under faults;
//! - `coordinator`: the coordinator quorum alone under leader kills and clogs;
//! - `gateway`: one gateway over dev nodes, no faults (the smallest stack that runs).
#![cfg(madsim)]

mod cluster;
mod coordinator;
mod gateway;
