//! Drives one migration (docs/migrations.md) from whatever phase the committed state says it is in, so a
//! new leader resumes where the old one stopped. Each step ends with the command that commits
//! the next phase; a refused command (the migration was reset, aborted or finished meanwhile)
//! just makes the loop read the state again.

use std::time::{Duration, Instant};

use miroir::ids::{MigrationId, NodeId};
use miroir::state::{ClusterState, Migration, MigrationPhase, NodeStatus};
use miroir::Command;
use miroir_node_client::{Method, NodeClient, NodeError, NodeRequest};
use serde_json::{json, Value};

use super::{full_node_settings, TopologyConfig};
use crate::node::{now_ms, Coordinator};
use miroir_node_client::shard::{self as io, Fingerprint};

/// How long one node task (a page written, a shard deleted) may take before the step is retried.
const TASK_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
enum StepError {
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error("{0}")]
    Blocked(String),
}

/// What a step needs from the state, read once per step.
struct View {
    m: Migration,
    pk: Option<String>,
    settings: Value,
    to_url: String,
    to_status: Option<NodeStatus>,
    from: Option<(String, NodeStatus, bool)>,
    /// An in-sync copy to read the shard from: not `to`, not failed (`rebalance::copy_source`).
    source: Option<(NodeId, String)>,
}

fn view(s: &ClusterState, id: MigrationId) -> Option<View> {
    let m = s.migrations.get(&id)?.clone();
    let idx = s.indexes.get(&m.index)?;
    let p = s.placement(&m.index, m.shard, &m.group)?;
    let node = |n: &str| s.nodes.get(n).map(|n| (n.url.clone(), n.status));
    let (to_url, to_status) = node(&m.to).map_or((String::new(), None), |(u, st)| (u, Some(st)));
    let from = m.from.as_ref().and_then(|f| {
        let holds = p.owner(f).is_some() || p.incoming.contains(f);
        node(f).map(|(u, st)| (u, st, holds))
    });
    // The same group's copy first; a group being filled reads from another group.
    let source = miroir::rebalance::copy_source(s, &m.index, m.shard, &m.group, &m.to)
        .and_then(|n| node(&n).map(|(url, _)| (n, url)));
    Some(View { m, pk: idx.primary_key.clone(), settings: idx.settings.clone(), to_url, to_status, from, source })
}

