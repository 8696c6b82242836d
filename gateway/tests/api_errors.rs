//! The gateway refuses bad requests with Meilisearch's errors before anything is written.
//! Driven in-process with a `LocalCluster` and no nodes: none of these requests may reach one.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use miroir::command::Command;
use miroir_gateway::app::{router, AppState};
use miroir_gateway::local::LocalCluster;
use miroir_node_client::{HttpTransport, NodeClient};
use serde_json::{json, Value};
use tower::ServiceExt;

async fn gateway() -> (axum::Router, Arc<LocalCluster>, Arc<AppState>) {
    let cluster = LocalCluster::new();
    for cmd in [
        Command::AddGroup { id: "g".into() },
        // Nothing listens here: a request that reached a node would fail loudly.
        Command::AddNode { id: "n1".into(), url: "http://127.0.0.1:9".into(), group: "g".into() },
        Command::CreateIndex {
            uid: "movies".into(),
            primary_key: Some("id".into()),
            shards: Some(4),
            rf: Some(1),
            at: 0,
        },
    ] {
        cluster.apply(cmd).unwrap();
    }
    let nodes = NodeClient::new(Arc::new(HttpTransport::new(None, Duration::from_millis(200))));
    let app = AppState::new(cluster.clone(), nodes);
    app.install(Arc::new(cluster.read(|s| s.routing_map())));
    app.disable_fencing();
    (router(app.clone()), cluster, app)
}

async fn call(router: &axum::Router, method: &str, uri: &str, ct: Option<&str>, body: &[u8]) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(ct) = ct {
        req = req.header("content-type", ct);
    }
    let resp = router.clone().oneshot(req.body(Body::from(body.to_vec())).unwrap()).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn assert_error(got: (StatusCode, Value), status: u16, code: &str) {
    assert_eq!(got.0.as_u16(), status, "{}", got.1);
    assert_eq!(got.1["code"], code, "{}", got.1);
    let link = if code.starts_with("miroir_") {
        format!("docs/errors.md#{code}")
    } else {
        format!("https://docs.meilisearch.com/errors#{code}")
    };
    assert_eq!(got.1["link"], link.as_str());
    assert!(got.1["message"].as_str().is_some_and(|m| !m.is_empty()));
}

#[tokio::test]
async fn bad_document_writes_are_refused_whole_before_any_node_is_touched() {
    let (r, cluster, _) = gateway().await;
    let version = cluster.read(|s| s.map_version);
    let docs = "/indexes/movies/documents";
    let json = Some("application/json");
    assert_error(call(&r, "POST", docs, json, br#"[{"id": 1}, {"id": "a b"}]"#).await, 400, "invalid_document_id");
    assert_error(call(&r, "POST", docs, json, br#"[{"id": 1}, {"title": "x"}]"#).await, 400, "missing_document_id");
    assert_error(
        call(&r, "POST", docs, json, br#"[{"id": 1, "_miroir_shard": 2}]"#).await,
        400,
        "miroir_reserved_field",
    );
    assert_error(call(&r, "POST", docs, json, br#"[{"id": 1},"#).await, 400, "malformed_payload");
    assert_error(call(&r, "POST", docs, Some("text/csv"), b"id:number\nabc\n").await, 400, "malformed_payload");
    assert_error(call(&r, "POST", docs, Some("text/plain"), b"{}").await, 415, "invalid_content_type");
    assert_error(call(&r, "POST", docs, None, b"[]").await, 415, "missing_content_type");
    assert_error(
        call(&r, "POST", "/indexes/bad%20uid/documents", json, br#"[{"id": 1}]"#).await,
        400,
        "invalid_index_uid",
    );
    let big = vec![b' '; 100_000_001];
    assert_error(call(&r, "POST", docs, json, &big).await, 413, "payload_too_large");
    assert_eq!(cluster.read(|s| s.map_version), version, "nothing was committed");
    assert_eq!(cluster.read(|s| s.tasks.len()), 0, "no task was registered");
}

#[tokio::test]
async fn reads_from_the_replicated_state() {
    let (r, _, _) = gateway().await;
    let (status, body) = call(&r, "GET", "/indexes", None, b"").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["total"], 1);
    assert_eq!(body["results"][0]["uid"], "movies");
    assert_eq!(body["results"][0]["primaryKey"], "id");
    assert_error(call(&r, "GET", "/indexes/nope", None, b"").await, 404, "index_not_found");
    assert_error(call(&r, "GET", "/tasks/42", None, b"").await, 404, "task_not_found");
    let (status, body) = call(&r, "GET", "/tasks?limit=5", None, b"").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"results": [], "total": 0, "limit": 5, "from": null, "next": null}));
    assert_error(call(&r, "GET", "/tasks?statuses=bogus", None, b"").await, 400, "invalid_task_statuses");
    assert_error(call(&r, "POST", "/tasks/cancel", None, b"").await, 400, "missing_task_filters");
}

#[tokio::test]
async fn a_fenced_gateway_refuses_writes_but_serves_reads() {
    let cluster = LocalCluster::new();
    cluster.apply(Command::AddGroup { id: "g".into() }).unwrap();
    let nodes = NodeClient::new(Arc::new(HttpTransport::new(None, Duration::from_millis(200))));
    let app = AppState::new(cluster.clone(), nodes);
    app.install(Arc::new(cluster.read(|s| s.routing_map())));
    let r = router(app.clone());
    let got = call(&r, "POST", "/indexes", Some("application/json"), br#"{"uid": "x"}"#).await;
    assert_error(got, 503, "miroir_writes_fenced");
    assert_eq!(call(&r, "GET", "/indexes", None, b"").await.0, StatusCode::OK);
    // A lease granted until a moment already past fences just the same.
    app.extend_lease(std::time::Instant::now());
    let got = call(&r, "POST", "/indexes", Some("application/json"), br#"{"uid": "x"}"#).await;
    assert_error(got, 503, "miroir_writes_fenced");
}
