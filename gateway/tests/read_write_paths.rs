//! The read and write paths driven without HTTP: the gateway's scatter-gather and fan-out over a
//! scripted node transport and an in-process cluster, each given only the handle it uses.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use miroir::command::Command;
use miroir::RoutingMap;
use miroir_gateway::cluster::local::LocalCluster;
use miroir_gateway::error::Code;
use miroir_gateway::read::load::NodeLoad;
use miroir_gateway::read::scatter::{scatter, MissingPolicy};
use miroir_gateway::read::Reads;
use miroir_gateway::write::fanout::{send, settle, write_target_copies};
use miroir_node_client::{NodeClient, NodeRequest, NodeResponse, NodeTransport, TransportError};
use serde_json::{json, Value};

/// How a scripted node answers.
#[derive(Clone, Copy, PartialEq)]
enum Node {
    /// Echoes the shards a search named and enqueues writes.
    Up,
    /// Unreachable.
    Down,
    /// Refuses every request as Meilisearch refuses a bad one.
    Refuses,
}

/// Nodes by URL, and every request each received.
struct Scripted {
    nodes: BTreeMap<String, Node>,
    seen: Mutex<Vec<(String, NodeRequest)>>,
}

impl NodeTransport for Scripted {
    fn send<'a>(&'a self, url: &'a str, req: NodeRequest) -> BoxFuture<'a, Result<NodeResponse, TransportError>> {
        Box::pin(async move {
            self.seen.lock().unwrap().push((url.to_string(), req.clone()));
            let answer = |status: u16, body: Value| Ok(NodeResponse { status, body: body.to_string().into() });
            match self.nodes.get(url).copied().unwrap_or(Node::Down) {
                Node::Down => Err(TransportError { url: url.into(), reason: "connection refused".into() }),
                Node::Refuses => answer(
                    400,
                    json!({"message": "Attribute `x` is not filterable. Available filterable attributes are: `_miroir_shard`, `genre`.",
                           "code": "invalid_search_filter", "type": "invalid_request",
                           "link": "https://docs.meilisearch.com/errors#invalid_search_filter"}),
                ),
                Node::Up if req.path.ends_with("/search") => {
                    let body: Value = serde_json::from_slice(req.body.as_deref().unwrap_or(b"{}")).unwrap();
                    answer(200, json!({"hits": [], "filter": body["filter"]}))
                }
                Node::Up => answer(202, json!({"taskUid": 7, "status": "enqueued"})),
            }
        })
    }
}

/// Two nodes holding every shard of index `i` (4 shards, RF 2), as committed by the kernel.
fn two_copies() -> (Arc<LocalCluster>, RoutingMap) {
    let cluster = LocalCluster::new();
    for cmd in [
        Command::AddGroup { id: "g".into() },
        Command::AddNode { id: "a".into(), url: "http://a".into(), group: "g".into() },
        Command::AddNode { id: "b".into(), url: "http://b".into(), group: "g".into() },
        Command::CreateIndex { uid: "i".into(), primary_key: Some("id".into()), shards: Some(4), rf: Some(2), at: 0 },
    ] {
        cluster.apply(cmd).unwrap();
    }
    let map = cluster.read(|s| s.routing_map());
    (cluster, map)
}

fn client(a: Node, b: Node) -> (NodeClient, Arc<Scripted>) {
    let nodes = BTreeMap::from([("http://a".to_string(), a), ("http://b".to_string(), b)]);
    let transport = Arc::new(Scripted { nodes, seen: Mutex::new(vec![]) });
    (NodeClient::new(transport.clone()), transport)
}

fn search_body(shards: &[u32]) -> Value {
    json!({"q": "", "filter": shards})
}

