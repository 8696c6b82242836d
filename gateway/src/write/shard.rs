//! Hash routing of document writes: resolve the primary key, check every id, stamp each document
//! with its shard and group the batch into one sub-batch per target node.

use std::collections::BTreeMap;

use miroir::ids::{NodeId, ShardId};
use miroir::placement::{canonical_doc_id, shard_of};
use miroir::state::GroupStatus;
use miroir::RoutingMap;
use serde_json::Value;

use super::payload::Document;
use crate::error::{AppError, AppResult, Code};

pub use miroir::settings::SHARD_FIELD;

/// Which primary key a write uses, and whether it must first be fixed in the cluster state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrimaryKey {
    pub name: String,
    /// True when the index had none: the gateway commits it before any node sees a document, so
    /// that every node (and every later write) agrees on it.
    pub newly_set: bool,
}

/// The index's declared key, else the `primaryKey` parameter, else Meilisearch's inference on
/// the first document (exactly one field whose name ends with `id`).
pub fn resolve_primary_key(
    index: &str,
    declared: Option<&str>,
    param: Option<&str>,
    first: Option<&Document>,
) -> AppResult<PrimaryKey> {
    match (declared, param) {
        (Some(d), Some(p)) if d != p => Err(AppError::new(
            Code::INDEX_PRIMARY_KEY_ALREADY_EXISTS,
            format!("Index `{index}`: Index already has a primary key: `{d}`."),
        )),
        (Some(d), _) => Ok(PrimaryKey { name: d.to_string(), newly_set: false }),
        (None, Some(p)) => Ok(PrimaryKey { name: p.to_string(), newly_set: true }),
        (None, None) => {
            let candidates: Vec<&String> =
                first.map(|doc| doc.keys().filter(|k| k.to_lowercase().ends_with("id")).collect()).unwrap_or_default();
            match candidates.as_slice() {
                [one] => Ok(PrimaryKey { name: (*one).clone(), newly_set: true }),
                [] => Err(AppError::new(
                    Code::INDEX_PRIMARY_KEY_NO_CANDIDATE_FOUND,
                    format!("Index `{index}`: The primary key inference failed as the engine did not find any field ending with `id` in its name. Please specify the primary key manually using the `primaryKey` query parameter."),
                )),
                many => Err(AppError::new(
                    Code::INDEX_PRIMARY_KEY_MULTIPLE_CANDIDATES_FOUND,
                    format!(
                        "Index `{index}`: The primary key inference failed as the engine found {} fields ending with `id` in their names: {}. Please specify the primary key manually using the `primaryKey` query parameter.",
                        many.len(),
                        many.iter().map(|c| format!("'{c}'")).collect::<Vec<_>>().join(" and ")
                    ),
                )),
            }
        }
    }
}

/// Looks a (possibly dotted, nested) primary key up in a document.
fn lookup<'a>(doc: &'a Document, key: &str) -> Option<&'a Value> {
    if let Some(v) = doc.get(key) {
        return Some(v);
    }
    let (head, rest) = key.split_once('.')?;
    match doc.get(head)? {
        Value::Object(inner) => lookup(inner, rest),
        _ => None,
    }
}

/// The canonical id of a document, or Meilisearch's error for it.
pub fn document_id(doc: &Document, pk: &str) -> AppResult<String> {
    let Some(id) = lookup(doc, pk) else {
        return Err(AppError::new(
            Code::MISSING_DOCUMENT_ID,
            format!("Document doesn't have a `{pk}` attribute: `{}`.", Value::Object(doc.clone())),
        ));
    };
    canonical_doc_id(id).map_err(|e| invalid_id(id, e))
}

pub fn invalid_id(id: &Value, e: impl std::fmt::Display) -> AppError {
    AppError::new(Code::INVALID_DOCUMENT_ID, format!("Document identifier `{id}` is invalid. {e}."))
}

/// Checks every document of a batch: a batch with any bad document is refused whole, before
/// anything (even the index's creation) is written.
pub fn check_documents(docs: &[Document], pk: &str) -> AppResult<()> {
    docs.iter().try_for_each(|doc| check_document(doc, pk).map(drop))
}

fn check_document(doc: &Document, pk: &str) -> AppResult<String> {
    if doc.contains_key(SHARD_FIELD) {
        return Err(AppError::new(
            Code::MIROIR_RESERVED_FIELD,
            format!("The field `{SHARD_FIELD}` is reserved by Miroir and cannot be set in a document."),
        ));
    }
    document_id(doc, pk)
}

