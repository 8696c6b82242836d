//! `verify`: compares every in-sync copy of every shard of an index, document by document, for
//! `miroirctl verify` and the gateway's `GET /_miroir/indexes/{uid}/verify`.

use std::collections::BTreeMap;

use miroir::ClusterState;
use serde_json::{json, Value};

use crate::shard::fingerprint;
use crate::NodeClient;

/// The report for `index`, or `None` when the cluster has no such index. Each (shard, group) whose
/// copies differ gets an entry in `differences` (which node lacks which ids, or holds other
/// content); a copy that could not be read is listed in `unreadable` and compared with nothing.
pub async fn verify_index(nodes: &NodeClient, s: &ClusterState, index: &str) -> Option<Value> {
    let idx = s.indexes.get(index)?;
    let Some(pk) = idx.primary_key.clone() else {
        return Some(json!({
            "index": index, "shards": idx.shards, "copiesCompared": 0, "documents": 0,
            "differences": [], "unreadable": [],
        }));
    };
    let (mut differences, mut unreadable) = (Vec::new(), Vec::new());
    let (mut compared, mut documents) = (0, 0);
    for (shard, groups) in s.placements.get(index).into_iter().flatten().enumerate() {
        let mut union: BTreeMap<String, u64> = BTreeMap::new();
        let mut prints = BTreeMap::new();
        for (group, p) in groups {
            for node in p.in_sync_owners() {
                let url = s.nodes.get(node).map(|n| n.url.clone()).unwrap_or_default();
                let f = match fingerprint(nodes, &url, index, shard as u32, &pk).await {
                    Ok(f) => f,
                    Err(e) => {
                        unreadable.push(json!({"shard": shard, "group": group, "node": node, "error": e.to_string()}));
                        continue;
                    }
                };
                compared += 1;
                for (id, h) in &f {
                    union.entry(id.clone()).or_insert(*h);
                }
                prints.insert((group.clone(), node.clone()), f);
            }
        }
        documents += union.len();
        // Every copy must hold exactly the same ids with the same content.
        let reference = prints.values().next().cloned().unwrap_or_default();
        for ((group, node), f) in &prints {
            let missing: Vec<&String> = union.keys().filter(|id| !f.contains_key(*id)).collect();
            let differ: Vec<&String> =
                f.iter().filter(|(id, h)| reference.get(*id).is_some_and(|r| r != *h)).map(|(id, _)| id).collect();
            if !missing.is_empty() || !differ.is_empty() {
                differences.push(json!({
                    "shard": shard, "group": group, "node": node,
                    "missing": missing, "differentContent": differ,
                }));
            }
        }
    }
    Some(json!({
        "index": index, "shards": idx.shards, "copiesCompared": compared, "documents": documents,
        "differences": differences, "unreadable": unreadable,
    }))
}
