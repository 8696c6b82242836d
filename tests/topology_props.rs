//! Topology changes in the kernel: the rebalancer's plan converges to the target placement
//! through full migrations, moves only what rendezvous hashing moves, and a write missed during
//! a migration is never cut over.

use std::collections::BTreeSet;

use miroir::command::Command;
use miroir::placement::target_owners;
use miroir::rebalance::{health_counts, plan};
use miroir::state::{ClusterState, MigrationPhase, NodeStatus};
use miroir::{apply, Response};
use proptest::prelude::*;

struct Log {
    s: ClusterState,
    i: u64,
}

impl Log {
    fn new() -> Self {
        Log { s: ClusterState::default(), i: 0 }
    }
    fn run(&mut self, c: Command) -> Result<Response, miroir::CommandError> {
        self.i += 1;
        apply(&mut self.s, &c, self.i)
    }
    fn ok(&mut self, c: Command) -> Response {
        let dbg = format!("{c:?}");
        self.run(c).unwrap_or_else(|e| panic!("{dbg}: {e}"))
    }
    fn add_node(&mut self, id: &str, group: &str) {
        self.ok(Command::AddNode { id: id.into(), url: format!("http://{id}"), group: group.into() });
    }
    /// Walks a migration through every phase to its end.
    fn complete(&mut self, id: u64) {
        for phase in [MigrationPhase::Copy, MigrationPhase::Verify, MigrationPhase::Cutover, MigrationPhase::Cleanup] {
            self.ok(Command::AdvanceMigration { id, phase, at: 1 });
        }
        self.ok(Command::FinishMigration { id });
    }
    /// Runs the planner and completes every move until nothing is left to do; returns the moves.
    fn settle(&mut self, failed_past_grace: &BTreeSet<String>) -> Vec<miroir::rebalance::Move> {
        let mut all = Vec::new();
        for _ in 0..1000 {
            let moves = plan(&self.s, failed_past_grace, 3);
            if moves.is_empty() {
                return all;
            }
            for m in moves {
                let Response::Migration(id) = self.ok(m.command(1)) else { panic!("no migration id") };
                self.complete(id);
                all.push(m);
            }
        }
        panic!("the plan does not converge");
    }
}

fn cluster(groups: &[(&str, usize)], shards: u32, rf: u32) -> Log {
    let mut l = Log::new();
    for (g, n) in groups {
        l.ok(Command::AddGroup { id: g.to_string() });
        for k in 0..*n {
            l.add_node(&format!("{g}-n{k}"), g);
        }
    }
    l.ok(Command::CreateIndex {
        uid: "i".into(),
        primary_key: Some("id".into()),
        shards: Some(shards),
        rf: Some(rf),
        at: 0,
    });
    l
}

fn owners(s: &ClusterState, shard: u32, group: &str) -> BTreeSet<String> {
    s.placement("i", shard, group).unwrap().owners.iter().map(|o| o.node.clone()).collect()
}

/// Every placement holds exactly its target owners, all in sync.
fn at_target(s: &ClusterState) -> Result<(), TestCaseError> {
    for (index, shards) in &s.placements {
        for (shard, groups) in shards.iter().enumerate() {
            for (group, p) in groups {
                let target: BTreeSet<String> = target_owners(s, index, shard as u32, group).into_iter().collect();
                prop_assert_eq!(owners(s, shard as u32, group), target);
                prop_assert!(p.owners.iter().all(|o| o.in_sync));
                prop_assert!(p.migration.is_none() && p.incoming.is_empty());
            }
        }
    }
    Ok(())
}

