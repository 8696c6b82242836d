//! Multi-process tests: real `miroir-coordinator` peers on 127.0.0.1.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::TestCluster;
use miroir::Command;
use miroir_coordinator::client::Client;
use miroir_coordinator::Error;

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// Proposes until the cluster answers definitely (retries "unavailable", which is what a client
/// does across a failover). A refusal counts as acknowledged: `AddGroup` of an existing id is
/// refused when a retried proposal had in fact been committed the first time.
async fn propose_acked(client: &Client, cmd: &Command, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        match client.propose(cmd).await {
            Ok(_) => return true,
            Err(Error::Unavailable(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(_) => return false,
        }
    }
}

fn group(id: &str) -> Command {
    Command::AddGroup { id: id.to_string() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_peers_leader_kill_loses_no_acknowledged_proposal() {
    let mut c = TestCluster::start(3);
    c.wait_leader(SECS(20)).await;
    let client = c.client();
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for w in 0..8 {
        let (client, acked, done) = (client.clone(), acked.clone(), done.clone());
        workers.push(tokio::spawn(async move {
            for i in 0..125 {
                let id = format!("g-{w}-{i}");
                if propose_acked(&client, &group(&id), SECS(30)).await {
                    acked.lock().unwrap().insert(id);
                }
                done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }));
    }
    // Kill the leader mid-stream.
    let t0 = Instant::now();
    while done.load(std::sync::atomic::Ordering::Relaxed) < 300 {
        assert!(t0.elapsed() < SECS(60), "proposals too slow before the kill");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let old = c.wait_leader(SECS(5)).await;
    c.kill(old);
    let new = c.wait_leader(SECS(20)).await;
    assert_ne!(new, old);
    for w in workers {
        tokio::time::timeout(SECS(120), w).await.expect("workers finish").expect("worker");
    }
    let acked = acked.lock().unwrap().clone();
    assert_eq!(acked.len(), 1000, "every proposal is eventually acknowledged across the failover");

    c.spawn(old);
    let states = c.converged(SECS(30)).await;
    assert_eq!(states.len(), 3);
    assert!(states.iter().all(|s| s == &states[0]), "byte-identical states");
    let state: miroir::ClusterState = serde_json::from_slice(&states[0]).unwrap();
    for id in &acked {
        assert!(state.groups.contains_key(id), "acknowledged {id} lost");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_peers_survive_two_kills_and_fail_fast_without_quorum() {
    let mut c = TestCluster::start(5);
    let leader = c.wait_leader(SECS(20)).await;
    // Kill the leader and one follower.
    let follower = *c.running().iter().find(|id| **id != leader).unwrap();
    c.kill(leader);
    c.kill(follower);
    c.wait_leader(SECS(20)).await;
    let client = c.client_of(&c.running());
    assert!(propose_acked(&client, &group("after-two"), SECS(20)).await);

    let third = c.running()[0];
    c.kill(third);
    let client = c.client_of(&c.running());
    let t0 = Instant::now();
    let r = client.propose(&group("no-quorum")).await;
    let took = t0.elapsed();
    match r {
        Err(Error::Unavailable(m)) => assert!(m.contains("no quorum") || m.contains("no leader"), "message: {m}"),
        other => panic!("expected unavailable, got {other:?}"),
    }
    assert!(took < SECS(12), "a proposal without quorum must fail within its timeout, took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_and_remove_peers_while_committing() {
    let mut c = TestCluster::start(3);
    c.wait_leader(SECS(20)).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client = c.client_of(&[1, 2, 3]);
    let writer = {
        let (client, stop) = (client.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                assert!(propose_acked(&client, &group(&format!("m-{n}")), SECS(10)).await, "commit stalled");
                n += 1;
            }
            n
        })
    };
    let addr = c.add_new(4);
    let r = client.add_peer(4, &addr).await.expect("add peer 4");
    let voters: BTreeSet<u64> = r.members.iter().filter(|p| p.voter).map(|p| p.id).collect();
    assert_eq!(voters, BTreeSet::from([1, 2, 3, 4]));

    let r = client.remove_peer(1).await.expect("remove peer 1");
    let voters: BTreeSet<u64> = r.members.iter().filter(|p| p.voter).map(|p| p.id).collect();
    assert_eq!(voters, BTreeSet::from([2, 3, 4]));
    c.kill(1);

    tokio::time::sleep(SECS(1)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let n = tokio::time::timeout(SECS(30), writer).await.expect("writer ends").expect("writer");
    assert!(n > 0);
    // The new peer holds everything: the remaining three converge.
    let states = c.converged(SECS(30)).await;
    let state: miroir::ClusterState = serde_json::from_slice(&states[0]).unwrap();
    assert!(state.groups.contains_key(&format!("m-{}", n - 1)));
    let status = c.client_of(&[4]).status().await.unwrap();
    assert!(status.members.iter().any(|p| p.id == 4 && p.voter));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_versions_strictly_increase_without_gap_across_leader_kill() {
    let mut c = TestCluster::start(3);
    c.wait_leader(SECS(20)).await;
    let client = c.client();
    let seen: Arc<Mutex<Vec<(u64, u64)>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The subscriber: on any stream end it reconnects (to whichever peer answers) from its version.
    let sub = {
        let (client, seen, stop) = (client.clone(), seen.clone(), stop.clone());
        tokio::spawn(async move {
            let mut have = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok(mut s) = client.watch(have).await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                while let Ok(Ok(Some(u))) = tokio::time::timeout(Duration::from_millis(500), s.message()).await {
                    assert_eq!(u.prev_version, have, "continuity: {have} then {u:?}");
                    // The first full map of an empty cluster is version 0; after that every version is new.
                    assert!(u.version > have || (have == 0 && u.full), "versions strictly increase: {have} then {u:?}");
                    let map: miroir::RoutingMap = serde_json::from_slice(&u.map).unwrap();
                    assert_eq!(map.version, u.version);
                    seen.lock().unwrap().push((u.prev_version, u.version));
                    have = u.version;
                }
            }
            have
        })
    };
    for i in 0..40 {
        assert!(propose_acked(&client, &group(&format!("w-{i}")), SECS(20)).await);
        if i == 20 {
            let leader = c.wait_leader(SECS(5)).await;
            c.kill(leader);
        }
    }
    let last = client.propose(&group("w-last")).await.unwrap().1;
    let t0 = Instant::now();
    while seen.lock().unwrap().last().map(|s| s.1) < Some(last) {
        assert!(t0.elapsed() < SECS(20), "subscriber did not reach version {last}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let have = tokio::time::timeout(SECS(10), sub).await.expect("subscriber ends").expect("no assertion failed");
    assert!(have >= last);
    // Every AddGroup changes the map: 42 map changes must all have been seen (none skipped as a
    // resync except the first full map).
    let seen = seen.lock().unwrap();
    assert!(seen.len() >= 42, "saw {} updates", seen.len());
}
