//! Helpers several areas share: HTTP calls with a key, waiting for a task, a gateway served in
//! this process.

use std::sync::Arc;
use std::time::{Duration, Instant};

use miroir_gateway::app::{router, AppState};
use serde_json::Value;

/// `method url` with `key` as bearer and `body` as JSON (30 s at most): status and JSON answer
/// (`Null` when the answer is not JSON).
pub async fn call(method: reqwest::Method, url: &str, key: &str, body: Option<&Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, url).bearer_auth(key).timeout(Duration::from_secs(30));
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Polls task `uid` on `base` until it finishes (succeeded, failed or canceled), for `within` at most.
pub async fn wait_task(base: &str, key: &str, uid: &Value, within: Duration) -> Value {
    let start = Instant::now();
    loop {
        let (_, t) = call(reqwest::Method::GET, &format!("{base}/tasks/{uid}"), key, None).await;
        if matches!(t["status"].as_str(), Some("succeeded" | "failed" | "canceled")) {
            return t;
        }
        assert!(start.elapsed() < within, "task {uid} unfinished: {t}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `method url` with `key` and a JSON body, on a shared client: status and JSON answer.
pub async fn send(http: &reqwest::Client, key: &str, method: reqwest::Method, url: &str, body: &Value) -> (u16, Value) {
    let r = http.request(method, url).bearer_auth(key).json(body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

pub async fn post(http: &reqwest::Client, key: &str, url: &str, body: &Value) -> (u16, Value) {
    send(http, key, reqwest::Method::POST, url, body).await
}

/// A PATCH whose answer only matters by its status.
pub async fn patch(http: &reqwest::Client, key: &str, url: &str, body: &Value) -> u16 {
    http.patch(url).bearer_auth(key).json(body).send().await.unwrap().status().as_u16()
}

pub async fn get(http: &reqwest::Client, key: &str, url: &str) -> (u16, Value) {
    let r = http.get(url).bearer_auth(key).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The numeric ids of a search answer's hits, in order.
pub fn ids(answer: &Value) -> Vec<u64> {
    answer["hits"].as_array().map(|h| h.iter().filter_map(|d| d["id"].as_u64()).collect()).unwrap_or_default()
}

/// Serves `app` on a free loopback port with its map followed: the gateway's URL and its server.
pub async fn serve(app: Arc<AppState>) -> (String, tokio::task::JoinHandle<()>) {
    tokio::spawn(miroir_gateway::cluster::sync::follow_map(app.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, router(app)).await.unwrap() });
    (gateway, server)
}
