//! Routes Meilisearch serves behind an experimental feature answer its `feature_not_enabled` while
//! the cluster has the feature off, and, once it is on, Miroir's 501 for those it does not serve
//! yet (document edition and the dynamic search rules are served: their own tests are in e2e/ and devnode/).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use miroir::command::Command;
use miroir_gateway::app::{router, AppState};
use miroir_gateway::cluster::local::LocalCluster;
use miroir_node_client::{HttpTransport, NodeClient};
use serde_json::Value;
use tower::ServiceExt;

async fn call(router: &axum::Router, method: &str, uri: &str) -> (StatusCode, Value) {
    // A valid edit body: the edit route reads its body before it checks the feature.
    call_with(router, method, uri, r#"{"function": "doc.a = 1"}"#).await
}

async fn call_with(router: &axum::Router, method: &str, uri: &str, body: &'static str) -> (StatusCode, Value) {
    let req = Request::builder().method(method).uri(uri).header("content-type", "application/json");
    let resp = router.clone().oneshot(req.body(Body::from(body)).unwrap()).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn gated_routes_follow_the_clusters_experimental_features() {
    let cluster = LocalCluster::new();
    cluster.apply(Command::AddGroup { id: "g".into() }).unwrap();
    let nodes = NodeClient::new(Arc::new(HttpTransport::new(None, Duration::from_millis(200))));
    let app = AppState::new(cluster.clone(), nodes);
    app.install(Arc::new(cluster.read(|s| s.routing_map())));
    app.disable_fencing();
    let r = router(app.clone());
    let routes = [
        ("POST", "/indexes/movies/documents/edit", "editDocumentsByFunction"),
        ("GET", "/tasks/3/documents", "getTaskDocumentsRoute"),
        ("PATCH", "/dynamic-search-rules/r1", "dynamicSearchRules"),
        ("POST", "/dynamic-search-rules", "dynamicSearchRules"),
    ];
    for (method, uri, _) in routes {
        let (s, e) = call(&r, method, uri).await;
        assert_eq!((s, e["code"].as_str()), (StatusCode::BAD_REQUEST, Some("feature_not_enabled")), "{uri}: {e}");
        assert_eq!(e["type"], "invalid_request");
    }
    let (_, e) = call(&r, "POST", "/indexes/movies/documents/edit").await;
    assert_eq!(e["message"], "Using the documents edit route requires enabling the `edit documents by function` experimental feature. See https://github.com/orgs/meilisearch/discussions/762");
    // As Meilisearch: a bad body is refused as such, feature or not.
    let (s, e) = call_with(&r, "POST", "/indexes/movies/documents/edit", "{}").await;
    assert_eq!((s, e["code"].as_str()), (StatusCode::BAD_REQUEST, Some("missing_document_edition_function")), "{e}");
    let features = routes.iter().map(|(_, _, f)| (f.to_string(), Value::Bool(true))).collect();
    cluster.apply(Command::SetExperimentalFeatures { features }).unwrap();
    app.install(Arc::new(cluster.read(|s| s.routing_map())));
    let (s, e) = call(&r, "GET", "/tasks/3/documents").await;
    assert_eq!((s.as_u16(), e["code"].as_str()), (501, Some("miroir_not_supported")), "{e}");
    // Served once on: a missing index is a failed task, as on one Meilisearch.
    let (s, t) = call(&r, "POST", "/indexes/movies/documents/edit").await;
    assert_eq!((s.as_u16(), t["type"].as_str()), (202, Some("documentEdition")), "{t}");
    let (s, list) = call_with(&r, "POST", "/dynamic-search-rules", "{}").await;
    assert_eq!((s, list), (StatusCode::OK, serde_json::json!({"results": [], "offset": 0, "limit": 20, "total": 0})));
    let (s, e) = call_with(&r, "GET", "/dynamic-search-rules/r1", "{}").await;
    assert_eq!((s, e["code"].as_str()), (StatusCode::NOT_FOUND, Some("dynamic_search_rule_not_found")));
    let (s, _) = call(&r, "GET", "/tasks/3/nothing").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
