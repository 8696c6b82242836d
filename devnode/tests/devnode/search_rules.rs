//! Dynamic search rules on the dev node, checked against the answers of Meilisearch 1.50's own
//! tests (`crates/meilisearch/tests/dynamic_search_rules/mod.rs`): routes, tasks, errors, and pins
//! in searches (filters, pagination, totals, facets, precedence, the feature switch).

use std::time::{Duration, Instant};

use miroir_devnode::{self as devnode, DevNodeConfig};
use serde_json::{json, Value};

struct Node {
    c: reqwest::Client,
    url: String,
}

impl Node {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut r = self.c.request(m, format!("{}{path}", self.url));
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn wait(&self, task: &Value) -> Value {
        let start = Instant::now();
        loop {
            let (_, t) = self.call("GET", &format!("/tasks/{}", task["taskUid"]), None).await;
            if matches!(t["status"].as_str(), Some("succeeded" | "failed")) {
                return t;
            }
            assert!(start.elapsed() < Duration::from_secs(5), "{t}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn ok(&self, method: &str, path: &str, body: Value) -> Value {
        let (s, t) = self.call(method, path, Some(body)).await;
        assert_eq!(s, 202, "{path}: {t}");
        let done = self.wait(&t).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        done
    }

    async fn search(&self, body: Value) -> Value {
        let (s, v) = self.call("POST", "/indexes/movies/search", Some(body)).await;
        assert_eq!(s, 200, "{v}");
        v
    }
}

fn ids(v: &Value) -> Vec<String> {
    v["hits"].as_array().unwrap().iter().map(|h| h["id"].as_str().unwrap().to_string()).collect()
}

fn pin(id: &str, position: u32) -> Value {
    json!({"selector": {"id": id}, "action": {"type": "pin", "position": position}})
}

async fn node() -> (devnode::DevNode, Node) {
    let n = devnode::start(DevNodeConfig::default()).await.expect("start");
    let node = Node { c: reqwest::Client::new(), url: n.url() };
    (n, node)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_tasks_and_errors() {
    let (_n, node) = node().await;
    let (s, e) = node.call("POST", "/dynamic-search-rules", Some(json!({}))).await;
    assert_eq!((s, e["code"].as_str()), (400, Some("feature_not_enabled")));
    assert_eq!(e["message"], "Calling the `POST /dynamic-search-rules` route requires enabling the `dynamic search rules` experimental feature. See https://github.com/orgs/meilisearch/discussions/884");
    node.call("PATCH", "/experimental-features", Some(json!({"dynamicSearchRules": true}))).await;

    let (s, list) = node.call("POST", "/dynamic-search-rules", Some(json!({}))).await;
    assert_eq!((s, list), (200, json!({"results": [], "offset": 0, "limit": 20, "total": 0})));
    let (s, t) = node.call("PATCH", "/dynamic-search-rules/rule-1", Some(json!({"actions": [pin("42", 1)]}))).await;
    assert_eq!(s, 202);
    assert_eq!(
        (t["type"].as_str(), t["indexUid"].as_str(), t["status"].as_str()),
        (Some("dsrUpdate"), Some(".meili_dsr"), Some("enqueued"))
    );
    let done = node.wait(&t).await;
    assert_eq!(done["details"], json!({"rule": {"actions": [pin("42", 1)]}, "updatedRules": 1}));
    let (s, mut rule) = node.call("GET", "/dynamic-search-rules/rule-1", None).await;
    assert_eq!(s, 200);
    assert!(rule["lastUpdatedAt"].is_string());
    rule.as_object_mut().unwrap().remove("lastUpdatedAt");
    assert_eq!(rule, json!({"uid": "rule-1", "active": true, "conditions": {}, "actions": [pin("42", 1)]}));

    let (s, e) = node.call("GET", "/dynamic-search-rules/no-such-rule", None).await;
    assert_eq!((s, e["code"].as_str()), (404, Some("dynamic_search_rule_not_found")));
    assert_eq!(e["message"], "Dynamic search rule `no-such-rule` not found.");
    let (s, e) = node.call("PATCH", "/dynamic-search-rules/x", Some(json!({"bogusField": 42}))).await;
    assert_eq!((s, e["code"].as_str()), (400, Some("bad_request")));
    let (s, _) = node.call("DELETE", "/dynamic-search-rules/phantom", None).await;
    assert_eq!(s, 202, "deleting a missing rule is a task that succeeds");
    let cleared = node.ok("DELETE", "/dynamic-search-rules", Value::Null).await;
    assert_eq!(
        (cleared["type"].as_str(), cleared["details"]["deletedDocuments"].as_u64()),
        (Some("dsrClear"), Some(1))
    );
    let (_, list) = node.call("POST", "/dynamic-search-rules", Some(json!({}))).await;
    assert_eq!(list["total"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pins_in_searches() {
    let (_n, node) = node().await;
    node.call("PATCH", "/experimental-features", Some(json!({"dynamicSearchRules": true}))).await;
    node.ok("POST", "/indexes", json!({"uid": "movies", "primaryKey": "id"})).await;
    node.ok("PATCH", "/indexes/movies/settings", json!({"filterableAttributes": ["kind", "color"]})).await;
    let docs = json!([
        { "id": "organic-match", "title": "Batman Returns", "kind": "keep", "color": "red" },
        { "id": "pinned-query-miss", "title": "The Matrix", "kind": "keep", "color": "blue" },
        { "id": "filtered-pin", "title": "Batman Returns", "kind": "drop", "color": "green" }
    ]);
    node.ok("POST", "/indexes/movies/documents", docs).await;
    node.ok(
        "PATCH",
        "/dynamic-search-rules/r",
        json!({"conditions": {"query": {"words": "returns"}},
        "actions": [pin("pinned-query-miss", 0), pin("filtered-pin", 1)]}),
    )
    .await;

    // Meilisearch's `search_counts_pins_that_miss_query` and `..._facet_distribution_...`.
    let v = node.search(json!({"q": "Batman Returns", "filter": "kind = keep", "facets": ["color"], "showRankingScoreDetails": true})).await;
    assert_eq!(ids(&v), ["pinned-query-miss", "organic-match"]);
    assert_eq!(v["estimatedTotalHits"], 2);
    assert_eq!(v["facetDistribution"], json!({"color": {"blue": 1, "red": 1}}));
    assert_eq!(v["hits"][0]["_rankingScoreDetails"], json!({"pin": {"order": 0, "position": 0}}));
    let v = node.search(json!({"q": "Batman Returns", "filter": "kind = keep", "page": 2, "hitsPerPage": 1})).await;
    assert_eq!(ids(&v), ["organic-match"]);
    assert_eq!((v["totalHits"].as_u64(), v["totalPages"].as_u64()), (Some(2), Some(2)));
    // Without the filter the second pin survives; without `returns` the rule does not apply.
    assert_eq!(
        ids(&node.search(json!({"q": "batman returns"})).await),
        ["pinned-query-miss", "filtered-pin", "organic-match"]
    );
    assert_eq!(ids(&node.search(json!({"q": "batman"})).await), ["organic-match", "filtered-pin"]);

    // Pins past the organic results are pumped forward (`search_pumps_pins_when_organic_results_run_out`).
    node.ok(
        "PATCH",
        "/dynamic-search-rules/r",
        json!({"conditions": null, "actions": [pin("pinned-query-miss", 10), pin("filtered-pin", 20)]}),
    )
    .await;
    let v = node.search(json!({"q": "batman", "limit": 10})).await;
    assert_eq!(ids(&v), ["organic-match", "pinned-query-miss", "filtered-pin"]);
    assert_eq!(ids(&node.search(json!({"q": "batman", "offset": 1, "limit": 1})).await), ["pinned-query-miss"]);

    // Precedence first, rules without one after (`search_applies_precedenceless_rules`).
    node.ok("DELETE", "/dynamic-search-rules", Value::Null).await;
    node.ok("PATCH", "/dynamic-search-rules/a", json!({"actions": [pin("organic-match", 1)]})).await;
    node.ok("PATCH", "/dynamic-search-rules/b", json!({"precedence": 10, "actions": [pin("filtered-pin", 0)]})).await;
    assert_eq!(ids(&node.search(json!({"q": "missing"})).await), ["filtered-pin", "organic-match"]);

    // Switching the feature off stops pinning and keeps the rules.
    node.call("PATCH", "/experimental-features", Some(json!({"dynamicSearchRules": false}))).await;
    assert!(ids(&node.search(json!({"q": "missing"})).await).is_empty());
}
