//! The gateway's write path against real HTTP dev nodes, in one process: documents reach exactly
//! their RF × RG owners, read back by id and by browse, and a node that is down during a write is
//! marked stale instead of being silently left behind.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use miroir::command::Command;
use miroir::placement::shard_of;
use miroir_gateway::app::{router, AppState};
use miroir_gateway::local::LocalCluster;
use miroir_node_client::{HttpTransport, NodeClient};
use miroir_sim::devnode::{start, DevNode, DevNodeConfig};
use serde_json::{json, Value};

const KEY: &str = "gateway-writes-master-key";

struct Setup {
    gateway: String,
    cluster: Arc<LocalCluster>,
    nodes: BTreeMap<String, DevNode>,
    http: reqwest::Client,
    _server: tokio::task::JoinHandle<()>,
}

async fn setup(nodes: usize, shards: u32, rf: u32) -> Setup {
    let cluster = LocalCluster::new();
    cluster.apply(Command::AddGroup { id: "main".into() }).unwrap();
    let mut devnodes = BTreeMap::new();
    for i in 0..nodes {
        let node = start(DevNodeConfig { listen: None, master_key: Some(KEY.into()) }).await.unwrap();
        let id = format!("n{i}");
        cluster.apply(Command::AddNode { id: id.clone(), url: node.url(), group: "main".into() }).unwrap();
        devnodes.insert(id, node);
    }
    cluster
        .apply(Command::SetDefaults { shards: Some(shards), rf: Some(rf), min_in_sync: None, task_retention: None })
        .unwrap();
    let transport = HttpTransport::new(Some(KEY.into()), Duration::from_secs(5));
    let app = AppState::new(cluster.clone(), NodeClient::new(Arc::new(transport)));
    app.disable_fencing();
    tokio::spawn(miroir_gateway::sync::follow_map(app.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, router(app)).await.unwrap() });
    Setup { gateway, cluster, nodes: devnodes, http: reqwest::Client::new(), _server: server }
}

