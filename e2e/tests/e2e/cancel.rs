//! Task cancelation reaches the nodes, end to end with real processes: a write canceled before
//! any node processed it ends `canceled` (with `canceledBy`) and left nothing anywhere; one that
//! some copies processed before the cancelation reached them ends `succeeded` (the cancelation was
//! not effective) and the copies that did cancel it are marked stale, so reads never see the
//! difference. Needs the workspace binaries (`cargo build --workspace`).

use std::time::{Duration, Instant};

use miroir_devtools::harness::{ClusterSpec, TestCluster};
use serde_json::{json, Value};

use crate::common;

async fn call(method: reqwest::Method, url: &str, key: &str, body: Option<&Value>) -> (u16, Value, Option<String>) {
    let mut req = reqwest::Client::new().request(method, url).bearer_auth(key).timeout(Duration::from_secs(30));
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let degraded = resp.headers().get("x-miroir-degraded").and_then(|v| v.to_str().ok()).map(str::to_string);
    (status, resp.json().await.unwrap_or(Value::Null), degraded)
}

async fn wait_task(gateway: &str, key: &str, uid: &Value) -> Value {
    common::wait_task(gateway, key, uid, Duration::from_secs(20)).await
}

async fn pause(node: &str, paused: bool) {
    let r = reqwest::Client::new()
        .post(format!("{node}/_devnode/faults"))
        .json(&json!({"paused": paused}))
        .send()
        .await
        .expect("faults");
    assert_eq!(r.status().as_u16(), 200);
}

async fn hits(gateway: &str, key: &str) -> usize {
    let url = format!("{gateway}/indexes/books/search");
    let (s, r, _) = call(reqwest::Method::POST, &url, key, Some(&json!({"limit": 1000}))).await;
    assert_eq!(s, 200, "{r}");
    r["hits"].as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelation_reaches_every_copy() {
    if miroir_devtools::harness::meili_bin().is_some() {
        eprintln!("skipped with MEILI_BIN: pausing a node's queue is a dev node hook");
        return;
    }
    let cluster = TestCluster::start(ClusterSpec { nodes: 3, gateways: 1, shards: 4, rf: 2, ..Default::default() });
    let key = cluster.master_key.clone();
    let g = cluster.gateways[0].url.clone();
    let nodes: Vec<String> = cluster.nodes.iter().map(|n| n.url.clone()).collect();
    use reqwest::Method as M;
    let (_, t, _) =
        call(M::POST, &format!("{g}/indexes"), &key, Some(&json!({"uid": "books", "primaryKey": "id"}))).await;
    assert_eq!(wait_task(&g, &key, &t["taskUid"]).await["status"], "succeeded");

    // Canceled before any copy processed it: canceled, and nothing was added.
    for n in &nodes {
        pause(n, true).await;
    }
    let docs: Vec<Value> = (0..20).map(|i| json!({"id": i})).collect();
    let (s, add, _) = call(M::POST, &format!("{g}/indexes/books/documents"), &key, Some(&json!(docs))).await;
    assert_eq!(s, 202, "{add}");
    let (s, cancel, _) = call(M::POST, &format!("{g}/tasks/cancel?uids={}", add["taskUid"]), &key, None).await;
    assert_eq!((s, cancel["type"].clone()), (200, json!("taskCancelation")), "{cancel}");
    let t = wait_task(&g, &key, &add["taskUid"]).await;
    assert_eq!((t["status"].clone(), t["canceledBy"].clone()), (json!("canceled"), cancel["taskUid"].clone()), "{t}");
    for n in &nodes {
        pause(n, false).await;
    }
    assert_eq!(hits(&g, &key).await, 0);

    // Canceled too late on two copies: succeeded, and the copies that canceled are marked stale.
    pause(&nodes[0], true).await;
    let (_, add, degraded) = call(M::POST, &format!("{g}/indexes/books/documents"), &key, Some(&json!(docs))).await;
    assert_eq!(degraded, None, "every copy in sync before");
    let start = Instant::now();
    // Wait until the running copies processed it (seen through the task: processing).
    loop {
        let (_, t, _) = call(M::GET, &format!("{g}/tasks/{}", add["taskUid"]), &key, None).await;
        if t["status"] == "processing" {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{t}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, cancel, _) = call(M::POST, &format!("{g}/tasks/cancel?uids={}", add["taskUid"]), &key, None).await;
    let t = wait_task(&g, &key, &add["taskUid"]).await;
    assert_eq!((t["status"].clone(), t["canceledBy"].clone()), (json!("succeeded"), Value::Null), "{t}");
    let (_, c, _) = call(M::GET, &format!("{g}/tasks/{}", cancel["taskUid"]), &key, None).await;
    assert_eq!(c["status"], "succeeded");
    pause(&nodes[0], false).await;
    assert_eq!(hits(&g, &key).await, 20, "reads avoid the copies that canceled");
    let start = Instant::now();
    loop {
        let (_, _, degraded) =
            call(M::PUT, &format!("{g}/indexes/books/documents"), &key, Some(&json!([{"id": 0}]))).await;
        if degraded.is_some() {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "the copies that canceled were never marked stale");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
