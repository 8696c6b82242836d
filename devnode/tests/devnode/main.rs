//! The dev node's own tests, one module per area: the dev node alone, in process or over HTTP
//! (the conformance script can also run against a real Meilisearch, see `conformance`).

mod conformance;
mod faults;
mod ranking;
mod search_rules;
mod tasks;
