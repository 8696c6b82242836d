//! The node client against a dev node that restarts under it: an idle pooled connection the node
//! dropped must not fail a call (that would mark a healthy copy stale).

use std::sync::Arc;
use std::time::Duration;

use miroir_devnode::{self as devnode, DevNodeConfig};
use miroir_node_client::{HttpTransport, NodeClient, NodeRequest};

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

/// A shard copy carries the documents' embeddings: Meilisearch leaves `_vectors` out of fetched
/// documents unless asked, and user-provided embeddings exist nowhere else (a migration that
/// forgot them would lose them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copied_shard_keeps_its_embeddings() {
    use miroir_node_client::shard::{fetch_page, wait_idle, write_docs};
    use miroir_node_client::Method;
    use serde_json::json;

    let (from, to) = (
        devnode::start(DevNodeConfig::default()).await.unwrap(),
        devnode::start(DevNodeConfig::default()).await.unwrap(),
    );
    let client = NodeClient::new(Arc::new(HttpTransport::new(None, Duration::from_secs(5))));
    let settings = json!({"filterableAttributes": ["_miroir_shard"], "embedders": {"e": {"source": "userProvided", "dimensions": 2}}});
    for node in [&from, &to] {
        let req = NodeRequest::json(Method::Post, "/indexes", &json!({"uid": "books", "primaryKey": "id"}));
        client.enqueue(&node.url(), req).await.unwrap();
        let req = NodeRequest::json(Method::Patch, "/indexes/books/settings", &settings);
        client.enqueue(&node.url(), req).await.unwrap();
    }
    let docs = json!([
        {"id": 1, "_miroir_shard": 3, "_vectors": {"e": [0.5, 1.0]}},
        {"id": 2, "_miroir_shard": 3, "_vectors": {"e": null}},
    ]);
    client.enqueue(&from.url(), NodeRequest::json(Method::Post, "/indexes/books/documents", &docs)).await.unwrap();
    wait_idle(&client, &from.url(), "books", Duration::from_secs(5)).await.unwrap();

    let (page, total) = fetch_page(&client, &from.url(), "books", 3, 0, 10, None).await.unwrap();
    assert_eq!(total, 2);
    assert_eq!(page[0]["_vectors"]["e"]["embeddings"], json!([[0.5, 1.0]]), "{page:?}");
    write_docs(&client, &to.url(), "books", "id", &page).await.unwrap();
    wait_idle(&client, &to.url(), "books", Duration::from_secs(5)).await.unwrap();
    let (copied, _) = fetch_page(&client, &to.url(), "books", 3, 0, 10, None).await.unwrap();
    assert_eq!(copied, page, "the copy is the same, embeddings included");
}
