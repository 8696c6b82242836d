//! Scatter: one request per node of a covering set, each scoped to the shards that node answers
//! for, with failover to another in-sync copy when a node fails and a deadline for the whole read.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;
use futures::future::join_all;
use miroir::ids::{NodeId, ShardId};
use miroir::RoutingMap;
use miroir_node_client::{Method, NodeError, NodeRequest};
use serde_json::Value;

use crate::error::{AppError, AppResult, Code};
use crate::read::replicas::{covering_set_by, read_candidates};
use crate::read::Reads;

/// What a read does when some shard has no copy that answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingPolicy {
    /// Answer with what there is, naming the missing shards in `X-Miroir-Degraded`.
    #[default]
    Partial,
    /// Refuse with 503.
    Error,
}

/// One node's answer for a set of shards: the raw body, parsed only by the merge.
#[derive(Debug, Clone)]
pub struct ShardAnswer {
    pub node: NodeId,
    pub shards: Vec<ShardId>,
    pub body: Bytes,
}

#[derive(Debug, Default)]
pub struct Gathered {
    pub answers: Vec<ShardAnswer>,
    /// Shards no copy answered for.
    pub missing: Vec<ShardId>,
}

static ROUND_ROBIN: AtomicUsize = AtomicUsize::new(0);

/// Sends `build(shards)` as a POST to `path` on a covering set of `index`. A node that fails
/// (unreachable, 5xx, timeout) has its shards retried once on other in-sync copies, within the
/// same `deadline` for the whole read; a node's 4xx is the client's error, returned as it is.
pub async fn scatter(
    reads: Reads<'_>,
    map: &RoutingMap,
    index: &str,
    path: &str,
    build: impl Fn(&[ShardId]) -> Value,
    deadline: Duration,
    policy: MissingPolicy,
) -> AppResult<Gathered> {
    // One deadline for the whole read: a retry round gets what the first left.
    let until = Instant::now() + deadline;
    let start = ROUND_ROBIN.fetch_add(1, Ordering::Relaxed);
    let (cover, mut missing) = match covering_set_by(map, index, start, |n| reads.load.cost(n)) {
        Ok(c) => (c, vec![]),
        Err(_) => mixed_cover(map, index, start),
    };
    let mut gathered = Gathered::default();
    let failed = send_round(reads, map, path, &build, cover, until, &mut gathered).await?;
    if !failed.is_empty() {
        // Retry each failed shard on another in-sync copy, avoiding the nodes that just failed.
        let failed_nodes: Vec<&NodeId> = failed.iter().map(|(n, _)| n).collect();
        let mut retry: BTreeMap<NodeId, Vec<ShardId>> = BTreeMap::new();
        for shard in failed.iter().flat_map(|(_, s)| s.iter().copied()) {
            match read_candidates(map, index, shard).into_iter().find(|n| !failed_nodes.contains(&n)) {
                Some(node) => retry.entry(node).or_default().push(shard),
                None => missing.push(shard),
            }
        }
        for (_, shards) in send_round(reads, map, path, &build, retry, until, &mut gathered).await? {
            missing.extend(shards);
        }
    }
    missing.sort_unstable();
    missing.dedup();
    if !missing.is_empty() && policy == MissingPolicy::Error {
        return Err(AppError::new(
            Code::MIROIR_UNAVAILABLE,
            format!("No copy of shards {missing:?} of index `{index}` answered."),
        ));
    }
    gathered.missing = missing;
    Ok(gathered)
}

/// When no single group covers every shard: each shard from whichever group still has an
/// in-sync copy, and the shards with none at all.
fn mixed_cover(map: &RoutingMap, index: &str, start: usize) -> (BTreeMap<NodeId, Vec<ShardId>>, Vec<ShardId>) {
    let shards = map.indexes.get(index).map_or(0, |i| i.shards);
    let mut cover: BTreeMap<NodeId, Vec<ShardId>> = BTreeMap::new();
    let mut missing = vec![];
    for shard in 0..shards {
        let candidates = read_candidates(map, index, shard);
        match candidates.get(start % candidates.len().max(1)) {
            Some(node) => cover.entry(node.clone()).or_default().push(shard),
            None => missing.push(shard),
        }
    }
    (cover, missing)
}

async fn send_round(
    reads: Reads<'_>,
    map: &RoutingMap,
    path: &str,
    build: &impl Fn(&[ShardId]) -> Value,
    cover: BTreeMap<NodeId, Vec<ShardId>>,
    until: Instant,
    gathered: &mut Gathered,
) -> AppResult<Vec<(NodeId, Vec<ShardId>)>> {
    metrics::histogram!(crate::metrics::FANOUT, "kind" => "read").record(cover.len() as f64);
    let calls = cover.into_iter().map(|(node, shards)| {
        let url = map.nodes.get(&node).map(|n| n.url.clone()).unwrap_or_default();
        let req = NodeRequest::json(Method::Post, path, &build(&shards));
        async move {
            let deadline = until.saturating_duration_since(Instant::now());
            reads.load.start(&node);
            let sent = tokio::time::Instant::now();
            let result = match tokio::time::timeout(deadline, reads.nodes.send(&url, req)).await {
                Ok(Ok(resp)) if (200..300).contains(&resp.status) => Ok(resp.body),
                Ok(Ok(resp)) => Err(NodeError::Status {
                    status: resp.status,
                    body: serde_json::from_slice(&resp.body).unwrap_or(Value::Null),
                }),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(NodeError::Decode(format!("no answer within {deadline:?}"))),
            };
            // A node's 4xx is the client's error, not the node's slowness.
            let answered = matches!(&result, Ok(_) | Err(NodeError::Status { status: 400..=499, .. }));
            reads.load.finish(&node, sent.elapsed(), answered);
            (node, shards, result)
        }
    });
    let mut failed = vec![];
    for (node, shards, result) in join_all(calls).await {
        match result {
            Ok(body) => gathered.answers.push(ShardAnswer { node, shards, body }),
            Err(NodeError::Status { status, body }) if status < 500 => {
                return Err(AppError::forwarded(status, hide_shard_field(body)))
            }
            Err(e) => {
                metrics::counter!(crate::metrics::NODE_ERRORS, "kind" => "read").increment(1);
                tracing::warn!(%node, error = %e, "scatter request failed; retrying its shards elsewhere");
                failed.push((node, shards));
            }
        }
    }
    Ok(failed)
}

/// A node's error lists the attributes it may filter on, Miroir's shard field among them: the
/// client sees the list its own Meilisearch would give.
pub fn hide_shard_field(mut body: Value) -> Value {
    let field = crate::write::settings::SHARD_FIELD;
    if let Some(m) = body.get("message").and_then(Value::as_str) {
        // Meilisearch lists attributes as `a`, `b`; the dev node as `a, b`.
        let m = miroir::edit::without_shard_field(m);
        let m = m.replace(&format!(", {field}"), "").replace(&format!("{field}, "), "");
        body["message"] = Value::from(m);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_errors_do_not_name_the_shard_field() {
        let body = serde_json::json!({"message": "Available facets are: `genre, year, _miroir_shard`.", "code": "x"});
        assert_eq!(hide_shard_field(body)["message"], "Available facets are: `genre, year`.");
        let body = serde_json::json!({"message": "patterns are: `_miroir_shard, genre`."});
        assert_eq!(hide_shard_field(body)["message"], "patterns are: `genre`.");
    }
}
