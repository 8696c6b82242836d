//! The gateway's write path against real HTTP dev nodes, in one process: documents reach exactly
//! their RF × RG owners, read back by id and by browse, and a node that is down during a write is
//! marked stale instead of being silently left behind.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::FutureExt;
use miroir::command::{Command, Response};
use miroir::placement::shard_of;
use miroir::task::{Task, TaskFilter, TaskPage, TaskStatus};
use miroir::RoutingMap;
use miroir_coordinator::controllers::{leftovers, pending, IndexCleaner, TaskTracker};
use miroir_devnode::{start, DevNode, DevNodeConfig};
use miroir_gateway::app::AppState;
use miroir_gateway::cluster::local::LocalCluster;
use miroir_gateway::cluster::{Cluster, ClusterError, Lease};
use miroir_node_client::{HttpTransport, NodeClient};
use serde_json::{json, Value};

use crate::common;

const KEY: &str = "gateway-writes-master-key";

struct Setup {
    gateway: String,
    cluster: Arc<LocalCluster>,
    spy: Arc<Spy>,
    node_client: NodeClient,
    nodes: BTreeMap<String, DevNode>,
    http: reqwest::Client,
    _server: tokio::task::JoinHandle<()>,
}

async fn setup(nodes: usize, shards: u32, rf: u32) -> Setup {
    let cluster = LocalCluster::new();
    cluster.apply(Command::AddGroup { id: "main".into() }).unwrap();
    let mut devnodes = BTreeMap::new();
    for i in 0..nodes {
        let node = start(DevNodeConfig { listen: None, master_key: Some(KEY.into()) }).await.unwrap();
        let id = format!("n{i}");
        cluster.apply(Command::AddNode { id: id.clone(), url: node.url(), group: "main".into() }).unwrap();
        devnodes.insert(id, node);
    }
    cluster
        .apply(Command::SetDefaults { shards: Some(shards), rf: Some(rf), min_in_sync: None, task_retention: None })
        .unwrap();
    let transport = HttpTransport::new(Some(KEY.into()), Duration::from_secs(5));
    let node_client = NodeClient::new(Arc::new(transport));
    let spy = Arc::new(Spy {
        inner: cluster.clone(),
        fail_settings: AtomicBool::new(false),
        register_entries: AtomicU64::new(0),
        registered_tasks: AtomicU64::new(0),
    });
    let app = AppState::new(spy.clone(), node_client.clone());
    app.disable_fencing();
    let (gateway, server) = common::serve(app).await;
    Setup { gateway, cluster, spy, node_client, nodes: devnodes, http: reqwest::Client::new(), _server: server }
}

/// The gateway's coordinator in these tests: the in-process cluster, with proposals counted and
/// settings commits failing on demand.
struct Spy {
    inner: Arc<LocalCluster>,
    fail_settings: AtomicBool,
    register_entries: AtomicU64,
    registered_tasks: AtomicU64,
}

