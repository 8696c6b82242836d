//! API keys end to end with real processes (coordinators, two gateways, nodes): the default keys
//! exist once for the whole cluster, with the same values on every gateway; a key created through
//! one gateway authorises requests on the other as soon as that gateway's map carries it, and stops
//! once deleted through either. Needs the workspace binaries (`cargo build --workspace`).

use std::time::{Duration, Instant};

use miroir_devtools::harness::{ClusterSpec, TestCluster};
use miroir_gateway::http::auth::token::sign;
use serde_json::{json, Value};

use crate::common::call;

/// Retries `f` until it gives `want` (a gateway's map follows the coordinator's commits by a push,
/// not instantly); returns how long it took.
async fn until<F, Fut>(what: &str, want: u16, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = (u16, Value)>,
{
    let start = Instant::now();
    loop {
        let (s, body) = f().await;
        if s == want {
            return start.elapsed();
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{what}: still {s} {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_task(gateway: &str, key: &str, uid: &Value) {
    let url = format!("{gateway}/tasks/{uid}");
    until("task", 200, || async {
        let (_, t) = call(reqwest::Method::GET, &url, key, None).await;
        let done = matches!(t["status"].as_str(), Some("succeeded" | "failed"));
        (if done { 200 } else { 0 }, t)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_cluster_wide_across_gateways() {
    let cluster = TestCluster::start(ClusterSpec { nodes: 2, gateways: 2, shards: 4, rf: 1, ..Default::default() });
    let master = cluster.master_key.clone();
    let (a, b) = (cluster.gateways[0].url.clone(), cluster.gateways[1].url.clone());
    use reqwest::Method as M;

    // The default keys: created once (both gateways raced to propose them), the same on both.
    let list = |g: String| {
        let master = master.clone();
        async move { call(M::GET, &format!("{g}/keys"), &master, None).await }
    };
    until("default keys", 200, || async {
        let (s, l) = list(a.clone()).await;
        (if s == 200 && l["total"] == 4 { 200 } else { 0 }, l)
    })
    .await;
    let (_, on_a) = list(a.clone()).await;
    until("same keys on B", 200, || async {
        let (s, on_b) = list(b.clone()).await;
        (if s == 200 && on_b == on_a { 200 } else { 0 }, on_b)
    })
    .await;
    let admin = on_a["results"].as_array().unwrap().iter().find(|k| k["name"] == "Default Admin API Key").unwrap();
    let admin = admin["key"].as_str().unwrap().to_string();

    // Data through A with the default admin key.
    let (s, t) =
        call(M::POST, &format!("{a}/indexes"), &admin, Some(&json!({"uid": "movies", "primaryKey": "id"}))).await;
    assert_eq!(s, 202, "{t}");
    wait_task(&a, &admin, &t["taskUid"]).await;
    let settings = json!({"filterableAttributes": ["tenant"]});
    let (_, t) = call(M::PATCH, &format!("{a}/indexes/movies/settings"), &admin, Some(&settings)).await;
    wait_task(&a, &admin, &t["taskUid"]).await;
    let docs: Vec<Value> = (0..40).map(|i| json!({"id": i, "tenant": i % 2})).collect();
    let (_, t) = call(M::POST, &format!("{a}/indexes/movies/documents"), &admin, Some(&json!(docs))).await;
    wait_task(&a, &admin, &t["taskUid"]).await;

    // A key created through A authorises on B.
    let body = json!({"actions": ["search"], "indexes": ["movies"], "expiresAt": null});
    let (s, key) = call(M::POST, &format!("{a}/keys"), &master, Some(&body)).await;
    assert_eq!(s, 201, "{key}");
    let value = key["key"].as_str().unwrap().to_string();
    let (s, _) = call(M::POST, &format!("{a}/indexes/movies/search"), &value, Some(&json!({}))).await;
    assert_eq!(s, 200, "the creating gateway answers only once its own map has the key");
    let empty = json!({});
    let search_b = format!("{b}/indexes/movies/search");
    let took = until("key on B", 200, || call(M::POST, &search_b, &value, Some(&empty))).await;
    eprintln!("key usable on gateway B {took:?} after its creation was acknowledged by A");
    let (s, _) = call(M::GET, &format!("{b}/indexes/movies/documents"), &value, None).await;
    assert_eq!(s, 403, "the key grants search only");

    // Its tenant tokens work on B too, with their filter.
    let claims = json!({"searchRules": {"movies": {"filter": "tenant = 1"}}, "apiKeyUid": key["uid"]});
    let token = sign("HS256", &value, &claims);
    let (s, r) = call(M::POST, &search_b, &token, Some(&json!({"limit": 100}))).await;
    assert_eq!((s, r["estimatedTotalHits"].clone()), (200, json!(20)), "{r}");
    assert!(r["hits"].as_array().unwrap().iter().all(|h| h["tenant"] == 1));

    // Deleted through B: refused on A.
    let (s, _) = call(M::DELETE, &format!("{b}/keys/{value}"), &master, None).await;
    assert_eq!(s, 204);
    let search_a = format!("{a}/indexes/movies/search");
    until("key gone on A", 403, || call(M::POST, &search_a, &value, Some(&empty))).await;
    until("token gone on A", 403, || call(M::POST, &search_a, &token, Some(&empty))).await;
}
