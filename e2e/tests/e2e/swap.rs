//! Index swaps and renames end to end with real processes (coordinators, two gateways, dev nodes):
//! the swap is one map change, so each gateway shows the indexes unswapped below its version and
//! swapped from it on; the documents are searchable under the new names on both gateways and sit
//! on the nodes under those names. Needs the workspace binaries (`cargo build --workspace`).

use std::time::{Duration, Instant};

use miroir_devtools::harness::{ClusterSpec, TestCluster};
use serde_json::{json, Value};

use crate::common::{self, call};

async fn wait_task(gateway: &str, key: &str, uid: &Value) -> Value {
    common::wait_task(gateway, key, uid, Duration::from_secs(20)).await
}

async fn map_version(gateway: &str, key: &str) -> u64 {
    call(reqwest::Method::GET, &format!("{gateway}/_miroir/ready"), key, None).await.1["mapVersion"]
        .as_u64()
        .expect("mapVersion")
}

/// Every document's `v` found by searching `index` through `gateway`.
async fn origins(gateway: &str, key: &str, index: &str) -> (u16, Vec<String>) {
    let url = format!("{gateway}/indexes/{index}/search");
    let (s, r) = call(reqwest::Method::POST, &url, key, Some(&json!({"limit": 1000}))).await;
    let vs = r["hits"].as_array().map(|h| h.iter().map(|d| d["v"].as_str().unwrap().to_string()).collect());
    (s, vs.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_is_one_map_version_on_every_gateway() {
    let cluster = TestCluster::start(ClusterSpec { nodes: 3, gateways: 2, shards: 4, rf: 1, ..Default::default() });
    let key = cluster.master_key.clone();
    let (a, b) = (cluster.gateways[0].url.clone(), cluster.gateways[1].url.clone());
    use reqwest::Method as M;

    for (uid, n) in [("live", 40), ("staging", 30)] {
        let (s, t) = call(M::POST, &format!("{a}/indexes"), &key, Some(&json!({"uid": uid, "primaryKey": "id"}))).await;
        assert_eq!(s, 202, "{t}");
        assert_eq!(wait_task(&a, &key, &t["taskUid"]).await["status"], "succeeded");
        let docs: Vec<Value> = (0..n).map(|i| json!({"id": i, "v": uid})).collect();
        let (_, t) = call(M::POST, &format!("{a}/indexes/{uid}/documents"), &key, Some(&json!(docs))).await;
        assert_eq!(wait_task(&a, &key, &t["taskUid"]).await["status"], "succeeded");
    }
    let created = |g: String| {
        let key = key.clone();
        async move { call(M::GET, &format!("{g}/indexes/live"), &key, None).await.1["createdAt"].clone() }
    };
    let live_created = created(a.clone()).await;

    // Watch both gateways while the swap happens: (map version, swapped?) read consistently.
    let watch = |g: String| {
        let key = key.clone();
        let live_created = live_created.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let start = Instant::now();
            loop {
                let v1 = map_version(&g, &key).await;
                let (_, idx) = call(M::GET, &format!("{g}/indexes/live"), &key, None).await;
                let v2 = map_version(&g, &key).await;
                let swapped = idx["createdAt"] != live_created;
                if v1 == v2 {
                    seen.push((v1, swapped));
                }
                if swapped && v1 == v2 {
                    return seen;
                }
                assert!(start.elapsed() < Duration::from_secs(20), "{g} never showed the swap");
            }
        })
    };
    let (watch_a, watch_b) = (watch(a.clone()), watch(b.clone()));
    tokio::time::sleep(Duration::from_millis(100)).await;

    let body = json!([{"indexes": ["live", "staging"]}]);
    let (s, t) = call(M::POST, &format!("{b}/swap-indexes"), &key, Some(&body)).await;
    assert_eq!(s, 202, "{t}");
    assert_eq!((t["type"].clone(), t["indexUid"].clone()), (json!("indexSwap"), Value::Null));
    let task = wait_task(&b, &key, &t["taskUid"]).await;
    assert_eq!(task["status"], "succeeded", "{task}");
    assert_eq!(task["details"], json!({"swaps": [{"indexes": ["live", "staging"], "rename": false}]}));
    // One version V splits every observation of both gateways: below it unswapped, from it on
    // swapped (other map changes, such as node health, may come between, so V is not the latest).
    let seen: Vec<(u64, bool)> = [watch_a.await.unwrap(), watch_b.await.unwrap()].concat();
    let last_unswapped = seen.iter().filter(|(_, s)| !s).map(|(v, _)| *v).max();
    let first_swapped = seen.iter().filter(|(_, s)| *s).map(|(v, _)| *v).min().expect("seen swapped");
    assert!(last_unswapped.is_some_and(|v| v < first_swapped), "{seen:?}");
    let _ = &cluster;

    // Searchable under the new names through both gateways.
    for g in [&a, &b] {
        let (s, vs) = origins(g, &key, "live").await;
        assert_eq!((s, vs.len()), (200, 30));
        assert!(vs.iter().all(|v| v == "staging"));
        let (_, vs) = origins(g, &key, "staging").await;
        assert_eq!(vs.len(), 40);
        assert!(vs.iter().all(|v| v == "live"));
    }
    // An index keeps its own dates through the swap.
    assert_eq!(live_created, call(M::GET, &format!("{a}/indexes/staging"), &key, None).await.1["createdAt"]);

    // Rename through the other gateway, then the documents are on the nodes under the new name.
    let (s, t) = call(M::PATCH, &format!("{a}/indexes/live"), &key, Some(&json!({"uid": "archive"}))).await;
    assert_eq!(s, 202, "{t}");
    let task = wait_task(&a, &key, &t["taskUid"]).await;
    assert_eq!(task["status"], "succeeded", "{task}");
    assert_eq!(task["type"], "indexUpdate");
    assert_eq!(task["details"], json!({"primaryKey": null, "oldIndexUid": "live", "newIndexUid": "archive"}));
    let start = Instant::now();
    while call(M::GET, &format!("{b}/indexes/live"), &key, None).await.0 != 404 {
        assert!(start.elapsed() < Duration::from_secs(10), "gateway B still shows `live`");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, vs) = origins(&b, &key, "archive").await;
    assert_eq!(vs.len(), 30);
    let mut on_nodes = 0;
    for n in &cluster.nodes {
        let url = format!("{}/indexes/archive/documents?limit=1000", n.url);
        let (s, r) = call(M::GET, &url, &key, None).await;
        if s == 200 {
            on_nodes += r["results"].as_array().unwrap().len();
        }
        let (s, _) = call(M::GET, &format!("{}/indexes/live", n.url), &key, None).await;
        assert_eq!(s, 404, "node {} still has `live`", n.id);
    }
    assert_eq!(on_nodes, 30, "every copy moved to the new name (RF 1)");

    // Meilisearch's refusals.
    let dup = json!([{"indexes": ["archive", "staging"]}, {"indexes": ["staging", "x"]}]);
    let (s, e) = call(M::POST, &format!("{a}/swap-indexes"), &key, Some(&dup)).await;
    assert_eq!((s, e["code"].clone()), (400, json!("invalid_swap_duplicate_index_found")), "{e}");
    let (s, e) = call(M::POST, &format!("{a}/swap-indexes"), &key, Some(&json!([{"indexes": ["archive"]}]))).await;
    assert_eq!((s, e["code"].clone()), (400, json!("invalid_swap_indexes")), "{e}");
    let (s, t) =
        call(M::POST, &format!("{a}/swap-indexes"), &key, Some(&json!([{"indexes": ["archive", "nope"]}]))).await;
    assert_eq!(s, 202);
    let task = wait_task(&a, &key, &t["taskUid"]).await;
    assert_eq!((task["status"].clone(), task["error"]["code"].clone()), (json!("failed"), json!("index_not_found")));
    let body = json!([{"indexes": ["archive", "staging"], "rename": true}]);
    let (_, t) = call(M::POST, &format!("{a}/swap-indexes"), &key, Some(&body)).await;
    let task = wait_task(&a, &key, &t["taskUid"]).await;
    assert_eq!(task["error"]["code"], "index_already_exists", "{task}");
    let (_, t) = call(M::PATCH, &format!("{a}/indexes/archive"), &key, Some(&json!({"uid": "staging"}))).await;
    let task = wait_task(&a, &key, &t["taskUid"]).await;
    assert_eq!(
        (task["type"].clone(), task["error"]["code"].clone()),
        (json!("indexUpdate"), json!("index_already_exists"))
    );
    let (s, e) = call(M::PATCH, &format!("{a}/indexes/archive"), &key, Some(&json!({"uid": "bad name"}))).await;
    assert_eq!((s, e["code"].clone()), (400, json!("invalid_index_uid")));
}