#[test]
fn adding_a_node_moves_exactly_the_shards_whose_top_rf_changed() {
    let mut l = cluster(&[("g", 2)], 64, 2);
    let before: Vec<_> = (0..64).map(|s| owners(&l.s, s, "g")).collect();
    l.add_node("g-n2", "g");
    let moves = l.settle(&BTreeSet::new());
    let changed: BTreeSet<u32> = (0..64).filter(|s| owners(&l.s, *s, "g") != before[*s as usize]).collect();
    let moved: BTreeSet<u32> = moves.iter().map(|m| m.shard).collect();
    assert_eq!(moved, changed);
    assert_eq!(moves.len(), changed.len(), "one move per changed shard");
    assert!(moves.iter().all(|m| m.to == "g-n2" && m.from.is_some()));
    // With RF 2 of 3 nodes, the new node enters the top 2 of about 2/3 of the shards.
    assert!((25..=60).contains(&moved.len()), "{} shards moved", moved.len());
}

#[test]
fn draining_a_node_empties_it_and_it_can_then_be_removed() {
    let mut l = cluster(&[("g", 3)], 16, 2);
    l.ok(Command::SetNodeStatus { id: "g-n0".into(), status: NodeStatus::Draining });
    assert!(l.run(Command::RemoveNode { id: "g-n0".into() }).is_err(), "still owns copies");
    // Move its copies one by one; the last move stops in Cleanup: until Cleanup has deleted that
    // copy the node still holds it, even though it owns nothing any more.
    loop {
        let m = plan(&l.s, &BTreeSet::new(), 1).pop().expect("copies left to move");
        let last = m.from.as_deref() == Some("g-n0") && l.s.placements_of("g-n0") == 1;
        let Response::Migration(id) = l.ok(m.command(1)) else { panic!() };
        if !last {
            l.complete(id);
            continue;
        }
        for phase in [MigrationPhase::Copy, MigrationPhase::Verify, MigrationPhase::Cutover, MigrationPhase::Cleanup] {
            l.ok(Command::AdvanceMigration { id, phase, at: 1 });
        }
        assert_eq!(l.s.placements_of("g-n0"), 0);
        assert!(l.run(Command::RemoveNode { id: "g-n0".into() }).is_err(), "its copy is not deleted yet");
        l.ok(Command::FinishMigration { id });
        break;
    }
    l.settle(&BTreeSet::new());
    assert_eq!(l.s.placements_of("g-n0"), 0);
    l.ok(Command::RemoveNode { id: "g-n0".into() });
}

/// Found by the whole-cluster simulation: a drained node that crashed and came back was made
/// Active, and the drain never finished.
#[test]
fn a_draining_node_that_fails_and_recovers_is_still_draining() {
    let mut l = cluster(&[("g", 3)], 4, 1);
    l.ok(Command::SetNodeStatus { id: "g-n0".into(), status: NodeStatus::Draining });
    l.ok(Command::NodeFailed { id: "g-n0".into() });
    let recovered = l.s.nodes["g-n0"].recovered_status();
    assert_eq!(recovered, NodeStatus::Draining);
    l.ok(Command::SetNodeStatus { id: "g-n0".into(), status: recovered });
    l.settle(&BTreeSet::new());
    assert_eq!(l.s.placements_of("g-n0"), 0, "the drain finished");
    // An operator making it Active again cancels the drain for good.
    l.ok(Command::SetNodeStatus { id: "g-n0".into(), status: NodeStatus::Active });
    l.ok(Command::NodeFailed { id: "g-n0".into() });
    assert_eq!(l.s.nodes["g-n0"].recovered_status(), NodeStatus::Active);
}

#[test]
fn a_failed_node_is_replaced_only_after_its_grace_period() {
    let mut l = cluster(&[("g", 3)], 16, 2);
    l.ok(Command::NodeFailed { id: "g-n1".into() });
    // Its copies are stale where the other owner stays in sync.
    let p = (0..16).map(|s| l.s.placement("i", s, "g").unwrap()).find(|p| p.owner("g-n1").is_some()).unwrap();
    assert!(!p.owner("g-n1").unwrap().in_sync);
    assert_eq!(health_counts(&l.s).0, l.s.placements_of("g-n1"), "each of its shards is below RF");
    assert!(plan(&l.s, &BTreeSet::new(), 10).is_empty(), "inside the grace period nothing moves");
    let moves = l.settle(&["g-n1".to_string()].into());
    assert!(!moves.is_empty() && moves.iter().all(|m| m.from.as_deref() == Some("g-n1")));
    assert_eq!(l.s.placements_of("g-n1"), 0);
    assert_eq!(health_counts(&l.s), (0, 0));
}

