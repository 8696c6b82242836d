//! Task cancelation and deletion reach the nodes: a Miroir task is the sum of its node tasks, so
//! canceling it asks every node to cancel its share (`POST /tasks/cancel?uids=…`), and deleting
//! it deletes them (`DELETE /tasks?uids=…`). The task tracker then folds what the nodes did: the
//! Miroir task is `canceled` once every node task was, or finishes as they did when the
//! cancelation came too late on some node, in which case the copies that canceled it are marked
//! stale (`miroir::cancel`), never left silently different.

use std::collections::BTreeMap;

use futures::future::join_all;
use miroir::ids::NodeId;
use miroir::task::Task;
use miroir::RoutingMap;
use miroir_node_client::{Method, NodeClient, NodeRequest};

/// Most node task uids in one request: keeps the query string short.
const MAX_UIDS: usize = 200;

/// Asks the nodes to cancel the unfinished node tasks of `tasks`.
pub async fn cancel_on_nodes(nodes: &NodeClient, map: &RoutingMap, tasks: &[Task]) {
    let per_node = group(tasks.iter().filter(|t| !t.status.is_finished()), |nt| !nt.status.is_finished());
    let post = |uids: &str| NodeRequest {
        method: Method::Post,
        path: format!("/tasks/cancel?uids={uids}"),
        body: None,
        content_type: None,
    };
    send(nodes, map, per_node, post).await;
}

/// Deletes on the nodes the node tasks of the finished `tasks` (the Miroir tasks just deleted).
pub async fn delete_on_nodes(nodes: &NodeClient, map: &RoutingMap, tasks: &[Task]) {
    let per_node = group(tasks.iter().filter(|t| t.status.is_finished()), |_| true);
    send(nodes, map, per_node, |uids| NodeRequest::delete(format!("/tasks?uids={uids}"))).await;
}

fn group<'a>(
    tasks: impl Iterator<Item = &'a Task>,
    keep: impl Fn(&miroir::task::NodeTask) -> bool,
) -> BTreeMap<NodeId, Vec<u64>> {
    let mut out: BTreeMap<NodeId, Vec<u64>> = BTreeMap::new();
    for nt in tasks.flat_map(|t| &t.node_tasks).filter(|nt| keep(nt)) {
        out.entry(nt.node.clone()).or_default().push(nt.uid);
    }
    out
}

/// Sends each node its requests. A node that misses a cancelation processes the write; the
/// tracker sees it succeed and the copies that did cancel are marked stale. One that misses a
/// deletion keeps task records nobody reads through Miroir.
async fn send(
    nodes: &NodeClient,
    map: &RoutingMap,
    per_node: BTreeMap<NodeId, Vec<u64>>,
    request: impl Fn(&str) -> NodeRequest,
) {
    let calls = per_node.into_iter().flat_map(|(node, uids)| {
        let url = map.nodes.get(&node).map(|n| n.url.clone());
        uids.chunks(MAX_UIDS)
            .map(|c| (node.clone(), url.clone(), request(&c.iter().map(u64::to_string).collect::<Vec<_>>().join(","))))
            .collect::<Vec<_>>()
    });
    let calls = calls.map(|(node, url, req)| async move {
        let Some(url) = url else { return };
        if let Err(e) = nodes.enqueue(&url, req).await {
            tracing::warn!(%node, error = %e, "node task cancelation or deletion not taken");
        }
    });
    join_all(calls).await;
}
