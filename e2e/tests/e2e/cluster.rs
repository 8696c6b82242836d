//! End to end, as a user runs Miroir: real `miroir-coordinator`, `miroir-gateway` and node processes
//! on loopback (dev nodes, or real Meilisearch when `MEILI_BIN` is set), driven over HTTP the way an
//! official SDK does. Needs the workspace binaries (`cargo test --workspace` builds them).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use futures::StreamExt;
use miroir::placement::{canonical_doc_id, shard_of};
use miroir::ClusterState;
use miroir_coordinator::client::Client;
use miroir_devtools::harness::{ClusterSpec, TestCluster};
use serde_json::{json, Value};

struct Http {
    client: reqwest::Client,
    key: String,
}

impl Http {
    fn new(key: &str) -> Self {
        Http { client: reqwest::Client::new(), key: key.to_string() }
    }

    async fn send(&self, method: reqwest::Method, url: &str, ct: &str, body: Vec<u8>) -> (u16, Value) {
        let resp = self
            .client
            .request(method, url)
            .bearer_auth(&self.key)
            .header("content-type", ct)
            .body(body)
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.expect("body");
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn get(&self, url: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, url, "application/json", vec![]).await
    }

    async fn post_json(&self, url: &str, body: &Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, url, "application/json", serde_json::to_vec(body).unwrap()).await
    }

    async fn create_index(&self, gateway: &str, uid: &str) {
        let (status, task) =
            self.post_json(&format!("{gateway}/indexes"), &json!({"uid": uid, "primaryKey": "id"})).await;
        assert_eq!(status, 202, "{task}");
        let done = self.wait_task(gateway, task["taskUid"].as_u64().unwrap()).await;
        assert_eq!(done["status"], "succeeded", "{done}");
    }

    /// Polls a task through `gateway` until it finishes; returns the finished task.
    async fn wait_task(&self, gateway: &str, uid: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, task) = self.get(&format!("{gateway}/tasks/{uid}")).await;
            assert_eq!(status, 200, "task {uid}: {task}");
            if matches!(task["status"].as_str(), Some("succeeded" | "failed" | "canceled")) {
                return task;
            }
            assert!(Instant::now() < deadline, "task {uid} did not finish: {task}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn doc(i: u64) -> Value {
    let genre = ["a", "b", "c"][i as usize % 3];
    json!({"id": i, "title": format!("book {i}"), "year": 1900 + i % 120, "genre": genre})
}

async fn cluster_state(cluster: &TestCluster) -> ClusterState {
    let addrs: Vec<String> = cluster.coordinators.iter().map(|c| c.addr.clone()).collect();
    Client::new(&addrs).unwrap().get_state().await.expect("cluster state").0
}

/// Document ids each node holds for `index`, read from the node itself.
async fn ids_on_nodes(http: &Http, cluster: &TestCluster, index: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for node in &cluster.nodes {
        let mut ids = BTreeSet::new();
        let mut offset = 0;
        loop {
            let url = format!("{}/indexes/{index}/documents?fields=id&limit=1000&offset={offset}", node.url);
            let (status, page) = http.get(&url).await;
            assert_eq!(status, 200, "{}: {page}", node.id);
            let results = page["results"].as_array().unwrap();
            ids.extend(results.iter().map(|d| canonical_doc_id(&d["id"]).unwrap()));
            if results.len() < 1000 {
                break;
            }
            offset += 1000;
        }
        out.insert(node.id.clone(), ids);
    }
    out
}