impl Cluster for Spy {
    fn propose(&self, cmd: Command) -> BoxFuture<'_, Result<(Response, u64), ClusterError>> {
        if let Command::RegisterTasks { tasks, .. } = &cmd {
            self.register_entries.fetch_add(1, Ordering::SeqCst);
            self.registered_tasks.fetch_add(tasks.len() as u64, Ordering::SeqCst);
            // A Raft commit takes a while: registrations arriving meanwhile wait for the next one.
            return async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                self.inner.propose(cmd).await
            }
            .boxed();
        }
        if matches!(cmd, Command::UpdateSettings { .. }) && self.fail_settings.load(Ordering::SeqCst) {
            return async { Err(ClusterError::Unavailable("injected".into())) }.boxed();
        }
        self.inner.propose(cmd)
    }
    fn watch(&self, from: u64) -> BoxStream<'static, Result<Arc<RoutingMap>, ClusterError>> {
        self.inner.watch(from)
    }
    fn register(&self, gateway: &str, address: &str, lease_ms: u64) -> BoxFuture<'_, Result<Lease, ClusterError>> {
        self.inner.register(gateway, address, lease_ms)
    }
    fn heartbeat(
        &self,
        gateway: &str,
        lease_ms: u64,
        acked: Option<u64>,
    ) -> BoxFuture<'_, Result<Lease, ClusterError>> {
        self.inner.heartbeat(gateway, lease_ms, acked)
    }
    fn task(&self, uid: u64) -> BoxFuture<'_, Result<Option<Task>, ClusterError>> {
        self.inner.task(uid)
    }
    fn state(&self) -> BoxFuture<'_, Result<miroir::ClusterState, ClusterError>> {
        self.inner.state()
    }
    fn tasks(
        &self,
        filter: TaskFilter,
        from: Option<u64>,
        limit: usize,
        reverse: bool,
    ) -> BoxFuture<'_, Result<TaskPage, ClusterError>> {
        self.inner.tasks(filter, from, limit, reverse)
    }
}

