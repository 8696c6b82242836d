//! Fault hooks of the dev node, in process and over HTTP.

use std::time::{Duration, Instant};

use miroir_devnode::{self as devnode, DevNodeConfig};
use serde_json::{json, Value};

async fn health(client: &reqwest::Client, url: &str) -> Result<u16, reqwest::Error> {
    client.get(format!("{url}/health")).send().await.map(|r| r.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_next_delay_stop_and_restart() {
    let mut node = devnode::start(DevNodeConfig::default()).await.expect("start");
    // No pooled connections: a restart drops the server side of an idle kept-alive connection, and
    // reusing it would fail the request for a reason that has nothing to do with the node.
    let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let url = node.url();

    node.fail_next(2);
    assert_eq!(health(&client, &url).await.unwrap(), 500);
    assert_eq!(health(&client, &url).await.unwrap(), 500);
    assert_eq!(health(&client, &url).await.unwrap(), 200);

    node.set_delay(Duration::from_millis(150));
    let t = Instant::now();
    assert_eq!(health(&client, &url).await.unwrap(), 200);
    assert!(t.elapsed() >= Duration::from_millis(150));
    node.clear_faults();

    let r = client.post(format!("{url}/indexes")).json(&json!({"uid": "a"})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 202);
    node.wait_idle().await;

    node.stop().await;
    assert!(health(&client, &url).await.is_err(), "a stopped node refuses connections");
    node.restart(true).await.expect("restart keeping data");
    assert_eq!(node.url(), url);
    let r = client.get(format!("{url}/indexes/a")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);

    node.restart(false).await.expect("restart dropping data");
    let r = client.get(format!("{url}/indexes/a")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_route_and_fail_rate() {
    let node = devnode::start(DevNodeConfig::default()).await.expect("start");
    let client = reqwest::Client::new();
    let url = node.url();

    let set = |body: Value| client.post(format!("{url}/_devnode/faults")).json(&body).send();
    set(json!({"failRate": 0.5})).await.unwrap();
    let mut failed = 0;
    for _ in 0..10 {
        if health(&client, &url).await.unwrap() == 500 {
            failed += 1;
        }
    }
    assert_eq!(failed, 5, "the fail rate is applied deterministically");

    set(json!({"failRate": 0.0, "stopped": true})).await.unwrap();
    let r = client.get(format!("{url}/health")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let v: Value = client.get(format!("{url}/_devnode/faults")).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["stopped"], json!(true));
    set(json!({"stopped": false})).await.unwrap();
    assert_eq!(health(&client, &url).await.unwrap(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_go_through_processing_in_order() {
    let node = devnode::start(DevNodeConfig::default()).await.expect("start");
    let client = reqwest::Client::new();
    let url = node.url();
    for i in 0..20 {
        let docs = json!([{"id": i, "n": i}]);
        let r = client.post(format!("{url}/indexes/x/documents")).json(&docs).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 202);
    }
    node.wait_idle().await;
    let v: Value = client.get(format!("{url}/tasks?limit=100")).send().await.unwrap().json().await.unwrap();
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 20);
    let mut last_finished = String::new();
    for t in results.iter().rev() {
        assert_eq!(t["status"], "succeeded");
        let started = t["startedAt"].as_str().unwrap().to_string();
        let finished = t["finishedAt"].as_str().unwrap().to_string();
        let parse = |s: &str| time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap();
        if !last_finished.is_empty() {
            assert!(parse(&started) >= parse(&last_finished), "tasks run one after another");
        }
        assert!(t["duration"].as_str().unwrap().starts_with("PT"));
        last_finished = finished;
    }
}
