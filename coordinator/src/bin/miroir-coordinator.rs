//! `miroir-coordinator`: one peer of the Raft-replicated coordinator.

use clap::Parser;
use miroir_coordinator::config::Args;
use miroir_coordinator::peer::{self, PeerOptions};

fn init_logs(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cfg = match Args::parse().resolve() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("miroir-coordinator: invalid configuration: {e}");
            std::process::exit(2);
        }
    };
    init_logs(cfg.json_logs);
    miroir_coordinator::node::set_clock_offset_ms(cfg.clock_offset_ms);
    if let Some(addr) = cfg.metrics_listen {
        miroir_coordinator::metrics::install(addr)?;
    }
    std::fs::create_dir_all(&cfg.data_dir)?;
    let (log_store, state_machine) = miroir_raft_store::open_rocks(&cfg.data_dir)?;
    let state = state_machine.handle();
    let opts = PeerOptions {
        id: cfg.id,
        listen: cfg.listen,
        peers: cfg.peers.clone(),
        heartbeat: cfg.heartbeat,
        election_min: cfg.election_min,
        election_max: cfg.election_max,
        proposal_timeout: cfg.proposal_timeout,
        snapshot_every: cfg.snapshot_every,
        keep_logs: cfg.keep_logs,
    };
    let mut controllers = miroir_coordinator::controllers::http_controllers(
        cfg.master_key.clone(),
        miroir_coordinator::controllers::NODE_TIMEOUT,
    );
    controllers
        .extend(miroir_coordinator::controllers::topology_controllers(cfg.master_key.clone(), cfg.topology.clone()));
    let peer = peer::start(opts, log_store, state_machine, state, controllers).await?;
    tracing::info!(id = cfg.id, listen = %cfg.listen, "coordinator peer serving");

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
    tracing::info!("shutting down");
    let _ = peer.raft.shutdown().await;
    Ok(())
}
