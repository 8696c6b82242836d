//! Real-process test cluster: spawns `miroir-coordinator` children on free loopback ports with temp
//! data dirs, and kills and reaps every child it started when dropped.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use miroir_coordinator::client::Client;

pub struct Peer {
    pub addr: String,
    pub data: PathBuf,
    child: Option<Child>,
}

pub struct TestCluster {
    pub dir: tempfile::TempDir,
    pub peers: BTreeMap<u64, Peer>,
    initial: String,
    /// Extra flags given to every peer.
    extra: Vec<String>,
}

pub fn free_addr() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").to_string()
}

impl TestCluster {
    /// Starts `n` peers with ids 1..=n that bootstrap themselves from the same peer list.
    pub fn start(n: u64) -> Self {
        Self::start_with(n, &[])
    }

    /// [`Self::start`], every peer also getting `extra` flags.
    pub fn start_with(n: u64, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut peers = BTreeMap::new();
        for id in 1..=n {
            let data = dir.path().join(format!("peer-{id}"));
            peers.insert(id, Peer { addr: free_addr(), data, child: None });
        }
        let initial = peers.iter().map(|(id, p)| format!("{id}={}", p.addr)).collect::<Vec<_>>().join(",");
        let extra = extra.iter().map(|s| s.to_string()).collect();
        let mut c = TestCluster { dir, peers, initial, extra };
        for id in 1..=n {
            c.spawn(id);
        }
        c
    }

    /// Starts (or restarts from its data dir) peer `id`.
    pub fn spawn(&mut self, id: u64) {
        self.spawn_with(id, &[]);
    }

    /// [`Self::spawn`] with extra flags for this peer only.
    pub fn spawn_with(&mut self, id: u64, only_this: &[&str]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("peer-{id}.log")))
            .expect("log file");
        let p = self.peers.get_mut(&id).expect("known peer");
        assert!(p.child.is_none(), "peer {id} already running");
        let child = Command::new(env!("CARGO_BIN_EXE_miroir-coordinator"))
            .args(["--id", &id.to_string(), "--listen", &p.addr, "--peers", &self.initial])
            .arg("--data-dir")
            .arg(&p.data)
            .args(["--heartbeat-ms", "100", "--election-min-ms", "400", "--election-max-ms", "800"])
            .args(["--proposal-timeout-ms", "3000"])
            .args(&self.extra)
            .args(only_this)
            .env("RUST_LOG", "info,openraft=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn miroir-coordinator");
        p.child = Some(child);
    }

    /// Adds a peer that is not in the initial list (it joins through `peer add`).
    pub fn add_new(&mut self, id: u64) -> String {
        let data = self.dir.path().join(format!("peer-{id}"));
        let addr = free_addr();
        self.peers.insert(id, Peer { addr: addr.clone(), data, child: None });
        self.spawn(id);
        addr
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut c) = self.peers.get_mut(&id).and_then(|p| p.child.take()) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn running(&self) -> Vec<u64> {
        self.peers.iter().filter(|(_, p)| p.child.is_some()).map(|(id, _)| *id).collect()
    }

    pub fn client(&self) -> Client {
        let addrs: Vec<&str> = self.peers.values().map(|p| p.addr.as_str()).collect();
        Client::new(&addrs).expect("client").with_timeout(Duration::from_secs(5))
    }

    pub fn client_of(&self, ids: &[u64]) -> Client {
        let addrs: Vec<&str> = ids.iter().map(|id| self.peers[id].addr.as_str()).collect();
        Client::new(&addrs).expect("client").with_timeout(Duration::from_secs(5))
    }

    /// Waits for a leader among the running peers that they all agree on.
    pub async fn wait_leader(&self, within: Duration) -> u64 {
        let deadline = Instant::now() + within;
        let client = self.client_of(&self.running());
        loop {
            let st = client.status_all().await;
            let leaders: Vec<u64> = st.iter().filter_map(|(_, s)| s.as_ref().map(|s| s.leader)).collect();
            if !leaders.is_empty()
                && leaders.iter().all(|l| *l != 0 && *l == leaders[0])
                && leaders.len() == st.len()
                && self.running().contains(&leaders[0])
            {
                return leaders[0];
            }
            assert!(Instant::now() < deadline, "no agreed leader within {within:?}: {st:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until every running peer applied the same index, then returns their state bytes.
    pub async fn converged(&self, within: Duration) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + within;
        let client = self.client_of(&self.running());
        loop {
            let states = client.local_states().await;
            if states.iter().all(|(_, s)| s.is_some()) {
                let s: Vec<_> = states.into_iter().map(|(_, s)| s.expect("some")).collect();
                if s.iter().all(|r| r.applied_index == s[0].applied_index && r.state == s[0].state) {
                    return s.into_iter().map(|r| r.state).collect();
                }
            }
            assert!(Instant::now() < deadline, "peers did not converge within {within:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn log_of(&self, id: u64) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("peer-{id}.log"))).unwrap_or_default()
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let ids: Vec<u64> = self.peers.keys().copied().collect();
        for id in ids {
            self.kill(id);
        }
    }
}