#[test]
fn a_failed_node_that_comes_back_is_repaired_in_place() {
    let mut l = cluster(&[("g", 2)], 8, 2);
    l.ok(Command::NodeFailed { id: "g-n0".into() });
    l.ok(Command::SetNodeStatus { id: "g-n0".into(), status: NodeStatus::Active });
    let moves = l.settle(&BTreeSet::new());
    assert_eq!(moves.len(), 8);
    assert!(moves.iter().all(|m| m.from.is_none() && m.to == "g-n0"));
    assert_eq!(health_counts(&l.s), (0, 0));
}

#[test]
fn the_last_copy_of_a_failed_node_stays_in_sync() {
    let mut l = cluster(&[("g", 2)], 4, 1);
    l.ok(Command::NodeFailed { id: "g-n0".into() });
    let copies = l.s.placements_of("g-n0");
    assert!(copies > 0);
    for s in 0..4 {
        let p = l.s.placement("i", s, "g").unwrap();
        assert!(p.owners.iter().all(|o| o.in_sync), "RF 1: marking it stale would leave no copy");
    }
    assert!(plan(&l.s, &["g-n0".to_string()].into(), 10).is_empty(), "no source to copy from");
}

/// Starts a migration of shard 0 onto a new node and walks it to Verify.
fn migration_in_verify() -> (Log, u64, String, String) {
    let mut l = cluster(&[("g", 1)], 1, 1);
    let from = owners(&l.s, 0, "g").pop_first().unwrap();
    l.add_node("new", "g");
    let cmd = Command::StartMigration {
        index: "i".into(),
        shard: 0,
        group: "g".into(),
        from: Some(from.clone()),
        to: "new".into(),
        at: 1,
    };
    let Response::Migration(id) = l.ok(cmd) else { panic!() };
    l.ok(Command::AdvanceMigration { id, phase: MigrationPhase::Copy, at: 2 });
    l.ok(Command::AdvanceMigration { id, phase: MigrationPhase::Verify, at: 3 });
    (l, id, from, "new".into())
}

#[test]
fn a_write_missed_by_the_incoming_node_sends_the_migration_back_to_copy() {
    let (mut l, id, _, to) = migration_in_verify();
    l.ok(Command::MarkStale { index: "i".into(), shard: 0, group: "g".into(), node: to });
    let m = &l.s.migrations[&id];
    assert_eq!((m.phase, m.resets), (MigrationPhase::Copy, 1));
    let cutover = Command::AdvanceMigration { id, phase: MigrationPhase::Cutover, at: 4 };
    assert!(l.run(cutover.clone()).is_err(), "the Cutover prepared before the miss is refused");
    l.ok(Command::AdvanceMigration { id, phase: MigrationPhase::Verify, at: 5 });
    l.ok(cutover);
}

#[test]
fn a_write_missed_by_the_source_also_resets_the_migration() {
    let mut l = cluster(&[("g", 2)], 1, 2);
    l.add_node("new", "g");
    let [a, b]: [String; 2] = owners(&l.s, 0, "g").into_iter().collect::<Vec<_>>().try_into().unwrap();
    let cmd = Command::StartMigration {
        index: "i".into(),
        shard: 0,
        group: "g".into(),
        from: Some(a),
        to: "new".into(),
        at: 1,
    };
    let Response::Migration(id) = l.ok(cmd) else { panic!() };
    l.ok(Command::AdvanceMigration { id, phase: MigrationPhase::Copy, at: 2 });
    l.ok(Command::AdvanceMigration { id, phase: MigrationPhase::Verify, at: 3 });
    l.ok(Command::MarkStale { index: "i".into(), shard: 0, group: "g".into(), node: b });
    assert_eq!(l.s.migrations[&id].phase, MigrationPhase::Copy);
}

