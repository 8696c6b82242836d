//! Topology changes end to end (docs/migrations.md): real coordinators, gateways and dev nodes on
//! loopback, clients writing and updating all along. After every change: each acknowledged
//! document is on every in-sync owner of its shard at its last acknowledged version, and no node
//! holds documents of a shard it does not own. A replica group added under writes is filled and
//! then serves every document on its own. `write_fencing` shares the helpers below.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use miroir::placement::{canonical_doc_id, shard_of, target_owners};
use miroir::state::{GroupStatus, MigrationPhase, NodeStatus};
use miroir::ClusterState;
use miroir_coordinator::client::Client;
use miroir_devtools::harness::{ClusterSpec, TestCluster};
use serde_json::{json, Value};

pub(super) const INDEX: &str = "moves";
/// First id of the documents writers add (divisible by every client count used).
const NEW_IDS: u64 = 1_200_000;

fn spec(coordinators: usize, nodes: usize, shards: u32, rf: u32, args: &[&str]) -> ClusterSpec {
    ClusterSpec {
        coordinators,
        nodes,
        gateways: 2,
        shards,
        rf,
        coordinator_args: args.iter().map(|a| a.to_string()).collect(),
        ..ClusterSpec::default()
    }
}

#[derive(Clone)]
pub(super) struct Http {
    client: reqwest::Client,
    key: String,
}

impl Http {
    pub(super) fn new(key: &str) -> Self {
        Http { client: reqwest::Client::new(), key: key.to_string() }
    }

    pub(super) async fn call(&self, method: reqwest::Method, url: &str, body: Option<&Value>) -> (u16, Value) {
        let mut req = self.client.request(method, url).bearer_auth(&self.key).timeout(Duration::from_secs(30));
        if let Some(b) = body {
            req = req.json(b);
        }
        match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let bytes = resp.bytes().await.unwrap_or_default();
                (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
            }
            Err(e) => (0, json!({"transport": e.to_string()})),
        }
    }

    pub(super) async fn wait_task(&self, gateway: &str, uid: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, task) = self.call(reqwest::Method::GET, &format!("{gateway}/tasks/{uid}"), None).await;
            if status == 200 && matches!(task["status"].as_str(), Some("succeeded" | "failed" | "canceled")) {
                return task;
            }
            assert!(Instant::now() < deadline, "task {uid} did not finish: {task}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(super) async fn create_index(&self, gateway: &str) {
        let (s, t) = self
            .call(
                reqwest::Method::POST,
                &format!("{gateway}/indexes"),
                Some(&json!({"uid": INDEX, "primaryKey": "id"})),
            )
            .await;
        assert_eq!(s, 202, "{t}");
        assert_eq!(self.wait_task(gateway, t["taskUid"].as_u64().unwrap()).await["status"], "succeeded");
    }

    /// Every document a node holds for the index: id → version.
    pub(super) async fn node_docs(&self, url: &str) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        let mut offset = 0;
        loop {
            let u = format!("{url}/indexes/{INDEX}/documents?fields=id,v&limit=1000&offset={offset}");
            let (status, page) = self.call(reqwest::Method::GET, &u, None).await;
            if status == 404 {
                return out;
            }
            assert_eq!(status, 200, "{url}: {page}");
            let results = page["results"].as_array().unwrap();
            for d in results {
                out.insert(canonical_doc_id(&d["id"]).unwrap(), d["v"].as_u64().unwrap());
            }
            if results.len() < 1000 {
                return out;
            }
            offset += 1000;
        }
    }
}

pub(super) fn client(cluster: &TestCluster) -> Client {
    let addrs: Vec<String> = cluster.coordinators.iter().map(|c| c.addr.clone()).collect();
    Client::new(&addrs).unwrap().with_timeout(Duration::from_secs(3))
}

