//! Indexing load driver: the same documents sent straight to one node and through a Miroir gateway
//! (3 coordinators, `--nodes` nodes, S shards, RF copies), in the same run; prints documents per second
//! from the first request to the last task succeeded. Nodes are dev nodes, or real Meilisearch when
//! `MEILI_BIN` is set. Then it times the same search queries against both (`--searches`, p50/p99
//! and throughput). With `--add-node`, it then adds one more node to the loaded cluster and reports
//! the time until every shard is on its new owners, the documents moved per second, and the search
//! latency clients saw meanwhile. Build with `--release` for meaningful numbers.

#[derive(clap::Parser)]
#[command(name = "miroir-bench-index")]
struct Args {
    /// Documents to index.
    #[arg(long, default_value_t = 100_000)]
    docs: u64,
    /// Documents per request.
    #[arg(long, default_value_t = 1_000)]
    batch: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 4)]
    clients: u64,
    /// Meilisearch nodes in the cluster.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    #[arg(long, default_value_t = 8)]
    shards: u32,
    #[arg(long, default_value_t = 2)]
    rf: u32,
    /// Searches to time against each target after indexing (0 = none).
    #[arg(long, default_value_t = 2_000)]
    searches: usize,
    /// Then add a node to the loaded cluster and time the migration (searches run all along).
    #[arg(long)]
    add_node: bool,
    /// Coordinator flags for the migration (e.g. `--copy-rate=0` for unthrottled copies).
    #[arg(long, allow_hyphen_values = true)]
    coordinator_arg: Vec<String>,
}

mod bench {
    use std::time::{Duration, Instant};

    use serde_json::{json, Value};

    pub fn doc(i: u64) -> Value {
        let words = ["river", "stone", "night", "garden", "silver", "winter", "harbor", "forest"];
        let title = format!("{} {} {}", words[(i % 8) as usize], words[(i / 8 % 8) as usize], i);
        json!({"id": i, "title": title, "price": (i * 37) % 1000, "tag": words[(i / 64 % 8) as usize]})
    }

    pub struct Target {
        pub url: String,
        pub key: String,
        pub http: reqwest::Client,
    }

    impl Target {
        async fn call(&self, m: reqwest::Method, path: &str, body: Option<Vec<u8>>) -> Value {
            let mut req = self.http.request(m, format!("{}{path}", self.url)).bearer_auth(&self.key);
            if let Some(b) = body {
                req = req.header("content-type", "application/json").body(b);
            }
            let resp = req.send().await.expect("request");
            let status = resp.status();
            let v: Value = resp.json().await.unwrap_or(Value::Null);
            assert!(status.is_success(), "{path}: {status} {v}");
            v
        }

