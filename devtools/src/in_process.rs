//! The cluster the differential tests compare with one node: three nodes (S = 8, RF = 2) behind a
//! gateway served in this process over a `LocalCluster` (the kernel's `apply`, no Raft). The nodes,
//! and the one node compared with, are dev nodes, or real Meilisearch processes when `MEILI_BIN`
//! names a binary (see `harness::meili_bin`).

use std::sync::Arc;
use std::time::Duration;

use miroir::command::Command;
use miroir_devnode::{start, DevNode, DevNodeConfig};
use miroir_gateway::app::{router, AppState};
use miroir_gateway::cluster::local::LocalCluster;
use miroir_node_client::{HttpTransport, NodeClient};

use crate::harness::{free_port, http_get_status, meili_bin, wait_until, Proc};

/// A Meilisearch node of a differential test.
pub enum TestNode {
    Dev(DevNode),
    /// A real Meilisearch process (killed when dropped) and its data directory.
    Real {
        url: String,
        key: String,
        _proc: Proc,
        _data: tempfile::TempDir,
    },
}

impl TestNode {
    /// A dev node, or real Meilisearch under `MEILI_BIN`, with `key` as master key.
    pub async fn start(key: &str) -> TestNode {
        let Some(bin) = meili_bin() else {
            return TestNode::Dev(start(DevNodeConfig { listen: None, master_key: Some(key.into()) }).await.unwrap());
        };
        let data = tempfile::tempdir().expect("data dir");
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let mut cmd = std::process::Command::new(bin);
        cmd.args(["--http-addr", &format!("127.0.0.1:{port}"), "--master-key", key, "--no-analytics"])
            .arg("--db-path")
            .arg(data.path().join("db"));
        let proc = Proc::spawn_logged("meilisearch", &mut cmd, data.path()).expect("start meilisearch");
        let health = format!("{url}/health");
        let up = tokio::task::spawn_blocking(move || {
            wait_until(Duration::from_secs(30), || http_get_status(&health) == Some(200))
        })
        .await
        .unwrap();
        assert!(up, "meilisearch did not come up");
        TestNode::Real { url, key: key.into(), _proc: proc, _data: data }
    }

    pub fn url(&self) -> String {
        match self {
            TestNode::Dev(d) => d.url(),
            TestNode::Real { url, .. } => url.clone(),
        }
    }

    /// The dev node, for fault injection (a test skips that part against real Meilisearch).
    pub fn dev(&self) -> Option<&DevNode> {
        match self {
            TestNode::Dev(d) => Some(d),
            TestNode::Real { .. } => None,
        }
    }

    /// Waits until the node has no task enqueued or processing.
    pub async fn wait_idle(&self) {
        match self {
            TestNode::Dev(d) => d.wait_idle().await,
            TestNode::Real { url, key, .. } => {
                let http = reqwest::Client::new();
                let q = format!("{url}/tasks?statuses=enqueued,processing&limit=1");
                for _ in 0..6000 {
                    let r = http.get(&q).bearer_auth(key).send().await.expect("tasks");
                    let v: serde_json::Value = r.json().await.expect("tasks json");
                    if v["total"].as_u64() == Some(0) || v["results"].as_array().is_some_and(Vec::is_empty) {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                panic!("{url} never became idle");
            }
        }
    }
}

pub struct InProcessCluster {
    /// The gateway's base URL.
    pub gateway: String,
    /// The gateway's state, to change its settings during a test.
    pub app: Arc<AppState>,
    /// The nodes, to wait on and (dev nodes only) to inject faults into.
    pub nodes: Vec<TestNode>,
}

/// Starts the nodes and the gateway, every node and the gateway using `key` as master key.
pub async fn start_cluster(key: &str) -> InProcessCluster {
    let cluster = LocalCluster::new();
    cluster.apply(Command::AddGroup { id: "main".into() }).unwrap();
    let mut nodes = Vec::new();
    for i in 0..3 {
        let node = TestNode::start(key).await;
        cluster.apply(Command::AddNode { id: format!("n{i}"), url: node.url(), group: "main".into() }).unwrap();
        nodes.push(node);
    }
    cluster
        .apply(Command::SetDefaults { shards: Some(8), rf: Some(2), min_in_sync: None, task_retention: None })
        .unwrap();
    let app = AppState::new(
        cluster.clone(),
        NodeClient::new(Arc::new(HttpTransport::new(Some(key.into()), Duration::from_secs(10)))),
    );
    app.disable_fencing();
    tokio::spawn(miroir_gateway::cluster::sync::follow_map(app.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway = format!("http://{}", listener.local_addr().unwrap());
    let served = router(app.clone());
    tokio::spawn(async move { axum::serve(listener, served).await.unwrap() });
    tokio::time::sleep(Duration::from_millis(100)).await;
    InProcessCluster { gateway, app, nodes }
}
