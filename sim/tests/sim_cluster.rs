//! The whole cluster under madsim: three coordinator peers running every leader controller, two
//! gateways, dev nodes, writers and an operator, with network faults chosen by the seed. Checks
//! that every write a gateway acknowledged, whose task succeeded, is readable through every
//! gateway once the faults heal and the cluster settles (docs/simulation.md).
#![cfg(madsim)]

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use madsim::rand::{thread_rng, Rng};
use miroir_node_client::{Method, NodeClient, NodeRequest};
use miroir_sim::cluster::{Cluster, Config};
use miroir_sim::seeds;
use serde_json::json;

const INDEX: &str = "docs";
/// How long writes and faults go on before everything heals.
const CHAOS: Duration = Duration::from_secs(120);

#[test]
#[ignore = "run by the other tests in a child process, one seed each"]
fn one_seed() {
    seeds::child(scenario);
}

#[test]
fn acknowledged_writes_survive_migrations_and_slow_links() {
    for seed in seeds::seeds(&[1, 2, 3, 4]) {
        let digest = seeds::run("one_seed", seed);
        println!("  seed {seed}: digest {digest:016x}");
    }
}

/// A write acknowledged with 202: its task and the document it wrote.
#[derive(Debug, Clone, Hash)]
struct Acked {
    task: u64,
    id: String,
}

