//! Real processes on loopback for end-to-end tests and `miroir-dev`: coordinators, gateways and
//! Meilisearch nodes (dev nodes, or real Meilisearch when `MEILI_BIN` is set). Every process is
//! killed and reaped when its handle drops, so a failing test leaves nothing running.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process owned by a test: killed (SIGKILL) and waited for on drop.
pub struct Proc {
    pub name: String,
    child: Option<Child>,
}

impl Proc {
    pub fn spawn(name: impl Into<String>, cmd: &mut Command) -> std::io::Result<Self> {
        let name = name.into();
        let child = cmd.stdin(Stdio::null()).spawn()?;
        Ok(Self { name, child: Some(child) })
    }

    /// Spawns with stdout and stderr appended to `<dir>/<name>.log` (a restart appends).
    pub fn spawn_logged(name: impl Into<String>, cmd: &mut Command, dir: &Path) -> std::io::Result<Self> {
        let name = name.into();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join(format!("{name}.log")))?;
        cmd.stdout(log.try_clone()?).stderr(log);
        Self::spawn(name, cmd)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL, as a crash: no shutdown path runs.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A binary of this workspace, built next to the running test or tool (`target/<profile>/`).
/// `cargo test --workspace` and `cargo build --workspace` build them all.
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    assert!(path.exists(), "{} is not built: run `cargo build --workspace` first", path.display());
    path
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind an ephemeral port").port()
}

/// Polls `check` until it is true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    check()
}

/// The Meilisearch binary to use, if the environment names one.
pub fn meili_bin() -> Option<PathBuf> {
    std::env::var_os("MEILI_BIN").map(PathBuf::from).filter(|p| p.exists()).or_else(|| which("meilisearch"))
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(name)).find(|p| p.is_file())
}

/// A whole cluster of real processes on loopback: coordinators, Meilisearch nodes (dev nodes, or
/// real Meilisearch under `MEILI_BIN`) and gateways.
pub struct TestCluster {
    pub master_key: String,
    pub coordinators: Vec<Coordinator>,
    pub nodes: Vec<Node>,
    pub gateways: Vec<Gateway>,
    /// Holds the temporary data directory alive (absent with `ClusterSpec::data_dir`).
    _tmp: Option<tempfile::TempDir>,
    data: PathBuf,
    coordinator_args: Vec<String>,
    gateway_lease_ms: u64,
    /// Last: released once every process above is stopped.
    _slot: ClusterSlot,
}

/// One cluster of real processes at a time in a test process. The end-to-end tests run as threads
/// of one binary on a two-core machine: two clusters of eight processes each starved one another's
/// lease renewals, and a gateway fenced itself in the middle of a test that is not about fencing.
/// In-process tests (the differential ones) still run alongside.
struct ClusterSlot;

static SLOT: (std::sync::Mutex<bool>, std::sync::Condvar) = (std::sync::Mutex::new(false), std::sync::Condvar::new());

impl ClusterSlot {
    fn take() -> Self {
        let (busy, freed) = &SLOT;
        let mut busy = busy.lock().unwrap_or_else(|e| e.into_inner());
        while *busy {
            busy = freed.wait(busy).unwrap_or_else(|e| e.into_inner());
        }
        *busy = true;
        ClusterSlot
    }
}

impl Drop for ClusterSlot {
    fn drop(&mut self) {
        let (busy, freed) = &SLOT;
        *busy.lock().unwrap_or_else(|e| e.into_inner()) = false;
        freed.notify_one();
    }
}

pub struct Coordinator {
    pub id: u64,
    pub addr: String,
    pub proc: Proc,
}

pub struct Node {
    pub id: String,
    pub url: String,
    pub proc: Proc,
}

pub struct Gateway {
    pub url: String,
    pub proc: Proc,
}

#[derive(Debug, Clone)]
pub struct ClusterSpec {
    pub coordinators: usize,
    pub nodes: usize,
    pub gateways: usize,
    pub shards: u32,
    pub rf: u32,
    pub master_key: String,
    /// Port of the first gateway (the next ones follow); free ports when `None`.
    pub gateway_port: Option<u16>,
    /// Where the processes keep their data; a temporary directory (removed at drop) when `None`.
    pub data_dir: Option<PathBuf>,
    /// Extra flags for every coordinator (short probe and grace periods in tests, say).
    pub coordinator_args: Vec<String>,
    /// Lease of every gateway in ms (2000 unless set; the gateway's own default is 10 000). A test
    /// that keeps a write in flight for seconds needs a longer one: no write outlives the lease it
    /// began under.
    pub gateway_lease_ms: u64,
}