/// Runs migration `id` until it is finished or gone.
pub async fn drive(coord: Coordinator, nodes: NodeClient, cfg: TopologyConfig, id: MigrationId) {
    let mut phase_started = (None, Instant::now());
    loop {
        let Some(v) = coord.state().read(|s| view(s, id)) else {
            tracing::info!(migration = id, "migration ended");
            return;
        };
        if phase_started.0 != Some(v.m.phase) {
            if let Some(prev) = phase_started.0 {
                let phase: &'static str = phase_name(prev);
                metrics::histogram!("miroir_coordinator_migration_phase_seconds", "phase" => phase)
                    .record(phase_started.1.elapsed().as_secs_f64());
            }
            phase_started = (Some(v.m.phase), Instant::now());
            tracing::info!(migration = id, phase = ?v.m.phase, index = %v.m.index, shard = v.m.shard, to = %v.m.to, "migration phase");
        }
        let step = match step(&coord, &nodes, &cfg, id, &v).await {
            Ok(Some(cmd)) => cmd,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(migration = id, phase = ?v.m.phase, error = %e, "migration step failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let finishing = matches!(step, Command::FinishMigration { .. } | Command::AbortMigration { .. });
        match coord.propose(step.clone(), false).await {
            Ok(p) => match p.outcome {
                crate::Outcome::Response(_) if finishing => {
                    let what = if matches!(step, Command::AbortMigration { .. }) { "aborted" } else { "finished" };
                    metrics::counter!("miroir_coordinator_migrations_ended_total", "result" => what).increment(1);
                    tracing::info!(migration = id, "migration {what}");
                    return;
                }
                crate::Outcome::Response(_) => {}
                crate::Outcome::Rejected(e) => {
                    tracing::info!(migration = id, refused = %String::from_utf8_lossy(&e), "step refused; reading the state again");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Err(e) => {
                tracing::warn!(migration = id, error = %e, "could not commit a migration step");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

pub fn phase_name(p: MigrationPhase) -> &'static str {
    match p {
        MigrationPhase::DualWrite => "dual_write",
        MigrationPhase::Copy => "copy",
        MigrationPhase::Verify => "verify",
        MigrationPhase::Cutover => "cutover",
        MigrationPhase::Cleanup => "cleanup",
    }
}

fn advance(id: MigrationId, phase: MigrationPhase) -> Option<Command> {
    Some(Command::AdvanceMigration { id, phase, at: now_ms() })
}

/// One step; `Ok(None)` means "read the state and come back".
async fn step(
    coord: &Coordinator,
    nodes: &NodeClient,
    cfg: &TopologyConfig,
    id: MigrationId,
    v: &View,
) -> Result<Option<Command>, StepError> {
    let m = &v.m;
    if m.phase < MigrationPhase::Cutover && v.to_status != Some(NodeStatus::Active) {
        tracing::warn!(migration = id, to = %m.to, status = ?v.to_status, "target is not active any more: aborting");
        return Ok(Some(Command::AbortMigration { id }));
    }
    match m.phase {
        MigrationPhase::DualWrite | MigrationPhase::Cutover => {
            // The barrier: every gateway with a live lease routes by this phase's map.
            let unfenced = m.phase == MigrationPhase::Cutover
                && miroir::mutation::active(miroir::mutation::Mutation::CutoverWithoutBarrier);
            if unfenced || barrier_passed(coord, m).await {
                let next = m.phase.next().expect("DualWrite and Cutover have a next phase");
                return Ok(advance(id, next));
            }
            Ok(None)
        }
        MigrationPhase::Copy => {
            let Some(pk) = &v.pk else { return Ok(advance(id, MigrationPhase::Verify)) };
            let (_, src) = v.source.clone().ok_or_else(|| StepError::Blocked("no in-sync source".into()))?;
            prepare_target(nodes, &v.to_url, &m.index, pk, &v.settings).await?;
            // After a reset the target already holds (nearly) everything: Verify repairs the rest.
            if m.resets == 0 {
                copy(coord, nodes, cfg, id, m, &src, &v.to_url, pk).await?;
            }
            Ok(advance(id, MigrationPhase::Verify))
        }
        MigrationPhase::Verify => {
            // A barrier first: every write that began before Verify has landed on both copies or
            // been reported missed (which sends the migration back to Copy). Without it, a write
            // still on its way to the source is invisible to Verify: the bulk copy may have
            // overwritten it on the target (a deleted document copied back), both copies then
            // look equal, and the write is lost at Cutover when it finally fails on the source.
            if !barrier_passed(coord, m).await {
                return Ok(None);
            }
            let Some(pk) = &v.pk else { return Ok(advance(id, MigrationPhase::Cutover)) };
            let (_, src) = v.source.clone().ok_or_else(|| StepError::Blocked("no in-sync source".into()))?;
            if verify(coord, nodes, id, m, &src, &v.to_url, pk).await? {
                Ok(advance(id, MigrationPhase::Cutover))
            } else {
                Ok(None)
            }
        }
        MigrationPhase::Cleanup => {
            if let Some((url, status, holds)) = &v.from {
                // A failed or removed node is not waited for: it is not an owner, nothing reads
                // it, and a later migration onto it verifies (and deletes) what it holds.
                if !holds && matches!(status, NodeStatus::Active | NodeStatus::Draining | NodeStatus::Joining) {
                    cleanup(nodes, url, &m.index, m.shard).await?;
                }
            }
            Ok(Some(Command::FinishMigration { id }))
        }
    }
}

/// The gateway acknowledgement barrier of the migration's phase: every gateway with a live lease
/// routes by this phase's map and has no request in flight by an older one. If not yet, waits a
/// little before the step is tried again.
async fn barrier_passed(coord: &Coordinator, m: &Migration) -> bool {
    let passed = coord.state().read(|s| s.gateways_acked(m.phase_version, now_ms()));
    if !passed {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    passed
}

/// The target holds the index with the current settings before any page reaches it.
async fn prepare_target(
    nodes: &NodeClient,
    url: &str,
    index: &str,
    pk: &str,
    settings: &Value,
) -> Result<(), StepError> {
    let create = NodeRequest::json(Method::Post, "/indexes", &json!({"uid": index, "primaryKey": pk}));
    let uid = nodes.enqueue(url, create).await?;
    // Failing because the index exists is fine.
    io::wait_task(nodes, url, uid, TASK_TIMEOUT).await?;
    let patch = NodeRequest::json(Method::Patch, format!("/indexes/{index}/settings"), &full_node_settings(settings));
    let uid = nodes.enqueue(url, patch).await?;
    io::wait_task(nodes, url, uid, TASK_TIMEOUT).await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn copy(
    coord: &Coordinator,
    nodes: &NodeClient,
    cfg: &TopologyConfig,
    id: MigrationId,
    m: &Migration,
    src: &str,
    dst: &str,
    pk: &str,
) -> Result<(), StepError> {
    let started = Instant::now();
    let (mut offset, mut last_report) = (0usize, Instant::now());
    loop {
        let (page, total) = io::fetch_page(nodes, src, &m.index, m.shard, offset, cfg.copy_batch, None).await?;
        if !page.is_empty() {
            io::write_docs(nodes, dst, &m.index, pk, &page).await?;
        }
        offset += page.len();
        metrics::counter!("miroir_coordinator_migration_documents_copied_total").increment(page.len() as u64);
        let done = page.len() < cfg.copy_batch;
        if done || last_report.elapsed() >= Duration::from_millis(500) {
            last_report = Instant::now();
            let progress = Command::MigrationProgress { id, copied: offset as u64, total: Some(total) };
            if let Err(e) = coord.propose(progress, false).await {
                tracing::debug!(migration = id, error = %e, "progress not committed");
            }
        }
        if done {
            return Ok(());
        }
        if coord.state().read(|s| s.migrations.get(&id).map(|m| m.phase)) != Some(MigrationPhase::Copy) {
            return Ok(());
        }
        // Throttle: never faster than `copy_rate` documents per second.
        if cfg.copy_rate > 0 {
            let due = Duration::from_secs_f64(offset as f64 / cfg.copy_rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// One Verify pass: both sides settled, fingerprinted and compared; differences repaired from
/// the source. True when the pass found both sides equal.
///
/// Under continuous writes, a difference may be a write still on its way to one side (a client's
/// write reaches the target first and the source seconds later). Repairing it would undo the
/// write on the side it reached. So a difference is repaired only once it outlived every write
/// that could have been in flight when it was seen: a gateway abandons a write when the lease it
/// began under ends (`gateway::write::fence`), so every such write has ended once the latest
/// gateway lease recorded at that moment has expired.
async fn verify(
    coord: &Coordinator,
    nodes: &NodeClient,
    id: MigrationId,
    m: &Migration,
    src: &str,
    dst: &str,
    pk: &str,
) -> Result<bool, StepError> {
    io::wait_idle(nodes, src, &m.index, TASK_TIMEOUT).await?;
    io::wait_idle(nodes, dst, &m.index, TASK_TIMEOUT).await?;
    let a = io::fingerprint(nodes, src, &m.index, m.shard, pk).await?;
    let b = io::fingerprint(nodes, dst, &m.index, m.shard, pk).await?;
    let (mut differ, mut extra) = diff(&a, &b);
    if differ.is_empty() && extra.is_empty() {
        return Ok(true);
    }
    let in_flight_until = coord.state().read(|s| s.gateways.values().map(|g| g.lease_expires_at).max()).unwrap_or(0);
    if !miroir::mutation::active(miroir::mutation::Mutation::VerifyRepairsInFlight) {
        while now_ms() < in_flight_until {
            tokio::time::sleep(Duration::from_millis((in_flight_until - now_ms()).min(500))).await;
        }
    }
    io::wait_idle(nodes, src, &m.index, TASK_TIMEOUT).await?;
    io::wait_idle(nodes, dst, &m.index, TASK_TIMEOUT).await?;
    let ids: Vec<String> = differ.iter().chain(&extra).cloned().collect();
    let a = io::fingerprint_ids(nodes, src, &m.index, m.shard, pk, &ids).await?;
    let b = io::fingerprint_ids(nodes, dst, &m.index, m.shard, pk, &ids).await?;
    (differ, extra) = diff(&a, &b);
    if differ.is_empty() && extra.is_empty() {
        return Ok(true);
    }
    tracing::info!(migration = id, differ = differ.len(), extra = extra.len(), "verify found differences; repairing");
    metrics::counter!("miroir_coordinator_migration_verify_repairs_total")
        .increment((differ.len() + extra.len()) as u64);
    repair(nodes, src, dst, &m.index, m.shard, pk, &differ, &extra).await?;
    Ok(false)
}

/// Ids the target lacks or holds in another version, and ids only the target holds.
pub fn diff(src: &Fingerprint, dst: &Fingerprint) -> (Vec<String>, Vec<String>) {
    let differ = src.iter().filter(|(id, h)| dst.get(*id) != Some(h)).map(|(id, _)| id.clone()).collect();
    let extra = dst.keys().filter(|id| !src.contains_key(*id)).cloned().collect();
    (differ, extra)
}

/// Writes the source's version of `differ` to the target and deletes `extra` from it, then waits
/// for the target to have applied it all.
#[allow(clippy::too_many_arguments)]
pub async fn repair(
    nodes: &NodeClient,
    src: &str,
    dst: &str,
    index: &str,
    shard: miroir::ids::ShardId,
    pk: &str,
    differ: &[String],
    extra: &[String],
) -> Result<(), NodeError> {
    let mut last = None;
    for chunk in differ.chunks(1000) {
        let (docs, _) = io::fetch_page(nodes, src, index, shard, 0, chunk.len(), Some(chunk)).await?;
        if !docs.is_empty() {
            last = Some(io::write_docs(nodes, dst, index, pk, &docs).await?);
        }
    }
    // A document the source deleted since the fingerprint is removed from the target too: the
    // next pass compares again anyway.
    for chunk in extra.chunks(1000) {
        last = Some(io::delete_ids(nodes, dst, index, chunk).await?);
    }
    if let Some(uid) = last {
        io::wait_task(nodes, dst, uid, TASK_TIMEOUT).await?;
    }
    Ok(())
}

/// Deletes the shard from a node that no longer owns it, until it holds none of it.
async fn cleanup(nodes: &NodeClient, url: &str, index: &str, shard: miroir::ids::ShardId) -> Result<(), StepError> {
    for _ in 0..5 {
        let Some(uid) = io::delete_shard(nodes, url, index, shard).await? else { return Ok(()) };
        io::wait_task(nodes, url, uid, TASK_TIMEOUT).await?;
        let (_, left) = io::fetch_page(nodes, url, index, shard, 0, 0, None).await?;
        if left == 0 {
            return Ok(());
        }
    }
    Err(StepError::Blocked(format!("shard {shard} of `{index}` keeps reappearing on {url}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_finds_missing_changed_and_extra_documents() {
        let a: Fingerprint = [("1".into(), 10), ("2".into(), 20), ("3".into(), 30)].into();
        let b: Fingerprint = [("1".into(), 10), ("2".into(), 21), ("4".into(), 40)].into();
        let (differ, extra) = diff(&a, &b);
        assert_eq!(differ, vec!["2".to_string(), "3".to_string()]);
        assert_eq!(extra, vec!["4".to_string()]);
        assert_eq!(diff(&a, &a), (vec![], vec![]));
    }
}
