//! The admin API `/_miroir/…`: miroirctl's topology operations through a gateway, master key only,
//! refusals in Meilisearch's error format with Miroir's codes. `verify` against real node processes
//! is in e2e/tests/e2e/cluster.rs.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use miroir::command::Command;
use miroir::state::NodeStatus;
use miroir_gateway::app::{router, AppState};
use miroir_gateway::cluster::local::LocalCluster;
use miroir_node_client::{HttpTransport, NodeClient};
use serde_json::{json, Value};
use tower::ServiceExt;

const KEY: &str = "admin-api-master-key";

struct Admin {
    router: axum::Router,
    cluster: Arc<LocalCluster>,
    app: Arc<AppState>,
}

impl Admin {
    fn new() -> Self {
        let cluster = LocalCluster::new();
        let nodes = NodeClient::new(Arc::new(HttpTransport::new(None, Duration::from_millis(200))));
        let app = AppState::new(cluster.clone(), nodes);
        app.install(Arc::new(cluster.read(|s| s.routing_map())));
        app.disable_fencing();
        app.require_master_key(KEY.into());
        Admin { router: router(app.clone()), cluster, app }
    }

    /// What a map change committed through the admin API looks like to this gateway once installed.
    fn sync(&self) {
        self.app.install(Arc::new(self.cluster.read(|s| s.routing_map())));
    }

    async fn call(&self, method: &str, uri: &str, body: Option<Value>, key: Option<&str>) -> (u16, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        let body = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        let resp = self.router.clone().oneshot(req.body(body).unwrap()).await.unwrap();
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        let out = (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null));
        self.sync();
        out
    }

    async fn master(&self, method: &str, uri: &str, body: Option<Value>) -> (u16, Value) {
        self.call(method, uri, body, Some(KEY)).await
    }
}

fn assert_error(got: (u16, Value), status: u16, code: &str) {
    let (s, e) = got;
    assert_eq!((s, e["code"].as_str()), (status, Some(code)), "{e}");
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
    assert!(e["type"].is_string() && e["link"].is_string(), "{e}");
}

#[tokio::test]
async fn nodes_and_groups_are_added_drained_and_removed_through_the_gateway() {
    let a = Admin::new();
    let node = |id: &str, group: &str| json!({"id": id, "url": format!("http://127.0.0.1:1/{id}"), "group": group});

    // Adding a node to a group the cluster does not have yet creates the group.
    let (s, r) = a.master("POST", "/_miroir/nodes", Some(node("n1", "g1"))).await;
    assert_eq!(s, 200, "{r}");
    assert!(r["logIndex"].as_u64().is_some_and(|i| i > 0), "{r}");
    for id in ["n2", "n3"] {
        assert_eq!(a.master("POST", "/_miroir/nodes", Some(node(id, "g1"))).await.0, 200);
    }
    let (s, nodes) = a.master("GET", "/_miroir/nodes", None).await;
    assert_eq!(s, 200);
    assert_eq!(nodes["nodes"].as_object().unwrap().len(), 3, "{nodes}");
    assert_eq!(nodes["nodes"]["n2"]["group"], "g1");
    let (_, groups) = a.master("GET", "/_miroir/groups", None).await;
    assert!(groups["groups"]["g1"].is_object(), "{groups}");

    assert_error(a.master("POST", "/_miroir/nodes", Some(node("n1", "g1"))).await, 409, "miroir_already_exists");
    assert_error(a.master("POST", "/_miroir/nodes", Some(json!({"id": "n9"}))).await, 400, "bad_request");
    assert_error(a.master("POST", "/_miroir/nodes/nope/drain", None).await, 404, "miroir_not_found");
    assert_error(a.master("DELETE", "/_miroir/nodes/nope", None).await, 404, "miroir_not_found");

    // A node that owns copies is drained first; removing it before is refused and changes nothing.
    a.cluster
        .apply(Command::CreateIndex {
            uid: "movies".into(),
            primary_key: Some("id".into()),
            shards: Some(4),
            rf: Some(2),
            at: 1,
        })
        .unwrap();
    a.sync();
    let owner = a.cluster.read(|s| s.placements["movies"][0]["g1"].owners[0].node.clone());
    assert_error(a.master("DELETE", &format!("/_miroir/nodes/{owner}"), None).await, 409, "miroir_topology_refused");
    assert!(a.cluster.read(|s| s.nodes.contains_key(&owner)));
    let (s, r) = a.master("POST", &format!("/_miroir/nodes/{owner}/drain"), None).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(a.cluster.read(|s| s.nodes[&owner].status), NodeStatus::Draining);

    // A second group is filled from the first (Initializing); the last Active group cannot drain.
    for id in ["n4", "n5"] {
        assert_eq!(a.master("POST", "/_miroir/nodes", Some(node(id, "g3"))).await.0, 200);
    }
    let (_, groups) = a.master("GET", "/_miroir/groups", None).await;
    assert_eq!(groups["groups"]["g3"]["status"], "initializing", "{groups}");
    assert_error(a.master("POST", "/_miroir/groups/g1/drain", None).await, 400, "bad_request");
    assert_error(a.master("DELETE", "/_miroir/groups/g3", None).await, 409, "miroir_topology_refused");
    assert_eq!(a.master("POST", "/_miroir/groups/g3/drain", None).await.0, 200);
    // A gateway with a live lease that has not installed the draining map could still read it.
    let now = miroir_gateway::write::tasks::now_millis();
    a.cluster
        .apply(Command::RegisterGateway { id: "gw".into(), address: "x".into(), at: now, lease_ms: 60_000 })
        .unwrap();
    let (s, e) = a.master("DELETE", "/_miroir/groups/g3", None).await;
    assert_eq!((s, e["code"].as_str()), (409, Some("miroir_topology_refused")), "{e}");
    assert!(e["message"].as_str().unwrap().contains("gateway"), "{e}");
    let version = a.cluster.read(|s| s.map_version);
    a.cluster
        .apply(Command::GatewayHeartbeat { id: "gw".into(), at: now, lease_ms: 60_000, acked_version: Some(version) })
        .unwrap();
    let (s, r) = a.master("DELETE", "/_miroir/groups/g3", None).await;
    assert_eq!(s, 200, "{r}");
    assert!(a.cluster.read(|s| !s.groups.contains_key("g3") && s.nodes["n4"].status == NodeStatus::Removed));

    // A group with nodes cannot go; an empty one can.
    assert_error(a.master("DELETE", "/_miroir/groups/g1", None).await, 409, "miroir_topology_refused");
    assert_eq!(a.master("POST", "/_miroir/groups", Some(json!({"id": "g2"}))).await.0, 200);
    assert_error(a.master("POST", "/_miroir/groups", Some(json!({"id": "g2"}))).await, 409, "miroir_already_exists");
    assert_eq!(a.master("DELETE", "/_miroir/groups/g2", None).await.0, 200);
    assert!(a.cluster.read(|s| !s.groups.contains_key("g2")));
    assert_error(a.master("DELETE", "/_miroir/groups/g2", None).await, 404, "miroir_not_found");
}

