//! Task cancelation and deletion on the dev node, as Meilisearch 1.50 does them: a cancelation
//! runs before the tasks it cancels, which end `canceled` with `canceledBy` and leave nothing
//! behind; deletion removes finished tasks only.

use std::time::{Duration, Instant};

use miroir_devnode::{self as devnode, DevNodeConfig};
use serde_json::{json, Value};

async fn task(c: &reqwest::Client, url: &str, uid: &Value) -> Value {
    let start = Instant::now();
    loop {
        let t: Value = c.get(format!("{url}/tasks/{uid}")).send().await.unwrap().json().await.unwrap();
        if matches!(t["status"].as_str(), Some("succeeded" | "failed" | "canceled")) {
            return t;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "{t}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelation_and_deletion() {
    let node = devnode::start(DevNodeConfig::default()).await.expect("start");
    let (c, url) = (reqwest::Client::new(), node.url());
    let post = |path: &str, body: Value| c.post(format!("{url}{path}")).json(&body).send();
    let created: Value = post("/indexes", json!({"uid": "a", "primaryKey": "id"})).await.unwrap().json().await.unwrap();
    task(&c, &url, &created["taskUid"]).await;

    node.set_paused(true);
    let add: Value = post("/indexes/a/documents", json!([{"id": 1}])).await.unwrap().json().await.unwrap();
    let r = c.post(format!("{url}/tasks/cancel?uids={}", add["taskUid"])).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "Meilisearch answers 200 here");
    let cancel: Value = r.json().await.unwrap();
    let done = task(&c, &url, &cancel["taskUid"]).await;
    assert_eq!(done["details"]["canceledTasks"], 1, "{done}");
    let t = task(&c, &url, &add["taskUid"]).await;
    assert_eq!((t["status"].clone(), t["canceledBy"].clone()), (json!("canceled"), cancel["taskUid"].clone()));
    assert_eq!(t["details"]["indexedDocuments"], 0);
    node.set_paused(false);
    let r = c.get(format!("{url}/indexes/a/documents/1")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404, "a canceled addition adds nothing");
    let by: Value =
        c.get(format!("{url}/tasks?canceledBy={}", cancel["taskUid"])).send().await.unwrap().json().await.unwrap();
    assert_eq!(by["total"], 1);

    // Deletion: finished tasks go, an enqueued one stays.
    node.set_paused(true);
    let waiting: Value = post("/indexes/a/documents", json!([{"id": 2}])).await.unwrap().json().await.unwrap();
    let q = format!("uids={},{},{}", created["taskUid"], add["taskUid"], waiting["taskUid"]);
    let del: Value = c.delete(format!("{url}/tasks?{q}")).send().await.unwrap().json().await.unwrap();
    let done = task(&c, &url, &del["taskUid"]).await;
    assert_eq!(
        (done["details"]["matchedTasks"].clone(), done["details"]["deletedTasks"].clone()),
        (json!(3), json!(2))
    );
    assert_eq!(c.get(format!("{url}/tasks/{}", created["taskUid"])).send().await.unwrap().status().as_u16(), 404);
    node.set_paused(false);
    assert_eq!(task(&c, &url, &waiting["taskUid"]).await["status"], "succeeded");
}
