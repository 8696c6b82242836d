//! Miroir's end-to-end and differential tests in one test binary, linked once (with RocksDB,
//! through the coordinator client) instead of once per area. One module per area:
//!
//! - real processes on loopback (coordinators, gateways and dev nodes, or real Meilisearch under
//!   `MEILI_BIN`; `miroir_devtools::harness`): `cluster`, `topology`, `auth`, `cancel`, `edit`,
//!   `swap`, `search_rules`, `write_fencing` (one node behind a delaying proxy, `delay_proxy`),
//!   and `gateway_grpc` (one coordinator process);
//! - a gateway in this process over the kernel's `apply` (`LocalCluster`) and dev nodes:
//!   `gateway_writes`, `tenant_tokens`, and the node client against a dev node (`node_client`);
//! - differential: a cluster must answer exactly like one node (`miroir_devtools::in_process`):
//!   `search_differential`, `federated_differential`, `fields_differential`,
//!   `vector_differential`, `search_rules_differential`, and the edition wrapper against the dev
//!   node's engine (`edit_wrapper`).
//!
//! Processes are found with `harness::workspace_bin`, next to this test binary: `cargo test
//! --workspace` builds them (`miroir-coordinator`, `miroirctl`, `miroir-gateway`, `miroir-devnode`);
//! before `cargo test -p miroir-e2e` alone, `cargo build --workspace --bins`.

mod auth;
mod cancel;
mod cluster;
mod common;
mod delay_proxy;
mod edit;
mod edit_wrapper;
mod federated_differential;
mod fields_differential;
mod gateway_grpc;
mod gateway_writes;
mod node_client;
mod search_differential;
mod search_rules;
mod search_rules_differential;
mod swap;
mod tenant_tokens;
mod topology;
mod vector_differential;
mod write_fencing;
