//! Rendezvous (highest-random-weight) placement and document sharding.
//!
//! Owners of (index, shard) inside a replica group are the RF eligible nodes of that group with
//! the highest `xxh3_64(index ‖ shard ‖ node)`. Adding a node only takes the shards for which it
//! now ranks in the top RF; removing one only moves the shards it owned.

use serde_json::Value;
use xxhash_rust::xxh3::xxh3_64;

use crate::ids::{NodeId, ShardId};
use crate::state::ClusterState;

/// Longest document id Meilisearch accepts, in bytes (it refuses 512 and more).
pub const MAX_DOC_ID_BYTES: usize = 511;

/// Weight of `node` for one shard of one index. The 0xff separators keep `("ab", "c")` and
/// `("a", "bc")` apart; 0xff never occurs in UTF-8.
pub fn hrw_weight(index: &str, shard: ShardId, node: &str) -> u64 {
    let mut buf = Vec::with_capacity(index.len() + node.len() + 6);
    buf.extend_from_slice(index.as_bytes());
    buf.push(0xff);
    buf.extend_from_slice(&shard.to_be_bytes());
    buf.push(0xff);
    buf.extend_from_slice(node.as_bytes());
    xxh3_64(&buf)
}

/// The `rf` candidates with the highest weight, best first. Ties (astronomically unlikely)
/// break on the node id so every caller agrees.
pub fn top_rf<'a, I>(index: &str, shard: ShardId, candidates: I, rf: u32) -> Vec<NodeId>
where
    I: IntoIterator<Item = &'a NodeId>,
{
    let mut scored: Vec<(u64, &NodeId)> = candidates.into_iter().map(|n| (hrw_weight(index, shard, n), n)).collect();
    scored.sort_unstable_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored.into_iter().take(rf as usize).map(|(_, n)| n.clone()).collect()
}

/// Where (index, shard) should live in `group` given the current eligible nodes.
pub fn target_owners(state: &ClusterState, index: &str, shard: ShardId, group: &str) -> Vec<NodeId> {
    let idx = state.indexes.get(index);
    let rf = idx.map_or(state.defaults.rf, |i| i.rf);
    let key = idx.and_then(|i| i.placement_key.as_deref()).unwrap_or(index);
    top_rf(key, shard, state.eligible_nodes(group), rf)
}

/// The shard a document belongs to, from its canonical id.
pub fn shard_of(canonical_id: &str, shards: u32) -> ShardId {
    debug_assert!(shards > 0);
    (xxh3_64(canonical_id.as_bytes()) % u64::from(shards)) as ShardId
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocIdError {
    #[error("a document identifier can be of type integer or string, only composed of alphanumeric characters (a-z A-Z 0-9), hyphens (-) and underscores (_), and can not be more than 511 bytes")]
    Invalid,
}

/// Canonical string of a document id, as Meilisearch normalises it: an integer and its decimal
/// string are the same document, so both must land on the same shard.
pub fn canonical_doc_id(id: &Value) -> Result<String, DocIdError> {
    match id {
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        Value::String(s) if is_valid_id_str(s) => Ok(s.clone()),
        _ => Err(DocIdError::Invalid),
    }
}

fn is_valid_id_str(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_DOC_ID_BYTES
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integer_and_string_ids_are_one_document() {
        assert_eq!(canonical_doc_id(&json!(42)).unwrap(), canonical_doc_id(&json!("42")).unwrap());
        assert_eq!(shard_of("42", 16), shard_of(&canonical_doc_id(&json!(42)).unwrap(), 16));
    }

    #[test]
    fn invalid_ids_are_refused() {
        for bad in [json!(1.5), json!(""), json!("a b"), json!("é"), json!(null), json!([1]), json!("x".repeat(512))] {
            assert_eq!(canonical_doc_id(&bad), Err(DocIdError::Invalid), "{bad}");
        }
        assert!(canonical_doc_id(&json!("x".repeat(511))).is_ok());
        assert_eq!(canonical_doc_id(&json!(-3)).unwrap(), "-3");
    }

    #[test]
    fn separators_keep_fields_apart() {
        assert_ne!(hrw_weight("ab", 0, "c"), hrw_weight("a", 0, "bc"));
    }
}
