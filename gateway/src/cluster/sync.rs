//! Keeping the gateway's map current and its lease alive.
//!
//! The coordinator's migration barrier waits until every gateway with a live lease has acked a map
//! version. A gateway that cannot renew its lease stops accepting writes *before* the coordinator
//! stops waiting for it, so a gateway routing by an old map never writes to an owner that was
//! replaced. The coordinator times leases by its leader's clock (the lease starts when the leader
//! proposes it); the gateway never sends a time, and counts its own deadline by its monotonic
//! clock from when it sent the request, minus a margin: its deadline comes first whatever the
//! offset between its wall clock and the coordinators'.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::app::AppState;

#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub gateway_id: String,
    pub address: String,
    pub lease: Duration,
}

/// Follows the coordinator's map stream forever, reconnecting from the installed version.
pub async fn follow_map(app: Arc<AppState>) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let from = app.map().version;
        let mut stream = app.cluster.watch(from);
        while let Some(item) = stream.next().await {
            match item {
                Ok(map) => {
                    app.install(map);
                    backoff = Duration::from_millis(50);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "map stream broke; reconnecting");
                    break;
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// Registers the gateway, then renews its lease and acknowledges a map version: every `lease / 3`,
/// and at once when a newer version becomes acknowledgeable, since migration barriers wait for
/// that acknowledgement (on the period alone, each barrier cost up to a third of the lease). The
/// version acknowledged is the installed one only once no write that began with an older map is
/// still in flight (`write::fence`).
pub async fn keep_lease(app: Arc<AppState>, cfg: LeaseConfig) {
    let lease_ms = cfg.lease.as_millis() as u64;
    let period = cfg.lease / 3;
    // Writes stop this long before the coordinator could consider the lease expired.
    let margin = cfg.lease / 4;
    let mut registered = false;
    let mut installed = app.installed_versions();
    let mut oldest_write = app.fence.oldest_in_flight();
    let mut acked = 0;
    loop {
        // Taken before sending: the leader starts the lease later than this, by any clock.
        let sent = Instant::now();
        let ackable = app.ackable_version();
        let renewed = if registered {
            app.cluster.heartbeat(&cfg.gateway_id, lease_ms, Some(ackable)).await
        } else {
            app.cluster.register(&cfg.gateway_id, &cfg.address, lease_ms).await
        };
        match renewed {
            Ok(lease) => {
                registered = true;
                acked = ackable;
                app.extend_lease(sent + cfg.lease - margin, lease.map_version);
            }
            Err(crate::cluster::ClusterError::Rejected(miroir::CommandError::GatewayNotFound(_))) => registered = false,
            Err(e) => tracing::warn!(error = %e, "lease renewal failed"),
        }
        let next = tokio::time::sleep(period.saturating_sub(sent.elapsed()).max(Duration::from_millis(20)));
        if registered {
            // Early only for a version the barriers may be waiting for.
            let newer = async {
                loop {
                    tokio::select! {
                        changed = installed.changed() => if changed.is_err() { std::future::pending::<()>().await },
                        changed = oldest_write.changed() => if changed.is_err() { std::future::pending::<()>().await },
                    }
                    if app.ackable_version() > acked {
                        return;
                    }
                }
            };
            tokio::select! {
                _ = next => {}
                _ = newer => {}
            }
        } else {
            next.await;
        }
    }
}
