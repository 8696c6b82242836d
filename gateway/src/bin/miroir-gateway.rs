//! `miroir-gateway`: serves the Meilisearch HTTP API over a Miroir cluster.

use std::sync::Arc;

use clap::Parser;
use miroir_gateway::app::{router, AppState};
use miroir_gateway::cluster::grpc::GrpcCluster;
use miroir_gateway::cluster::sync::{follow_map, keep_lease, LeaseConfig};
use miroir_gateway::config::{Args, Config};
use miroir_node_client::{HttpTransport, NodeClient};

#[tokio::main]
async fn main() {
    let config = match Config::load(Args::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("miroir-gateway: {e}");
            std::process::exit(2);
        }
    };
    init_logs(config.json_logs);
    let cluster = Arc::new(GrpcCluster::new(config.coordinators.clone()));
    let nodes = NodeClient::new(Arc::new(HttpTransport::new(config.master_key.clone(), config.node_timeout)));
    let app = AppState::new(cluster, nodes);
    app.set_read_deadline(config.read_deadline);
    if let Some(key) = &config.master_key {
        app.require_master_key(key.clone());
    }
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("miroir-gateway: cannot listen on {}: {e}", config.listen);
            std::process::exit(1);
        }
    };
    let address = format!("http://{}", listener.local_addr().expect("bound"));
    tokio::spawn(follow_map(app.clone()));
    tokio::spawn(create_default_keys(app.clone()));
    tokio::spawn(keep_lease(
        app.clone(),
        LeaseConfig { gateway_id: config.gateway_id.clone(), address, lease: config.lease },
    ));
    tracing::info!(listen = %config.listen, gateway = %config.gateway_id, "miroir-gateway serving the Meilisearch API");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    if let Err(e) = axum::serve(listener, router(app)).with_graceful_shutdown(shutdown).await {
        eprintln!("miroir-gateway: server error: {e}");
        std::process::exit(1);
    }
}

/// Meilisearch's default keys exist from the cluster's first start: the first gateway whose map
/// shows none creates them (once, whoever races).
async fn create_default_keys(app: std::sync::Arc<AppState>) {
    let _ = app.wait_until(|m| m.version > 0).await;
    loop {
        match miroir_gateway::http::auth::ensure_default_keys(&app).await {
            Ok(()) => return,
            Err(e) => tracing::warn!(error = %e, "default API keys not created yet; retrying"),
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

fn init_logs(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