#[tokio::test]
async fn migrations_show_progress_and_verify_knows_only_existing_indexes() {
    let a = Admin::new();
    for id in ["n1", "n2", "n3"] {
        let body = json!({"id": id, "url": format!("http://127.0.0.1:1/{id}"), "group": "g1"});
        assert_eq!(a.master("POST", "/_miroir/nodes", Some(body)).await.0, 200);
    }
    a.cluster
        .apply(Command::CreateIndex {
            uid: "movies".into(),
            primary_key: Some("id".into()),
            shards: Some(2),
            rf: Some(2),
            at: 1,
        })
        .unwrap();
    let (s, m) = a.master("GET", "/_miroir/migrations", None).await;
    assert_eq!((s, m["migrations"].as_array().map(Vec::len)), (200, Some(0)), "{m}");
    assert_eq!(m["shardsBelowRf"], 0);

    let (owners, spare) = a.cluster.read(|s| {
        let owners: Vec<String> = s.placements["movies"][0]["g1"].owners.iter().map(|o| o.node.clone()).collect();
        let spare = ["n1", "n2", "n3"].into_iter().find(|n| !owners.iter().any(|o| o == n)).unwrap().to_string();
        (owners, spare)
    });
    let (_, migration) = a
        .cluster
        .apply(Command::StartMigration {
            index: "movies".into(),
            shard: 0,
            group: "g1".into(),
            from: Some(owners[0].clone()),
            to: spare.clone(),
            at: 1,
        })
        .unwrap();
    assert!(migration > 0);
    let (s, m) = a.master("GET", "/_miroir/migrations", None).await;
    assert_eq!(s, 200, "{m}");
    let rows = m["migrations"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{m}");
    assert_eq!((rows[0]["index"].as_str(), rows[0]["to"].as_str()), (Some("movies"), Some(spare.as_str())));
    assert_eq!(rows[0]["from"].as_str(), Some(owners[0].as_str()));

    assert_error(a.master("GET", "/_miroir/indexes/nope/verify", None).await, 404, "index_not_found");
}

#[tokio::test]
async fn the_admin_api_takes_the_master_key_only() {
    let a = Admin::new();
    let body = json!({"id": "n1", "url": "http://127.0.0.1:1", "group": "g1"});
    let routes = [
        ("GET", "/_miroir/nodes"),
        ("POST", "/_miroir/nodes"),
        ("POST", "/_miroir/nodes/n1/drain"),
        ("DELETE", "/_miroir/nodes/n1"),
        ("GET", "/_miroir/groups"),
        ("DELETE", "/_miroir/groups/g1"),
        ("POST", "/_miroir/groups/g1/drain"),
        ("GET", "/_miroir/migrations"),
        ("GET", "/_miroir/indexes/movies/verify"),
    ];
    for (method, uri) in routes {
        let b = (method == "POST").then(|| body.clone());
        assert_error(a.call(method, uri, b.clone(), None).await, 401, "missing_authorization_header");
        assert_error(a.call(method, uri, b, Some("not-the-master-key")).await, 403, "invalid_api_key");
    }
    // Nothing was written by the refused calls.
    assert!(a.cluster.read(|s| s.nodes.is_empty() && s.groups.is_empty()));
}
