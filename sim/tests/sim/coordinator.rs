//! Deterministic simulation (madsim) of a three-peer coordinator quorum under leader kills and
//! network clogs. Run with `RUSTFLAGS="--cfg madsim"`; seeds come from `MIROIR_SIM_SEEDS`
//! (comma-separated) or default to a fixed set, and each run prints its seed so a failure replays.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use madsim::rand::{thread_rng, Rng};
use madsim::runtime::{Handle, NodeHandle};
use miroir::{Command, CommandError};
use miroir_coordinator::client::Client;
use miroir_coordinator::peer;
use miroir_raft_store::MemStore;
use miroir_sim::cluster::peer_options;
use miroir_sim::seeds;

const PEERS: u64 = 3;
const CHAOS: Duration = Duration::from_secs(240);

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
}

fn addr(id: u64) -> String {
    format!("10.0.0.{id}:7400")
}

#[test]
#[ignore = "run by the other tests in a child process, one seed each"]
fn one_seed() {
    seeds::child(scenario);
}

#[test]
fn coordinators_keep_every_acknowledged_proposal_under_kills_and_clogs() {
    for seed in seeds::seeds(&[1, 2, 3]) {
        let digest = seeds::run("coordinator::one_seed", seed);
        println!("  seed {seed}: digest {digest:016x}");
    }
}

/// One seed run twice ends the same way: same converged state bytes, same acknowledged set, same
/// number of faults, at the same simulated instant (openraft's randomness and the proposal ids come
/// from madsim's seeded RNG). Otherwise a printed seed would not replay a failure.
#[test]
fn a_seed_replays_exactly() {
    let seed = seeds::seeds(&[1])[0];
    let (first, second) = (seeds::run("coordinator::one_seed", seed), seeds::run("coordinator::one_seed", seed));
    println!("seed {seed} twice: digests {first:016x} {second:016x}");
    assert_eq!(first, second, "same seed, different run");
}

fn start_peer(handle: &Handle, id: u64, store: MemStore) -> NodeHandle {
    let peers: BTreeMap<u64, String> = (1..=PEERS).map(|p| (p, addr(p))).collect();
    handle
        .create_node()
        .name(format!("coordinator-{id}"))
        .ip(ip(id as u8))
        .init(move || {
            let (store, peers) = (store.clone(), peers.clone());
            async move {
                let (log, sm) = store.open();
                let state = sm.handle();
                let opts = peer_options(id, SocketAddr::new(ip(id as u8), 7400), peers);
                let _peer = peer::start(opts, log, sm, state, Vec::new()).await.expect("peer starts");
                std::future::pending::<()>().await;
            }
        })
        .build()
}

/// Proposes `AddGroup` until the answer is definite. A refusal because the group exists means an
/// earlier attempt that looked failed had in fact committed: that is an acknowledgement too.
async fn propose_until_definite(client: &Client, id: &str, stop: &AtomicBool) -> bool {
    let cmd = Command::AddGroup { id: id.to_string() };
    loop {
        match client.propose(&cmd).await {
            Ok((Ok(_), _)) | Ok((Err(CommandError::GroupExists(_)), _)) => return true,
            Ok((Err(e), _)) => panic!("unexpected refusal of {id}: {e:?}"),
            Err(_) if stop.load(Ordering::Relaxed) => return false,
            Err(_) => madsim::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Returns a digest of the converged state and of what the run did, for replay checks.
async fn scenario() -> u64 {
    let started = madsim::time::Instant::now();
    let handle = Handle::current();
    let net = madsim::net::NetSim::current();
    let stores: BTreeMap<u64, MemStore> = (1..=PEERS).map(|id| (id, MemStore::new())).collect();
    let nodes: BTreeMap<u64, NodeHandle> =
        stores.iter().map(|(id, s)| (*id, start_peer(&handle, *id, s.clone()))).collect();
    let client_node = handle.create_node().name("clients").ip(ip(100)).build();
    let addrs: Vec<String> = (1..=PEERS).map(addr).collect();
    let client = Client::new(&addrs).expect("client").with_timeout(Duration::from_secs(3));

    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (client, acked, stop) = (client.clone(), acked.clone(), stop.clone());
            client_node.spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let id = format!("w{w}-{i}");
                    if propose_until_definite(&client, &id, &stop).await {
                        acked.lock().unwrap().insert(id);
                    }
                    i += 1;
                    // Paced: the point is many proposals around each fault, not a huge state.
                    madsim::time::sleep(Duration::from_millis(thread_rng().gen_range(100..600))).await;
                }
            })
        })
        .collect();

    // Chaos: kill the leader or clog a peer or a link, over and over.
    let chaos = {
        let client = client.clone();
        client_node.spawn(async move {
            let start = madsim::time::Instant::now();
            let (mut kills, mut clogs) = (0, 0);
            while start.elapsed() < CHAOS {
                madsim::time::sleep(Duration::from_millis(thread_rng().gen_range(1000..5000))).await;
                let pause = Duration::from_millis(thread_rng().gen_range(500..4000));
                match thread_rng().gen_range(0..3) {
                    0 => {
                        let Ok(s) = client.status().await else { continue };
                        let Some(node) = nodes.get(&s.leader) else { continue };
                        Handle::current().kill(node.id());
                        kills += 1;
                        madsim::time::sleep(pause).await;
                        Handle::current().restart(node.id());
                    }
                    1 => {
                        let node = &nodes[&thread_rng().gen_range(1..=PEERS)];
                        net.clog_node(node.id());
                        clogs += 1;
                        madsim::time::sleep(pause).await;
                        net.unclog_node(node.id());
                    }
                    _ => {
                        let a = thread_rng().gen_range(1..=PEERS);
                        let b = a % PEERS + 1;
                        let (a, b) = (nodes[&a].id(), nodes[&b].id());
                        net.clog_link(a, b);
                        net.clog_link(b, a);
                        clogs += 1;
                        madsim::time::sleep(pause).await;
                        net.unclog_link(a, b);
                        net.unclog_link(b, a);
                    }
                }
            }
            (kills, clogs)
        })
    };
    let (kills, clogs) = chaos.await.expect("chaos task");
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.expect("worker");
    }
    let acked = acked.lock().unwrap().clone();
    println!("  {} acknowledged proposals, {kills} leader kills, {clogs} clogs", acked.len());
    assert!(kills > 0 && acked.len() > 100, "the scenario did too little to mean anything");

    // Healed: every peer converges to one state holding every acknowledged proposal.
    let states = client_node
        .spawn(async move {
            let deadline = madsim::time::Instant::now() + Duration::from_secs(60);
            loop {
                let states = client.local_states().await;
                let states: Vec<_> = states.into_iter().filter_map(|(_, s)| s).collect();
                if states.len() == PEERS as usize
                    && states.iter().all(|s| s.applied_index == states[0].applied_index && s.state == states[0].state)
                {
                    return states;
                }
                assert!(madsim::time::Instant::now() < deadline, "peers did not converge after healing");
                madsim::time::sleep(Duration::from_millis(500)).await;
            }
        })
        .await
        .expect("convergence");
    let state: miroir::ClusterState = serde_json::from_slice(&states[0].state).expect("state decodes");
    for id in &acked {
        assert!(state.groups.contains_key(id), "acknowledged proposal {id} lost");
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let ended = madsim::time::Instant::now().duration_since(started);
    (&states[0].state, states[0].applied_index, &acked, kills, clogs, ended).hash(&mut h);
    h.finish()
}
