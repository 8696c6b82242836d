//! The cluster the differential tests compare with one dev node: three dev nodes (S = 8, RF = 2)
//! behind a gateway served in this process over a `LocalCluster` (the kernel's `apply`, no Raft).

use std::sync::Arc;
use std::time::Duration;

use miroir::command::Command;
use miroir_gateway::app::{router, AppState};
use miroir_gateway::local::LocalCluster;
use miroir_node_client::{HttpTransport, NodeClient};

use crate::devnode::{start, DevNode, DevNodeConfig};

pub struct InProcessCluster {
    /// The gateway's base URL.
    pub gateway: String,
    /// The gateway's state, to change its settings during a test.
    pub app: Arc<AppState>,
    /// The nodes, to inject faults.
    pub nodes: Vec<DevNode>,
}

/// Starts the nodes and the gateway, every node and the gateway using `key` as master key.
pub async fn start_cluster(key: &str) -> InProcessCluster {
    let cluster = LocalCluster::new();
    cluster.apply(Command::AddGroup { id: "main".into() }).unwrap();
    let mut nodes = Vec::new();
    for i in 0..3 {
        let node = start(DevNodeConfig { listen: None, master_key: Some(key.into()) }).await.unwrap();
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
    tokio::spawn(miroir_gateway::sync::follow_map(app.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway = format!("http://{}", listener.local_addr().unwrap());
    let served = router(app.clone());
    tokio::spawn(async move { axum::serve(listener, served).await.unwrap() });
    tokio::time::sleep(Duration::from_millis(100)).await;
    InProcessCluster { gateway, app, nodes }
}