impl Setup {
    async fn send(&self, method: reqwest::Method, path: &str, ct: &str, body: Vec<u8>) -> (u16, Value) {
        let resp = self
            .http
            .request(method, format!("{}{path}", self.gateway))
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self.http.get(format!("{}{path}", self.gateway)).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn settle(&self) {
        for node in self.nodes.values() {
            node.wait_idle().await;
        }
    }

    /// Every document id each node holds for `index`, straight from the node.
    async fn held(&self, index: &str) -> BTreeMap<String, BTreeSet<String>> {
        let mut out = BTreeMap::new();
        for (id, node) in &self.nodes {
            let resp = self
                .http
                .post(format!("{}/indexes/{index}/documents/fetch", node.url()))
                .bearer_auth(KEY)
                .json(&json!({"limit": 1_000_000, "fields": ["id"]}))
                .send()
                .await
                .unwrap();
            let body: Value = resp.json().await.unwrap();
            let ids = body["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["id"].to_string().trim_matches('"').to_string())
                .collect();
            out.insert(id.clone(), ids);
        }
        out
    }
}

fn docs(range: std::ops::Range<u32>) -> Vec<Value> {
    range.map(|i| json!({"id": i, "title": format!("doc {i}"), "n": i % 7})).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_land_on_exactly_their_owners_and_read_back() {
    let s = setup(3, 8, 2).await;
    let (status, body) = s
        .send(
            reqwest::Method::POST,
            "/indexes",
            "application/json",
            br#"{"uid": "books", "primaryKey": "id"}"#.to_vec(),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["type"], "indexCreation");

    // 3,000 documents in three formats, in batches.
    let json_docs = docs(0..1000);
    let (status, body) = s
        .send(
            reqwest::Method::POST,
            "/indexes/books/documents",
            "application/json",
            serde_json::to_vec(&json_docs).unwrap(),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "enqueued");
    let ndjson: String = docs(1000..2000).iter().map(|d| format!("{d}\n")).collect();
    let (status, _) =
        s.send(reqwest::Method::PUT, "/indexes/books/documents", "application/x-ndjson", ndjson.into_bytes()).await;
    assert_eq!(status, 202);
    let csv: String = std::iter::once("id:number,title,n:number\n".to_string())
        .chain((2000..3000).map(|i| format!("{i},doc {i},{}\n", i % 7)))
        .collect();
    let (status, _) = s.send(reqwest::Method::POST, "/indexes/books/documents", "text/csv", csv.into_bytes()).await;
    assert_eq!(status, 202);
    s.settle().await;

    // Each document is on exactly its owners, and nowhere else.
    let held = s.held("books").await;
    let state = s.cluster.read(|st| st.clone());
    let mut expected: BTreeMap<String, BTreeSet<String>> =
        s.nodes.keys().map(|n| (n.clone(), BTreeSet::new())).collect();
    for i in 0..3000u32 {
        let shard = shard_of(&i.to_string(), 8);
        let owners = &state.placement("books", shard, "main").unwrap().owners;
        assert_eq!(owners.len(), 2);
        for o in owners {
            expected.get_mut(&o.node).unwrap().insert(i.to_string());
        }
    }
    assert_eq!(held, expected);

    // Read back through the gateway: by id, and by a globally paginated browse.
    for i in [0u32, 999, 1500, 2999] {
        let (status, doc) = s.get(&format!("/indexes/books/documents/{i}")).await;
        assert_eq!(status, 200);
        assert_eq!(doc, json!({"id": i, "title": format!("doc {i}"), "n": i % 7}), "no _miroir_shard leaks");
    }
    let (status, page) = s.get("/indexes/books/documents?offset=1495&limit=10").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["total"], 3000);
    let ids: Vec<u64> = page["results"].as_array().unwrap().iter().map(|d| d["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, (1495..1505).collect::<Vec<u64>>());
    let (status, missing) = s.get("/indexes/books/documents/424242").await;
    assert_eq!((status, missing["code"].as_str()), (404, Some("document_not_found")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_down_during_a_write_is_marked_stale_and_no_longer_read() {
    let mut s = setup(2, 4, 2).await;
    let (status, _) = s
        .send(reqwest::Method::POST, "/indexes", "application/json", br#"{"uid": "m", "primaryKey": "id"}"#.to_vec())
        .await;
    assert_eq!(status, 202);
    s.settle().await;
    s.nodes.get_mut("n1").unwrap().stop().await;

    let (status, body) = s
        .send(
            reqwest::Method::POST,
            "/indexes/m/documents",
            "application/json",
            serde_json::to_vec(&docs(0..200)).unwrap(),
        )
        .await;
    assert_eq!(status, 202, "acknowledged by the in-sync copy that took it: {body}");
    let state = s.cluster.read(|st| st.clone());
    for shard in 0..4 {
        let p = state.placement("m", shard, "main").unwrap();
        assert!(!p.owner("n1").unwrap().in_sync, "n1 missed the write: stale on shard {shard}");
        assert!(p.owner("n0").unwrap().in_sync);
    }
    s.settle().await;
    // Reads avoid the stale copy (which would answer 404 after a restart).
    s.nodes.get_mut("n1").unwrap().restart(true).await.unwrap();
    for i in 0..200u32 {
        let (status, _) = s.get(&format!("/indexes/m/documents/{i}")).await;
        assert_eq!(status, 200, "document {i}");
    }
    // With its last in-sync copy gone too, a write is refused rather than acknowledged.
    s.nodes.get_mut("n0").unwrap().stop().await;
    let (status, body) = s
        .send(
            reqwest::Method::POST,
            "/indexes/m/documents",
            "application/json",
            serde_json::to_vec(&docs(500..510)).unwrap(),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (503, Some("miroir_no_quorum")), "{body}");
}
