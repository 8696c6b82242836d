//! Meilisearch's vocabulary, in one place below the kernel: error codes and the error value, task
//! types and statuses, JSON kind names, settings names, pagination, and the request bodies whose
//! checks both the gateway and the dev node must make word for word (API keys, index fields,
//! index swaps, dynamic search rules). No I/O, no cluster: what one Meilisearch means by a name.
//!
//! The dev node shares these names and types with the gateway, never its search, merge or ranking
//! logic: it is the reference the gateway is compared against.

pub mod error;
pub mod federation;
pub mod fields;
pub mod json;
pub mod keys;
pub mod pagination;
pub mod params;
pub mod search_rules;
pub mod settings;
pub mod swap;
pub mod tasks;

pub use error::{Code, ErrorType, MeiliError};
pub use tasks::{TaskKind, TaskStatus};

/// Milliseconds since the Unix epoch.
pub type Millis = u64;

/// Meilisearch's index uid rule: 1 to 400 bytes of `A-Z a-z 0-9 - _`.
pub fn is_valid_index_uid(uid: &str) -> bool {
    !uid.is_empty() && uid.len() <= 400 && uid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Names as Meilisearch lists them in its messages: `` `a`, `b` ``.
pub fn listed<T: std::fmt::Display>(names: impl IntoIterator<Item = T>) -> String {
    names.into_iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}
