//! `miroir-dev`: a whole local Miroir cluster in one command: 3 coordinators, 3 Meilisearch nodes
//! and 2 gateways on loopback. Real Meilisearch when `meilisearch` is on PATH or `MEILI_BIN` is set;
//! Miroir's in-memory dev nodes otherwise (said loudly). Ctrl-C stops everything.

#[derive(clap::Parser)]
#[command(name = "miroir-dev", about = "Starts a local Miroir cluster: 3 coordinators, 3 nodes, 2 gateways")]
struct Args {
    /// Master key of the cluster (clients and nodes); at least 16 bytes.
    #[arg(long, env = "MIROIR_MASTER_KEY", default_value = "miroir-dev-master-key")]
    master_key: String,
    /// Port of the first gateway; the second uses the next one.
    #[arg(long, env = "MIROIR_DEV_PORT", default_value_t = 7700)]
    port: u16,
    /// Shards per new index.
    #[arg(long, env = "MIROIR_DEV_SHARDS", default_value_t = 8)]
    shards: u32,
    /// Copies of each shard.
    #[arg(long, env = "MIROIR_DEV_RF", default_value_t = 2)]
    rf: u32,
    /// Where data lives (a temporary directory, removed on exit, by default).
    #[arg(long, env = "MIROIR_DEV_DATA")]
    data_dir: Option<std::path::PathBuf>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    use clap::Parser;
    use miroir_devtools::harness::{meili_bin, ClusterSpec, TestCluster};

    let args = Args::parse();
    match meili_bin() {
        Some(bin) => println!("Meilisearch nodes: {}", bin.display()),
        None => {
            eprintln!("==================================================================");
            eprintln!(" No Meilisearch binary (set MEILI_BIN or put `meilisearch` on PATH).");
            eprintln!(" Falling back to Miroir's in-memory DEV NODES: not for real data.");
            eprintln!("==================================================================");
        }
    }
    let spec = ClusterSpec {
        shards: args.shards,
        rf: args.rf,
        master_key: args.master_key.clone(),
        gateway_port: Some(args.port),
        data_dir: args.data_dir.clone(),
        ..ClusterSpec::default()
    };
    let cluster = tokio::task::spawn_blocking(move || TestCluster::start(spec)).await.expect("cluster starts");
    println!();
    println!("Miroir is up ({} shards, RF {} per new index).", args.shards, args.rf);
    for g in &cluster.gateways {
        println!("  gateway:      {}", g.url);
    }
    for n in &cluster.nodes {
        println!("  node:         {} {}", n.id, n.url);
    }
    println!("  coordinators: {}", cluster.coordinator_addrs());
    println!("  master key:   {}", cluster.master_key);
    println!("  data, logs:   {} (one <process>.log each)", cluster.data_dir().display());
    println!("Press Ctrl-C to stop everything.");
    stopped().await;
    println!("miroir-dev: stopping");
    drop(cluster);
}

/// Ctrl-C, `kill` (SIGTERM) or a closed terminal (SIGHUP): every way a user stops the cluster must
/// run the drop that stops its processes, or they outlive miroir-dev.
async fn stopped() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut hup = signal(SignalKind::hangup()).expect("SIGHUP handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        _ = hup.recv() => {}
    }
}
