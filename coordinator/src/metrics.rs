//! Prometheus metrics (names documented in docs/metrics.md). Recording goes through the `metrics`
//! facade, so it is a no-op when no exporter is installed (tests, simulation).

use std::time::Duration;

use miroir_raft_store::openraft::async_runtime::WatchReceiver;
use miroir_raft_store::openraft::ServerState;
use miroir_raft_store::{Raft, StateHandle};

pub fn proposal(elapsed: Duration, ok: bool) {
    metrics::histogram!("miroir_coordinator_proposal_seconds").record(elapsed.as_secs_f64());
    if !ok {
        metrics::counter!("miroir_coordinator_proposal_failures_total").increment(1);
    }
}

pub fn watch_sent() {
    metrics::counter!("miroir_coordinator_watch_updates_total").increment(1);
}

/// Serves `/metrics` on `addr`; HTTP stays out of the simulation.
#[cfg(not(madsim))]
pub fn install(addr: std::net::SocketAddr) -> anyhow::Result<()> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full("miroir_coordinator_proposal_seconds".into()),
            &[0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0],
        )?
        .install()?;
    Ok(())
}

/// Mirrors Raft metrics into gauges whenever openraft publishes new ones.
pub async fn follow_raft(raft: Raft, state: StateHandle) {
    let mut rx = raft.metrics();
    loop {
        {
            let m = rx.borrow_and_update().clone();
            metrics::gauge!("miroir_coordinator_term").set(m.current_term as f64);
            metrics::gauge!("miroir_coordinator_leader_id").set(m.current_leader.unwrap_or(0) as f64);
            metrics::gauge!("miroir_coordinator_is_leader").set(f64::from(u8::from(m.state == ServerState::Leader)));
            let commit = m.local_committed.map(|l| l.index).unwrap_or(0);
            let applied = m.last_applied.map(|l| l.index).unwrap_or(0);
            metrics::gauge!("miroir_coordinator_commit_index").set(commit as f64);
            metrics::gauge!("miroir_coordinator_applied_index").set(applied as f64);
            metrics::gauge!("miroir_coordinator_apply_lag").set(commit.saturating_sub(applied) as f64);
            metrics::gauge!("miroir_coordinator_last_log_index").set(m.last_log_index.unwrap_or(0) as f64);
            metrics::gauge!("miroir_coordinator_map_version").set(state.read(|s| s.map_version) as f64);
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}