impl Setup {
    async fn send(&self, method: reqwest::Method, path: &str, ct: &str, body: Vec<u8>) -> (u16, Value) {
        let resp = self
            .http
            .request(method, format!("{}{path}", self.gateway))
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self.http.get(format!("{}{path}", self.gateway)).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn settle(&self) {
        for node in self.nodes.values() {
            node.wait_idle().await;
        }
    }

    async fn json(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        self.send(method, path, "application/json", serde_json::to_vec(&body).unwrap()).await
    }

    /// Runs the leader's task tracker until task `uid` finished; returns it.
    async fn track(&self, answer: &(u16, Value)) -> Task {
        assert_eq!(answer.0, 202, "{}", answer.1);
        let uid = answer.1["taskUid"].as_u64().unwrap();
        let tracker = TaskTracker::new(self.node_client.clone());
        for _ in 0..200 {
            self.settle().await;
            let reports = tracker.poll(self.cluster.read(pending)).await;
            if !reports.is_empty() {
                self.cluster.apply(Command::ReportNodeTasks { reports }).unwrap();
            }
            let task = self.cluster.read(|s| s.tasks.get(uid).cloned()).unwrap();
            if task.status.is_finished() {
                return task;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("task {uid} never finished");
    }

    /// One round of the leader's index cleaner, its findings committed.
    async fn clean(&self, cleaner: &mut IndexCleaner) {
        self.settle().await;
        for cmd in cleaner.round(self.cluster.read(leftovers)).await {
            self.cluster.apply(cmd).unwrap();
        }
    }

    /// Every document id each node holds for `index`, straight from the node.
    async fn held(&self, index: &str) -> BTreeMap<String, BTreeSet<String>> {
        let mut out = BTreeMap::new();
        for (id, node) in &self.nodes {
            let resp = self
                .http
                .post(format!("{}/indexes/{index}/documents/fetch", node.url()))
                .bearer_auth(KEY)
                .json(&json!({"limit": 1_000_000, "fields": ["id"]}))
                .send()
                .await
                .unwrap();
            let body: Value = resp.json().await.unwrap();
            let ids = body["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["id"].to_string().trim_matches('"').to_string())
                .collect();
            out.insert(id.clone(), ids);
        }
        out
    }
}

fn docs(range: std::ops::Range<u32>) -> Vec<Value> {
    range.map(|i| json!({"id": i, "title": format!("doc {i}"), "n": i % 7})).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_land_on_exactly_their_owners_and_read_back() {
    let s = setup(3, 8, 2).await;
    let (status, body) = s
        .send(
            reqwest::Method::POST,
            "/indexes",
            "application/json",
            br#"{"uid": "books", "primaryKey": "id"}"#.to_vec(),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["type"], "indexCreation");

    // 3,000 documents in three formats, in batches.
    let json_docs = docs(0..1000);
    let (status, body) = s
        .send(
            reqwest::Method::POST,
            "/indexes/books/documents",
            "application/json",
            serde_json::to_vec(&json_docs).unwrap(),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "enqueued");
    let ndjson: String = docs(1000..2000).iter().map(|d| format!("{d}\n")).collect();
    let (status, _) =
        s.send(reqwest::Method::PUT, "/indexes/books/documents", "application/x-ndjson", ndjson.into_bytes()).await;
    assert_eq!(status, 202);
    let csv: String = std::iter::once("id:number,title,n:number\n".to_string())
        .chain((2000..3000).map(|i| format!("{i},doc {i},{}\n", i % 7)))
        .collect();
    let (status, _) = s.send(reqwest::Method::POST, "/indexes/books/documents", "text/csv", csv.into_bytes()).await;
    assert_eq!(status, 202);
    s.settle().await;

    // Each document is on exactly its owners, and nowhere else.
    let held = s.held("books").await;
    let state = s.cluster.read(|st| st.clone());
    let mut expected: BTreeMap<String, BTreeSet<String>> =
        s.nodes.keys().map(|n| (n.clone(), BTreeSet::new())).collect();
    for i in 0..3000u32 {
        let shard = shard_of(&i.to_string(), 8);
        let owners = &state.placement("books", shard, "main").unwrap().owners;
        assert_eq!(owners.len(), 2);
        for o in owners {
            expected.get_mut(&o.node).unwrap().insert(i.to_string());
        }
    }
    assert_eq!(held, expected);

    // Read back through the gateway: by id, and by a globally paginated browse.
    for i in [0u32, 999, 1500, 2999] {
        let (status, doc) = s.get(&format!("/indexes/books/documents/{i}")).await;
        assert_eq!(status, 200);
        assert_eq!(doc, json!({"id": i, "title": format!("doc {i}"), "n": i % 7}), "no _miroir_shard leaks");
    }
    let (status, page) = s.get("/indexes/books/documents?offset=1495&limit=10").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["total"], 3000);
    let ids: Vec<u64> = page["results"].as_array().unwrap().iter().map(|d| d["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, (1495..1505).collect::<Vec<u64>>());
    let (status, missing) = s.get("/indexes/books/documents/424242").await;
    assert_eq!((status, missing["code"].as_str()), (404, Some("document_not_found")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_down_during_a_write_is_marked_stale_and_no_longer_read() {
    let mut s = setup(2, 4, 2).await;
    let (status, _) = s
        .send(reqwest::Method::POST, "/indexes", "application/json", br#"{"uid": "m", "primaryKey": "id"}"#.to_vec())
        .await;
    assert_eq!(status, 202);
    s.settle().await;
    s.nodes.get_mut("n1").unwrap().stop().await;

    let (status, body) = s
        .send(
            reqwest::Method::POST,
            "/indexes/m/documents",
            "application/json",
            serde_json::to_vec(&docs(0..200)).unwrap(),
        )
        .await;
    assert_eq!(status, 202, "acknowledged by the in-sync copy that took it: {body}");
    let state = s.cluster.read(|st| st.clone());
    for shard in 0..4 {
        let p = state.placement("m", shard, "main").unwrap();
        assert!(!p.owner("n1").unwrap().in_sync, "n1 missed the write: stale on shard {shard}");
        assert!(p.owner("n0").unwrap().in_sync);
    }
    s.settle().await;
    // Reads avoid the stale copy (which would answer 404 after a restart).
    s.nodes.get_mut("n1").unwrap().restart(true).await.unwrap();
    for i in 0..200u32 {
        let (status, _) = s.get(&format!("/indexes/m/documents/{i}")).await;
        assert_eq!(status, 200, "document {i}");
    }
    // With its last in-sync copy gone too, a write is refused rather than acknowledged.
    s.nodes.get_mut("n0").unwrap().stop().await;
    let (status, body) = s
        .send(
            reqwest::Method::POST,
            "/indexes/m/documents",
            "application/json",
            serde_json::to_vec(&docs(500..510)).unwrap(),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (503, Some("miroir_no_quorum")), "{body}");
}

async fn create(s: &Setup, uid: &str) {
    let (status, body) = s.json(reqwest::Method::POST, "/indexes", json!({"uid": uid, "primaryKey": "id"})).await;
    assert_eq!(status, 202, "{body}");
    s.settle().await;
}

async fn add(s: &Setup, uid: &str, range: std::ops::Range<u32>) -> (u16, Value) {
    s.json(reqwest::Method::POST, &format!("/indexes/{uid}/documents"), json!(docs(range))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_index_a_node_missed_is_cleaned_there_and_never_comes_back() {
    let mut s = setup(3, 4, 2).await;
    create(&s, "books").await;
    assert_eq!(add(&s, "books", 0..200).await.0, 202);
    s.settle().await;
    // n1 is unreachable while the index is deleted: it keeps its copy (and its documents).
    s.nodes.get_mut("n1").unwrap().stop().await;
    let (status, body) = s.send(reqwest::Method::DELETE, "/indexes/books", "application/json", vec![]).await;
    assert_eq!(status, 202, "{body}");
    let held: BTreeSet<String> = s.cluster.read(|st| st.deleting["books"].clone());
    assert!(held.contains("n1"), "the state remembers that n1 may still hold books: {held:?}");

    let mut cleaner = IndexCleaner::new(s.node_client.clone());
    s.clean(&mut cleaner).await;
    let held: BTreeSet<String> = s.cluster.read(|st| st.deleting["books"].clone());
    assert_eq!(held, ["n1".to_string()].into(), "the nodes that deleted it are cleared, n1 is not");

    // Re-created while n1 may still hold the old copy: n1 gets no copy of the new index.
    create(&s, "books").await;
    let state = s.cluster.read(|st| st.clone());
    for groups in &state.placements["books"] {
        assert!(groups["main"].owners.iter().all(|o| o.node != "n1"), "placed on n1: {groups:?}");
    }
    s.nodes.get_mut("n1").unwrap().restart(true).await.unwrap();
    assert_eq!(add(&s, "books", 1000..1010).await.0, 202);
    s.settle().await;
    let (_, page) = s.get("/indexes/books/documents?limit=1000").await;
    assert_eq!(page["total"], 10, "no old document is back: {page}");

    // Back, n1 is cleaned by the leader without any client action.
    s.clean(&mut cleaner).await;
    s.clean(&mut cleaner).await;
    assert!(s.cluster.read(|st| st.deleting.is_empty()));
    assert!(s.nodes["n1"].with_engine(|e| !e.indexes.contains_key("books")), "n1 no longer holds the old copy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_counts_come_from_the_nodes_once_per_document() {
    let s = setup(3, 4, 2).await;
    create(&s, "c").await;
    let filterable = json!({"filterableAttributes": ["n"]});
    s.track(&s.json(reqwest::Method::PATCH, "/indexes/c/settings", filterable).await).await;
    let t = s.track(&add(&s, "c", 0..100).await).await;
    assert_eq!(t.status, TaskStatus::Succeeded);
    assert_eq!(t.details["indexedDocuments"], 100, "RF 2: 200 copies, 100 documents: {t:?}");

    let mut ids: Vec<Value> = (0..10).map(Value::from).collect();
    ids.extend([json!("no-such-doc"), json!(424242)]);
    let t = s.track(&s.json(reqwest::Method::POST, "/indexes/c/documents/delete-batch", json!(ids)).await).await;
    assert_eq!(t.details, json!({"providedIds": 12, "deletedDocuments": 10, "originalFilter": null}));
    let t =
        s.track(&s.send(reqwest::Method::DELETE, "/indexes/c/documents/10", "application/json", vec![]).await).await;
    assert_eq!(t.details["deletedDocuments"], 1);

    // 89 left; those with n = 3 go by filter, then the rest by clearing.
    let with_3 = (11..100u32).filter(|i| i % 7 == 3).count();
    let s_filter = s.json(reqwest::Method::POST, "/indexes/c/documents/delete", json!({"filter": "n = 3"})).await;
    let t = s.track(&s_filter).await;
    assert_eq!(t.details["deletedDocuments"], with_3, "{t:?}");
    let t = s.track(&s.send(reqwest::Method::DELETE, "/indexes/c/documents", "application/json", vec![]).await).await;
    assert_eq!(t.details["deletedDocuments"], 89 - with_3, "{t:?}");
    assert!(s.held("c").await.values().all(BTreeSet::is_empty));

    // A deletion on an unknown index fails like on Meilisearch, and does not hang.
    let t = s.track(&s.json(reqwest::Method::POST, "/indexes/nope/documents/delete-batch", json!([1])).await).await;
    assert_eq!(
        (t.status, t.error.as_ref().map(|e| e["code"].clone())),
        (TaskStatus::Failed, Some(json!("index_not_found")))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settings_change_that_fails_to_commit_changes_no_node() {
    let s = setup(3, 4, 2).await;
    create(&s, "tuned").await;
    let settings = |s: &Setup| {
        let nodes: Vec<(String, String)> = s.nodes.iter().map(|(id, n)| (id.clone(), n.url())).collect();
        let http = s.http.clone();
        async move {
            let mut out = BTreeMap::new();
            for (id, url) in nodes {
                let r = http.get(format!("{url}/indexes/tuned/settings")).bearer_auth(KEY).send().await.unwrap();
                out.insert(id, r.json::<Value>().await.unwrap()["rankingRules"].clone());
            }
            out
        }
    };
    let before = settings(&s).await;
    s.spy.fail_settings.store(true, Ordering::SeqCst);
    let (status, e) =
        s.json(reqwest::Method::PATCH, "/indexes/tuned/settings", json!({"rankingRules": ["words"]})).await;
    assert_eq!((status, e["code"].as_str()), (503, Some("miroir_unavailable")), "{e}");
    s.settle().await;
    assert_eq!(settings(&s).await, before, "no node holds settings the cluster does not have");
    // A patch a node refuses is still refused with that node's own error.
    s.spy.fail_settings.store(false, Ordering::SeqCst);
    let (status, e) = s.json(reqwest::Method::PATCH, "/indexes/tuned/settings", json!({"rankingRules": 3})).await;
    assert_eq!((status, e["code"].as_str()), (400, Some("invalid_settings_ranking_rules")), "{e}");
    assert_eq!(s.cluster.read(|st| st.indexes["tuned"].settings_version), 0, "nothing committed");
    // Settings on an unknown index create it, as on Meilisearch.
    let (status, _) =
        s.json(reqwest::Method::PATCH, "/indexes/fresh/settings", json!({"rankingRules": ["words"]})).await;
    assert_eq!(status, 202);
    assert!(s.cluster.read(|st| st.indexes.contains_key("fresh")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_add_up_over_one_copy_of_each_shard() {
    let s = setup(3, 4, 2).await;
    create(&s, "st").await;
    assert_eq!(add(&s, "st", 0..100).await.0, 202);
    s.settle().await;
    let (status, st) = s.get("/indexes/st/stats").await;
    assert_eq!(status, 200, "{st}");
    assert_eq!(st["numberOfDocuments"], 100, "{st}");
    assert_eq!(st["fieldDistribution"], json!({"id": 100, "n": 100, "title": 100}), "{st}");
    assert!(st["rawDocumentDbSize"].as_u64().unwrap() > 0 && st["avgDocumentSize"].as_u64().unwrap() > 0, "{st}");
    let (status, all) = s.get("/stats").await;
    assert_eq!(status, 200, "{all}");
    let mut size = 0;
    for node in s.nodes.values() {
        let r = s.http.get(format!("{}/stats", node.url())).bearer_auth(KEY).send().await.unwrap();
        size += r.json::<Value>().await.unwrap()["databaseSize"].as_u64().unwrap();
    }
    assert!(size > 0);
    assert_eq!((all["databaseSize"].as_u64(), all["usedDatabaseSize"].as_u64()), (Some(size), Some(size)), "{all}");
    assert_eq!(all["indexes"]["st"], st);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_csv_delimiter_index_update_and_group_commit_through_the_gateway() {
    let s = Arc::new(setup(3, 8, 1).await);
    let resp = s
        .http
        .post(format!("{}/indexes", s.gateway))
        .header("x-miroir-shards", "3")
        .json(&json!({"uid": "h"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    assert_eq!(s.cluster.read(|st| st.indexes["h"].shards), 3, "X-Miroir-Shards");
    let (status, e) = s.json(reqwest::Method::POST, "/indexes", json!({"uid": "h2"})).await;
    assert_eq!(status, 202, "{e}");
    let bad = s.http.post(format!("{}/indexes", s.gateway)).header("x-miroir-shards", "x").json(&json!({"uid": "h3"}));
    let e: Value = bad.send().await.unwrap().json().await.unwrap();
    assert_eq!(e["code"], "miroir_invalid_header");

    // The primary key of an index without one is set through an index update.
    let t = s.track(&s.json(reqwest::Method::PATCH, "/indexes/h", json!({"primaryKey": "id"})).await).await;
    assert_eq!(t.status, TaskStatus::Succeeded, "{t:?}");
    assert_eq!(s.get("/indexes/h").await.1["primaryKey"], "id");
    let t = s.track(&s.json(reqwest::Method::PATCH, "/indexes/h", json!({"primaryKey": "other"})).await).await;
    assert_eq!(t.error.unwrap()["code"], "index_primary_key_already_exists");

    // Task filters through the gateway, as an SDK lists them.
    let (_, page) = s.get("/tasks?indexUids=h&types=indexUpdate").await;
    assert_eq!(page["total"], 2, "{page}");
    let (_, page) = s.get("/tasks?indexUids=h&types=indexUpdate&statuses=failed").await;
    assert_eq!(page["results"].as_array().map(Vec::len), Some(1), "{page}");
    assert_eq!(page["results"][0]["error"]["code"], "index_primary_key_already_exists");
    let (_, page) = s.get("/tasks?types=indexCreation&limit=1&reverse=true").await;
    assert_eq!((page["results"][0]["indexUid"].as_str(), page["next"].is_u64()), (Some("h"), true), "{page}");
    let csv = b"id;title;n:number\n1;one;1\n2;two;2\n".to_vec();
    let t =
        s.track(&s.send(reqwest::Method::POST, "/indexes/h/documents?csvDelimiter=%3B", "text/csv", csv).await).await;
    assert_eq!((t.status, &t.details["indexedDocuments"]), (TaskStatus::Succeeded, &json!(2)), "{t:?}");
    assert_eq!(s.get("/indexes/h/documents/2").await.1, json!({"id": "2", "title": "two", "n": 2}));

    // Many concurrent writes share Raft entries for their task registrations.
    let before = (s.spy.register_entries.load(Ordering::SeqCst), s.spy.registered_tasks.load(Ordering::SeqCst));
    let writes = (0..40u32).map(|i| {
        let s = s.clone();
        tokio::spawn(async move { add(&s, "h", i * 10..i * 10 + 10).await.0 })
    });
    for w in futures::future::join_all(writes).await {
        assert_eq!(w.unwrap(), 202);
    }
    let entries = s.spy.register_entries.load(Ordering::SeqCst) - before.0;
    let tasks = s.spy.registered_tasks.load(Ordering::SeqCst) - before.1;
    assert_eq!(tasks, 40);
    assert!(entries < tasks, "group commit: {entries} entries for {tasks} registrations");
}
