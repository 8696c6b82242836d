//! What an operator sees of the migrations in flight (`miroirctl migrations`, the gateway's
//! `GET /_miroir/migrations`): phase, documents copied, copy rate and ETA.

use serde_json::{json, Value};

use crate::ids::Millis;
use crate::state::MigrationPhase;
use crate::ClusterState;

/// One row per migration: where it stands, documents copied, rate and ETA of its copy.
pub fn migration_rows(s: &ClusterState, now: Millis) -> Vec<Value> {
    s.migrations
        .iter()
        .map(|(id, m)| {
            let elapsed_s = now.saturating_sub(m.phase_started_at) as f64 / 1000.0;
            let copying = m.phase == MigrationPhase::Copy;
            let rate = (copying && elapsed_s > 0.0).then(|| m.copied as f64 / elapsed_s);
            let eta = match (rate, m.total) {
                (Some(r), Some(t)) if r > 0.0 => Some(t.saturating_sub(m.copied) as f64 / r),
                _ => None,
            };
            json!({
                "id": id, "index": m.index, "shard": m.shard, "group": m.group, "from": m.from, "to": m.to,
                "phase": m.phase, "copied": m.copied, "total": m.total, "resets": m.resets,
                "docsPerSecond": rate.map(|r| r.round()), "etaSeconds": eta.map(|e| e.ceil()),
                "startedAt": m.started_at, "phaseStartedAt": m.phase_started_at,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_and_eta_come_from_the_copy_phase() {
        let mut s = ClusterState::default();
        s.migrations.insert(
            3,
            crate::state::Migration {
                index: "i".into(),
                shard: 1,
                group: "g".into(),
                from: Some("a".into()),
                to: "b".into(),
                phase: MigrationPhase::Copy,
                phase_version: 1,
                started_at: 0,
                phase_started_at: 10_000,
                copied: 500,
                total: Some(1500),
                resets: 0,
            },
        );
        let rows = migration_rows(&s, 15_000);
        assert_eq!(rows[0]["docsPerSecond"], 100.0);
        assert_eq!(rows[0]["etaSeconds"], 10.0);
        assert_eq!(rows[0]["phase"], "copy");
    }
}
