//! Crash safety of the RocksDB store: a child process runs a one-peer Raft over it, proposes from
//! several concurrent clients and prints every acknowledged entry; it is killed with SIGKILL
//! mid-stream. The store, reopened, must hold every acknowledged entry, and the state openraft
//! rebuilds from it (snapshot plus log replay) must equal a replay of the durable log.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command as Process, Stdio};
use std::sync::Arc;
use std::time::Duration;

use miroir::{Command, Proposal};
use miroir_raft_store::openraft::error::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use miroir_raft_store::openraft::network::{RPCOption, RaftNetworkFactory};
use miroir_raft_store::openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use miroir_raft_store::openraft::storage::{RaftLogReader, RaftLogStorage, RaftStateMachine};
use miroir_raft_store::openraft::{
    AnyError, BasicNode, Config, EntryPayload, OptionalSend, RaftNetworkV2, SnapshotPolicy,
};
use miroir_raft_store::{open_rocks, Raft, Snapshot, SnapshotData, TypeConfig, Vote};

const DIR_ENV: &str = "MIROIR_CRASH_TEST_DIR";
const ACKS_BEFORE_KILL: usize = 400;

/// A one-peer cluster never sends anything.
#[derive(Clone)]
struct Alone;

impl RaftNetworkFactory<TypeConfig> for Alone {
    type Network = Alone;
    async fn new_client(&mut self, _target: u64, _node: &BasicNode) -> Alone {
        Alone
    }
}

fn unreachable() -> Unreachable<TypeConfig> {
    Unreachable::new(&AnyError::error("single-peer test cluster"))
}

impl RaftNetworkV2<TypeConfig> for Alone {
    type SnapshotData = SnapshotData;

    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        Err(RPCError::Unreachable(unreachable()))
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        Err(RPCError::Unreachable(unreachable()))
    }

    async fn full_snapshot(
        &mut self,
        _vote: Vote,
        _snapshot: Snapshot,
        _cancel: impl std::future::Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        Err(StreamingError::Network(NetworkError::new(&AnyError::error("single-peer test cluster"))))
    }
}

fn config() -> Arc<Config> {
    let c = Config {
        heartbeat_interval: 50,
        election_timeout_min: 150,
        election_timeout_max: 300,
        // Snapshots are built often, so recovery goes through a stored snapshot plus a replay; the
        // log is kept whole so the test can replay it independently.
        snapshot_policy: SnapshotPolicy::LogsSinceLast(64),
        max_in_snapshot_log_to_keep: u64::MAX / 2,
        ..Default::default()
    };
    Arc::new(c.validate().expect("valid config"))
}

/// The child: proposes forever from 4 clients, printing `index json` for every acknowledgement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by acknowledged_entries_survive_sigkill in a child process"]
async fn crash_child() {
    let Ok(dir) = std::env::var(DIR_ENV) else { return };
    let (log, sm) = open_rocks(&dir).expect("open store");
    let raft = Raft::new(1, config(), Alone, log, sm).await.expect("raft");
    raft.initialize(BTreeMap::from([(1u64, BasicNode::new("127.0.0.1:1"))])).await.expect("initialize");
    raft.wait(Some(Duration::from_secs(10))).current_leader(1, "leader").await.expect("leader");
    let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (raft, out) = (raft.clone(), out.clone());
            tokio::spawn(async move {
                for i in 0.. {
                    let cmd = Proposal::new(Some(format!("p{c}-{i}")), Command::AddGroup { id: format!("c{c}-g{i}") });
                    let resp = raft.client_write(cmd.clone()).await.expect("write");
                    assert!(resp.data.result.is_ok(), "{:?}", resp.data);
                    let line = format!("{} {}\n", resp.log_id.index, serde_json::to_string(&cmd).unwrap());
                    let mut o = out.lock().unwrap();
                    o.write_all(line.as_bytes()).unwrap();
                    o.flush().unwrap();
                }
            })
        })
        .collect();
    for c in clients {
        c.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_entries_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Process::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(DIR_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut acked: BTreeMap<u64, Proposal> = BTreeMap::new();
    // The pipe stays open until the child is dead: closed earlier, the child's next print fails,
    // it panics and starts shutting down, and the SIGKILL no longer lands on a process mid-stream.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let Some((index, json)) = line.split_once(' ') else { continue };
        let Ok(index) = index.parse::<u64>() else { continue };
        acked.insert(index, serde_json::from_str(json).unwrap());
        if acked.len() >= ACKS_BEFORE_KILL {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    drop(lines);
    assert_eq!(acked.len(), ACKS_BEFORE_KILL, "the child stopped before acknowledging enough entries");

    let (mut log, mut sm) = open_rocks(dir.path()).unwrap();
    let snapshot = sm.get_current_snapshot().await.unwrap().expect("the child built snapshots");
    assert!(snapshot.meta.last_log_id.is_some_and(|l| l.index > 0));
    let entries = log.get_log_reader().await.try_get_log_entries(..).await.unwrap();
    let by_index: BTreeMap<u64, _> = entries.iter().map(|e| (e.log_id.index, &e.payload)).collect();
    for (index, cmd) in &acked {
        match by_index.get(index) {
            Some(EntryPayload::Normal(c)) => assert_eq!(c, cmd, "entry {index} changed"),
            other => panic!("acknowledged entry {index} is missing after the crash: {other:?}"),
        }
    }

    let state = sm.handle();
    let raft = Raft::new(1, config(), Alone, log, sm).await.unwrap();
    let last = *acked.keys().next_back().unwrap();
    raft.wait(Some(Duration::from_secs(20))).applied_index_at_least(Some(last), "replayed").await.unwrap();
    raft.shutdown().await.unwrap();
    // The state machine may still be applying after shutdown returns: the state and the index it
    // stands for are read together.
    let (recovered, applied) = state.read_at(|s| serde_json::to_vec(s).unwrap());

    let mut expected = miroir::ClusterState::default();
    for e in entries.iter().filter(|e| e.log_id.index <= applied) {
        if let EntryPayload::Normal(p) = &e.payload {
            miroir::apply_proposal(&mut expected, p, e.log_id.index).result.expect("logged commands apply");
        }
    }
    if recovered != serde_json::to_vec(&expected).unwrap() {
        let last_logged = entries.last().map(|e| e.log_id.index);
        let snapshot_at = snapshot.meta.last_log_id.map(|l| l.index);
        let got: miroir::ClusterState = serde_json::from_slice(&recovered).unwrap();
        let extra: Vec<&String> = got.groups.keys().filter(|g| !expected.groups.contains_key(*g)).collect();
        let missing: Vec<&String> = expected.groups.keys().filter(|g| !got.groups.contains_key(*g)).collect();
        panic!(
            "recovered state differs from the durable log: applied {applied}, last logged {last_logged:?}, \
             snapshot at {snapshot_at:?}, acked up to {last}; groups only recovered {extra:?}, only replayed {missing:?}"
        );
    }
    for p in acked.values() {
        let Command::AddGroup { id } = &p.command else { unreachable!() };
        assert!(state.read(|s| s.groups.contains_key(id)), "acknowledged group {id:?} lost");
    }
}