pub(super) async fn state(cluster: &TestCluster) -> ClusterState {
    let c = client(cluster);
    for _ in 0..100 {
        if let Ok((s, _)) = c.get_state().await {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no coordinator answers");
}

/// Owners per shard (all groups), as a comparable snapshot.
pub(super) fn owners(s: &ClusterState) -> Vec<BTreeSet<String>> {
    s.placements[INDEX]
        .iter()
        .map(|g| g.values().flat_map(|p| p.owners.iter().map(|o| o.node.clone())).collect())
        .collect()
}

/// No migration left and every placement on its target owners, all in sync.
pub(super) fn settled(s: &ClusterState) -> bool {
    s.migrations.is_empty()
        && s.placements[INDEX].iter().enumerate().all(|(shard, groups)| {
            groups.iter().all(|(g, p)| {
                let target: BTreeSet<String> = target_owners(s, INDEX, shard as u32, g).into_iter().collect();
                p.incoming.is_empty()
                    && p.owners.iter().all(|o| o.in_sync)
                    && p.owners.iter().map(|o| o.node.clone()).collect::<BTreeSet<_>>() == target
            })
        })
}

pub(super) async fn wait_state(
    cluster: &TestCluster,
    what: &str,
    timeout: Duration,
    check: impl Fn(&ClusterState) -> bool,
) {
    let end = Instant::now() + timeout;
    loop {
        let s = state(cluster).await;
        if check(&s) {
            return;
        }
        assert!(Instant::now() < end, "{what} not reached within {timeout:?}; migrations: {:?}", s.migrations);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Clients writing new documents and updating old ones through both gateways until stopped.
/// A write that is not acknowledged is retried until it is, so the last acknowledged version of
/// every id is known exactly.
struct Writers {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<BTreeMap<u64, u64>>>,
    handles: Vec<tokio::task::JoinHandle<()>>,
}

impl Writers {
    fn start(http: &Http, gateways: &[String], clients: u64, preloaded: u64) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let acked: Arc<Mutex<BTreeMap<u64, u64>>> = Arc::new(Mutex::new((0..preloaded).map(|i| (i, 0)).collect()));
        let handles = (0..clients)
            .map(|c| {
                let (http, stop, acked) = (http.clone(), stop.clone(), acked.clone());
                let gw = gateways[c as usize % gateways.len()].clone();
                tokio::spawn(async move {
                    let mut round = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        round += 1;
                        // Five new documents in this client's id range, and updates of five
                        // ids of its own (preloaded ids are shared out by id % clients).
                        // New ids stay in this client's residue class, so no two clients ever
                        // write the same id and its last acknowledged version is known.
                        let mut batch: Vec<(u64, u64)> =
                            (0..5).map(|k| (NEW_IDS + (round * 5 + k) * clients + c, 1)).collect();
                        {
                            let a = acked.lock().unwrap();
                            let mine: Vec<(u64, u64)> =
                                a.iter().filter(|(id, _)| *id % clients == c).map(|(i, v)| (*i, *v)).collect();
                            for k in 0..5 {
                                if let Some((id, v)) =
                                    mine.get(((round * 7 + k * 13) as usize) % mine.len().max(1)).copied()
                                {
                                    if !batch.iter().any(|(i, _)| *i == id) {
                                        batch.push((id, v + 1));
                                    }
                                }
                            }
                        }
                        let docs: Vec<Value> = batch
                            .iter()
                            .map(|(id, v)| json!({"id": id, "v": v, "title": format!("doc {id} v{v}")}))
                            .collect();
                        loop {
                            let (s, _) = http
                                .call(
                                    reqwest::Method::POST,
                                    &format!("{gw}/indexes/{INDEX}/documents"),
                                    Some(&json!(docs)),
                                )
                                .await;
                            if s == 202 {
                                break;
                            }
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        acked.lock().unwrap().extend(batch);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                })
            })
            .collect();
        Writers { stop, acked, handles }
    }

    async fn stop(self) -> BTreeMap<u64, u64> {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.handles {
            h.await.unwrap();
        }
        let acked = self.acked.lock().unwrap().clone();
        acked
    }
}

pub(super) async fn preload(http: &Http, gw: &str, n: u64) {
    let docs: Vec<Value> = (0..n).map(|id| json!({"id": id, "v": 0, "title": format!("doc {id} v0")})).collect();
    let (s, t) = http.call(reqwest::Method::POST, &format!("{gw}/indexes/{INDEX}/documents"), Some(&json!(docs))).await;
    assert_eq!(s, 202, "{t}");
    assert_eq!(http.wait_task(gw, t["taskUid"].as_u64().unwrap()).await["status"], "succeeded");
}

/// Waits until every live node has processed everything it was sent.
pub(super) async fn nodes_idle(http: &Http, cluster: &TestCluster, skip: &[String]) {
    for n in cluster.nodes.iter().filter(|n| !skip.contains(&n.id)) {
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            let u = format!("{}/tasks?statuses=enqueued,processing&limit=1", n.url);
            let (status, page) = http.call(reqwest::Method::GET, &u, None).await;
            if status == 200 && page["total"].as_u64() == Some(0) {
                break;
            }
            assert!(Instant::now() < end, "{} never idle: {page}", n.id);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// `miroirctl verify INDEX`: exit status and JSON report.
fn ctl_verify(cluster: &TestCluster) -> (bool, Value) {
    let out = std::process::Command::new(miroir_devtools::harness::workspace_bin("miroirctl"))
        .args(["--coordinators", &cluster.coordinator_addrs(), "--master-key", &cluster.master_key, "--json"])
        .args(["verify", INDEX])
        .output()
        .unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.success(), report)
}

/// The acceptance check: every acknowledged document at its last acknowledged version on every
/// in-sync owner, and nothing anywhere else.
async fn check_data(http: &Http, cluster: &TestCluster, s: &ClusterState, acked: &BTreeMap<u64, u64>, skip: &[String]) {
    nodes_idle(http, cluster, skip).await;
    let shards = s.indexes[INDEX].shards;
    let owners = owners(s);
    let mut held: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for n in cluster.nodes.iter().filter(|n| !skip.contains(&n.id)) {
        held.insert(n.id.clone(), http.node_docs(&n.url).await);
    }
    for (id, v) in acked {
        let key = id.to_string();
        let shard = shard_of(&key, shards);
        for owner in &owners[shard as usize] {
            let got = held.get(owner).and_then(|d| d.get(&key));
            assert_eq!(got, Some(v), "document {id} (shard {shard}) on owner {owner}");
        }
    }
    for (node, docs) in &held {
        let stray: Vec<&String> =
            docs.keys().filter(|id| !owners[shard_of(id, shards) as usize].contains(node)).collect();
        assert!(
            stray.is_empty(),
            "{node} holds {} documents of shards it does not own, e.g. {:?}",
            stray.len(),
            &stray[..stray.len().min(5)]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_a_node_under_writes_moves_exactly_the_shards_whose_top_rf_changed() {
    let mut cluster = TestCluster::start(spec(1, 2, 12, 2, &["--copy-batch", "200"]));
    let http = Http::new(&cluster.master_key);
    let gws: Vec<String> = cluster.gateways.iter().map(|g| g.url.clone()).collect();
    http.create_index(&gws[0]).await;
    preload(&http, &gws[0], 3000).await;
    let before = owners(&state(&cluster).await);

    let writers = Writers::start(&http, &gws, 3, 3000);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let node = cluster.spawn_node("node-3");
    assert!(cluster.ctl(&["node", "add", "node-3", "--url", &node.url, "--group", "main"]).is_some());
    cluster.nodes.push(node);
    tokio::time::sleep(Duration::from_secs(1)).await;
    wait_state(&cluster, "the new node filled", Duration::from_secs(45), settled).await;
    let acked = writers.stop().await;

    let s = state(&cluster).await;
    let after = owners(&s);
    let moved: usize = before.iter().zip(&after).map(|(b, a)| b.difference(a).count()).sum();
    let copies = before.iter().map(BTreeSet::len).sum::<usize>();
    println!(
        "copies moved: {moved}/{copies} = {:.3} (theory 1/(Ng+1) = {:.3})",
        moved as f64 / copies as f64,
        1.0 / 3.0
    );
    for (shard, (b, a)) in before.iter().zip(&after).enumerate() {
        let top: BTreeSet<String> = target_owners(&s, INDEX, shard as u32, "main").into_iter().collect();
        assert_eq!(a, &top, "shard {shard} ends on its top-RF nodes");
        if b == &top {
            assert_eq!(a, b, "shard {shard}: its top RF did not change, it must not have moved");
        }
    }
    assert!(moved > 0 && after.iter().any(|o| o.contains("node-3")));
    check_data(&http, &cluster, &s, &acked, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_and_removing_a_node_under_writes_loses_nothing() {
    let cluster = TestCluster::start(spec(1, 3, 8, 2, &[]));
    let http = Http::new(&cluster.master_key);
    let gws: Vec<String> = cluster.gateways.iter().map(|g| g.url.clone()).collect();
    http.create_index(&gws[0]).await;
    preload(&http, &gws[0], 2000).await;
    assert!(state(&cluster).await.placements_of("node-1") > 0);

    let writers = Writers::start(&http, &gws, 3, 2000);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let addrs = cluster.coordinator_addrs();
    let removed = tokio::task::spawn_blocking(move || {
        std::process::Command::new(miroir_devtools::harness::workspace_bin("miroirctl"))
            .args(["--coordinators", &addrs, "--json", "node", "remove", "node-1", "--timeout", "45"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(removed.status.success(), "{}", String::from_utf8_lossy(&removed.stderr));
    let acked = writers.stop().await;

    let s = state(&cluster).await;
    assert_eq!(s.nodes["node-1"].status, NodeStatus::Removed);
    assert_eq!(s.placements_of("node-1"), 0);
    assert!(s.migrations.values().all(|m| m.from.as_deref() != Some("node-1")), "cleanup done before removal");
    wait_state(&cluster, "every shard on its target", Duration::from_secs(30), settled).await;
    let s = state(&cluster).await;
    check_data(&http, &cluster, &s, &acked, &[]).await;
    assert!(http.node_docs(&cluster.nodes[0].url).await.is_empty(), "the removed node was emptied");

    let (ok, report) = ctl_verify(&cluster);
    assert!(ok, "{report}");
    assert_eq!(report["differences"], json!([]));
    assert!(report["documents"].as_u64().unwrap() >= 2000, "{report}");
    // A copy changed behind Miroir's back is reported, naming the node and the document.
    let id = 7u64;
    let shard = shard_of(&id.to_string(), 8);
    let holder = s.placements[INDEX][shard as usize]["main"].owners[0].node.clone();
    let url = cluster.nodes.iter().find(|n| n.id == holder).unwrap().url.clone();
    let doc = json!([{"id": id, "v": 999, "title": "tampered", "_miroir_shard": shard}]);
    let (status, t) = http.call(reqwest::Method::POST, &format!("{url}/indexes/{INDEX}/documents"), Some(&doc)).await;
    assert_eq!(status, 202, "{t}");
    nodes_idle(&http, &cluster, &[]).await;
    let (ok, report) = ctl_verify(&cluster);
    assert!(!ok, "verify must fail: {report}");
    let diffs = report["differences"].as_array().unwrap();
    assert!(!diffs.is_empty() && diffs.iter().all(|d| d["shard"] == shard), "{report}");
    assert!(diffs.iter().any(|d| d["differentContent"] == json!(["7"])), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_is_failed_reads_stay_complete_and_rf_is_restored_after_the_grace_period() {
    let args = ["--probe-failures", "2", "--probe-timeout-ms", "500", "--failed-grace-ms", "3000"];
    let mut cluster = TestCluster::start(spec(1, 3, 6, 2, &args));
    let http = Http::new(&cluster.master_key);
    let gws: Vec<String> = cluster.gateways.iter().map(|g| g.url.clone()).collect();
    http.create_index(&gws[0]).await;
    preload(&http, &gws[0], 1500).await;

    let writers = Writers::start(&http, &gws, 2, 1500);
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.nodes[1].proc.kill();
    wait_state(&cluster, "node-2 Failed", Duration::from_secs(20), |s| s.nodes["node-2"].status == NodeStatus::Failed)
        .await;
    // Reads are complete while the node is down: every shard has an in-sync survivor.
    for gw in &gws {
        let (status, r) =
            http.call(reqwest::Method::GET, &format!("{gw}/indexes/{INDEX}/documents?limit=1"), None).await;
        assert_eq!(status, 200, "{r}");
        assert!(r["total"].as_u64().unwrap() >= 1500, "{r}");
        let (status, r) = http
            .call(
                reqwest::Method::POST,
                &format!("{gw}/indexes/{INDEX}/search"),
                Some(&json!({"q": "doc", "limit": 0})),
            )
            .await;
        assert_eq!(status, 200, "{r}");
        assert!(r["estimatedTotalHits"].as_u64().unwrap() >= 1000, "{r}");
        for id in (0..1500).step_by(37) {
            let (status, d) =
                http.call(reqwest::Method::GET, &format!("{gw}/indexes/{INDEX}/documents/{id}"), None).await;
            assert_eq!(status, 200, "document {id}: {d}");
        }
    }
    wait_state(&cluster, "RF restored without node-2", Duration::from_secs(45), |s| {
        s.placements_of("node-2") == 0 && settled(s)
    })
    .await;
    let acked = writers.stop().await;
    let s = state(&cluster).await;
    assert!(s.placements[INDEX].iter().all(|g| g.values().all(|p| p.in_sync_owners().count() == 2)));
    check_data(&http, &cluster, &s, &acked, &["node-2".to_string()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_during_copy_and_during_cutover_does_not_stop_the_migration() {
    // Slow copies (200 documents a second) so that the leader can be killed mid-Copy.
    let mut cluster =
        TestCluster::start(spec(3, 2, 8, 1, &["--copy-batch", "100", "--copy-rate", "200", "--max-migrations", "1"]));
    let http = Http::new(&cluster.master_key);
    let gws: Vec<String> = cluster.gateways.iter().map(|g| g.url.clone()).collect();
    http.create_index(&gws[0]).await;
    preload(&http, &gws[0], 4000).await;

    let writers = Writers::start(&http, &gws, 2, 4000);
    let before = owners(&state(&cluster).await);
    let node = cluster.spawn_node("node-3");
    assert!(cluster.ctl(&["node", "add", "node-3", "--url", &node.url, "--group", "main"]).is_some());
    cluster.nodes.push(node);

    let s = state(&cluster).await;
    let to_move =
        (0..8u32).filter(|sh| !before[*sh as usize].contains(&target_owners(&s, INDEX, *sh, "main")[0])).count();
    assert!(to_move >= 2, "the test needs two moves to kill the leader in two phases; {to_move} shards move");
    let copying = |s: &ClusterState| s.migrations.values().any(|m| m.phase == MigrationPhase::Copy && m.copied > 0);
    wait_state(&cluster, "a migration copying", Duration::from_secs(30), copying).await;
    let id = *state(&cluster).await.migrations.keys().next().unwrap();
    let progress = cluster.ctl(&["migrations"]).expect("miroirctl migrations");
    let row = &progress["migrations"][0];
    assert_eq!(row["phase"], "copy", "{progress}");
    assert!(row["copied"].as_u64().unwrap() > 0 && row["total"].as_u64().unwrap() > 0, "{progress}");
    assert!(row["docsPerSecond"].as_f64().is_some() && row["to"] == "node-3", "{progress}");
    let killed = cluster.kill_leader().expect("a leader to kill");
    wait_state(&cluster, "the migration past Copy under a new leader", Duration::from_secs(30), |s| {
        s.migrations.get(&id).is_none_or(|m| m.phase > MigrationPhase::Copy)
    })
    .await;
    cluster.restart_coordinator(killed);

    // Cutover lasts until every gateway acked the new map (its next heartbeat), often a few
    // milliseconds: poll closely, and if every migration finished unseen, add a node to start more
    // (a few tries; each is a fair chance).
    let end = Instant::now() + Duration::from_secs(120);
    let c = client(&cluster);
    let mut extra_nodes = 0;
    let in_cutover = loop {
        assert!(Instant::now() < end, "no migration seen in Cutover");
        if let Ok((s, _)) = c.get_state().await {
            if let Some((id, _)) = s.migrations.iter().find(|(_, m)| m.phase == MigrationPhase::Cutover) {
                break *id;
            }
            if settled(&s) {
                extra_nodes += 1;
                assert!(extra_nodes <= 3, "every migration finished before one was seen in Cutover, three times");
                let name = format!("node-extra-{extra_nodes}");
                let node = cluster.spawn_node(&name);
                assert!(cluster.ctl(&["node", "add", &name, "--url", &node.url, "--group", "main"]).is_some());
                cluster.nodes.push(node);
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let killed = cluster.kill_leader().expect("a leader to kill");
    wait_state(&cluster, "the cut-over migration finished", Duration::from_secs(30), |s| {
        !s.migrations.contains_key(&in_cutover)
    })
    .await;
    cluster.restart_coordinator(killed);
    wait_state(&cluster, "every shard on its target", Duration::from_secs(60), settled).await;
    let acked = writers.stop().await;
    let s = state(&cluster).await;
    check_data(&http, &cluster, &s, &acked, &[]).await;
}

/// Sends `signal` (STOP, CONT) to one process this test started.
fn signal(pid: u32, signal: &str) {
    let ok = std::process::Command::new("kill").args([&format!("-{signal}"), &pid.to_string()]).status().unwrap();
    assert!(ok.success(), "kill -{signal} {pid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_paused_through_a_cutover_never_writes_to_the_old_owners() {
    // RF 1: a write routed by the old map would land only on a node that no longer owns the shard,
    // and the new owner would never have it.
    let mut cluster = TestCluster::start(spec(1, 2, 8, 1, &["--copy-batch", "200"]));
    let http = Http::new(&cluster.master_key);
    let (paused, live) = (cluster.gateways[0].url.clone(), cluster.gateways[1].url.clone());
    http.create_index(&live).await;
    preload(&http, &live, 2000).await;
    // The paused gateway has routed writes by the map before the move.
    let (s, t) = http
        .call(
            reqwest::Method::POST,
            &format!("{paused}/indexes/{INDEX}/documents"),
            Some(&json!([{"id": 2000, "v": 0}])),
        )
        .await;
    assert_eq!(s, 202, "{t}");
    let before = owners(&state(&cluster).await);

    let pid = cluster.gateways[0].proc.pid().unwrap();
    signal(pid, "STOP");
    let node = cluster.spawn_node("node-3");
    assert!(cluster.ctl(&["node", "add", "node-3", "--url", &node.url, "--group", "main"]).is_some());
    cluster.nodes.push(node);
    // Cutover waits for every gateway's ack or lease end: the paused one's lease runs out.
    wait_state(&cluster, "the new node filled", Duration::from_secs(60), settled).await;
    let s = state(&cluster).await;
    assert_ne!(owners(&s), before, "shards moved to node-3 while the gateway was paused");
    signal(pid, "CONT");

    // Right away, writes through the resumed gateway: fenced until it holds the new map, then
    // routed by it. Each is retried until acknowledged.
    let mut acked: BTreeMap<u64, u64> = (0..=2000).map(|i| (i, 0)).collect();
    let mut fenced = 0;
    for id in 3000..3100u64 {
        let doc = json!([{"id": id, "v": 1, "title": format!("doc {id} v1")}]);
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            let (s, t) =
                http.call(reqwest::Method::POST, &format!("{paused}/indexes/{INDEX}/documents"), Some(&doc)).await;
            if s == 202 {
                let done = http.wait_task(&paused, t["taskUid"].as_u64().unwrap()).await;
                assert_eq!(done["status"], "succeeded", "{done}");
                break;
            }
            assert!(s == 503 || s == 0, "{s}: {t}");
            fenced += 1;
            assert!(Instant::now() < end, "the resumed gateway never took writes again: {t}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        acked.insert(id, 1);
    }
    println!("writes refused while the resumed gateway caught up: {fenced}");
    let s = state(&cluster).await;
    assert!(s.migrations.is_empty());
    check_data(&http, &cluster, &s, &acked, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_added_replica_group_is_filled_under_writes_and_then_serves_every_document_alone() {
    let mut cluster = TestCluster::start(spec(1, 2, 6, 2, &["--copy-batch", "200"]));
    let http = Http::new(&cluster.master_key);
    let gws: Vec<String> = cluster.gateways.iter().map(|g| g.url.clone()).collect();
    http.create_index(&gws[0]).await;
    preload(&http, &gws[0], 2000).await;

    let writers = Writers::start(&http, &gws, 2, 2000);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(cluster.ctl(&["group", "add", "g2"]).is_some());
    for id in ["node-g2-1", "node-g2-2"] {
        let node = cluster.spawn_node(id);
        assert!(cluster.ctl(&["node", "add", id, "--url", &node.url, "--group", "g2"]).is_some());
        cluster.nodes.push(node);
    }
    let s = state(&cluster).await;
    assert_eq!(s.groups["g2"].status, GroupStatus::Initializing, "it holds nothing yet");
    wait_state(&cluster, "g2 filled and Active", Duration::from_secs(60), |s| {
        s.groups["g2"].status == GroupStatus::Active && settled(s)
    })
    .await;
    let acked = writers.stop().await;
    let s = state(&cluster).await;
    assert!(s.placements[INDEX].iter().all(|g| g["g2"].in_sync_owners().count() == 2 && g["main"].owners.len() == 2));
    // Every acknowledged write, those made during the fill included, is on both groups' owners.
    check_data(&http, &cluster, &s, &acked, &[]).await;

    // Remove the original group: from now on every read is served by g2 alone.
    assert!(cluster.ctl(&["group", "remove", "main", "--timeout", "30"]).is_some(), "group remove main");
    let s = state(&cluster).await;
    assert!(!s.groups.contains_key("main") && s.nodes["node-1"].status == NodeStatus::Removed);
    let total = acked.len() as u64;
    // Search counts stop at maxTotalHits (1000 by default), as in Meilisearch: raise it first.
    let body = json!({"pagination": {"maxTotalHits": 100000}});
    let (status, t) =
        http.call(reqwest::Method::PATCH, &format!("{}/indexes/{INDEX}/settings", gws[0]), Some(&body)).await;
    assert_eq!(status, 202, "{t}");
    assert_eq!(http.wait_task(&gws[0], t["taskUid"].as_u64().unwrap()).await["status"], "succeeded");
    for gw in &gws {
        let (status, r) =
            http.call(reqwest::Method::GET, &format!("{gw}/indexes/{INDEX}/documents?limit=1"), None).await;
        assert_eq!((status, r["total"].as_u64()), (200, Some(total)), "{r}");
        let body = json!({"q": "doc", "page": 1, "hitsPerPage": 1});
        let (status, r) = http.call(reqwest::Method::POST, &format!("{gw}/indexes/{INDEX}/search"), Some(&body)).await;
        assert_eq!((status, r["totalHits"].as_u64()), (200, Some(total)), "{r}");
        for (id, v) in acked.iter().step_by(11) {
            let (status, d) =
                http.call(reqwest::Method::GET, &format!("{gw}/indexes/{INDEX}/documents/{id}"), None).await;
            assert_eq!((status, d["v"].as_u64()), (200, Some(*v)), "document {id}: {d}");
        }
    }
}
