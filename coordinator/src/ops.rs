//! Operator views of topology work, for `miroirctl` and the gateway's admin API: migration
//! progress, and the comparison of every in-sync copy of an index.

use miroir::ids::Millis;
use miroir::state::MigrationPhase;
use miroir::ClusterState;
use serde_json::{json, Value};

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

/// A text progress bar for one migration row.
pub fn progress_line(row: &Value) -> String {
    let copied = row["copied"].as_u64().unwrap_or(0);
    let total = row["total"].as_u64();
    let bar = match total {
        Some(t) if t > 0 => {
            let filled = ((copied.min(t) * 20) / t) as usize;
            format!("[{}{}] {copied}/{t}", "#".repeat(filled), ".".repeat(20 - filled))
        }
        _ => format!("{copied} copied"),
    };
    let rate = row["docsPerSecond"].as_f64().map_or(String::new(), |r| format!(" {r} docs/s"));
    let eta = row["etaSeconds"].as_f64().map_or(String::new(), |e| format!(" ETA {e}s"));
    format!(
        "#{:<4} {}/{} {:<8} {} -> {} {:<10} {bar}{rate}{eta}",
        row["id"],
        row["index"].as_str().unwrap_or(""),
        row["shard"],
        row["group"].as_str().unwrap_or(""),
        row["from"].as_str().unwrap_or("(new copy)"),
        row["to"].as_str().unwrap_or(""),
        row["phase"].as_str().unwrap_or(""),
    )
}

/// Compares every in-sync copy of every shard of `index` over HTTP; one entry per (shard, group)
/// whose copies differ: which node lacks which ids, or holds another version.
#[cfg(not(madsim))]
pub async fn verify_index(
    nodes: &miroir_node_client::NodeClient,
    s: &ClusterState,
    index: &str,
) -> Result<Value, crate::Error> {
    use std::collections::BTreeMap;

    use crate::controllers::shard_io::fingerprint;
    let idx = s.indexes.get(index).ok_or_else(|| crate::Error::invalid(format!("index `{index}` not found")))?;
    let Some(pk) = idx.primary_key.clone() else {
        return Ok(
            json!({"index": index, "shards": idx.shards, "copiesCompared": 0, "documents": 0, "differences": []}),
        );
    };
    let mut differences = Vec::new();
    let (mut compared, mut documents) = (0, 0);
    for (shard, groups) in s.placements.get(index).into_iter().flatten().enumerate() {
        let mut union: BTreeMap<String, u64> = BTreeMap::new();
        let mut prints = BTreeMap::new();
        for (group, p) in groups {
            for node in p.in_sync_owners() {
                let url = s.nodes.get(node).map(|n| n.url.clone()).unwrap_or_default();
                let f = fingerprint(nodes, &url, index, shard as u32, &pk)
                    .await
                    .map_err(|e| crate::Error::unavailable(format!("{node}: {e}")))?;
                compared += 1;
                for (id, h) in &f {
                    union.entry(id.clone()).or_insert(*h);
                }
                prints.insert((group.clone(), node.clone()), f);
            }
        }
        documents += union.len();
        // Every copy must hold exactly the same ids with the same content.
        let reference = prints.values().next().cloned().unwrap_or_default();
        for ((group, node), f) in &prints {
            let missing: Vec<&String> = union.keys().filter(|id| !f.contains_key(*id)).collect();
            let differ: Vec<&String> =
                f.iter().filter(|(id, h)| reference.get(*id).is_some_and(|r| r != *h)).map(|(id, _)| id).collect();
            if !missing.is_empty() || !differ.is_empty() {
                differences.push(json!({
                    "shard": shard, "group": group, "node": node,
                    "missing": missing, "differentContent": differ,
                }));
            }
        }
    }
    Ok(json!({
        "index": index, "shards": idx.shards, "copiesCompared": compared, "documents": documents,
        "differences": differences,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_and_eta_come_from_the_copy_phase() {
        let mut s = ClusterState::default();
        s.migrations.insert(
            3,
            miroir::state::Migration {
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
        let line = progress_line(&rows[0]);
        assert!(line.contains("[######..............] 500/1500") && line.contains("ETA 10s"), "{line}");
    }
}