/// Checks the whole batch, then stamps every document with its shard. Nothing is returned for
/// a batch with any bad document, so nothing of it is written.
pub fn shard_documents(docs: Vec<Document>, pk: &str, shards: u32) -> AppResult<Vec<(ShardId, Document)>> {
    let mut out = Vec::with_capacity(docs.len());
    for mut doc in docs {
        let shard = shard_of(&check_document(&doc, pk)?, shards);
        doc.insert(SHARD_FIELD.to_string(), Value::from(shard));
        out.push((shard, doc));
    }
    Ok(out)
}

/// For each node, the documents it must receive: every document goes to every in-sync owner and
/// every incoming owner of its shard, in every replica group. Fails with `miroir_no_quorum` if a
/// shard has no copy that could take the write.
pub fn plan_by_node(
    map: &RoutingMap,
    index: &str,
    docs: Vec<(ShardId, Document)>,
) -> AppResult<BTreeMap<NodeId, Vec<Document>>> {
    let placements = map.placements.get(index).ok_or_else(|| AppError::index_not_found(index))?;
    let mut plan: BTreeMap<NodeId, Vec<Document>> = BTreeMap::new();
    for (shard, doc) in docs {
        let groups = placements.get(shard as usize).ok_or_else(|| AppError::internal("shard outside the placement"))?;
        let mut targets = groups.values().flat_map(|p| p.write_targets()).peekable();
        // A placement of a serving group whose owners are all stale cannot take the write. A group
        // being filled serves no reads: it may hold no owner yet (the first copy, its incoming
        // node takes the write) or only stale ones (repaired later from another group).
        let serving = |g: &str| map.groups.get(g).is_some_and(|g| g.status == GroupStatus::Active);
        let stale = groups.iter().any(|(g, p)| serving(g) && p.in_sync_owners().next().is_none());
        if targets.peek().is_none() || stale {
            return Err(AppError::new(
                Code::MIROIR_NO_QUORUM,
                format!("Shard {shard} of index `{index}` has no in-sync copy to take the write."),
            ));
        }
        let targets: Vec<NodeId> = targets.cloned().collect();
        let (last, rest) = targets.split_last().expect("checked non-empty");
        for node in rest {
            plan.entry(node.clone()).or_default().push(doc.clone());
        }
        plan.entry(last.clone()).or_default().push(doc);
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use miroir::command::Command;
    use miroir::state::MigrationPhase;
    use miroir::{apply, ClusterState};
    use serde_json::json;

    fn doc(v: Value) -> Document {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn primary_key_resolution_follows_meilisearch() {
        let first = doc(json!({"title": "x", "movie_id": 1}));
        assert_eq!(resolve_primary_key("i", None, None, Some(&first)).unwrap().name, "movie_id");
        assert_eq!(
            resolve_primary_key("i", Some("id"), None, Some(&first)).unwrap(),
            PrimaryKey { name: "id".into(), newly_set: false }
        );
        assert!(resolve_primary_key("i", None, Some("sku"), Some(&first)).unwrap().newly_set);
        let e = resolve_primary_key("i", Some("id"), Some("sku"), None).unwrap_err();
        assert_eq!(e.code, Code::INDEX_PRIMARY_KEY_ALREADY_EXISTS);
        let e = resolve_primary_key("i", None, None, Some(&doc(json!({"id": 1, "uid": 2})))).unwrap_err();
        assert_eq!(e.code, Code::INDEX_PRIMARY_KEY_MULTIPLE_CANDIDATES_FOUND);
        let e = resolve_primary_key("i", None, None, Some(&doc(json!({"title": 1})))).unwrap_err();
        assert_eq!(e.code, Code::INDEX_PRIMARY_KEY_NO_CANDIDATE_FOUND);
    }

    #[test]
    fn a_batch_with_one_bad_document_is_refused_whole() {
        let ok = doc(json!({"id": 1}));
        let code = |docs: Vec<Document>| shard_documents(docs, "id", 4).unwrap_err().code.name;
        assert_eq!(code(vec![ok.clone(), doc(json!({"id": "a b"}))]), Code::INVALID_DOCUMENT_ID);
        assert_eq!(code(vec![ok.clone(), doc(json!({"title": "no id"}))]), Code::MISSING_DOCUMENT_ID);
        assert_eq!(code(vec![ok.clone(), doc(json!({"id": 2, "_miroir_shard": 0}))]), Code::MIROIR_RESERVED_FIELD);
        let stamped = shard_documents(vec![ok, doc(json!({"id": "1"}))], "id", 4).unwrap();
        assert_eq!(stamped[0].0, stamped[1].0, "1 and \"1\" are one document");
        assert_eq!(stamped[0].1[SHARD_FIELD], json!(stamped[0].0));
    }

    #[test]
    fn nested_primary_keys_are_followed() {
        assert_eq!(document_id(&doc(json!({"a": {"b": "x1"}})), "a.b").unwrap(), "x1");
    }

    #[test]
    fn each_document_reaches_every_write_target_once() {
        let mut s = ClusterState::default();
        let cmds = [
            Command::AddGroup { id: "g1".into() },
            Command::AddGroup { id: "g2".into() },
            Command::AddNode { id: "a".into(), url: "u".into(), group: "g1".into() },
            Command::AddNode { id: "b".into(), url: "u".into(), group: "g1".into() },
            Command::AddNode { id: "c".into(), url: "u".into(), group: "g2".into() },
            Command::AddNode { id: "d".into(), url: "u".into(), group: "g2".into() },
            Command::CreateIndex {
                uid: "i".into(),
                primary_key: Some("id".into()),
                shards: Some(4),
                rf: Some(2),
                at: 0,
            },
        ];
        for (i, c) in cmds.iter().enumerate() {
            apply(&mut s, c, i as u64 + 1).unwrap_or_else(|e| panic!("{c:?}: {e}"));
        }
        let docs = shard_documents((0..50).map(|i| doc(json!({"id": i}))).collect(), "id", 4).unwrap();
        let plan = plan_by_node(&s.routing_map(), "i", docs).unwrap();
        assert_eq!(plan.values().map(Vec::len).sum::<usize>(), 200, "50 documents × 2 copies × 2 groups");
        for node in ["a", "b", "c", "d"] {
            assert_eq!(plan[node].len(), 50, "RF = group size: every node holds everything");
        }
    }

    #[test]
    fn a_group_being_filled_gets_the_writes_of_its_incoming_copies() {
        let mut s = ClusterState::default();
        let create = Command::CreateIndex {
            uid: "i".into(),
            primary_key: Some("id".into()),
            shards: Some(2),
            rf: Some(1),
            at: 0,
        };
        let cmds = [
            Command::AddGroup { id: "g1".into() },
            Command::AddNode { id: "a".into(), url: "u".into(), group: "g1".into() },
            create,
            Command::AddGroup { id: "g2".into() },
            Command::AddNode { id: "c".into(), url: "u".into(), group: "g2".into() },
            Command::StartMigration {
                index: "i".into(),
                shard: 0,
                group: "g2".into(),
                from: None,
                to: "c".into(),
                at: 1,
            },
        ];
        for (i, c) in cmds.iter().enumerate() {
            apply(&mut s, c, i as u64 + 1).unwrap_or_else(|e| panic!("{c:?}: {e}"));
        }
        let docs = shard_documents((0..40).map(|i| doc(json!({"id": i}))).collect(), "id", 2).unwrap();
        let in_shard_0 = docs.iter().filter(|(shard, _)| *shard == 0).count();
        let plan = plan_by_node(&s.routing_map(), "i", docs).unwrap();
        assert_eq!(plan["a"].len(), 40);
        assert_eq!(plan["c"].len(), in_shard_0, "only the shard being copied to it");

        // Its only copy misses a write and goes stale: g2 serves no reads, writes still succeed.
        let mut cmds: Vec<Command> = [MigrationPhase::Copy, MigrationPhase::Verify, MigrationPhase::Cutover]
            .into_iter()
            .map(|phase| Command::AdvanceMigration { id: 0, phase, at: 1 })
            .collect();
        cmds.push(Command::MarkStale { index: "i".into(), shard: 0, group: "g2".into(), node: "c".into() });
        for (i, c) in cmds.iter().enumerate() {
            apply(&mut s, c, i as u64 + 10).unwrap_or_else(|e| panic!("{c:?}: {e}"));
        }
        let docs = shard_documents((0..40).map(|i| doc(json!({"id": i}))).collect(), "id", 2).unwrap();
        let plan = plan_by_node(&s.routing_map(), "i", docs).unwrap();
        assert_eq!(plan["a"].len(), 40);
        assert!(!plan.contains_key("c"), "a stale copy gets no writes");
        assert!(crate::write::fanout::degraded_shards(&s.routing_map(), "i").is_empty(), "g2 is not serving");
    }
}
