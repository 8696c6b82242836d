//! Reads served by one copy: pick an in-sync owner in a serving group, try the next on failure.

use miroir::ids::{NodeId, ShardId};
use miroir::state::{GroupStatus, NodeStatus};
use miroir::RoutingMap;
use miroir_node_client::{NodeClient, NodeError, NodeRequest};
use serde_json::Value;

use crate::error::{AppError, AppResult, Code};

/// In-sync owners of `shard` able to serve a read, in the order to try them: Active groups first,
/// Active nodes before the others.
pub fn read_candidates(map: &RoutingMap, index: &str, shard: ShardId) -> Vec<NodeId> {
    let Some(groups) = map.placements.get(index).and_then(|s| s.get(shard as usize)) else { return vec![] };
    let mut out: Vec<(u8, NodeId)> = groups
        .iter()
        .filter(|(g, _)| map.groups.get(*g).is_some_and(|g| g.status == GroupStatus::Active))
        .flat_map(|(_, p)| p.in_sync_owners())
        .filter_map(|n| {
            let status = map.nodes.get(n)?.status;
            let rank = match status {
                NodeStatus::Active => 0,
                NodeStatus::Draining | NodeStatus::Joining => 1,
                NodeStatus::Failed => 2,
                NodeStatus::Removed => return None,
            };
            Some((rank, n.clone()))
        })
        .collect();
    out.sort();
    out.into_iter().map(|(_, n)| n).collect()
}

/// Sends a GET to the first candidate that answers; a node's 4xx is the answer, not a failure.
pub async fn get_with_failover(
    nodes: &NodeClient,
    map: &RoutingMap,
    candidates: &[NodeId],
    path: &str,
) -> AppResult<Value> {
    send_with_failover(nodes, map, candidates, NodeRequest::get(path)).await
}

/// Sends `request` to the first candidate that answers; a node's 4xx is the answer, not a failure.
pub async fn send_with_failover(
    nodes: &NodeClient,
    map: &RoutingMap,
    candidates: &[NodeId],
    request: NodeRequest,
) -> AppResult<Value> {
    let mut last = None;
    for node in candidates {
        let Some(url) = map.nodes.get(node).map(|n| n.url.as_str()) else { continue };
        match nodes.json(url, request.clone()).await {
            Ok(v) => return Ok(v),
            Err(NodeError::Status { status, body }) if status < 500 => return Err(AppError::forwarded(status, body)),
            Err(e) => {
                tracing::debug!(%node, error = %e, "read failed, trying the next copy");
                last = Some(e);
            }
        }
    }
    Err(AppError::new(
        Code::MIROIR_UNAVAILABLE,
        format!("No copy could serve this read: {}", last.map_or_else(|| "no in-sync copy".into(), |e| e.to_string())),
    ))
}

/// A read any copy of the index can answer (settings, for instance): tries shard 0's owners.
pub async fn read_from_owner(nodes: &NodeClient, map: &RoutingMap, index: &str, path: &str) -> AppResult<Value> {
    if !map.indexes.contains_key(index) {
        return Err(AppError::index_not_found(index));
    }
    let candidates = read_candidates(map, index, 0);
    get_with_failover(nodes, map, &candidates, path).await
}

/// One replica group's worth of copies covering every shard: node → the shards it answers for.
/// Groups are tried from `start` (round-robin across requests); a group that cannot cover every
/// shard with an in-sync owner is skipped. Returns the shards no group could cover when none can.
pub fn covering_set(
    map: &RoutingMap,
    index: &str,
    start: usize,
) -> Result<std::collections::BTreeMap<NodeId, Vec<ShardId>>, Vec<ShardId>> {
    covering_set_by(map, index, start, |_| 1.0)
}

/// As `covering_set`, each shard given to the owner whose `cost` (see `load::NodeLoad`), times
/// one plus the shards it already answers for in this set, is lowest: equal costs spread shards
/// evenly (ties rotate with `start`), a slow or busy node gets fewer.
pub fn covering_set_by(
    map: &RoutingMap,
    index: &str,
    start: usize,
    cost: impl Fn(&NodeId) -> f64,
) -> Result<std::collections::BTreeMap<NodeId, Vec<ShardId>>, Vec<ShardId>> {
    use std::collections::BTreeMap;
    let Some(shards) = map.placements.get(index) else { return Ok(BTreeMap::new()) };
    let groups: Vec<&String> =
        map.groups.iter().filter(|(_, g)| g.status == GroupStatus::Active).map(|(id, _)| id).collect();
    let serving = |n: &NodeId| {
        map.nodes.get(n).is_some_and(|n| n.status != NodeStatus::Failed && n.status != NodeStatus::Removed)
    };
    let mut best_missing: Option<Vec<ShardId>> = None;
    for k in 0..groups.len() {
        let group = groups[(start + k) % groups.len()];
        let mut cover: BTreeMap<NodeId, Vec<ShardId>> = BTreeMap::new();
        let mut missing = vec![];
        for (shard, placements) in shards.iter().enumerate() {
            let owners: Vec<&NodeId> =
                placements.get(group).map(|p| p.in_sync_owners().filter(|n| serving(n)).collect()).unwrap_or_default();
            if owners.is_empty() {
                missing.push(shard as ShardId);
                continue;
            }
            let k = owners.len();
            let node = (0..k)
                .map(|i| owners[(start + shard + i) % k])
                .min_by(|a, b| {
                    let load = |n: &NodeId| cost(n) * (1 + cover.get(n).map_or(0, Vec::len)) as f64;
                    load(a).partial_cmp(&load(b)).unwrap_or(std::cmp::Ordering::Equal)
                })
                .expect("owners is not empty");
            cover.entry(node.clone()).or_default().push(shard as ShardId);
        }
        if missing.is_empty() {
            return Ok(cover);
        }
        if best_missing.as_ref().is_none_or(|m| missing.len() < m.len()) {
            best_missing = Some(missing);
        }
    }
    Err(best_missing.unwrap_or_default())
}

/// `_miroir_shard IN [..]` for the shards a node answers for.
pub fn shard_filter(shards: &[ShardId]) -> String {
    let list = shards.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
    format!("{} IN [{list}]", crate::write::shard::SHARD_FIELD)
}

/// `[_miroir_shard IN [..], <the client's filter>]`: the client's filter (a string or an array of
/// conditions, ANDed) within some shards.
pub fn scoped_filter(shards: &[ShardId], filter: Option<&serde_json::Value>) -> serde_json::Value {
    use serde_json::Value;
    let mut parts = vec![Value::from(shard_filter(shards))];
    match filter {
        Some(Value::Array(more)) => parts.extend(more.iter().cloned()),
        Some(Value::Null) | None => {}
        Some(f) => parts.push(f.clone()),
    }
    Value::from(parts)
}