#[tokio::test]
async fn a_read_retries_a_failed_copys_shards_on_the_other_copy() {
    let (_, map) = two_copies();
    // Whichever copy the covering set starts with, every shard is answered once.
    for (a, b) in [(Node::Down, Node::Up), (Node::Up, Node::Down)] {
        let (nodes, _) = client(a, b);
        let load = NodeLoad::default();
        let reads = Reads { nodes: &nodes, load: &load };
        for _ in 0..2 {
            let got = scatter(
                reads,
                &map,
                "i",
                "/indexes/i/search",
                search_body,
                Duration::from_secs(5),
                MissingPolicy::Error,
            )
            .await
            .unwrap();
            assert!(got.missing.is_empty());
            let up = if a == Node::Up { "a" } else { "b" };
            assert!(got.answers.iter().all(|ans| ans.node == up), "only the live copy answered");
            let answered: Vec<u32> = got.answers.iter().flat_map(|ans| ans.shards.clone()).collect();
            let mut sorted = answered.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, [0, 1, 2, 3], "every shard exactly once");
        }
    }
}

#[tokio::test]
async fn a_read_no_copy_answers_is_an_error_or_names_the_missing_shards() {
    let (_, map) = two_copies();
    let (nodes, _) = client(Node::Down, Node::Down);
    let load = NodeLoad::default();
    let reads = Reads { nodes: &nodes, load: &load };
    let deadline = Duration::from_secs(5);
    let e =
        scatter(reads, &map, "i", "/indexes/i/search", search_body, deadline, MissingPolicy::Error).await.unwrap_err();
    assert_eq!(e.code, Code::MIROIR_UNAVAILABLE);
    let got =
        scatter(reads, &map, "i", "/indexes/i/search", search_body, deadline, MissingPolicy::Partial).await.unwrap();
    assert_eq!((got.answers.len(), got.missing), (0, vec![0, 1, 2, 3]));
}

#[tokio::test]
async fn a_nodes_refusal_is_the_clients_error_without_the_shard_field() {
    let (_, map) = two_copies();
    let (nodes, transport) = client(Node::Refuses, Node::Refuses);
    let load = NodeLoad::default();
    let reads = Reads { nodes: &nodes, load: &load };
    let e = scatter(reads, &map, "i", "/indexes/i/search", search_body, Duration::from_secs(5), MissingPolicy::Error)
        .await
        .unwrap_err();
    let body = e.body();
    assert_eq!(body["code"], "invalid_search_filter");
    assert!(!body["message"].as_str().unwrap().contains("_miroir_shard"), "{body}");
    let seen = transport.seen.lock().unwrap();
    let asked: BTreeSet<&str> = seen.iter().map(|(url, _)| url.as_str()).collect();
    assert_eq!(asked.len(), seen.len(), "a 4xx is not retried on another copy: {asked:?}");
}

#[tokio::test]
async fn a_write_a_copy_missed_marks_that_copy_stale_before_it_is_acknowledged() {
    let (cluster, map) = two_copies();
    let (nodes, _) = client(Node::Down, Node::Up);
    let per_node = ["a", "b"]
        .into_iter()
        .map(|n| {
            (
                n.to_string(),
                vec![NodeRequest::json(miroir_node_client::Method::Post, "/indexes/i/documents", &json!([{"id": 1}]))],
            )
        })
        .collect();
    let results = send(&nodes, &map, per_node).await;
    let outcome = settle(cluster.as_ref(), "i", results, |n| write_target_copies(&map, "i", n)).await.unwrap();
    assert_eq!(outcome.node_tasks, vec![("b".to_string(), 7)]);
    assert_eq!(outcome.degraded, BTreeSet::from([0, 1, 2, 3]));
    let stale: Vec<bool> = cluster
        .read(|s| s.placements["i"].iter().map(|groups| groups["g"].owner("a").is_some_and(|o| !o.in_sync)).collect());
    assert_eq!(stale, [true; 4], "a's copies are stale in the committed state");

    // No copy left to take a write: refused, nothing acknowledged.
    let (nodes, _) = client(Node::Down, Node::Down);
    let map = cluster.read(|s| s.routing_map());
    let per_node = BTreeMap::from([(
        "b".to_string(),
        vec![NodeRequest::json(miroir_node_client::Method::Post, "/indexes/i/documents", &json!([{"id": 2}]))],
    )]);
    let results = send(&nodes, &map, per_node).await;
    let e = settle(cluster.as_ref(), "i", results, |n| write_target_copies(&map, "i", n)).await.unwrap_err();
    assert!([Code::MIROIR_NO_QUORUM, Code::MIROIR_UNAVAILABLE].contains(&e.code), "{e:?}");
}
