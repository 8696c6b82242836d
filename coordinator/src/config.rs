//! Coordinator configuration: CLI flags, each with a `MIROIR_*` env fallback, and an optional TOML file
//! (`--config`) for anything not given on the command line. Validated once at start.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;

#[derive(Debug, Clone, Default, Parser, Deserialize)]
#[command(name = "miroir-coordinator", version, about = "Miroir coordinator peer (Raft over gRPC)")]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Args {
    /// TOML file with any of the options below (kebab-case keys); flags and env win over it.
    #[arg(long, env = "MIROIR_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// This peer's Raft id: one of the ids in --peers (or a new id when joining with `peer add`).
    #[arg(long, env = "MIROIR_ID")]
    pub id: Option<u64>,
    /// gRPC listen address (Raft transport and cluster API), e.g. 0.0.0.0:7400.
    #[arg(long, env = "MIROIR_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Address other peers use to reach this one, when it differs from --listen.
    #[arg(long, env = "MIROIR_ADVERTISE")]
    pub advertise: Option<String>,
    /// Initial cluster: `1=host:port,2=host:port,3=host:port`, the same on every peer.
    #[arg(long, env = "MIROIR_PEERS")]
    pub peers: Option<String>,
    /// Directory of the RocksDB store; a restarted peer rejoins from it.
    #[arg(long, env = "MIROIR_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Prometheus /metrics listen address (disabled when absent).
    #[arg(long, env = "MIROIR_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Raft heartbeat interval in milliseconds [default: 250].
    #[arg(long, env = "MIROIR_HEARTBEAT_MS")]
    pub heartbeat_ms: Option<u64>,
    /// Minimum election timeout in milliseconds [default: 1000].
    #[arg(long, env = "MIROIR_ELECTION_MIN_MS")]
    pub election_min_ms: Option<u64>,
    /// Maximum election timeout in milliseconds [default: 2000].
    #[arg(long, env = "MIROIR_ELECTION_MAX_MS")]
    pub election_max_ms: Option<u64>,
    /// How long a proposal or linearizable read may wait for a leader and a quorum [default: 5000].
    #[arg(long, env = "MIROIR_PROPOSAL_TIMEOUT_MS")]
    pub proposal_timeout_ms: Option<u64>,
    /// Build a Raft snapshot after this many log entries since the last one [default: 5000].
    #[arg(long, env = "MIROIR_SNAPSHOT_EVERY")]
    pub snapshot_every: Option<u64>,
    /// Log entries already covered by a snapshot that are kept anyway (a peer less than this far
    /// behind catches up from the log, not from a snapshot) [default: 1000].
    #[arg(long, env = "MIROIR_KEEP_LOGS")]
    pub keep_logs: Option<u64>,
    /// Master key of the Meilisearch nodes, for the leader's controllers (task tracker, settings
    /// reconciler). Leave unset only for nodes running without a master key.
    #[arg(long, env = "MIROIR_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<String>,
    /// Fault injection for tests: shifts this peer's wall clock by this many ms.
    #[arg(long, env = "MIROIR_CLOCK_OFFSET_MS", hide = true, allow_negative_numbers = true)]
    pub clock_offset_ms: Option<i64>,
    /// Consecutive failed health probes before a node is marked Failed [default: 3].
    #[arg(long, env = "MIROIR_PROBE_FAILURES")]
    pub probe_failures: Option<u32>,
    /// Consecutive good probes before a Failed node is Active again [default: 2].
    #[arg(long, env = "MIROIR_PROBE_RECOVERIES")]
    pub probe_recoveries: Option<u32>,
    /// Timeout of one health probe in milliseconds [default: 2000].
    #[arg(long, env = "MIROIR_PROBE_TIMEOUT_MS")]
    pub probe_timeout_ms: Option<u64>,
    /// How long a node stays Failed before its copies are rebuilt on other nodes, in
    /// milliseconds [default: 300000].
    #[arg(long, env = "MIROIR_FAILED_GRACE_MS")]
    pub failed_grace_ms: Option<u64>,
    /// Shard migrations in flight at once [default: 4].
    #[arg(long, env = "MIROIR_MAX_MIGRATIONS")]
    pub max_migrations: Option<usize>,
    /// Documents per page when copying a shard [default: 1000].
    #[arg(long, env = "MIROIR_COPY_BATCH")]
    pub copy_batch: Option<usize>,
    /// Documents per second one migration copies at most; 0 = unthrottled [default: 20000].
    #[arg(long, env = "MIROIR_COPY_RATE")]
    pub copy_rate: Option<u64>,
    /// Log format: `text` or `json` [default: text].
    #[arg(long, env = "MIROIR_LOG_FORMAT")]
    pub log_format: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub id: u64,
    pub listen: SocketAddr,
    pub advertise: String,
    pub peers: BTreeMap<u64, String>,
    pub data_dir: PathBuf,
    pub metrics_listen: Option<SocketAddr>,
    pub heartbeat: Duration,
    pub election_min: Duration,
    pub election_max: Duration,
    pub proposal_timeout: Duration,
    pub snapshot_every: u64,
    pub keep_logs: u64,
    pub clock_offset_ms: i64,
    pub json_logs: bool,
    pub master_key: Option<String>,
    pub topology: crate::controllers::TopologyConfig,
}

