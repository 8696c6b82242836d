//! A gateway acknowledges a newly installed map at once, not on its next lease renewal: migration
//! barriers wait for every gateway's acknowledgement. Runs on tokio's paused clock, so "at once"
//! is exact: no virtual time passes between the install and the acknowledgement.

use std::sync::Arc;
use std::time::Duration;

use miroir::command::Command;
use miroir_gateway::app::AppState;
use miroir_gateway::cluster::local::LocalCluster;
use miroir_gateway::cluster::sync::{keep_lease, LeaseConfig};
use miroir_node_client::{HttpTransport, NodeClient};

async fn until(what: &str, check: impl Fn() -> bool) {
    for _ in 0..100_000 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("{what} never happened");
}

#[tokio::test(start_paused = true)]
async fn a_newly_installed_map_is_acknowledged_at_once() {
    let cluster = LocalCluster::new();
    cluster.apply(Command::AddGroup { id: "g1".into() }).unwrap();
    let nodes = NodeClient::new(Arc::new(HttpTransport::new(None, Duration::from_millis(200))));
    let app = AppState::new(cluster.clone(), nodes);
    app.install(Arc::new(cluster.read(|s| s.routing_map())));
    // A renewal every 10 s (virtual).
    let cfg = LeaseConfig { gateway_id: "gw".into(), address: "127.0.0.1:1".into(), lease: Duration::from_secs(30) };
    tokio::spawn(keep_lease(app.clone(), cfg));
    until("registration", || cluster.read(|s| s.gateways.contains_key("gw"))).await;
    // The first renewal acknowledges the map held at registration.
    let first = cluster.read(|s| s.map_version);
    until("first acknowledgement", || cluster.read(|s| s.gateways["gw"].acked_version >= first)).await;

    let (_, version) = cluster.apply(Command::AddGroup { id: "g2".into() }).unwrap();
    let installed_at = tokio::time::Instant::now();
    app.install(Arc::new(cluster.read(|s| s.routing_map())));
    until("acknowledgement of the new map", || cluster.read(|s| s.gateways["gw"].acked_version >= version)).await;
    let waited = installed_at.elapsed();
    assert!(waited < Duration::from_secs(1), "acknowledged {waited:?} after install, not at once");
}
