//! Dynamic search rules in a real cluster (coordinators over Raft and RocksDB, dev node processes,
//! two gateway processes): a rule committed through one gateway is served and applied by the
//! other as soon as it installs the map that carries it; its task is `dsrUpdate`, succeeded.

use std::time::{Duration, Instant};

use miroir_devtools::harness::{ClusterSpec, TestCluster};
use serde_json::{json, Value};

async fn call(
    http: &reqwest::Client,
    key: &str,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = http.request(method, url).bearer_auth(key).timeout(Duration::from_secs(60));
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn wait_task(http: &reqwest::Client, key: &str, gateway: &str, task: &Value) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let url = format!("{gateway}/tasks/{}", task["taskUid"]);
        let (_, t) = call(http, key, reqwest::Method::GET, &url, None).await;
        if matches!(t["status"].as_str(), Some("succeeded" | "failed" | "canceled")) {
            return t;
        }
        assert!(Instant::now() < deadline, "task did not finish: {t}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ids(v: &Value) -> Vec<String> {
    v["hits"].as_array().unwrap().iter().map(|h| h["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_committed_through_one_gateway_pins_in_the_other() {
    let cluster = TestCluster::start(ClusterSpec { gateways: 2, ..ClusterSpec::default() });
    let (http, key) = (reqwest::Client::new(), cluster.master_key.clone());
    let (a, b) = (cluster.gateways[0].url.clone(), cluster.gateways[1].url.clone());
    use reqwest::Method as M;

    let (s, f) =
        call(&http, &key, M::PATCH, &format!("{a}/experimental-features"), Some(json!({"dynamicSearchRules": true})))
            .await;
    assert_eq!((s, &f["dynamicSearchRules"]), (200, &json!(true)), "{f}");
    let (_, t) =
        call(&http, &key, M::POST, &format!("{a}/indexes"), Some(json!({"uid": "movies", "primaryKey": "id"}))).await;
    assert_eq!(wait_task(&http, &key, &a, &t).await["status"], "succeeded");
    let (_, t) = call(
        &http,
        &key,
        M::PATCH,
        &format!("{a}/indexes/movies/settings"),
        Some(json!({"filterableAttributes": ["kind"]})),
    )
    .await;
    assert_eq!(wait_task(&http, &key, &a, &t).await["status"], "succeeded");
    let docs = json!([
        {"id": "organic-match", "title": "Batman Returns", "kind": "keep"},
        {"id": "pinned-query-miss", "title": "The Matrix", "kind": "keep"},
        {"id": "filtered-pin", "title": "Batman Returns", "kind": "drop"}
    ]);
    let (_, t) = call(&http, &key, M::POST, &format!("{a}/indexes/movies/documents"), Some(docs)).await;
    assert_eq!(wait_task(&http, &key, &a, &t).await["status"], "succeeded");

    let rule = json!({"conditions": {"query": {"words": "returns"}}, "actions": [
        {"selector": {"id": "pinned-query-miss"}, "action": {"type": "pin", "position": 0}},
        {"selector": {"id": "filtered-pin"}, "action": {"type": "pin", "position": 1}}
    ]});
    let (s, t) = call(&http, &key, M::PATCH, &format!("{a}/dynamic-search-rules/promo"), Some(rule)).await;
    assert_eq!((s, t["type"].as_str(), t["indexUid"].as_str()), (202, Some("dsrUpdate"), Some(".meili_dsr")), "{t}");
    let done = wait_task(&http, &key, &b, &t).await;
    assert_eq!((done["status"].as_str(), done["details"]["updatedRules"].as_u64()), (Some("succeeded"), Some(1)));

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (s, r) = call(&http, &key, M::GET, &format!("{b}/dynamic-search-rules/promo"), None).await;
        if s == 200 {
            assert_eq!(r["actions"][0]["selector"]["id"], "pinned-query-miss");
            break;
        }
        assert!(Instant::now() < deadline, "gateway B never served the rule: {r}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let search = |body: Value| {
        let (http, key, b) = (http.clone(), key.clone(), b.clone());
        async move { call(&http, &key, M::POST, &format!("{b}/indexes/movies/search"), Some(body)).await.1 }
    };
    let v = search(json!({"q": "Batman Returns", "filter": "kind = keep"})).await;
    assert_eq!(ids(&v), ["pinned-query-miss", "organic-match"], "{v}");
    assert_eq!(v["estimatedTotalHits"], 2);
    let v = search(json!({"q": "Batman Returns"})).await;
    assert_eq!(ids(&v), ["pinned-query-miss", "filtered-pin", "organic-match"], "{v}");
    // Without `returns` the rule does not apply.
    let v = search(json!({"q": "batman"})).await;
    assert!(!ids(&v).contains(&"pinned-query-miss".to_string()) && v["estimatedTotalHits"] == 2, "{v}");

    let (s, _) = call(&http, &key, M::DELETE, &format!("{b}/dynamic-search-rules"), None).await;
    assert_eq!(s, 202);
    let v = search(json!({"q": "Batman Returns", "filter": "kind = keep"})).await;
    assert_eq!(ids(&v), ["organic-match"], "{v}");
}