/// The nodes that must hold `id` according to the committed placement.
fn owners(state: &ClusterState, index: &str, id: &str) -> BTreeSet<String> {
    let shards = state.indexes[index].shards;
    let shard = shard_of(id, shards);
    state.placements[index][shard as usize].values().flat_map(|p| p.owners.iter().map(|o| o.node.clone())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_flow_through_two_gateways_places_every_document_on_exactly_its_owners() {
    let cluster = TestCluster::start(ClusterSpec::default());
    let http = Http::new(&cluster.master_key);
    let (a, b) = (cluster.gateways[0].url.clone(), cluster.gateways[1].url.clone());

    let (status, task) = http.post_json(&format!("{a}/indexes"), &json!({"uid": "books", "primaryKey": "id"})).await;
    assert_eq!(status, 202, "{task}");
    let created = http.wait_task(&b, task["taskUid"].as_u64().unwrap()).await;
    assert_eq!(created["status"], "succeeded", "{created}");

    // 10,000 documents in batches of 1,000: four JSON, three NDJSON, three CSV.
    let mut tasks = Vec::new();
    for batch in 0..10u64 {
        let docs: Vec<Value> = (batch * 1000..(batch + 1) * 1000).map(doc).collect();
        let (ct, body) = match batch {
            0..=3 => ("application/json", serde_json::to_vec(&docs).unwrap()),
            4..=6 => {
                let lines: Vec<String> = docs.iter().map(|d| d.to_string()).collect();
                ("application/x-ndjson", lines.join("\n").into_bytes())
            }
            _ => {
                let mut csv = String::from("id:number,title,year:number,genre\n");
                for d in &docs {
                    csv += &format!(
                        "{},{},{},{}\n",
                        d["id"],
                        d["title"].as_str().unwrap(),
                        d["year"],
                        d["genre"].as_str().unwrap()
                    );
                }
                ("text/csv", csv.into_bytes())
            }
        };
        let (status, task) = http.send(reqwest::Method::POST, &format!("{a}/indexes/books/documents"), ct, body).await;
        assert_eq!(status, 202, "batch {batch}: {task}");
        assert_eq!(task["status"], "enqueued");
        tasks.push(task["taskUid"].as_u64().unwrap());
    }
    for uid in tasks {
        let t = http.wait_task(&b, uid).await;
        assert_eq!(t["status"], "succeeded", "{t}");
        assert_eq!(t["details"]["indexedDocuments"], 1000, "{t}");
        // Compared as instants: RFC 3339 text drops trailing zeros of the fraction.
        let at = |k: &str| {
            let text = t[k].as_str().unwrap_or_default();
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).expect("an RFC 3339 date")
        };
        assert!(at("enqueuedAt") <= at("startedAt"), "{t}");
    }

    // Every document by id (alternating gateways, a few requests in flight) and by browse.
    let reads = futures::stream::iter(0..10_000u64).map(|i| {
        let gw = if i % 2 == 0 { &a } else { &b };
        let url = format!("{gw}/indexes/books/documents/{i}");
        let http = &http;
        async move { (i, http.get(&url).await) }
    });
    let mut reads = reads.buffer_unordered(16);
    let mut read = 0;
    while let Some((i, (status, d))) = reads.next().await {
        assert_eq!(status, 200, "document {i}: {d}");
        assert_eq!(d, doc(i), "document {i} reads back as written");
        read += 1;
    }
    assert_eq!(read, 10_000);
    let mut browsed = BTreeSet::new();
    let mut offset = 0;
    loop {
        let (status, page) = http.get(&format!("{b}/indexes/books/documents?limit=1000&offset={offset}")).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["total"], 10_000, "{}", page["total"]);
        let results = page["results"].as_array().unwrap();
        browsed.extend(results.iter().map(|d| d["id"].as_u64().unwrap()));
        if results.len() < 1000 {
            break;
        }
        offset += 1000;
    }
    assert_eq!(browsed, (0..10_000).collect::<BTreeSet<u64>>());

    // Placement: each document on exactly its RF owners and nowhere else.
    let state = cluster_state(&cluster).await;
    let held = ids_on_nodes(&http, &cluster, "books").await;
    for i in 0..10_000u64 {
        let id = i.to_string();
        let expected = owners(&state, "books", &id);
        assert_eq!(expected.len(), 2, "RF 2");
        let actual: BTreeSet<String> =
            held.iter().filter(|(_, ids)| ids.contains(&id)).map(|(n, _)| n.clone()).collect();
        assert_eq!(actual, expected, "document {id}");
    }

    // The admin API's verify compares every copy: equal now, then one copy loses a document
    // behind the cluster's back and verify names it.
    let (status, report) = http.get(&format!("{a}/_miroir/indexes/books/verify")).await;
    assert_eq!(status, 200, "{report}");
    let shards = u64::from(state.indexes["books"].shards);
    assert_eq!((report["copiesCompared"].as_u64(), report["documents"].as_u64()), (Some(shards * 2), Some(10_000)));
    assert_eq!(report["differences"], json!([]), "{report}");
    let victim = owners(&state, "books", "7").into_iter().next().unwrap();
    let node = cluster.nodes.iter().find(|n| n.id == victim).unwrap();
    let (status, t) = http
        .send(reqwest::Method::DELETE, &format!("{}/indexes/books/documents/7", node.url), "application/json", vec![])
        .await;
    assert_eq!(status, 202, "{t}");
    http.wait_task(&node.url, t["taskUid"].as_u64().unwrap()).await;
    let (status, report) = http.get(&format!("{b}/_miroir/indexes/books/verify")).await;
    assert_eq!(status, 200, "{report}");
    let differences = report["differences"].as_array().unwrap();
    assert_eq!(differences.len(), 1, "{report}");
    assert_eq!((differences[0]["node"].as_str(), &differences[0]["missing"]), (Some(victim.as_str()), &json!(["7"])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_down_during_a_write_is_marked_stale_and_not_read() {
    let mut cluster = TestCluster::start(ClusterSpec { gateways: 1, ..ClusterSpec::default() });
    let http = Http::new(&cluster.master_key);
    let gw = cluster.gateways[0].url.clone();
    http.create_index(&gw, "stale").await;

    let down = cluster.nodes[0].id.clone();
    cluster.nodes[0].proc.kill();
    let docs: Vec<Value> = (0..200).map(doc).collect();
    let (status, task) = http.post_json(&format!("{gw}/indexes/stale/documents"), &json!(docs)).await;
    assert_eq!(status, 202, "the write is acknowledged by the in-sync copies left: {task}");

    let state = cluster_state(&cluster).await;
    let mut stale_shards = 0;
    for shard in &state.placements["stale"] {
        for p in shard.values() {
            for o in &p.owners {
                if o.node == down {
                    assert!(!o.in_sync, "the down owner must be marked stale");
                    stale_shards += 1;
                }
            }
        }
    }
    assert!(stale_shards > 0, "node {down} owned no shard of the index");
    // Reads avoid the stale copy: every document is served while its stale owner is still down.
    for i in 0..200u64 {
        let (status, d) = http.get(&format!("{gw}/indexes/stale/documents/{i}")).await;
        assert_eq!(status, 200, "document {i}: {d}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_whole_and_writes_nothing() {
    let cluster = TestCluster::start(ClusterSpec { gateways: 1, ..ClusterSpec::default() });
    let http = Http::new(&cluster.master_key);
    let gw = cluster.gateways[0].url.clone();
    http.create_index(&gw, "bad").await;
    let (_, before) = http.get(&format!("{gw}/tasks")).await;

    let url = format!("{gw}/indexes/bad/documents");
    // The gateway process enforces its master key like Meilisearch.
    let anonymous = reqwest::Client::new().post(&url).json(&json!([{"id": 1}])).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let e: Value = anonymous.json().await.unwrap();
    assert_eq!(e["code"], "missing_authorization_header", "{e}");
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        (
            "reserved field",
            "application/json",
            br#"[{"id":1,"_miroir_shard":3}]"#.to_vec(),
            400,
            "miroir_reserved_field",
        ),
        ("missing id", "application/json", br#"[{"id":1},{"title":"no id"}]"#.to_vec(), 400, "missing_document_id"),
        ("invalid id", "application/json", br#"[{"id":2},{"id":"a b"}]"#.to_vec(), 400, "invalid_document_id"),
        ("malformed json", "application/json", br#"[{"id":1},"#.to_vec(), 400, "malformed_payload"),
        ("malformed csv", "text/csv", b"id,title\n1,a\n2,b,extra\n".to_vec(), 400, "malformed_payload"),
        ("wrong content type", "text/plain", b"id=1".to_vec(), 415, "invalid_content_type"),
    ];
    for (what, ct, body, status, code) in cases {
        let (s, e) = http.send(reqwest::Method::POST, &url, ct, body).await;
        assert_eq!((s, e["code"].as_str()), (status, Some(code)), "{what}: {e}");
        for field in ["message", "type", "link"] {
            assert!(e[field].is_string(), "{what}: Meilisearch error shape, missing {field}: {e}");
        }
    }
    // Oversize: refused from the declared length, before the body is read (so a client sees the
    // answer instead of a reset while it is still uploading).
    let addr = gw.trim_start_matches("http://").to_string();
    let key = cluster.master_key.clone();
    let answer = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let len = 100 * 1024 * 1024 + 1;
        write!(s, "POST /indexes/bad/documents HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\n").unwrap();
        write!(s, "Content-Type: application/json\r\nContent-Length: {len}\r\n\r\n[").unwrap();
        let mut buf = vec![0u8; 4096];
        let n = s.read(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).to_string()
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "oversize body: {answer}");
    assert!(answer.contains("\"code\":\"payload_too_large\""), "oversize body: {answer}");

    let (_, after) = http.get(&format!("{gw}/tasks")).await;
    assert_eq!(before["total"], after["total"], "refused writes registered no task");
    for (node, ids) in ids_on_nodes(&http, &cluster, "bad").await {
        assert!(ids.is_empty(), "{node} holds documents from refused writes: {ids:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_coordinator_leader_under_writes_loses_no_acknowledged_document() {
    let mut cluster = TestCluster::start(ClusterSpec { gateways: 1, ..ClusterSpec::default() });
    let http = Http::new(&cluster.master_key);
    let gw = cluster.gateways[0].url.clone();
    http.create_index(&gw, "failover").await;

    let mut acknowledged = Vec::new();
    let mut refused = 0;
    let mut killed = None;
    for i in 0..120u64 {
        if i == 40 {
            killed = cluster.kill_leader();
            assert!(killed.is_some(), "a leader to kill");
        }
        let started = Instant::now();
        let (status, body) = http.post_json(&format!("{gw}/indexes/failover/documents"), &json!([doc(i)])).await;
        assert!(started.elapsed() < Duration::from_secs(30), "a write hung for {:?}", started.elapsed());
        match status {
            202 => acknowledged.push((i, body["taskUid"].as_u64().unwrap())),
            // A clean refusal while there is no leader: Meilisearch's error shape, retryable status.
            _ => {
                assert!(status >= 500, "write {i}: {status} {body}");
                assert!(body["code"].is_string() && body["message"].is_string(), "write {i}: {body}");
                refused += 1;
            }
        }
    }
    cluster.restart_coordinator(killed.unwrap());
    assert!(acknowledged.len() >= 80, "the cluster recovered: {} acknowledged, {refused} refused", acknowledged.len());
    for (i, uid) in &acknowledged {
        let t = http.wait_task(&gw, *uid).await;
        assert_eq!(t["status"], "succeeded", "write {i}: {t}");
        let (status, d) = http.get(&format!("{gw}/indexes/failover/documents/{i}")).await;
        assert_eq!(status, 200, "acknowledged document {i} lost: {d}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_missed_a_settings_update_is_reconciled_by_the_leader() {
    let mut cluster = TestCluster::start(ClusterSpec { gateways: 1, ..ClusterSpec::default() });
    let http = Http::new(&cluster.master_key);
    let gw = cluster.gateways[0].url.clone();
    http.create_index(&gw, "tuned").await;

    cluster.nodes[0].proc.kill();
    let settings = json!({"filterableAttributes": ["genre", "year"], "sortableAttributes": ["year"]});
    let url = format!("{gw}/indexes/tuned/settings");
    let (status, task) =
        http.send(reqwest::Method::PATCH, &url, "application/json", serde_json::to_vec(&settings).unwrap()).await;
    assert_eq!(status, 202, "{task}");
    // The node comes back empty (a dev node keeps nothing): the leader's reconciler must recreate
    // the index on it with the current settings, without any client action.
    cluster.restart_node(0);
    let node = cluster.nodes[0].url.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, s) = http.get(&format!("{node}/indexes/tuned/settings")).await;
        let filterable: BTreeSet<String> = s["filterableAttributes"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
            .unwrap_or_default();
        let want: BTreeSet<String> = ["genre", "year", "_miroir_shard"].map(String::from).into();
        if status == 200 && filterable == want && s["sortableAttributes"] == json!(["year"]) {
            break;
        }
        assert!(Instant::now() < deadline, "node not reconciled: {status} {s}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Through the gateway the client sees its own settings, without the shard field.
    let (status, s) = http.get(&url).await;
    assert_eq!(status, 200);
    assert_eq!(s["filterableAttributes"], json!(["genre", "year"]), "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_derived_from_the_task_log() {
    let cluster = TestCluster::start(ClusterSpec { gateways: 1, ..ClusterSpec::default() });
    let http = Http::new(&cluster.master_key);
    let gw = cluster.gateways[0].url.clone();
    http.create_index(&gw, "batched").await;
    let (_, task) = http.post_json(&format!("{gw}/indexes/batched/documents"), &json!([doc(1), doc(2)])).await;
    let task = http.wait_task(&gw, task["taskUid"].as_u64().unwrap()).await;
    let batch_uid = task["batchUid"].as_u64().expect("a finished task has a batch");

    let (status, batch) = http.get(&format!("{gw}/batches/{batch_uid}")).await;
    assert_eq!(status, 200, "{batch}");
    assert_eq!(batch["uid"], batch_uid);
    assert_eq!(batch["stats"]["totalNbTasks"], 1);
    assert_eq!(batch["stats"]["status"], json!({"succeeded": 1}));
    assert_eq!(batch["stats"]["types"], json!({"documentAdditionOrUpdate": 1}));
    assert_eq!(batch["stats"]["indexUids"], json!({"batched": 1}));
    assert!(batch["startedAt"].is_string() && batch["finishedAt"].is_string() && batch["duration"].is_string());

    let (status, page) = http.get(&format!("{gw}/batches?limit=10")).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["total"], 2, "index creation and the document addition: {page}");
    assert_eq!(page["results"][0]["uid"], batch_uid, "newest first: {page}");
    let (_, tasks) = http.get(&format!("{gw}/tasks?batchUids={batch_uid}")).await;
    assert_eq!(tasks["results"].as_array().map(Vec::len), Some(1), "{tasks}");
    assert_eq!(tasks["results"][0]["uid"], task["uid"]);

    let (status, e) = http.get(&format!("{gw}/batches/999999")).await;
    assert_eq!((status, e["code"].as_str()), (404, Some("batch_not_found")), "{e}");

    // Compaction goes to every copy and is tracked like any task.
    let (status, t) = http.post_json(&format!("{gw}/indexes/batched/compact"), &json!({})).await;
    assert_eq!((status, t["type"].as_str()), (202, Some("indexCompaction")), "{t}");
    let done = http.wait_task(&gw, t["taskUid"].as_u64().unwrap()).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let (status, e) = http.post_json(&format!("{gw}/indexes/nope/compact"), &json!({})).await;
    assert_eq!((status, e["code"].as_str()), (404, Some("index_not_found")), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn experimental_features_are_cluster_wide_and_reach_nodes_that_missed_them() {
    let mut cluster = TestCluster::start(ClusterSpec { gateways: 1, ..ClusterSpec::default() });
    let http = Http::new(&cluster.master_key);
    let url = format!("{}/experimental-features", cluster.gateways[0].url);
    let patch = |v: Value| http.send(reqwest::Method::PATCH, &url, "application/json", serde_json::to_vec(&v).unwrap());

    let (status, f) = http.get(&url).await;
    assert_eq!((status, &f["containsFilter"]), (200, &json!(false)), "{f}");
    let (status, f) = patch(json!({"containsFilter": true})).await;
    assert_eq!((status, &f["containsFilter"], &f["metrics"]), (200, &json!(true), &json!(false)), "{f}");
    // Bad input is refused with Meilisearch's own error and changes nothing.
    let (status, e) = patch(json!({"noSuchFeature": true})).await;
    assert_eq!((status, e["code"].as_str()), (400, Some("bad_request")), "{e}");
    let (status, e) = patch(json!({"metrics": "yes"})).await;
    assert_eq!((status, e["code"].as_str()), (400, Some("bad_request")), "{e}");
    for node in &cluster.nodes {
        let (_, f) = http.get(&format!("{}/experimental-features", node.url)).await;
        assert_eq!((&f["containsFilter"], &f["metrics"]), (&json!(true), &json!(false)), "{}: {f}", node.id);
    }

    // A node down during a change, back empty: the leader brings it to the cluster's flags.
    cluster.nodes[1].proc.kill();
    let (status, f) = patch(json!({"metrics": true})).await;
    assert_eq!((status, &f["metrics"]), (200, &json!(true)), "{f}");
    cluster.restart_node(1);
    let node = cluster.nodes[1].url.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, f) = http.get(&format!("{node}/experimental-features")).await;
        if f["metrics"] == json!(true) && f["containsFilter"] == json!(true) {
            break;
        }
        assert!(Instant::now() < deadline, "node not reconciled: {f}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A webhook receiver: records the task uids of every notification and the headers it came with.
async fn webhook_receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<(u64, String)>>>) {
    use std::io::Read;
    let seen: std::sync::Arc<std::sync::Mutex<Vec<(u64, String)>>> = Default::default();
    let s = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let s = s.clone();
            async move {
                assert_eq!(headers["content-encoding"], "gzip");
                assert_eq!(headers["content-type"], "application/x-ndjson");
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                let mut text = String::new();
                flate2::read::GzDecoder::new(&body[..]).read_to_string(&mut text).unwrap();
                for line in text.lines() {
                    let task: Value = serde_json::from_str(line).unwrap();
                    assert!(matches!(task["status"].as_str(), Some("succeeded" | "failed" | "canceled")), "{task}");
                    s.lock().unwrap().push((task["uid"].as_u64().unwrap(), auth.clone()));
                }
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_managed_like_meilisearch_and_notified_once_per_finished_task() {
    let cluster = TestCluster::start(ClusterSpec { gateways: 2, ..ClusterSpec::default() });
    let http = Http::new(&cluster.master_key);
    let (a, b) = (cluster.gateways[0].url.clone(), cluster.gateways[1].url.clone());
    let (hook_url, seen) = webhook_receiver().await;

    // Validation, as Meilisearch answers it.
    for (body, code) in [
        (json!({"headers": {}}), "invalid_webhook_url"),
        (json!({"url": "not a url"}), "invalid_webhook_url"),
        (json!({"url": 3}), "invalid_webhook_url"),
        (json!({"url": hook_url, "headers": {"bad header": "x"}}), "invalid_webhook_headers"),
        (json!({"url": hook_url, "uuid": "x"}), "immutable_webhook_uuid"),
        (json!({"url": hook_url, "other": 1}), "bad_request"),
    ] {
        let (status, e) = http.post_json(&format!("{a}/webhooks"), &body).await;
        assert_eq!((status, e["code"].as_str()), (400, Some(code)), "{body}: {e}");
    }
    let secret = "Bearer a-very-long-secret-token-value";
    let (status, hook) =
        http.post_json(&format!("{a}/webhooks"), &json!({"url": hook_url, "headers": {"Authorization": secret}})).await;
    assert_eq!(status, 201, "{hook}");
    assert_eq!(hook["isEditable"], true);
    assert_eq!(hook["headers"]["Authorization"], "Bearer a-verXXXXXX...", "redacted: {hook}");
    let uuid = hook["uuid"].as_str().unwrap().to_string();
    // Gateway B serves it as soon as it installs the map version that carries it.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, list) = http.get(&format!("{b}/webhooks")).await;
        if status == 200 && list["results"][0]["uuid"].as_str() == Some(uuid.as_str()) {
            break;
        }
        assert!(Instant::now() < deadline, "gateway B never saw the webhook: {list}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, patched) = http
        .send(
            reqwest::Method::PATCH,
            &format!("{b}/webhooks/{uuid}"),
            "application/json",
            br#"{"headers":{"X-Extra":"1"}}"#.to_vec(),
        )
        .await;
    assert_eq!((status, &patched["headers"]["X-Extra"]), (200, &json!("1")), "{patched}");
    let (status, e) = http.get(&format!("{a}/webhooks/not-a-uuid")).await;
    assert_eq!((status, e["code"].as_str()), (400, Some("invalid_webhook_uuid")), "{e}");

    // Tasks finish; each is notified once, with the webhook's own headers.
    http.create_index(&a, "hooked").await;
    let mut uids = Vec::new();
    for i in 0..5u64 {
        let (_, t) = http.post_json(&format!("{a}/indexes/hooked/documents"), &json!([doc(i)])).await;
        uids.push(t["taskUid"].as_u64().unwrap());
    }
    for uid in &uids {
        http.wait_task(&a, *uid).await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while uids.iter().any(|u| !seen.lock().unwrap().iter().any(|(s, _)| s == u)) {
        assert!(Instant::now() < deadline, "notifications missing: {:?}", seen.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seen = seen.lock().unwrap().clone();
    for uid in &uids {
        assert_eq!(seen.iter().filter(|(s, _)| s == uid).count(), 1, "task {uid} notified once: {seen:?}");
    }
    assert!(seen.iter().all(|(_, auth)| auth == secret), "the webhook's headers are sent: {seen:?}");

    let (status, _) =
        http.send(reqwest::Method::DELETE, &format!("{a}/webhooks/{uuid}"), "application/json", vec![]).await;
    assert_eq!(status, 204);
    let (status, e) = http.get(&format!("{a}/webhooks/{uuid}")).await;
    assert_eq!((status, e["code"].as_str()), (404, Some("webhook_not_found")), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_survive_a_dead_node_with_rf2_and_say_what_is_missing_with_rf1() {
    let mut cluster = TestCluster::start(ClusterSpec { gateways: 1, ..ClusterSpec::default() });
    let http = Http::new(&cluster.master_key);
    let gw = cluster.gateways[0].url.clone();
    http.create_index(&gw, "rf2").await;
    let created = http
        .client
        .post(format!("{gw}/indexes"))
        .bearer_auth(&http.key)
        .header("x-miroir-replicas", "1")
        .json(&json!({"uid": "rf1", "primaryKey": "id"}))
        .send()
        .await
        .unwrap();
    let created: Value = created.json().await.unwrap();
    http.wait_task(&gw, created["taskUid"].as_u64().unwrap()).await;
    let docs: Vec<Value> = (0..300).map(doc).collect();
    for index in ["rf2", "rf1"] {
        let (_, t) = http.post_json(&format!("{gw}/indexes/{index}/documents"), &json!(docs)).await;
        let t = http.wait_task(&gw, t["taskUid"].as_u64().unwrap()).await;
        assert_eq!(t["status"], "succeeded", "{t}");
    }
    let down = cluster.nodes[0].id.clone();
    let state = cluster_state(&cluster).await;
    let lost: Vec<usize> = state.placements["rf1"]
        .iter()
        .enumerate()
        .filter(|(_, groups)| groups.values().any(|p| p.owners.iter().any(|o| o.node == down)))
        .map(|(shard, _)| shard)
        .collect();
    assert!(!lost.is_empty(), "{down} owns some shard of rf1");
    cluster.nodes[0].proc.kill();

    let search = |index: &str, policy: Option<&str>| {
        let mut req = http.client.post(format!("{gw}/indexes/{index}/search")).bearer_auth(&http.key);
        if let Some(p) = policy {
            req = req.header("x-miroir-missing-shards", p);
        }
        req.json(&json!({"q": "", "limit": 1000})).send()
    };
    // RF 2: every shard still has a copy; the answer is complete and not degraded.
    let r = search("rf2", None).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers().get("x-miroir-degraded").is_none());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["estimatedTotalHits"], 300, "{body}");
    // RF 1: a partial answer naming the shards it misses, or 503 under the `error` policy.
    let r = search("rf1", None).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let degraded = r.headers().get("x-miroir-degraded").expect("degraded header").to_str().unwrap().to_string();
    let named: Vec<usize> = degraded.trim_start_matches("shards=").split(',').map(|s| s.parse().unwrap()).collect();
    assert_eq!(named, lost, "{degraded}");
    let body: Value = r.json().await.unwrap();
    assert!(body["estimatedTotalHits"].as_u64().unwrap() < 300, "{body}");
    let r = search("rf1", Some("error")).await.unwrap();
    assert_eq!(r.status().as_u16(), 503);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["code"], "miroir_unavailable", "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_deleted_while_a_node_was_unreachable_never_comes_back() {
    if miroir_devtools::harness::meili_bin().is_some() {
        eprintln!("skipped: needs the dev node's fault route to make a node unreachable but keep its data");
        return;
    }
    let cluster = TestCluster::start(ClusterSpec { gateways: 1, ..ClusterSpec::default() });
    let http = Http::new(&cluster.master_key);
    let gw = cluster.gateways[0].url.clone();
    http.create_index(&gw, "gone").await;
    let (_, t) =
        http.post_json(&format!("{gw}/indexes/gone/documents"), &json!((0..300).map(doc).collect::<Vec<_>>())).await;
    assert_eq!(http.wait_task(&gw, t["taskUid"].as_u64().unwrap()).await["status"], "succeeded");

    // node-1 answers nothing (503) but keeps its data while the index is deleted.
    let (down, down_url) = (cluster.nodes[0].id.clone(), cluster.nodes[0].url.clone());
    let faults = format!("{down_url}/_devnode/faults");
    assert_eq!(http.post_json(&faults, &json!({"stopped": true})).await.0, 200);
    let (status, t) =
        http.send(reqwest::Method::DELETE, &format!("{gw}/indexes/gone"), "application/json", vec![]).await;
    assert_eq!(status, 202, "{t}");
    let t = http.wait_task(&gw, t["taskUid"].as_u64().unwrap()).await;
    assert_eq!(t["status"], "succeeded", "{t}");
    assert!(cluster_state(&cluster).await.deleting["gone"].contains(&down), "the state remembers {down}");

    // Re-created meanwhile: the new index gets no copy on the node that may hold the old one.
    http.create_index(&gw, "gone").await;
    let state = cluster_state(&cluster).await;
    for groups in &state.placements["gone"] {
        assert!(groups.values().all(|p| p.owners.iter().all(|o| o.node != down)), "{groups:?}");
    }
    assert_eq!(http.post_json(&faults, &json!({"stopped": false})).await.0, 200);
    let (_, t) = http
        .post_json(&format!("{gw}/indexes/gone/documents"), &json!((1000..1010).map(doc).collect::<Vec<_>>()))
        .await;
    assert_eq!(http.wait_task(&gw, t["taskUid"].as_u64().unwrap()).await["status"], "succeeded");

    // The leader deletes the old copy on the node once it answers, without any client action.
    // Right after, the rebalancer may give the node copies of the new index (same uid): what must
    // never be there again is an old document.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, page) = http.get(&format!("{down_url}/indexes/gone/documents?fields=id&limit=1000")).await;
        let old_ids =
            page["results"].as_array().map_or(0, |r| r.iter().filter(|d| d["id"].as_u64() < Some(1000)).count());
        let cleaned = (status == 404 || old_ids == 0) && !cluster_state(&cluster).await.deleting.contains_key("gone");
        if cleaned {
            break;
        }
        assert!(Instant::now() < deadline, "{down} still holds the deleted index ({status}, {old_ids} old documents)");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, page) = http.get(&format!("{gw}/indexes/gone/documents?limit=1000")).await;
    assert_eq!((status, &page["total"]), (200, &json!(10)), "no old document is back: {page}");
}