#[test]
fn a_miss_reported_for_a_node_without_a_copy_changes_nothing_but_the_version() {
    let (mut l, id, _, _) = migration_in_verify();
    l.ok(Command::AdvanceMigration { id, phase: MigrationPhase::Cutover, at: 4 });
    let before = l.s.clone();
    // The replaced owner, reported by a gateway still routing by the map before Cutover.
    let from = before.migrations[&id].from.clone().unwrap();
    l.ok(Command::MarkStale { index: "i".into(), shard: 0, group: "g".into(), node: from });
    assert_eq!(l.s.placements, before.placements);
    assert_eq!(l.s.migrations, before.migrations);
}

#[test]
fn cutover_to_a_node_that_is_not_active_is_refused() {
    let (mut l, id, _, to) = migration_in_verify();
    l.ok(Command::SetNodeStatus { id: to, status: NodeStatus::Draining });
    let err = l.run(Command::AdvanceMigration { id, phase: MigrationPhase::Cutover, at: 4 }).unwrap_err();
    assert!(err.to_string().contains("not active"), "{err}");
    l.ok(Command::AbortMigration { id });
    assert!(l.s.placement("i", 0, "g").unwrap().incoming.is_empty());
}

fn status() -> impl Strategy<Value = NodeStatus> {
    prop::sample::select(vec![NodeStatus::Active, NodeStatus::Active, NodeStatus::Draining, NodeStatus::Failed])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// Whatever happens to the nodes, running the plan to its end leaves every placement on its
    /// target owners, all in sync, as long as every failed node is past its grace period and
    /// each group keeps RF active nodes (a copy to move needs somewhere to go).
    #[test]
    fn the_plan_converges_to_the_target(
        sizes in prop::collection::vec(2usize..5, 1..3),
        extra in prop::collection::vec(0usize..3, 2),
        changes in prop::collection::vec((0usize..6, status()), 0..6),
        shards in 1u32..12,
        rf in 1u32..3,
    ) {
        let groups: Vec<(String, usize)> = sizes.iter().enumerate().map(|(i, n)| (format!("g{i}"), *n)).collect();
        let refs: Vec<(&str, usize)> = groups.iter().map(|(g, n)| (g.as_str(), *n)).collect();
        let rf = rf.min(*sizes.iter().min().unwrap() as u32);
        let mut l = cluster(&refs, shards, rf);
        for (g, n) in groups.iter().zip(&extra) {
            for k in 0..*n {
                l.add_node(&format!("{}-x{k}", g.0), &g.0);
            }
        }
        let nodes: Vec<String> = l.s.nodes.keys().cloned().collect();
        for (k, st) in changes {
            let id = nodes[k % nodes.len()].clone();
            let cmd = if st == NodeStatus::Failed { Command::NodeFailed { id } } else { Command::SetNodeStatus { id, status: st } };
            let _ = l.run(cmd);
        }
        let active_enough = groups.iter().all(|(g, _)| l.s.eligible_nodes(g).count() >= rf as usize);
        let failed: BTreeSet<String> = l.s.nodes.iter().filter(|(_, n)| n.status == NodeStatus::Failed).map(|(id, _)| id.clone()).collect();
        // A copy whose every in-sync owner failed has no source: nothing can restore it.
        let sourceless = l.s.placements.values().flatten().flat_map(|g| g.values()).any(|p| {
            !p.owners.iter().any(|o| o.in_sync && !failed.contains(&o.node))
        });
        l.settle(&failed);
        if active_enough && !sourceless {
            at_target(&l.s)?;
            for n in &failed {
                prop_assert_eq!(l.s.placements_of(n), 0);
            }
        }
    }
}