pub fn parse_peers(s: &str) -> Result<BTreeMap<u64, String>, String> {
    let mut peers = BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addr) = part.split_once('=').ok_or_else(|| format!("peer `{part}` is not ID=ADDR"))?;
        let id: u64 = id.trim().parse().map_err(|_| format!("peer id `{id}` is not a number"))?;
        if id == 0 {
            return Err("peer id 0 is reserved (it means \"no leader\")".into());
        }
        if peers.insert(id, addr.trim().to_string()).is_some() {
            return Err(format!("peer id {id} appears twice"));
        }
    }
    Ok(peers)
}

impl Args {
    /// Fills what flags and env left unset from the TOML file, then validates.
    pub fn resolve(self) -> Result<Config, String> {
        let file = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
                toml::from_str::<Args>(&text).map_err(|e| format!("{}: {e}", path.display()))?
            }
            None => Args::default(),
        };
        macro_rules! pick {
            ($f:ident) => {
                self.$f.or(file.$f)
            };
        }
        let id = pick!(id).ok_or("--id is required")?;
        let listen = pick!(listen).ok_or("--listen is required")?;
        let peers = parse_peers(&pick!(peers).ok_or("--peers is required")?)?;
        let data_dir = pick!(data_dir).ok_or("--data-dir is required")?;
        let advertise = pick!(advertise).or_else(|| peers.get(&id).cloned()).unwrap_or_else(|| listen.to_string());
        let heartbeat = Duration::from_millis(pick!(heartbeat_ms).unwrap_or(250));
        let election_min = Duration::from_millis(pick!(election_min_ms).unwrap_or(1000));
        let election_max = Duration::from_millis(pick!(election_max_ms).unwrap_or(2000));
        if heartbeat.is_zero() || election_min <= heartbeat || election_max <= election_min {
            return Err("need 0 < heartbeat < election-min < election-max".into());
        }
        let proposal_timeout = Duration::from_millis(pick!(proposal_timeout_ms).unwrap_or(5000));
        let snapshot_every = pick!(snapshot_every).unwrap_or(crate::peer::PeerOptions::SNAPSHOT_EVERY);
        if snapshot_every == 0 {
            return Err("--snapshot-every must be at least 1".into());
        }
        let keep_logs = pick!(keep_logs).unwrap_or(crate::peer::PeerOptions::KEEP_LOGS);
        let json_logs = match pick!(log_format).as_deref().unwrap_or("text") {
            "json" => true,
            "text" => false,
            other => return Err(format!("--log-format must be json or text, not `{other}`")),
        };
        let d = crate::controllers::TopologyConfig::default();
        let topology = crate::controllers::TopologyConfig {
            probe_failures: pick!(probe_failures).unwrap_or(d.probe_failures),
            probe_recoveries: pick!(probe_recoveries).unwrap_or(d.probe_recoveries),
            probe_timeout: pick!(probe_timeout_ms).map_or(d.probe_timeout, Duration::from_millis),
            failed_grace: pick!(failed_grace_ms).map_or(d.failed_grace, Duration::from_millis),
            max_migrations: pick!(max_migrations).unwrap_or(d.max_migrations),
            copy_batch: pick!(copy_batch).unwrap_or(d.copy_batch),
            copy_rate: pick!(copy_rate).unwrap_or(d.copy_rate),
        };
        if topology.probe_failures == 0 || topology.probe_recoveries == 0 || topology.probe_timeout.is_zero() {
            return Err("--probe-failures, --probe-recoveries and --probe-timeout-ms must be at least 1".into());
        }
        if topology.max_migrations == 0 || topology.copy_batch == 0 {
            return Err("--max-migrations and --copy-batch must be at least 1".into());
        }
        Ok(Config {
            topology,
            id,
            listen,
            advertise,
            peers,
            data_dir,
            metrics_listen: pick!(metrics_listen),
            heartbeat,
            election_min,
            election_max,
            proposal_timeout,
            snapshot_every,
            keep_logs,
            clock_offset_ms: pick!(clock_offset_ms).unwrap_or(0),
            json_logs,
            master_key: pick!(master_key).filter(|k| !k.is_empty()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_parse_and_reject_bad_lists() {
        let p = parse_peers("1=a:1, 2=b:2,3=c:3").unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p[&2], "b:2");
        assert!(parse_peers("1=a,1=b").is_err());
        assert!(parse_peers("x=a").is_err());
        assert!(parse_peers("0=a").is_err());
        assert!(parse_peers("1").is_err());
    }

    #[test]
    fn toml_fills_what_flags_leave_unset() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "id = 2\nlisten = \"127.0.0.1:1\"\npeers = \"1=x:1,2=y:2\"\ndata-dir = \"/d\"\n")
            .unwrap();
        let args = Args::parse_from(["c", "--config", file.to_str().unwrap(), "--id", "1"]);
        let c = args.resolve().unwrap();
        assert_eq!(c.id, 1);
        assert_eq!(c.advertise, "x:1");
        assert_eq!(c.data_dir, PathBuf::from("/d"));
        assert_eq!((c.snapshot_every, c.keep_logs), (5_000, 1_000));
    }

    #[test]
    fn snapshot_policy_from_flag_env_or_toml() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "id = 1\nlisten = \"127.0.0.1:1\"\npeers = \"1=x:1\"\ndata-dir = \"/d\"\nsnapshot-every = 7\nkeep-logs = 3\n",
        )
        .unwrap();
        let c = Args::parse_from(["c", "--config", file.to_str().unwrap()]).resolve().unwrap();
        assert_eq!((c.snapshot_every, c.keep_logs), (7, 3));
        let c =
            Args::parse_from(["c", "--config", file.to_str().unwrap(), "--snapshot-every", "50"]).resolve().unwrap();
        assert_eq!((c.snapshot_every, c.keep_logs), (50, 3));
        let zero = Args::parse_from(["c", "--config", file.to_str().unwrap(), "--snapshot-every", "0"]).resolve();
        assert!(zero.is_err());
        // The env names are part of the interface: clap reads them.
        let cmd = <Args as clap::CommandFactory>::command();
        let env = |name: &str| {
            cmd.get_arguments().find(|a| a.get_id() == name).and_then(|a| a.get_env()).map(|e| e.to_owned())
        };
        assert_eq!(env("snapshot_every"), Some("MIROIR_SNAPSHOT_EVERY".into()));
        assert_eq!(env("keep_logs"), Some("MIROIR_KEEP_LOGS".into()));
    }

    #[test]
    fn topology_settings_come_from_flags_or_toml_and_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "probe-failures = 5\nfailed-grace-ms = 1500\n").unwrap();
        let base = ["c", "--id", "1", "--listen", "127.0.0.1:1", "--peers", "1=x:1", "--data-dir", "/d"];
        let args =
            Args::parse_from(base.iter().copied().chain(["--config", file.to_str().unwrap(), "--max-migrations", "2"]));
        let t = args.resolve().unwrap().topology;
        assert_eq!((t.probe_failures, t.failed_grace, t.max_migrations), (5, Duration::from_millis(1500), 2));
        assert_eq!(t.probe_recoveries, 2, "default");
        let bad = Args::parse_from(base.iter().copied().chain(["--probe-failures", "0"]));
        assert!(bad.resolve().is_err());
    }
}