        async fn wait(&self, uid: u64) {
            loop {
                let t = self.call(reqwest::Method::GET, &format!("/tasks/{uid}"), None).await;
                match t["status"].as_str() {
                    Some("succeeded") => return,
                    Some("failed" | "canceled") => panic!("task {uid}: {t}"),
                    _ => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        }

        /// `n` searches from `clients` concurrent clients; returns (sorted latencies, wall time).
        pub async fn searches(&self, index: &str, n: usize, clients: usize) -> (Vec<Duration>, Duration) {
            let words = ["river", "stone", "night", "garden", "silver", "winter", "harbor", "forest"];
            let started = Instant::now();
            let mut handles = Vec::new();
            for c in 0..clients {
                let me = Target { url: self.url.clone(), key: self.key.clone(), http: self.http.clone() };
                let index = index.to_string();
                handles.push(tokio::spawn(async move {
                    let mut lat = Vec::new();
                    for i in (c..n).step_by(clients) {
                        let body = match i % 4 {
                            0 => json!({"q": words[i % 8], "limit": 20}),
                            1 => json!({"q": format!("{} {}", words[i % 8], words[(i / 8) % 8]), "filter": format!("price < {}", i % 1000)}),
                            2 => json!({"q": "", "sort": ["price:asc"], "filter": format!("tag = {}", words[i % 8]), "offset": i % 100}),
                            _ => json!({"q": words[i % 8], "facets": ["tag"], "limit": 10}),
                        };
                        let t = Instant::now();
                        me.call(reqwest::Method::POST, &format!("/indexes/{index}/search"), Some(body.to_string().into_bytes())).await;
                        lat.push(t.elapsed());
                    }
                    lat
                }));
            }
            let mut all = Vec::new();
            for h in handles {
                all.extend(h.await.unwrap());
            }
            all.sort();
            (all, started.elapsed())
        }

        /// Creates the index, then indexes `docs` documents; returns the elapsed time.
        pub async fn run(&self, index: &str, docs: u64, batch: u64, clients: u64) -> Duration {
            let t = self
                .call(
                    reqwest::Method::POST,
                    "/indexes",
                    Some(json!({"uid": index, "primaryKey": "id"}).to_string().into_bytes()),
                )
                .await;
            self.wait(t["taskUid"].as_u64().unwrap()).await;
            // What the search mix filters, sorts and facets on.
            let settings = json!({"filterableAttributes": ["price", "tag"], "sortableAttributes": ["price"]});
            let t = self
                .call(
                    reqwest::Method::PATCH,
                    &format!("/indexes/{index}/settings"),
                    Some(settings.to_string().into_bytes()),
                )
                .await;
            self.wait(t["taskUid"].as_u64().unwrap()).await;
            let started = Instant::now();
            let batches: Vec<u64> = (0..docs.div_ceil(batch)).collect();
            let per_client = batches.len().div_ceil(clients as usize).max(1);
            let mut handles = Vec::new();
            for chunk in batches.chunks(per_client) {
                let me = Target { url: self.url.clone(), key: self.key.clone(), http: self.http.clone() };
                let (chunk, index) = (chunk.to_vec(), index.to_string());
                handles.push(tokio::spawn(async move {
                    let mut uids = Vec::new();
                    for b in chunk {
                        let docs: Vec<Value> = (b * batch..((b + 1) * batch).min(docs)).map(doc).collect();
                        let body = serde_json::to_vec(&docs).unwrap();
                        let t =
                            me.call(reqwest::Method::POST, &format!("/indexes/{index}/documents"), Some(body)).await;
                        uids.push(t["taskUid"].as_u64().unwrap());
                    }
                    for uid in uids {
                        me.wait(uid).await;
                    }
                }));
            }
            for h in handles {
                h.await.unwrap();
            }
            started.elapsed()
        }
    }
}

#[tokio::main]
async fn main() {
    use clap::Parser;
    use miroir_devtools::harness::{ClusterSpec, TestCluster};

    let args = Args::parse();
    let mut cluster = tokio::task::spawn_blocking({
        let (nodes, shards, rf) = (args.nodes, args.shards, args.rf);
        let coordinator_args = args.coordinator_arg.clone();
        move || {
            TestCluster::start(ClusterSpec {
                nodes,
                gateways: 1,
                shards,
                rf,
                coordinator_args,
                ..ClusterSpec::default()
            })
        }
    })
    .await
    .unwrap();
    // The single-node baseline: one more node of the same kind, outside the cluster.
    let single = cluster.spawn_node("baseline");
    let http = reqwest::Client::new();
    let key = cluster.master_key.clone();
    let node = bench::Target { url: single.url.clone(), key: key.clone(), http: http.clone() };
    let gateway = bench::Target { url: cluster.gateways[0].url.clone(), key, http };

    println!(
        "{} documents, batches of {}, {} clients; cluster: {} nodes, {} shards, RF {}",
        args.docs, args.batch, args.clients, args.nodes, args.shards, args.rf
    );
    let t_node = node.run("bench", args.docs, args.batch, args.clients).await;
    let t_gw = gateway.run("bench", args.docs, args.batch, args.clients).await;
    let rate = |t: std::time::Duration| args.docs as f64 / t.as_secs_f64();
    println!("one node:         {:>8.0} docs/s ({:.2} s)", rate(t_node), t_node.as_secs_f64());
    println!(
        "through gateway:  {:>8.0} docs/s ({:.2} s)  [each document written {} times]",
        rate(t_gw),
        t_gw.as_secs_f64(),
        args.rf
    );
    if args.searches > 0 {
        let pct = |l: &[std::time::Duration], p: f64| l[((l.len() as f64 - 1.0) * p) as usize].as_secs_f64() * 1000.0;
        let gateway_pid = cluster.gateways[0].proc.pid().expect("gateway running");
        for (name, target) in [("one node", &node), ("through gateway", &gateway)] {
            let cpu_before = cpu_seconds(gateway_pid);
            let (lat, wall) = target.searches("bench", args.searches, args.clients as usize).await;
            let cpu = cpu_seconds(gateway_pid) - cpu_before;
            println!(
                "search, {name:<16} {:>7.0} queries/s  p50 {:>6.2} ms  p99 {:>6.2} ms  gateway CPU {:>5.0} µs/query",
                lat.len() as f64 / wall.as_secs_f64(),
                pct(&lat, 0.5),
                pct(&lat, 0.99),
                cpu * 1e6 / lat.len() as f64
            );
        }
    }
    if args.add_node {
        move_to_a_new_node(&mut cluster, &gateway, args.clients as usize).await;
    }
    drop(single);
    drop(cluster);
}

/// User plus system CPU time the process has used, from /proc (Linux).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| f.iter().filter_map(|x| x.parse::<f64>().ok()).sum());
    let per_second = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<f64>().ok())
        .unwrap_or(100.0);
    ticks / per_second
}

