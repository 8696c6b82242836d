//! Exact document counts and field distribution of an index over its shards. A node holds copies
//! of several shards (RF > 1), and Meilisearch's own counts are of everything it holds; a search
//! total is capped at `maxTotalHits`. What is exact: the `_miroir_shard` facet, which counts a
//! node's documents per shard without cap (nodes return every facet value, see
//! `miroir::settings::NODE_MAX_VALUES_PER_FACET`).

use std::collections::BTreeMap;

use miroir::ids::{NodeId, ShardId};
use miroir::RoutingMap;
use miroir_node_client::{Method, NodeClient, NodeRequest};
use serde_json::{json, Map, Value};

use crate::error::{AppError, AppResult, Code};
use crate::write::settings::SHARD_FIELD;

/// What one node of a replica group reports about an index: its per-shard document counts and
/// its own field distribution (over everything it holds).
#[derive(Debug, Clone, Default)]
pub struct NodeCounts {
    pub per_shard: BTreeMap<ShardId, u64>,
    pub fields: Map<String, Value>,
}

/// The index's field distribution from every holder of one replica group. Each node's counts
/// stand for its documents; a shard held in `c` copies is counted `c` times, so each node's
/// figures are weighted by the part of its documents it alone stands for (`Σ docs_s / c_s` over
/// its shards, over its documents). Exact when a shard's copies are complete (the normal state:
/// every copy holds the same documents); an estimate while a copy is being filled.
pub fn field_distribution(nodes: &[NodeCounts]) -> Map<String, Value> {
    let mut copies: BTreeMap<ShardId, u64> = BTreeMap::new();
    for n in nodes {
        for (s, d) in &n.per_shard {
            if *d > 0 {
                *copies.entry(*s).or_default() += 1;
            }
        }
    }
    let mut out: BTreeMap<String, f64> = BTreeMap::new();
    for n in nodes {
        let held: u64 = n.per_shard.values().sum();
        if held == 0 {
            continue;
        }
        let own: f64 =
            n.per_shard.iter().filter(|(_, d)| **d > 0).map(|(s, d)| *d as f64 / copies[s] as f64).sum::<f64>();
        let weight = own / held as f64;
        for (k, v) in &n.fields {
            if k != SHARD_FIELD {
                *out.entry(k.clone()).or_default() += v.as_u64().unwrap_or(0) as f64 * weight;
            }
        }
    }
    out.into_iter().map(|(k, v)| (k, Value::from(v.round() as u64))).collect()
}

/// A node's per-shard document counts (the `_miroir_shard` facet of a placeholder search).
async fn per_shard(nodes: &NodeClient, url: &str, uid: &str) -> AppResult<BTreeMap<ShardId, u64>> {
    let body = json!({"q": "", "limit": 0, "facets": [SHARD_FIELD]});
    let req = NodeRequest::json(Method::Post, format!("/indexes/{uid}/search"), &body);
    let answer = nodes.json(url, req).await.map_err(|e| AppError::new(Code::MIROIR_UNAVAILABLE, e.to_string()))?;
    let counts = answer.pointer(&format!("/facetDistribution/{SHARD_FIELD}")).and_then(Value::as_object);
    Ok(counts.into_iter().flatten().filter_map(|(s, c)| Some((s.parse::<ShardId>().ok()?, c.as_u64()?))).collect())
}

/// The number of documents (each shard counted once, from the node `cover` names for it) and the
/// field distribution (from every holder of that node's replica group).
pub async fn index_counts(
    nodes: &NodeClient,
    map: &RoutingMap,
    uid: &str,
    cover: &BTreeMap<NodeId, Vec<ShardId>>,
) -> AppResult<(u64, Map<String, Value>)> {
    let group = cover.keys().next().and_then(|n| map.nodes.get(n)).map(|n| n.group.clone());
    let holders: std::collections::BTreeSet<&NodeId> = map
        .placements
        .get(uid)
        .into_iter()
        .flatten()
        .filter_map(|groups| groups.get(group.as_ref()?))
        .flat_map(|p| p.owners.iter().map(|o| &o.node).chain(&p.incoming))
        .collect();
    let calls = holders.into_iter().map(|node| {
        let url = map.nodes.get(node).map(|n| n.url.clone()).unwrap_or_default();
        async move {
            let stats = nodes.json(&url, NodeRequest::get(format!("/indexes/{uid}/stats")));
            let (shards, stats) = futures::join!(per_shard(nodes, &url, uid), stats);
            let fields = stats.ok().and_then(|s| s["fieldDistribution"].as_object().cloned()).unwrap_or_default();
            (node.clone(), shards.map(|per_shard| NodeCounts { per_shard, fields }))
        }
    });
    let answers: BTreeMap<NodeId, AppResult<NodeCounts>> = futures::future::join_all(calls).await.into_iter().collect();
    let mut docs = 0;
    for (node, shards) in cover {
        let counts = match answers.get(node) {
            Some(Ok(c)) => c,
            Some(Err(e)) => return Err(AppError::new(Code::MIROIR_UNAVAILABLE, e.to_string())),
            None => {
                return Err(AppError::new(
                    Code::MIROIR_UNAVAILABLE,
                    format!("Node `{node}` of the covering set holds no copy in its group."),
                ))
            }
        };
        docs += shards.iter().map(|s| counts.per_shard.get(s).copied().unwrap_or(0)).sum::<u64>();
    }
    let answered: Vec<NodeCounts> = answers.into_values().filter_map(Result::ok).collect();
    Ok((docs, field_distribution(&answered)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(per_shard: &[(u32, u64)], fields: Value) -> NodeCounts {
        NodeCounts { per_shard: per_shard.iter().copied().collect(), fields: fields.as_object().unwrap().clone() }
    }

    #[test]
    fn every_shard_counted_once_whatever_its_copies() {
        // Shards 0 (10 docs, all with `a`) and 1 (20 docs, 5 with `a`), RF 2 over three nodes.
        let nodes = [
            node(&[(0, 10), (1, 20)], json!({"id": 30, "a": 15, "_miroir_shard": 30})),
            node(&[(0, 10)], json!({"id": 10, "a": 10, "_miroir_shard": 10})),
            node(&[(1, 20)], json!({"id": 20, "a": 5, "_miroir_shard": 20})),
        ];
        assert_eq!(Value::Object(field_distribution(&nodes)), json!({"a": 15, "id": 30}));
        // RF 1: the sum, not the largest node's.
        let nodes = [node(&[(0, 10)], json!({"id": 10, "a": 10})), node(&[(1, 20)], json!({"id": 20, "a": 5}))];
        assert_eq!(Value::Object(field_distribution(&nodes)), json!({"a": 15, "id": 30}));
    }
}
