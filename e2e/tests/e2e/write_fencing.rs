//! A write still on its way to a shard's old owner while the shard migrates (docs/architecture.md,
//! "The write acknowledgement contract"), with real processes: node-1 is reached only through a
//! delaying proxy that holds the write to it for seconds, and node-3 is added while it is held, so
//! that a migration of one of node-1's shards to node-3 starts while the write, routed by the map
//! before it, has not reached node-1 yet. Whatever is acknowledged (202, task succeeded) must be
//! readable through the gateway afterwards, on the shards' new owners.
//!
//! Before the gateway held back map acknowledgements for writes in flight, the migration ran to
//! its end within the hold and the write landed on node-1 after the Cleanup: acknowledged, and on
//! no owner.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::StreamExt;
use miroir::placement::{shard_of, target_owners};
use miroir::Command;
use miroir_devtools::harness::{ClusterSpec, TestCluster};
use serde_json::{json, Value};

use crate::delay_proxy::DelayProxy;
use crate::topology::{client, nodes_idle, owners, preload, settled, state, wait_state, Http, INDEX};

/// The gateway's lease as in production. A write stops at the lease deadline it saw at its start:
/// `lease − lease/4` after the last renewal was sent (one every `lease/3`), so 4.2 to 7.5 s later.
/// The held write starts right after a renewal: 7.5 s.
const LEASE: Duration = Duration::from_secs(10);
/// Well within the write's deadline, and longer than an unhindered migration takes (under 2 s here).
const WITHIN_LEASE: Duration = Duration::from_secs(5);
/// Longer than any write's deadline.
const PAST_LEASE: Duration = Duration::from_secs(9);
const SHARDS: u32 = 6;
const PRELOADED: u64 = 600;
/// The held write updates preloaded ids `0..WRITTEN` and adds as many new ones after them.
const WRITTEN: u64 = 60;

fn written_ids() -> impl Iterator<Item = u64> {
    (0..WRITTEN).chain(PRELOADED..PRELOADED + WRITTEN)
}

/// What became of the held write.
struct Outcome {
    status: u16,
    answer: Value,
    /// Answered 202 and its task succeeded.
    acknowledged: bool,
    /// The shards of node-1 that moved to node-3.
    moved: Vec<u32>,
    cluster: TestCluster,
    http: Http,
    /// Kept until the test ends: the cluster knows node-1 only by the proxy's address.
    _proxy: DelayProxy,
}