impl Default for ClusterSpec {
    fn default() -> Self {
        Self {
            coordinators: 3,
            nodes: 3,
            gateways: 2,
            shards: 8,
            rf: 2,
            master_key: "miroir-test-master-key-0123456789".into(),
            gateway_port: None,
            data_dir: None,
            coordinator_args: vec![],
            gateway_lease_ms: 2000,
        }
    }
}

impl TestCluster {
    pub fn start(spec: ClusterSpec) -> Self {
        let slot = ClusterSlot::take();
        let tmp = match &spec.data_dir {
            Some(_) => None,
            None => Some(tempfile::tempdir().expect("temp dir")),
        };
        let data = spec.data_dir.clone().unwrap_or_else(|| tmp.as_ref().expect("temp dir").path().to_path_buf());
        std::fs::create_dir_all(&data).expect("data dir");
        let master_key = spec.master_key.clone();
        let ports: Vec<u16> = (0..spec.coordinators).map(|_| free_port()).collect();
        let peers =
            ports.iter().enumerate().map(|(i, p)| format!("{}=127.0.0.1:{p}", i + 1)).collect::<Vec<_>>().join(",");
        let mut cluster = Self {
            master_key,
            coordinators: vec![],
            nodes: vec![],
            gateways: vec![],
            _tmp: tmp,
            data,
            coordinator_args: spec.coordinator_args.clone(),
            gateway_lease_ms: spec.gateway_lease_ms,
            _slot: slot,
        };
        for (i, port) in ports.iter().enumerate() {
            let id = i as u64 + 1;
            let addr = format!("127.0.0.1:{port}");
            let proc = cluster.spawn_coordinator(id, &addr, &peers);
            cluster.coordinators.push(Coordinator { id, addr, proc });
        }
        let has_leader = || cluster.ctl(&["status"]).is_some_and(|s| s["leader"].as_u64().unwrap_or(0) > 0);
        assert!(wait_until(Duration::from_secs(30), has_leader), "the coordinators elected no leader");
        for i in 1..=spec.nodes {
            let node = cluster.spawn_node(&format!("node-{i}"));
            let ok = cluster.ctl(&["node", "add", &node.id, "--url", &node.url, "--group", "main"]).is_some();
            assert!(ok, "register {}", node.id);
            cluster.nodes.push(node);
        }
        let defaults = ["cluster", "set-defaults", "--shards", &spec.shards.to_string(), "--rf", &spec.rf.to_string()];
        assert!(cluster.ctl(&defaults).is_some(), "set defaults");
        for i in 1..=spec.gateways {
            let port = spec.gateway_port.map_or_else(free_port, |p| p + i as u16 - 1);
            let gw = cluster.spawn_gateway(&format!("gateway-{i}"), port);
            cluster.gateways.push(gw);
        }
        let key = cluster.master_key.clone();
        let ready =
            |g: &Gateway| http_get_status_with_key(&format!("{}/_miroir/ready", g.url), Some(&key)) == Some(200);
        assert!(wait_until(Duration::from_secs(30), || cluster.gateways.iter().all(ready)), "gateways not ready");
        cluster
    }

    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// SIGKILLs the coordinator that leads now and returns its index in `coordinators`.
    pub fn kill_leader(&mut self) -> Option<usize> {
        let leader = self.ctl(&["status"])?["leader"].as_u64()?;
        let i = self.coordinators.iter().position(|c| c.id == leader)?;
        self.coordinators[i].proc.kill();
        Some(i)
    }

    /// Restarts a coordinator killed earlier, on its address and data directory.
    pub fn restart_coordinator(&mut self, i: usize) {
        let peers = self.coordinators.iter().map(|c| format!("{}={}", c.id, c.addr)).collect::<Vec<_>>().join(",");
        let (id, addr) = (self.coordinators[i].id, self.coordinators[i].addr.clone());
        self.coordinators[i].proc = self.spawn_coordinator(id, &addr, &peers);
    }

