//! The gateway and dev nodes under madsim: the gateway's real router and write and read paths, an
//! in-process cluster state (the kernel's `apply`, no Raft), and three dev nodes reached through
//! `miroir_devnode::transport::InMemoryNodes`, all on madsim's runtime and clock. No fault is
//! injected yet: this proves the stack runs deterministically in a simulation, the ground the
//! whole-cluster fault scenarios build on (docs/simulation.md).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use madsim::runtime::Runtime;
use miroir::command::Command;
use miroir_devnode::transport::InMemoryNodes;
use miroir_gateway::app::{router, AppState};
use miroir_gateway::cluster::local::LocalCluster;
use miroir_node_client::NodeClient;
use serde_json::{json, Value};
use tower::ServiceExt;

async fn call(gateway: &axum::Router, method: &str, uri: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    let resp = gateway.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// Writes 60 documents through the gateway and reads them back: the first search that counts them
/// all, and document 42 (nothing if the documents never all became searchable).
async fn scenario() -> Vec<Value> {
    let nodes = Arc::new(InMemoryNodes::default());
    let cluster = LocalCluster::new();
    cluster.apply(Command::AddGroup { id: "g".into() }).unwrap();
    for i in 1..=3 {
        let (node, worker) = miroir_devnode::in_memory(None);
        tokio::spawn(worker);
        let url = format!("http://node-{i}");
        nodes.add(url.clone(), node);
        cluster.apply(Command::AddNode { id: format!("node-{i}"), url, group: "g".into() }).unwrap();
    }
    let app = AppState::new(cluster.clone(), NodeClient::new(nodes));
    app.install(Arc::new(cluster.read(|s| s.routing_map())));
    app.disable_fencing();
    tokio::spawn(miroir_gateway::cluster::sync::follow_map(app.clone()));
    let gateway = router(app);

    let create = json!({"uid": "movies", "primaryKey": "id"});
    let (status, task) = call(&gateway, "POST", "/indexes", Some(create)).await;
    assert_eq!(status, 202, "{task}");
    let docs: Vec<Value> = (0..60).map(|i| json!({"id": i, "title": format!("movie {i}"), "year": 1950 + i})).collect();
    let (status, task) = call(&gateway, "POST", "/indexes/movies/documents", Some(Value::Array(docs))).await;
    assert_eq!(status, 202, "{task}");

    // The nodes process their tasks on their own workers; the gateway's searches see them once done.
    let search = json!({"q": "movie", "limit": 5});
    for _ in 0..200 {
        let (status, answer) = call(&gateway, "POST", "/indexes/movies/search", Some(search.clone())).await;
        if status == 200 && answer["estimatedTotalHits"] == 60 {
            let (_, doc) = call(&gateway, "GET", "/indexes/movies/documents/42", None).await;
            return vec![answer, doc];
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    vec![]
}

#[test]
fn a_gateway_over_dev_nodes_serves_writes_and_searches_in_a_simulation() {
    let run = |seed| Runtime::with_seed_and_config(seed, madsim::Config::default()).block_on(scenario());
    let seen = run(1);
    assert_eq!(seen.len(), 2, "the 60 documents were never all searchable");
    assert_eq!(seen[0]["hits"].as_array().map(Vec::len), Some(5), "{}", seen[0]);
    assert_eq!(seen[1], json!({"id": 42, "title": "movie 42", "year": 1992}));
    // The same seed gives the same run, answers included.
    assert_eq!(run(1), seen);
}