/// Holds a write to node-1 for `hold` while node-3 is added and takes some of node-1's shards,
/// then checks that every acknowledged document is readable through the gateway and on its
/// shard's owner.
async fn hold_a_write_through_a_migration(hold: Duration) -> Outcome {
    let mut cluster = TestCluster::start(ClusterSpec {
        coordinators: 1,
        nodes: 0,
        gateways: 1,
        shards: SHARDS,
        rf: 1,
        gateway_lease_ms: LEASE.as_millis() as u64,
        ..ClusterSpec::default()
    });
    // node-1 is registered under the proxy's address, so the gateway and the coordinator alike
    // reach it only through the proxy.
    let node1 = cluster.spawn_node("node-1");
    let proxy = DelayProxy::start(&node1.url).await;
    let node2 = cluster.spawn_node("node-2");
    let urls = [proxy.url.clone(), node2.url.clone()];
    for (node, url) in [node1, node2].into_iter().zip(urls) {
        assert!(cluster.ctl(&["node", "add", &node.id, "--url", &url, "--group", "main"]).is_some(), "add {}", node.id);
        cluster.nodes.push(node);
    }
    let http = Http::new(&cluster.master_key);
    let gateway = cluster.gateways[0].url.clone();
    http.create_index(&gateway).await;
    preload(&http, &gateway, PRELOADED).await;
    // Started now, registered once the write is held: its migrations begin as soon as it is.
    let node3 = cluster.spawn_node("node-3");
    let before = owners(&state(&cluster).await);

    just_renewed(&cluster).await;
    let docs: Vec<Value> = written_ids().map(|id| json!({"id": id, "v": 1, "title": format!("doc {id} v1")})).collect();
    proxy.hold(hold, format!("POST /indexes/{INDEX}/documents?").as_bytes());
    let writing = tokio::spawn({
        let (http, url) = (http.clone(), format!("{gateway}/indexes/{INDEX}/documents"));
        async move { http.call(reqwest::Method::POST, &url, Some(&json!(docs))).await }
    });
    proxy.first_held(Duration::from_secs(10)).await.expect("the write to node-1 reached its proxy");
    // Only this write is late; the migrations' own requests to node-1 must not be.
    proxy.pass();

    let coordinator = client(&cluster);
    let add = Command::AddNode { id: "node-3".into(), url: node3.url.clone(), group: "main".into() };
    let added = coordinator.propose(&add).await;
    assert!(matches!(added, Ok((Ok(_), _))), "add node-3: {added:?}");
    cluster.nodes.push(node3);
    let s = state(&cluster).await;
    let node1_only = BTreeSet::from(["node-1".to_string()]);
    let moved: Vec<u32> = (0..SHARDS)
        .filter(|&sh| before[sh as usize] == node1_only && target_owners(&s, INDEX, sh, "main") == ["node-3"])
        .collect();
    assert!(!moved.is_empty(), "with {SHARDS} shards none of node-1's moves to node-3: the test needs one");
    assert!(
        written_ids().any(|id| moved.contains(&shard_of(&id.to_string(), SHARDS))),
        "the held write has no document in a moved shard"
    );

    // Unless a migration of node-1's shards began before the proxy let the write go on, nothing
    // overlapped and the test proves nothing. Each round reads the state before asking the proxy,
    // so a migration seen in a round that ends with the write still held began before its release.
    let (mut overlapped, mut furthest, mut cut_over, mut first_cut_over) = (false, None, 0, None);
    let give_up = std::time::Instant::now() + hold + Duration::from_secs(10);
    loop {
        assert!(std::time::Instant::now() < give_up, "the proxy never let the write go on to node-1");
        let s = state(&cluster).await;
        let phase = s.migrations.values().filter(|m| m.from.as_deref() == Some("node-1")).map(|m| m.phase).max();
        let done = moved.iter().filter(|&&sh| owners(&s)[sh as usize] == BTreeSet::from(["node-3".into()])).count();
        if proxy.held()[0].forwarded.is_some() {
            break;
        }
        overlapped |= phase.is_some() || done > 0;
        furthest = furthest.max(phase);
        cut_over = done;
        if done > 0 {
            first_cut_over = first_cut_over.or(Some(proxy.held()[0].arrived.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(overlapped, "no migration of node-1's shards began while the write to node-1 was held");
    let write = proxy.held()[0];
    println!(
        "while the write was held ({:?}): node-1's migrations reached {furthest:?}; {cut_over} of {} moved shards \
         were cut over, the first {first_cut_over:?} into the hold",
        write.forwarded.expect("forwarded") - write.arrived,
        moved.len()
    );

    let (status, answer) = writing.await.expect("the write's task");
    let acknowledged = status == 202 && {
        let task = http.wait_task(&gateway, answer["taskUid"].as_u64().expect("a task uid")).await;
        task["status"] == "succeeded"
    };
    println!("the held write was answered {status} {answer}; acknowledged: {acknowledged}");
    wait_state(&cluster, "every shard on its target", Duration::from_secs(90), settled).await;
    let s = state(&cluster).await;
    for &sh in &moved {
        assert_eq!(owners(&s)[sh as usize], BTreeSet::from(["node-3".to_string()]), "shard {sh} moved to node-3");
    }

    // The version each document must have: `None` where the write was not acknowledged and may
    // or may not have taken effect.
    let updated = |id: u64| id < WRITTEN;
    let expected: BTreeMap<u64, Option<u64>> = (0..PRELOADED)
        .map(|id| (id, if !updated(id) { Some(0) } else { acknowledged.then_some(1) }))
        .chain((PRELOADED..PRELOADED + WRITTEN).filter(|_| acknowledged).map(|id| (id, Some(1))))
        .collect();
    let lost: Vec<String> = futures::stream::iter(&expected)
        .map(|(id, v)| {
            let (http, url) = (&http, format!("{gateway}/indexes/{INDEX}/documents/{id}"));
            async move {
                let (status, doc) = http.call(reqwest::Method::GET, &url, None).await;
                let ok = status == 200 && v.is_none_or(|v| doc["v"].as_u64() == Some(v));
                (!ok).then(|| format!("{id} (shard {}): {status} {doc}", shard_of(&id.to_string(), SHARDS)))
            }
        })
        .buffer_unordered(8)
        .filter_map(|lost| async move { lost })
        .collect()
        .await;
    assert!(
        lost.is_empty(),
        "acknowledged writes lost: {} of {} documents not readable through the gateway at their acknowledged version (write answered \
         {status}, acknowledged: {acknowledged}; shards moved from node-1: {moved:?}), e.g. {:?}",
        lost.len(),
        expected.len(),
        &lost[..lost.len().min(5)]
    );

    // And on the shard's owner itself, the new one for the moved shards.
    nodes_idle(&http, &cluster, &[]).await;
    let owners = owners(&s);
    for n in &cluster.nodes {
        let docs = http.node_docs(&n.url).await;
        for (id, v) in &expected {
            let shard = shard_of(&id.to_string(), SHARDS) as usize;
            if owners[shard].contains(&n.id) {
                let got = docs.get(&id.to_string());
                assert!(
                    got.is_some() && v.is_none_or(|v| got == Some(&v)),
                    "document {id} (shard {shard}) on {}: {got:?}",
                    n.id
                );
            }
        }
    }
    Outcome { status, answer, acknowledged, moved, cluster, http, _proxy: proxy }
}

/// Waits for the gateway's next lease renewal to be committed.
async fn just_renewed(cluster: &TestCluster) {
    let expiry = |s: &miroir::ClusterState| s.gateways.values().map(|g| g.lease_expires_at).max();
    let before = expiry(&state(cluster).await);
    let end = std::time::Instant::now() + LEASE;
    while expiry(&state(cluster).await) == before {
        assert!(std::time::Instant::now() < end, "the gateway's lease was not renewed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_held_on_its_way_to_the_old_owner_during_a_migration_is_on_the_new_owner_once_acknowledged() {
    let held = hold_a_write_through_a_migration(WITHIN_LEASE).await;
    // Held for less than its lease: nothing was lost on the way, so it must be acknowledged.
    assert_eq!(held.status, 202, "{}", held.answer);
    assert!(held.acknowledged, "the write's task did not succeed");
    // It reached node-1 before the shards left it, so the Cleanup removed it there too.
    let node1 = &held.cluster.nodes[0];
    let left: Vec<String> = held
        .http
        .node_docs(&node1.url)
        .await
        .into_keys()
        .filter(|id| held.moved.contains(&shard_of(id, SHARDS)))
        .collect();
    assert!(left.is_empty(), "node-1 holds documents of shards it gave away: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_held_past_its_lease_during_a_migration_is_not_acknowledged() {
    let held = hold_a_write_through_a_migration(PAST_LEASE).await;
    // The gateway gives up on node-1 when the write's lease ends, and may acknowledge without it
    // only by marking its copy stale: refused for the last in-sync copy (RF 1). Any 202 at all
    // would also have needed the write readable on the new owners (checked inside).
    assert_ne!(held.status, 202, "{}", held.answer);
}