async fn wait_task(http: &NodeClient, gateway: &str, uid: u64) -> String {
    for _ in 0..1200 {
        if let Ok(task) = http.json(gateway, NodeRequest::get(format!("/tasks/{uid}"))).await {
            let status = task["status"].as_str().unwrap_or_default().to_string();
            if status == "succeeded" || status == "failed" || status == "canceled" {
                return status;
            }
        }
        madsim::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("task {uid} never finished");
}

async fn document_ids(http: &NodeClient, gateway: &str) -> Option<BTreeSet<String>> {
    let body = json!({"limit": 1_000_000, "fields": ["id"]});
    let page = http.json(gateway, NodeRequest::json(Method::Post, format!("/indexes/{INDEX}/documents/fetch"), &body));
    let page = page.await.ok()?;
    Some(page["results"].as_array()?.iter().filter_map(|d| d["id"].as_str().map(str::to_string)).collect())
}

async fn scenario() -> u64 {
    let started = madsim::time::Instant::now();
    let mut cluster = Cluster::start(Config::default()).await;
    let gateways: Vec<String> = cluster.gateways.iter().map(|g| g.url.clone()).collect();
    let http = cluster.http.clone();

    let create = {
        let (http, gw) = (http.clone(), gateways[0].clone());
        cluster.client.spawn(async move {
            let req = NodeRequest::json(Method::Post, "/indexes", &json!({"uid": INDEX, "primaryKey": "id"}));
            let uid = http.enqueue(&gw, req).await.expect("index creation accepted");
            wait_task(&http, &gw, uid).await
        })
    };
    assert_eq!(create.await.expect("create"), "succeeded");

    let acked = Arc::new(Mutex::new(Vec::<Acked>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (http, gateways, acked, stop) = (http.clone(), gateways.clone(), acked.clone(), stop.clone());
            cluster.client.spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let gw = &gateways[thread_rng().gen_range(0..gateways.len())];
                    let id = format!("w{w}-{i}");
                    let doc = json!([{"id": id, "writer": w, "n": i}]);
                    let req = NodeRequest::json(Method::Post, format!("/indexes/{INDEX}/documents"), &doc);
                    if let Ok(task) = http.enqueue(gw, req).await {
                        acked.lock().unwrap().push(Acked { task, id });
                    }
                    i += 1;
                    madsim::time::sleep(Duration::from_millis(thread_rng().gen_range(50..400))).await;
                }
            })
        })
        .collect();

    // Chaos: links from a gateway to a node slower than a lease, now and then, while the operator
    // adds nodes (each addition starts migrations of the shards the new node should own).
    let faults = cluster.faults.clone();
    let (gateway_ips, mut node_ips): (Vec<_>, Vec<_>) =
        (cluster.gateways.iter().map(|g| g.ip).collect(), cluster.nodes.values().map(|n| n.ip).collect());
    let chaos_start = madsim::time::Instant::now();
    let mut slowed = 0;
    let mut added = 0u8;
    while chaos_start.elapsed() < CHAOS {
        madsim::time::sleep(Duration::from_millis(thread_rng().gen_range(1000..6000))).await;
        if added < 3 && thread_rng().gen_bool(0.25) {
            added += 1;
            let i = cluster.config.nodes + added;
            cluster.add_node(i).await;
            node_ips.push(cluster.nodes[&format!("node-{i}")].ip);
            continue;
        }
        let gw = gateway_ips[thread_rng().gen_range(0..gateway_ips.len())];
        let node = node_ips[thread_rng().gen_range(0..node_ips.len())];
        let delay = Duration::from_millis(thread_rng().gen_range(2_000..25_000));
        faults.slow_link(gw, node, delay);
        slowed += 1;
        let (faults, window) = (faults.clone(), Duration::from_millis(thread_rng().gen_range(1_000..10_000)));
        madsim::task::spawn(async move {
            madsim::time::sleep(window).await;
            faults.heal_link(gw, node);
        });
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.expect("writer");
    }
    cluster.faults.heal_all();
    let acked = acked.lock().unwrap().clone();
    println!("  {} writes acknowledged, {slowed} slow links, {added} nodes added", acked.len());
    assert!(acked.len() > 100, "the scenario did too little to mean anything");

    // Settled: no migration left, every copy in sync.
    let deadline = madsim::time::Instant::now() + Duration::from_secs(600);
    loop {
        let state = cluster.state().await;
        let copies_in_sync =
            state.placements.values().flatten().flat_map(|g| g.values()).all(|p| p.owners.iter().all(|o| o.in_sync));
        if state.migrations.is_empty() && copies_in_sync {
            break;
        }
        assert!(madsim::time::Instant::now() < deadline, "the cluster never settled: {:?}", state.migrations);
        madsim::time::sleep(Duration::from_secs(1)).await;
    }

    let state = cluster.state().await;
    let check = {
        let (http, gateways) = (http.clone(), gateways.clone());
        let acked = acked.clone();
        cluster.client.spawn(async move {
            let mut succeeded = BTreeMap::new();
            for a in &acked {
                if wait_task(&http, &gateways[0], a.task).await == "succeeded" {
                    succeeded.insert(a.id.clone(), a.task);
                }
            }
            let mut seen = Vec::new();
            for gw in &gateways {
                let ids = document_ids(&http, gw).await.unwrap_or_else(|| panic!("{gw} could not list documents"));
                let lost: Vec<_> = succeeded.iter().filter(|(id, _)| !ids.contains(*id)).collect();
                // Where each lost write went, and when (simulated ms since the epoch).
                let tasks: Vec<_> = lost
                    .iter()
                    .filter_map(|(_, uid)| state.task(**uid))
                    .map(|t| {
                        let on: Vec<_> = t.node_tasks.iter().map(|n| (&n.node, n.uid, n.finished_at)).collect();
                        (t.uid, t.enqueued_at, on)
                    })
                    .collect();
                assert!(lost.is_empty(), "{gw}: acknowledged writes lost (id, task): {lost:?}\n(task, enqueued, [(node, node task, finished)]): {tasks:?}");
                seen.push(ids);
            }
            (succeeded.len(), seen)
        })
    };
    let (succeeded, seen) = check.await.expect("final check");
    println!("  {succeeded} acknowledged writes succeeded; all readable through every gateway");
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (&acked.iter().map(|a| (a.task, &a.id)).collect::<Vec<_>>(), &seen, started.elapsed()).hash(&mut h);
    h.finish()
}
