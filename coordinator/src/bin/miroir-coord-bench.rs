//! Load driver for the coordinator: starts a 3-peer cluster of real `miroir-coordinator` processes
//! (the binary next to this one), measures proposal throughput and p50/p99 latency for 1 and 64
//! concurrent clients, then leader failover time (SIGKILL of the leader to the first successful
//! proposal) over several kills. Usage: `miroir-coord-bench [--proposals N] [--kills K]`.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command as Proc, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use miroir::Command;
use miroir_coordinator::client::Client;

#[derive(Parser)]
struct Args {
    /// Proposals per concurrency level.
    #[arg(long, default_value_t = 5000)]
    proposals: usize,
    /// Leader kills for the failover measurement.
    #[arg(long, default_value_t = 5)]
    kills: usize,
    #[arg(long, default_value_t = 100)]
    heartbeat_ms: u64,
    #[arg(long, default_value_t = 400)]
    election_min_ms: u64,
    #[arg(long, default_value_t = 800)]
    election_max_ms: u64,
}

struct Cluster {
    bin: PathBuf,
    _dir: tempfile::TempDir,
    data: PathBuf,
    addrs: BTreeMap<u64, String>,
    children: BTreeMap<u64, Child>,
    flags: Vec<String>,
}

impl Cluster {
    fn peers(&self) -> String {
        self.addrs.iter().map(|(i, a)| format!("{i}={a}")).collect::<Vec<_>>().join(",")
    }
    fn spawn(&mut self, id: u64) {
        let child = Proc::new(&self.bin)
            .args(["--id", &id.to_string(), "--listen", &self.addrs[&id], "--peers", &self.peers()])
            .arg("--data-dir")
            .arg(self.data.join(id.to_string()))
            .args(&self.flags)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn miroir-coordinator");
        self.children.insert(id, child);
    }
    fn kill(&mut self, id: u64) {
        if let Some(mut c) = self.children.remove(&id) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
    fn client(&self) -> Client {
        let a: Vec<&str> = self.addrs.values().map(String::as_str).collect();
        Client::new(&a).expect("client")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let ids: Vec<u64> = self.children.keys().copied().collect();
        for id in ids {
            self.kill(id);
        }
    }
}

async fn leader(c: &Cluster) -> u64 {
    let client = c.client();
    loop {
        if let Ok(s) = client.status().await {
            if s.leader != 0 && c.children.contains_key(&s.leader) {
                return s.leader;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn load(client: &Client, clients: usize, total: usize, tag: &str) {
    let per = total / clients;
    let started = Instant::now();
    let mut handles = Vec::new();
    for w in 0..clients {
        let client = client.clone();
        let tag = tag.to_string();
        handles.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per);
            for i in 0..per {
                let cmd = Command::AddGroup { id: format!("{tag}-{w}-{i}") };
                let t = Instant::now();
                client.propose(&cmd).await.expect("proposal").0.expect("applied");
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for h in handles {
        lat.extend(h.await.expect("worker"));
    }
    let secs = started.elapsed().as_secs_f64();
    lat.sort();
    println!(
        "clients={clients:<3} proposals={:<6} throughput={:>8.0}/s p50={:>7.2}ms p99={:>7.2}ms",
        lat.len(),
        lat.len() as f64 / secs,
        pct(&lat, 0.50).as_secs_f64() * 1e3,
        pct(&lat, 0.99).as_secs_f64() * 1e3
    );
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let bin = std::env::current_exe().expect("exe").with_file_name("miroir-coordinator");
    let dir = tempfile::tempdir().expect("tempdir");
    let addrs =
        (1..=3).map(|i| (i, TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string())).collect();
    let flags = vec![
        "--heartbeat-ms".into(),
        args.heartbeat_ms.to_string(),
        "--election-min-ms".into(),
        args.election_min_ms.to_string(),
        "--election-max-ms".into(),
        args.election_max_ms.to_string(),
    ];
    let mut c = Cluster { bin, data: dir.path().to_path_buf(), _dir: dir, addrs, children: BTreeMap::new(), flags };
    for id in 1..=3 {
        c.spawn(id);
    }
    leader(&c).await;
    let client = Arc::new(c.client());
    load(&client, 1, args.proposals.min(2000), "one").await;
    load(&client, 64, args.proposals, "many").await;

    let mut failovers = Vec::new();
    for k in 0..args.kills {
        let old = leader(&c).await;
        c.kill(old);
        let t = Instant::now();
        let cmd = Command::AddGroup { id: format!("failover-{k}") };
        loop {
            if client.propose(&cmd).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let took = t.elapsed();
        println!(
            "failover {k}: killed leader {old}, first successful proposal after {:.0} ms",
            took.as_secs_f64() * 1e3
        );
        failovers.push(took);
        c.spawn(old);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    failovers.sort();
    if !failovers.is_empty() {
        println!(
            "failover over {} kills: min={:.0}ms median={:.0}ms max={:.0}ms",
            failovers.len(),
            failovers[0].as_secs_f64() * 1e3,
            pct(&failovers, 0.5).as_secs_f64() * 1e3,
            failovers[failovers.len() - 1].as_secs_f64() * 1e3
        );
    }
}
