//! The node client against a dev node that restarts under it: an idle pooled connection the node
//! dropped must not fail a call (that would mark a healthy copy stale).

use std::sync::Arc;
use std::time::Duration;

use miroir_node_client::{HttpTransport, NodeClient, NodeRequest};
use miroir_sim::devnode::{self, DevNodeConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_survive_a_node_restart_that_dropped_pooled_connections() {
    let mut node = devnode::start(DevNodeConfig::default()).await.expect("start");
    let client = NodeClient::new(Arc::new(HttpTransport::new(None, Duration::from_secs(5))));
    let url = node.url();
    for round in 0..300 {
        client.json(&url, NodeRequest::get("/health")).await.expect("before restart");
        node.restart(round % 2 == 0).await.expect("restart");
        let r = client.json(&url, NodeRequest::get("/health")).await;
        assert!(r.is_ok(), "round {round}: first call after a restart failed: {r:?}");
    }
}