    pub fn coordinator_addrs(&self) -> String {
        self.coordinators.iter().map(|c| c.addr.clone()).collect::<Vec<_>>().join(",")
    }

    pub fn spawn_coordinator(&self, id: u64, addr: &str, peers: &str) -> Proc {
        let mut cmd = Command::new(workspace_bin("miroir-coordinator"));
        cmd.args(["--id", &id.to_string(), "--listen", addr, "--peers", peers])
            .args(["--heartbeat-ms", "100", "--election-min-ms", "400", "--election-max-ms", "800"])
            .args(["--master-key", &self.master_key])
            .args(&self.coordinator_args)
            .arg("--data-dir")
            .arg(self.data.join(format!("coordinator-{id}")));
        Proc::spawn_logged(format!("coordinator-{id}"), &mut cmd, &self.data).expect("start coordinator")
    }

    pub fn spawn_node(&self, id: &str) -> Node {
        self.spawn_node_on(id, free_port())
    }

    /// Restarts node `i` (killed earlier) on its old address. A dev node comes back empty, as a
    /// replaced machine would; real Meilisearch comes back with its data directory.
    pub fn restart_node(&mut self, i: usize) {
        let port = self.nodes[i].url.rsplit(':').next().and_then(|p| p.parse().ok()).expect("node url has a port");
        let id = self.nodes[i].id.clone();
        self.nodes[i] = self.spawn_node_on(&id, port);
    }

    fn spawn_node_on(&self, id: &str, port: u16) -> Node {
        let url = format!("http://127.0.0.1:{port}");
        let mut cmd = match meili_bin() {
            Some(bin) => {
                let mut c = Command::new(bin);
                c.args([
                    "--http-addr",
                    &format!("127.0.0.1:{port}"),
                    "--master-key",
                    &self.master_key,
                    "--no-analytics",
                ])
                .arg("--db-path")
                .arg(self.data.join(format!("meili-{id}")));
                c
            }
            None => {
                let mut c = Command::new(workspace_bin("miroir-devnode"));
                c.args(["--listen", &format!("127.0.0.1:{port}"), "--master-key", &self.master_key]);
                c
            }
        };
        let proc = Proc::spawn_logged(id.to_string(), &mut cmd, &self.data).expect("start node");
        assert!(wait_until(Duration::from_secs(20), || http_get_status(&format!("{url}/health")) == Some(200)));
        Node { id: id.to_string(), url, proc }
    }

    pub fn spawn_gateway(&self, id: &str, port: u16) -> Gateway {
        let url = format!("http://127.0.0.1:{port}");
        let mut cmd = Command::new(workspace_bin("miroir-gateway"));
        cmd.args(["--listen", &format!("127.0.0.1:{port}"), "--coordinators", &self.coordinator_addrs()]).args([
            "--master-key",
            &self.master_key,
            "--gateway-id",
            id,
            "--lease-ms",
            &self.gateway_lease_ms.to_string(),
        ]);
        Gateway { url, proc: Proc::spawn_logged(id.to_string(), &mut cmd, &self.data).expect("start gateway") }
    }

    /// Runs `miroirctl --json ARGS` and returns its JSON output, or None if it failed.
    pub fn ctl(&self, args: &[&str]) -> Option<serde_json::Value> {
        let out = Command::new(workspace_bin("miroirctl"))
            .args(["--coordinators", &self.coordinator_addrs(), "--json"])
            .args(args)
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        Some(serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null))
    }
}

/// Status code of a plain GET, or None if nothing answered.
pub fn http_get_status(url: &str) -> Option<u16> {
    http_get_status_with_key(url, None)
}

/// Status code of a GET carrying `Authorization: Bearer <key>`, or None if nothing answered.
pub fn http_get_status_with_key(url: &str, key: Option<&str>) -> Option<u16> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest.split_once('/').map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let mut stream = std::net::TcpStream::connect(host).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let auth = key.map(|k| format!("Authorization: Bearer {k}\r\n")).unwrap_or_default();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n").ok()?;
    let mut buf = String::new();
    stream.read_to_string(&mut buf).ok()?;
    buf.split_whitespace().nth(1)?.parse().ok()
}