/// Adds a node to the loaded cluster; searches run from `clients` clients until every migration is
/// done. Prints the time to settle, documents moved per second and the searches' latency.
async fn move_to_a_new_node(
    cluster: &mut miroir_devtools::harness::TestCluster,
    gateway: &bench::Target,
    clients: usize,
) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    let node = cluster.spawn_node("node-added");
    let node_url = node.url.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let searchers = {
        let me = bench::Target { url: gateway.url.clone(), key: gateway.key.clone(), http: gateway.http.clone() };
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut lat = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                lat.extend(me.searches("bench", clients * 10, clients).await.0);
            }
            lat
        })
    };
    let started = Instant::now();
    cluster.ctl(&["node", "add", "node-added", "--url", &node_url, "--group", "main"]).expect("node add");
    cluster.nodes.push(node);
    // Settled: the new node holds documents and no migration has been in flight for two rebalancer
    // rounds (it starts at most `--max-migrations` at a time, so one may end before the next starts).
    let docs_on_new_node = || async {
        let url = format!("{node_url}/indexes/bench/stats");
        let resp = gateway.http.get(url).bearer_auth(&gateway.key).send().await.expect("node stats");
        resp.json::<serde_json::Value>().await.ok().and_then(|v| v["numberOfDocuments"].as_u64()).unwrap_or(0)
    };
    let mut idle_since: Option<Instant> = None;
    let settled_at = loop {
        let migrations = cluster.ctl(&["migrations"]).expect("miroirctl migrations");
        let idle = migrations["migrations"].as_array().is_some_and(Vec::is_empty);
        if !idle {
            idle_since = None;
        } else if docs_on_new_node().await > 0 {
            let since = *idle_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= Duration::from_millis(2_500) {
                break since;
            }
        }
        assert!(started.elapsed() < Duration::from_secs(3600), "migrations did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let took = settled_at - started;
    stop.store(true, Ordering::Relaxed);
    let mut lat = searchers.await.unwrap();
    lat.sort();
    let moved = docs_on_new_node().await;
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p) as usize].as_secs_f64() * 1000.0;
    println!(
        "add a node:       {:.2} s to settle, {moved} documents copied to it ({:.0} docs/s)",
        took.as_secs_f64(),
        moved as f64 / took.as_secs_f64()
    );
    println!("search during the move: {} queries, p50 {:>6.2} ms  p99 {:>6.2} ms", lat.len(), pct(0.5), pct(0.99));
}
