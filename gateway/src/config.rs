//! Gateway configuration: flags, `MIROIR_*` environment variables, or a TOML file; validated at
//! start so a bad value fails fast with a clear message.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;

#[derive(Debug, Clone, Parser)]
#[command(name = "miroir-gateway", about = "Serves the Meilisearch HTTP API over a Miroir cluster")]
pub struct Args {
    /// TOML file with any of the settings below (flags and environment variables override it).
    #[arg(long, env = "MIROIR_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address the Meilisearch API listens on.
    #[arg(long, env = "MIROIR_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Coordinator gRPC addresses, comma-separated (any peer; proposals are forwarded to the leader).
    #[arg(long, env = "MIROIR_COORDINATORS", value_delimiter = ',')]
    pub coordinators: Vec<String>,
    /// Meilisearch master key: clients authenticate against it, and the gateway uses it on nodes.
    #[arg(long, env = "MIROIR_MASTER_KEY")]
    pub master_key: Option<String>,
    /// Unique id of this gateway (defaults to the listen address).
    #[arg(long, env = "MIROIR_GATEWAY_ID")]
    pub gateway_id: Option<String>,
    /// Lease length in milliseconds; writes stop when it cannot be renewed.
    #[arg(long, env = "MIROIR_LEASE_MS")]
    pub lease_ms: Option<u64>,
    /// Timeout of one request to a node, in milliseconds.
    #[arg(long, env = "MIROIR_NODE_TIMEOUT_MS")]
    pub node_timeout_ms: Option<u64>,
    /// Log format: `text` or `json`.
    #[arg(long, env = "MIROIR_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Deadline of one scatter-gather read (search, facet search) over all its retries, in
    /// milliseconds.
    #[arg(long, env = "MIROIR_READ_DEADLINE_MS")]
    pub read_deadline_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    listen: Option<SocketAddr>,
    coordinators: Option<Vec<String>>,
    master_key: Option<String>,
    gateway_id: Option<String>,
    lease_ms: Option<u64>,
    node_timeout_ms: Option<u64>,
    read_deadline_ms: Option<u64>,
    log_format: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub coordinators: Vec<String>,
    pub master_key: Option<String>,
    pub gateway_id: String,
    pub lease: Duration,
    pub node_timeout: Duration,
    pub read_deadline: Duration,
    pub json_logs: bool,
}

impl Config {
    pub fn load(args: Args) -> Result<Self, String> {
        let file: FileConfig = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                toml::from_str(&text).map_err(|e| format!("invalid {}: {e}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let listen = args.listen.or(file.listen).unwrap_or_else(|| "127.0.0.1:7700".parse().expect("static"));
        let coordinators =
            if args.coordinators.is_empty() { file.coordinators.unwrap_or_default() } else { args.coordinators };
        if coordinators.is_empty() {
            return Err("--coordinators is required (at least one coordinator address)".into());
        }
        let master_key = args.master_key.or(file.master_key).filter(|k| !k.is_empty());
        if master_key.as_ref().is_some_and(|k| k.len() < 16) {
            return Err("the master key must be at least 16 bytes, as Meilisearch requires".into());
        }
        let lease = Duration::from_millis(args.lease_ms.or(file.lease_ms).unwrap_or(10_000));
        if lease < Duration::from_millis(300) {
            return Err("--lease-ms must be at least 300".into());
        }
        let log_format = args.log_format.or(file.log_format).unwrap_or_else(|| "text".into());
        if !matches!(log_format.as_str(), "text" | "json") {
            return Err(format!("--log-format must be `text` or `json`, not `{log_format}`"));
        }
        Ok(Self {
            gateway_id: args.gateway_id.or(file.gateway_id).unwrap_or_else(|| listen.to_string().replace(':', "-")),
            listen,
            coordinators,
            master_key,
            lease,
            node_timeout: Duration::from_millis(args.node_timeout_ms.or(file.node_timeout_ms).unwrap_or(30_000)),
            read_deadline: Duration::from_millis(args.read_deadline_ms.or(file.read_deadline_ms).unwrap_or(10_000)),
            json_logs: log_format == "json",
        })
    }
}
