//! Miroir simulation and end-to-end test support: the Meilisearch-compatible dev node.

pub mod devnode;
