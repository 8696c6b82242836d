//! Client authentication with a master key, as Meilisearch answers it (API keys: api_keys.rs).

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

const KEY: &str = "gateway-auth-master-key";

fn gateway(master_key: Option<&str>) -> axum::Router {
    let cluster = LocalCluster::new();
    cluster.apply(Command::AddGroup { id: "g".into() }).unwrap();
    let nodes = NodeClient::new(Arc::new(HttpTransport::new(None, Duration::from_millis(200))));
    let app = AppState::new(cluster.clone(), nodes);
    app.install(Arc::new(cluster.read(|s| s.routing_map())));
    app.disable_fencing();
    if let Some(k) = master_key {
        app.require_master_key(k.into());
    }
    router(app)
}

async fn get(router: &axum::Router, uri: &str, auth: Option<&str>) -> (StatusCode, Value) {
    let mut req = Request::builder().uri(uri);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let resp = router.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn master_key_guards_every_route_but_health() {
    let gw = gateway(Some(KEY));
    let bearer = format!("Bearer {KEY}");
    for uri in ["/indexes", "/tasks", "/stats", "/version", "/_miroir/ready", "/indexes/movies/documents/1"] {
        let (s, e) = get(&gw, uri, None).await;
        assert_eq!((s.as_u16(), e["code"].as_str()), (401, Some("missing_authorization_header")), "{uri}: {e}");
        assert_eq!(e["type"], "auth");
        assert_eq!(e["link"], "https://docs.meilisearch.com/errors#missing_authorization_header");
        for wrong in ["Bearer nope", "Bearer", "Bearer ", &format!("Bearer {KEY}x"), &format!("Bearer  {KEY}")] {
            let (s, e) = get(&gw, uri, Some(wrong)).await;
            assert_eq!((s.as_u16(), e["code"].as_str()), (403, Some("invalid_api_key")), "{uri} with {wrong}: {e}");
        }
        // Meilisearch reads any other scheme as no bearer header at all.
        for other in ["Basic abc", &format!("bearer {KEY}")] {
            let (s, e) = get(&gw, uri, Some(other)).await;
            assert_eq!((s.as_u16(), e["code"].as_str()), (401, Some("missing_authorization_header")), "{uri}: {e}");
        }
    }
    let (s, _) = get(&gw, "/indexes", Some(&bearer)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, body) = get(&gw, "/health", None).await;
    assert_eq!((s, body["status"].as_str()), (StatusCode::OK, Some("available")));
}

#[tokio::test]
async fn without_a_master_key_everything_is_open() {
    let gw = gateway(None);
    let (s, body) = get(&gw, "/indexes", None).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, _) = get(&gw, "/indexes", Some("Bearer anything")).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn meilisearch_routes_without_a_cluster_meaning_yet_answer_501_and_unknown_paths_404() {
    let gw = gateway(Some(KEY));
    let bearer = format!("Bearer {KEY}");
    let (s, e) = get(&gw, "/network", Some(&bearer)).await;
    assert_eq!((s.as_u16(), e["code"].as_str()), (501, Some("miroir_not_supported")), "{e}");
    assert!(e["message"].as_str().unwrap().contains("GET /network"), "{e}");
    let (s, _) = get(&gw, "/no-such-route", Some(&bearer)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Authentication comes first, as in Meilisearch.
    let (s, _) = get(&gw, "/network", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}
