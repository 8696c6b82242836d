//! The gateway refuses bad requests with Meilisearch's errors before anything is written.
//! Driven in-process with a `LocalCluster` and no nodes: none of these requests may reach one.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use miroir::command::Command;
use miroir_gateway::app::{router, AppState};
use miroir_gateway::cluster::local::LocalCluster;
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

/// Every task type and status Meilisearch names is a valid filter, whatever its case, as on one
/// Meilisearch: the gateway once kept its own list, which lacked the rule types it creates itself.
#[tokio::test]
async fn task_filters_accept_every_meilisearch_task_type_and_status() {
    let (r, cluster, app) = gateway().await;
    // Rule changes wait for the gateway to install the map that carries them.
    let follower = tokio::spawn(miroir_gateway::cluster::sync::follow_map(app.clone()));
    let features = json!({"dynamicSearchRules": true}).as_object().unwrap().clone();
    let (_, version) = cluster.apply(Command::SetExperimentalFeatures { features }).unwrap();
    while app.map().version < version {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let rule =
        json!({"actions": [{"selector": {"indexUid": "movies", "id": "1"}, "action": {"type": "pin", "position": 0}}]});
    let (status, body) =
        call(&r, "PATCH", "/dynamic-search-rules/promo", Some("application/json"), rule.to_string().as_bytes()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    for filter in ["types=dsrUpdate", "types=DSRUPDATE", "types=dsrClear,dsrUpdate", "statuses=SUCCEEDED"] {
        let (status, body) = call(&r, "GET", &format!("/tasks?{filter}"), None, b"").await;
        assert_eq!(status, StatusCode::OK, "{filter}: {body}");
        assert_eq!(body["total"], 1, "{filter}: {body}");
        assert_eq!(body["results"][0]["type"], "dsrUpdate", "{filter}: {body}");
    }
    for kind in miroir_meili::TaskKind::ALL {
        let (status, body) = call(&r, "GET", &format!("/tasks?types={kind}"), None, b"").await;
        assert_eq!(status, StatusCode::OK, "{kind}: {body}");
    }
    let got = call(&r, "GET", "/tasks?types=nope", None, b"").await;
    assert!(
        got.1["message"].as_str().unwrap().ends_with("`networkTopologyChange`, `dsrUpdate`, `dsrClear`."),
        "{}",
        got.1
    );
    assert_error(got, 400, "invalid_task_types");
    // Meilisearch's code for a bad batch uid is `invalid_batch_uids`, not a task code.
    assert_error(call(&r, "GET", "/tasks?batchUids=x", None, b"").await, 400, "invalid_batch_uids");
    // A multi-search without queries is a plain `bad_request` on Meilisearch 1.50.
    let got = call(&r, "POST", "/multi-search", Some("application/json"), b"{}").await;
    assert_eq!(got.1["message"], "Missing field `queries`");
    assert_error(got, 400, "bad_request");
    follower.abort();
}

/// A gateway with a map and no lease (fencing on), over a cluster of one empty group.
fn unleased_gateway() -> (Arc<LocalCluster>, Arc<AppState>) {
    let cluster = LocalCluster::new();
    cluster.apply(Command::AddGroup { id: "g".into() }).unwrap();
    let nodes = NodeClient::new(Arc::new(HttpTransport::new(None, Duration::from_millis(200))));
    let app = AppState::new(cluster.clone(), nodes);
    app.install(Arc::new(cluster.read(|s| s.routing_map())));
    (cluster, app)
}

#[tokio::test]
async fn a_fenced_gateway_refuses_writes_but_serves_reads() {
    let (_, app) = unleased_gateway();
    let r = router(app.clone());
    let got = call(&r, "POST", "/indexes", Some("application/json"), br#"{"uid": "x"}"#).await;
    assert_error(got, 503, "miroir_writes_fenced");
    assert_eq!(call(&r, "GET", "/indexes", None, b"").await.0, StatusCode::OK);
    // A lease granted until a moment already past fences just the same.
    app.extend_lease(std::time::Instant::now(), 0);
    let got = call(&r, "POST", "/indexes", Some("application/json"), br#"{"uid": "x"}"#).await;
    assert_error(got, 503, "miroir_writes_fenced");
}

/// Found by the whole-cluster simulation (seed 11): a gateway cut off from the coordinators past
/// its lease kept answering reads by its frozen map, from copies moved and cleaned meanwhile, as
/// if complete. Such a read now says its map may be stale, or is refused on request.
#[tokio::test]
async fn a_read_without_a_held_lease_is_marked_stale_or_refused() {
    let (_, app) = unleased_gateway();
    let r = router(app.clone());
    let read = |policy: Option<&'static str>| {
        let r = r.clone();
        async move {
            let mut req = Request::builder().uri("/indexes");
            if let Some(p) = policy {
                req = req.header("x-miroir-missing-shards", p);
            }
            let resp = r.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
            let stale = resp.headers().get("x-miroir-degraded").map(|v| v.to_str().unwrap().to_string());
            let status = resp.status();
            let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
            (status, stale, serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null))
        }
    };
    let (status, stale, _) = read(None).await;
    assert_eq!((status, stale.as_deref()), (StatusCode::OK, Some("map=stale")));
    let (status, _, body) = read(Some("error")).await;
    assert_error((status, body), 503, "miroir_unavailable");
    // With a lease held, the same read is complete.
    app.extend_lease(std::time::Instant::now() + Duration::from_secs(10), 0);
    assert_eq!(read(None).await.1, None);
}

/// A gateway paused past its lease was not waited for by migration barriers meanwhile: when it
/// renews, it must not write by the map it held before the pause (an old owner may have been cut
/// over and cleaned), only once it has installed the cluster's map of the renewal.
#[tokio::test]
async fn a_renewed_lease_waits_for_the_map_the_cluster_had_when_granting_it() {
    use miroir_gateway::cluster::Cluster;
    let (cluster, app) = unleased_gateway();
    let lease = cluster.register("gw", "127.0.0.1:1", 10_000).await.unwrap();
    app.extend_lease(std::time::Instant::now() + Duration::from_secs(10), lease.map_version);
    assert!(app.check_writable().is_ok());

    // Paused: the cluster's map moves on (a Cutover, say) while this gateway installs nothing.
    cluster.apply(Command::AddGroup { id: "g2".into() }).unwrap();
    let lease = cluster.heartbeat("gw", 10_000, Some(app.map().version)).await.unwrap();
    assert!(lease.map_version > app.map().version);
    app.extend_lease(std::time::Instant::now() + Duration::from_secs(10), lease.map_version);
    assert!(app.check_writable().is_err(), "a renewed lease let the gateway write by an old map");

    app.install(Arc::new(cluster.read(|s| s.routing_map())));
    assert!(app.check_writable().is_ok());
}

/// The task a 202 answer registered, from the replicated log.
fn task_of(cluster: &LocalCluster, answer: &(StatusCode, Value)) -> miroir::task::Task {
    assert_eq!(answer.0, StatusCode::ACCEPTED, "{}", answer.1);
    let uid = answer.1["taskUid"].as_u64().expect("a task uid");
    cluster.read(|s| s.tasks.get(uid).cloned()).expect("registered")
}

#[tokio::test]
async fn writes_meilisearch_fails_when_processing_answer_202_with_a_failed_task() {
    let (r, cluster, _) = gateway().await;
    let json = Some("application/json");
    let cases: Vec<(&str, &str, &[u8], &str, &str)> = vec![
        ("POST", "/indexes", br#"{"uid": "movies"}"#, "indexCreation", "index_already_exists"),
        ("PATCH", "/indexes/nope", br#"{"primaryKey": "id"}"#, "indexUpdate", "index_not_found"),
        ("DELETE", "/indexes/nope", b"", "indexDeletion", "index_not_found"),
        ("DELETE", "/indexes/nope/documents/1", b"", "documentDeletion", "index_not_found"),
        ("POST", "/indexes/nope/documents/delete-batch", b"[1, 2]", "documentDeletion", "index_not_found"),
        ("POST", "/indexes/nope/documents/delete", br#"{"filter": "a = 1"}"#, "documentDeletion", "index_not_found"),
        ("DELETE", "/indexes/nope/documents", b"", "documentDeletion", "index_not_found"),
        (
            "POST",
            "/indexes/movies/documents?primaryKey=other",
            br#"[{"other": 1}]"#,
            "documentAdditionOrUpdate",
            "index_primary_key_already_exists",
        ),
    ];
    for (method, uri, body, kind, code) in cases {
        let ct = if body.is_empty() { None } else { json };
        let t = task_of(&cluster, &call(&r, method, uri, ct, body).await);
        assert_eq!(t.kind, kind, "{method} {uri}");
        assert_eq!(t.status, miroir::task::TaskStatus::Failed, "{method} {uri}: a failed task, not one that hangs");
        let e = t.error.as_ref().expect("Meilisearch's error object");
        assert_eq!(e["code"], code, "{method} {uri}: {e}");
        assert_eq!(e["type"], "invalid_request");
        assert_eq!(e["link"], format!("https://docs.meilisearch.com/errors#{code}"));
        assert!(t.node_tasks.is_empty(), "{method} {uri}: no node was asked");
    }
    assert_eq!(cluster.read(|s| s.indexes.len()), 1, "nothing was created");
    // An invalid uid is still refused synchronously, as Meilisearch does.
    assert_error(call(&r, "DELETE", "/indexes/bad%20uid", None, b"").await, 400, "invalid_index_uid");
}

#[tokio::test]
async fn a_task_with_nothing_to_wait_for_is_finished_at_once() {
    let (r, cluster, _) = gateway().await;
    // No id can name a document: nothing reaches a node, and the task is done.
    let answer =
        call(&r, "POST", "/indexes/movies/documents/delete-batch", Some("application/json"), br#"["a b", {"x": 1}]"#)
            .await;
    let t = task_of(&cluster, &answer);
    assert_eq!(t.status, miroir::task::TaskStatus::Succeeded);
    assert_eq!(t.details, json!({"providedIds": 2, "deletedDocuments": 0, "originalFilter": null}));

    // Every node misses an index deletion: the index is gone from the cluster (the task
    // succeeded) and the state remembers the node that still holds it.
    let t = task_of(&cluster, &call(&r, "DELETE", "/indexes/movies", None, b"").await);
    assert_eq!(t.status, miroir::task::TaskStatus::Succeeded, "{t:?}");
    assert!(cluster.read(|s| s.indexes.is_empty()));
    let held: Vec<String> = cluster.read(|s| s.deleting["movies"].iter().cloned().collect());
    assert_eq!(held, vec!["n1".to_string()]);
}

#[tokio::test]
async fn bad_requests_get_meilisearch_specific_codes() {
    let (r, cluster, _) = gateway().await;
    let json = Some("application/json");
    assert_error(call(&r, "POST", "/indexes", json, br#"{"uid": "x","#).await, 400, "malformed_payload");
    assert_error(call(&r, "POST", "/indexes", json, br#"{"primaryKey": "id"}"#).await, 400, "missing_index_uid");
    let got = call(&r, "POST", "/indexes", json, br#"{"uid": 1}"#).await;
    assert_eq!(got.1["message"], "Invalid value type at `.uid`: expected a string, but found a positive integer: `1`");
    assert_error(got, 400, "invalid_index_uid");
    assert_error(call(&r, "POST", "/indexes", json, br#"{"uid": "a b"}"#).await, 400, "invalid_index_uid");
    let got = call(&r, "POST", "/indexes", json, br#"{"uid": "x", "doggo": 1}"#).await;
    assert_eq!(got.1["message"], "Unknown field `doggo`: expected one of `uid`, `primaryKey`");
    assert_error(got, 400, "bad_request");
    assert_error(
        call(&r, "POST", "/indexes", json, br#"{"uid": "x", "primaryKey": ["a"]}"#).await,
        400,
        "invalid_index_primary_key",
    );
    // `uid` is a rename in Meilisearch 1.50 (`UpdateIndexRequest`); the timestamps stay immutable.
    assert_error(call(&r, "PATCH", "/indexes/movies", json, br#"{"uid": "a b"}"#).await, 400, "invalid_index_uid");
    assert_error(call(&r, "PATCH", "/indexes/movies", json, br#"{"uid": 1}"#).await, 400, "invalid_index_uid");
    let got = call(&r, "PATCH", "/indexes/movies", json, br#"{"createdAt": "x"}"#).await;
    assert_error(got, 400, "immutable_index_created_at");
    assert_error(
        call(&r, "POST", "/indexes/movies/documents/delete-batch", json, b"[1,").await,
        400,
        "malformed_payload",
    );
    assert_error(
        call(&r, "POST", "/indexes/movies/documents/delete-batch", json, br#"{"a": 1}"#).await,
        400,
        "bad_request",
    );
    assert_error(
        call(&r, "POST", "/indexes/movies/documents/delete", json, br#"{}"#).await,
        400,
        "missing_document_filter",
    );

    assert_error(call(&r, "GET", "/tasks?limit=abc", None, b"").await, 400, "invalid_task_limit");
    assert_error(call(&r, "GET", "/tasks?from=x", None, b"").await, 400, "invalid_task_from");
    assert_error(call(&r, "GET", "/tasks?reverse=maybe", None, b"").await, 400, "invalid_task_reverse");
    assert_error(call(&r, "GET", "/tasks?uids=1,x", None, b"").await, 400, "invalid_task_uids");
    let got = call(&r, "GET", "/tasks?types=createIndex", None, b"").await;
    assert!(got.1["message"]
        .as_str()
        .unwrap()
        .starts_with("Invalid value in parameter `types`: `createIndex` is not a valid task type."));
    assert_error(got, 400, "invalid_task_types");
    assert_error(call(&r, "GET", "/tasks?indexUids=a%20b", None, b"").await, 400, "invalid_index_uid");
    let got = call(&r, "GET", "/tasks?doggo=1", None, b"").await;
    assert!(
        got.1["message"]
            .as_str()
            .unwrap()
            .starts_with("Unknown parameter `doggo`: expected one of `limit`, `from`, `reverse`"),
        "{}",
        got.1
    );
    assert_error(got, 400, "bad_request");
    assert_error(call(&r, "POST", "/tasks/cancel?from=1", None, b"").await, 400, "bad_request");
    assert_error(call(&r, "GET", "/indexes?limit=doggo", None, b"").await, 400, "invalid_index_limit");
    assert_error(call(&r, "GET", "/indexes?offset=-1", None, b"").await, 400, "invalid_index_offset");
    let got = call(&r, "GET", "/indexes?doggo=1", None, b"").await;
    assert_eq!(got.1["message"], "Unknown parameter `doggo`: expected one of `offset`, `limit`");
    assert_error(call(&r, "GET", "/indexes/movies/documents?limit=x", None, b"").await, 400, "invalid_document_limit");
    assert_error(
        call(&r, "GET", "/indexes/movies/documents?offset=x", None, b"").await,
        400,
        "invalid_document_offset",
    );
    assert_error(call(&r, "GET", "/indexes/movies/documents?nope=1", None, b"").await, 400, "bad_request");
    assert_error(call(&r, "POST", "/indexes/movies/documents?nope=1", json, b"[]").await, 400, "bad_request");

    // An unknown settings sub-route is no route, as on Meilisearch: an empty 404.
    for method in ["GET", "PUT", "DELETE"] {
        let (status, body) = call(&r, method, "/indexes/movies/settings/nope", json, b"[]").await;
        assert_eq!((status, body), (StatusCode::NOT_FOUND, Value::Null), "{method}");
    }
    // Index stats are served (here no node answers: a cluster error, not an empty 404).
    assert_error(call(&r, "GET", "/indexes/movies/stats", None, b"").await, 503, "miroir_unavailable");
    assert_error(call(&r, "GET", "/indexes/nope/stats", None, b"").await, 404, "index_not_found");
    assert_eq!(cluster.read(|s| s.tasks.len()), 0, "no task was registered");
}
