//! Multi-process tests of the cluster API beyond plain proposals: exactly-once proposals, gateway
//! leases, snapshots streamed to a lagging or new peer, and replies larger than 4 MiB.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::TestCluster;
use miroir::task::NewTask;
use miroir::{ClusterState, Command, CommandError, Response};
use miroir_coordinator::Error;
use serde_json::json;

const SECS: fn(u64) -> Duration = Duration::from_secs;

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

async fn state_of(c: &TestCluster) -> ClusterState {
    c.client().get_state().await.expect("state").0
}

/// A follower of the agreed leader.
async fn leader_and_follower(c: &TestCluster) -> (u64, u64) {
    let leader = c.wait_leader(SECS(20)).await;
    let follower = *c.running().iter().find(|id| **id != leader).expect("a follower");
    (leader, follower)
}

fn tasks(n: usize, bytes: usize) -> Command {
    let blob = "x".repeat(bytes);
    let tasks = (0..n)
        .map(|i| NewTask {
            index_uid: Some("movies".into()),
            kind: miroir_meili::TaskKind::DocumentAdditionOrUpdate,
            details: json!({ "i": i, "blob": blob }),
            node_tasks: Default::default(),
            finished: None,
            shares: Vec::new(),
        })
        .collect();
    Command::RegisterTasks { tasks, at: 1 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proposal_id_sent_through_two_peers_commits_once_and_answers_the_same() {
    let c = TestCluster::start(3);
    let (leader, follower) = leader_and_follower(&c).await;
    let (via_leader, via_follower) = (c.client_of(&[leader]), c.client_of(&[follower]));
    let setup = [
        Command::AddGroup { id: "g".into() },
        Command::AddNode { id: "n".into(), url: "http://n:7700".into(), group: "g".into() },
    ];
    for cmd in &setup {
        via_leader.propose(cmd).await.unwrap().0.unwrap();
    }

    // The follower forwards; the retry goes straight to the leader. Without proposal ids the
    // retry would answer `index already exists` although the first attempt created it.
    let create = Command::CreateIndex { uid: "movies".into(), primary_key: None, shards: Some(2), rf: None, at: 1 };
    let first = via_follower.propose_with_id("create-movies", &create).await.unwrap();
    assert_eq!(first.0, Ok(Response::Done));
    let retry = via_leader.propose_with_id("create-movies", &create).await.unwrap();
    assert_eq!(retry, first, "the retry answers the original result and log index");
    // A new id is a new proposal, refused as usual.
    let other = via_leader.propose_with_id("create-movies-2", &create).await.unwrap();
    assert_eq!(other.0, Err(CommandError::IndexExists("movies".into())));

    // The same group commit sent concurrently through all three peers registers its tasks once.
    let register = tasks(3, 10);
    let clients: Vec<_> = [1, 2, 3].iter().map(|id| c.client_of(&[*id])).collect();
    let answers = futures::future::join_all(clients.iter().map(|cl| cl.propose_with_id("tasks-1", &register))).await;
    let answers: Vec<_> = answers.into_iter().map(|a| a.expect("answered")).collect();
    assert!(answers.iter().all(|a| a == &answers[0]), "every copy answers the same: {answers:?}");
    assert_eq!(answers[0].0, Ok(Response::Tasks(vec![0, 1, 2])));
    let state = state_of(&c).await;
    assert_eq!(state.tasks.tasks.len(), 3, "three tasks, not nine");
    assert_eq!(state.indexes.len(), 1);

    let states = c.converged(SECS(30)).await;
    assert!(states.iter().all(|s| s == &states[0]), "the proposal table is identical on every peer");
    let state: ClusterState = serde_json::from_slice(&states[0]).unwrap();
    assert!(state.proposals.get("tasks-1").is_some() && state.proposals.get("create-movies").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_leases_are_timed_by_the_leader_and_expire() {
    let c = TestCluster::start(3);
    let (leader, follower) = leader_and_follower(&c).await;
    let (via_leader, via_follower) = (c.client_of(&[leader]), c.client_of(&[follower]));

    // A heartbeat before registering is a definite "not found", not an outage.
    match via_follower.heartbeat_gateway("gw-1", 1_000, None).await {
        Err(Error::NotFound(m)) => assert!(m.contains("gw-1"), "{m}"),
        other => panic!("expected not found, got {other:?}"),
    }

    let lease_ms = 1_500;
    let before = now_ms();
    let reg = via_follower.register_gateway("gw-1", "10.0.0.9:7700", lease_ms).await.expect("register");
    let after = now_ms();
    assert!(
        (before + lease_ms..=after + lease_ms).contains(&reg.lease_expires_at),
        "lease end {} is the leader's clock at proposal + lease ({before}..{after} + {lease_ms})",
        reg.lease_expires_at
    );
    let state = state_of(&c).await;
    let gw = &state.gateways["gw-1"];
    assert_eq!(gw.lease_expires_at, reg.lease_expires_at);
    assert_eq!(gw.address, "10.0.0.9:7700");
    // Live and not acknowledged: a migration barrier at any version waits for it.
    assert!(!state.gateways_acked(1, now_ms()));

    tokio::time::sleep(Duration::from_millis(200)).await;
    let ack = via_leader.heartbeat_gateway("gw-1", lease_ms, Some(reg.log_index)).await.expect("ack");
    assert!(ack.lease_expires_at > reg.lease_expires_at, "renewal extends the lease");
    assert!(ack.log_index > reg.log_index);
    let hb = via_follower.heartbeat_gateway("gw-1", lease_ms, None).await.expect("heartbeat");
    assert!(hb.lease_expires_at >= ack.lease_expires_at);
    let state = state_of(&c).await;
    assert_eq!(state.gateways["gw-1"].acked_version, reg.log_index);
    assert_eq!(state.gateways["gw-1"].lease_expires_at, hb.lease_expires_at);
    assert!(state.gateways_acked(reg.log_index, now_ms()));
    assert!(!state.gateways_acked(reg.log_index + 1, now_ms()));

    // Without renewals the lease runs out: the barrier stops waiting for the gateway.
    while now_ms() <= hb.lease_expires_at {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let state = state_of(&c).await;
    assert!(state.gateways_acked(reg.log_index + 1, now_ms()), "an expired gateway is not waited for");

    // Bad requests are refused before anything is proposed.
    assert!(matches!(via_leader.register_gateway("", "a", 1_000).await, Err(Error::InvalidArgument(_))));
    assert!(matches!(via_leader.register_gateway("gw-2", "a", 0).await, Err(Error::InvalidArgument(_))));
}

/// A follower whose wall clock is an hour behind forwards lease calls without stamping them: the
/// lease is timed by the leader's clock (here the real one), never by the forwarding peer's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_is_stamped_by_the_leader_not_by_a_skewed_forwarding_peer() {
    let mut c = TestCluster::start(3);
    let (_, follower) = leader_and_follower(&c).await;
    c.kill(follower);
    c.spawn_with(follower, &["--clock-offset-ms", "-3600000"]);
    let leader = c.wait_leader(SECS(20)).await;
    assert_ne!(leader, follower, "the skewed peer must forward for this test");
    let via_skewed = c.client_of(&[follower]);
    let before = now_ms();
    let reg = via_skewed.register_gateway("gw-s", "a", 2_000).await.expect("register");
    let hb = via_skewed.heartbeat_gateway("gw-s", 2_000, Some(1)).await.expect("ack");
    let after = now_ms();
    for l in [reg.lease_expires_at, hb.lease_expires_at] {
        assert!((before + 2_000..=after + 2_000).contains(&l), "lease end {l} not by the leader's clock");
    }
}

/// The snapshot path: with a snapshot every 20 entries and no log kept behind it, a peer that was
/// down while the log was purged, and a peer added afterwards, can only catch up by InstallSnapshot.
/// The state is over 4 MiB, so the snapshot streams in many chunks and reading the whole state
/// (also through a forwarding follower) needs replies above tonic's default 4 MiB limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_and_new_peers_catch_up_by_streamed_snapshot() {
    let mut c = TestCluster::start_with(3, &["--snapshot-every", "20", "--keep-logs", "0"]);
    let (leader, follower) = leader_and_follower(&c).await;
    c.kill(follower);
    let client = c.client_of(&[leader]);
    let down_at = client.status().await.unwrap().applied_index;
    // 60 group commits of 10 tasks × 10 KB: about 6 MB of state.
    for _ in 0..60 {
        client.propose(&tasks(10, 10_000)).await.expect("committed").0.expect("applied");
    }
    // Snapshots are built and logs purged in the background, after the proposals are answered.
    let deadline = Instant::now() + SECS(30);
    loop {
        let st = client.status().await.unwrap();
        if st.snapshot_index > down_at && st.purged_index > down_at {
            break;
        }
        assert!(Instant::now() < deadline, "the leader never purged what the peer lacks: {st:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    c.spawn(follower);
    let states = c.converged(SECS(60)).await;
    assert!(states[0].len() > 4 << 20, "state is {} bytes", states[0].len());
    assert!(states.iter().all(|s| s == &states[0]), "byte-identical after the snapshot");
    assert!(c.log_of(follower).contains("installing a snapshot from the leader"), "caught up by snapshot");

    // A linearizable read through the restarted follower: forwarded to the leader, > 4 MiB back.
    let (state, _) = c.client_of(&[follower]).get_state().await.expect("a large state through a follower");
    assert_eq!(state.tasks.tasks.len(), 600);

    // A new peer joins after the purge: it too starts from a snapshot.
    let addr = c.add_new(4);
    let r = client.add_peer(4, &addr).await.expect("add peer 4");
    assert!(r.members.iter().any(|p| p.id == 4 && p.voter));
    client.propose(&tasks(1, 10)).await.unwrap().0.unwrap();
    let t0 = Instant::now();
    let states = c.converged(SECS(60)).await;
    assert_eq!(states.len(), 4);
    assert!(states.iter().all(|s| s == &states[0]), "byte-identical on all four ({:?})", t0.elapsed());
    assert!(c.log_of(4).contains("installing a snapshot from the leader"));
}
