//! Replica groups in the kernel: a group added to a cluster with indexes is filled from another
//! group through ordinary migrations and serves reads only once it holds every shard; a group is
//! removed only after it was drained.

use std::collections::BTreeSet;

use miroir::command::Command;
use miroir::placement::target_owners;
use miroir::rebalance::{copy_source, plan};
use miroir::state::{ClusterState, GroupStatus, MigrationPhase, NodeStatus};
use miroir::{apply, CommandError, Response};

struct Log {
    s: ClusterState,
    i: u64,
}

impl Log {
    fn run(&mut self, c: Command) -> Result<Response, CommandError> {
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
    fn create(&mut self, uid: &str, shards: u32, rf: u32) {
        let cmd = Command::CreateIndex {
            uid: uid.into(),
            primary_key: Some("id".into()),
            shards: Some(shards),
            rf: Some(rf),
            at: 0,
        };
        self.ok(cmd);
    }
    fn start(&mut self, m: &miroir::rebalance::Move) -> u64 {
        let Response::Migration(id) = self.ok(m.command(1)) else { panic!("no migration id") };
        id
    }
    fn advance(&mut self, id: u64, phase: MigrationPhase) {
        self.ok(Command::AdvanceMigration { id, phase, at: 1 });
    }
    fn complete(&mut self, id: u64) {
        for phase in [MigrationPhase::Copy, MigrationPhase::Verify, MigrationPhase::Cutover, MigrationPhase::Cleanup] {
            self.advance(id, phase);
        }
        self.ok(Command::FinishMigration { id });
    }
    fn group(&self, id: &str) -> GroupStatus {
        self.s.groups[id].status
    }
}

/// Group g0 with `n` nodes and index `i` (16 shards, RF 2).
fn cluster(n: usize) -> Log {
    let mut l = Log { s: ClusterState::default(), i: 0 };
    l.ok(Command::AddGroup { id: "g0".into() });
    for k in 0..n {
        l.add_node(&format!("a{k}"), "g0");
    }
    l.create("i", 16, 2);
    l
}

#[test]
fn an_added_group_is_filled_from_another_group_and_serves_reads_only_when_complete() {
    let mut l = cluster(3);
    l.ok(Command::AddGroup { id: "g1".into() });
    assert_eq!(l.group("g1"), GroupStatus::Initializing);
    assert!(plan(&l.s, &BTreeSet::new(), 100).is_empty(), "a group without nodes is not filled");
    l.add_node("b0", "g1");
    l.add_node("b1", "g1");
    l.add_node("b2", "g1");
    assert!(l.run(Command::SetGroupStatus { id: "g1".into(), status: GroupStatus::Active }).is_err(), "not filled");
    let initializing = Command::SetGroupStatus { id: "g0".into(), status: GroupStatus::Initializing };
    assert!(l.run(initializing).is_err(), "only the cluster sets a group Initializing");

    let mut moves = 0;
    for _ in 0..200 {
        let batch = plan(&l.s, &BTreeSet::new(), 2);
        if batch.is_empty() {
            break;
        }
        for m in batch {
            assert_eq!(m.group, "g1");
            assert!(m.from.is_none(), "a fill adds copies: {m:?}");
            let first = l.s.placement("i", m.shard, "g1").is_none();
            let source = copy_source(&l.s, "i", m.shard, "g1", &m.to).unwrap();
            // The first copy comes from the other group, the second from inside the group.
            assert_eq!(l.s.nodes[&source].group, if first { "g0" } else { "g1" }, "{m:?}");
            let id = l.start(&m);
            let p = l.s.placement("i", m.shard, "g1").unwrap();
            // Writes reach the incoming copy from DualWrite on.
            assert!(p.write_targets().any(|n| *n == m.to));
            if first {
                assert!(p.owners.is_empty());
            }
            assert_eq!(l.group("g1"), GroupStatus::Initializing);
            l.complete(id);
            moves += 1;
        }
    }
    assert_eq!(moves, 32, "16 shards, two copies each");
    assert_eq!(l.group("g1"), GroupStatus::Active, "filled: it serves reads");
    for shard in 0..16 {
        let p = l.s.placement("i", shard, "g1").unwrap();
        let owners: BTreeSet<_> = p.owners.iter().filter(|o| o.in_sync).map(|o| o.node.clone()).collect();
        assert_eq!(owners, target_owners(&l.s, "i", shard, "g1").into_iter().collect());
        assert_eq!(l.s.placement("i", shard, "g0").unwrap().owners.len(), 2, "g0 keeps its copies");
    }
}

#[test]
fn the_group_becomes_active_with_the_command_that_completes_its_last_copy() {
    let mut l = cluster(2);
    l.create("j", 1, 1);
    l.ok(Command::AddGroup { id: "g1".into() });
    l.add_node("b0", "g1");
    l.add_node("b1", "g1");
    let mut last = None;
    while let Some(m) = plan(&l.s, &BTreeSet::new(), 1).pop() {
        let id = l.start(&m);
        l.advance(id, MigrationPhase::Copy);
        l.advance(id, MigrationPhase::Verify);
        l.advance(id, MigrationPhase::Cutover);
        last = Some(id);
        if l.group("g1") == GroupStatus::Active {
            break;
        }
        l.advance(id, MigrationPhase::Cleanup);
        l.ok(Command::FinishMigration { id });
    }
    // The Cutover of the last copy made the group whole: reads may use it from that version on.
    let m = &l.s.migrations[&last.unwrap()];
    assert_eq!(m.phase, MigrationPhase::Cutover);
    assert!(plan(&l.s, &BTreeSet::new(), 10).is_empty());
}

#[test]
fn an_index_created_while_a_group_fills_is_placed_there_when_the_group_has_rf_nodes() {
    let mut l = cluster(2);
    l.ok(Command::AddGroup { id: "g1".into() });
    l.add_node("b0", "g1");
    // One node, RF 2: the group gets no copy of the new index yet.
    l.create("j", 4, 2);
    assert!(l.s.placement("j", 0, "g1").is_none());
    l.add_node("b1", "g1");
    l.create("k", 4, 2);
    for shard in 0..4 {
        let p = l.s.placement("k", shard, "g1").unwrap();
        assert_eq!(p.in_sync_owners().count(), 2, "an empty index is in sync at once");
    }
    assert_eq!(l.group("g1"), GroupStatus::Initializing, "i and j are not there yet");
    // The planner fills i and j; k needs nothing.
    let moves = plan(&l.s, &BTreeSet::new(), 100);
    assert!(!moves.is_empty() && moves.iter().all(|m| m.index != "k" && m.group == "g1"));
}

#[test]
fn the_first_node_of_an_empty_active_group_makes_it_initializing() {
    let mut l = cluster(2);
    l.ok(Command::AddGroup { id: "g1".into() });
    l.ok(Command::DeleteIndex { uid: "i".into() });
    assert_eq!(l.group("g1"), GroupStatus::Active, "nothing to fill once no index is left");
    l.create("j", 2, 1);
    l.add_node("b0", "g1");
    assert_eq!(l.group("g1"), GroupStatus::Initializing);
}

#[test]
fn an_aborted_first_copy_leaves_no_placement() {
    let mut l = cluster(2);
    l.ok(Command::AddGroup { id: "g1".into() });
    l.add_node("b0", "g1");
    l.add_node("b1", "g1");
    let m = plan(&l.s, &BTreeSet::new(), 1).pop().unwrap();
    let id = l.start(&m);
    l.advance(id, MigrationPhase::Copy);
    l.ok(Command::AbortMigration { id });
    assert!(l.s.placement("i", m.shard, "g1").is_none());
    assert_eq!(plan(&l.s, &BTreeSet::new(), 1).pop(), Some(m), "planned again");
}

#[test]
fn a_first_copy_needs_a_source_in_an_active_group() {
    let mut l = cluster(2);
    l.ok(Command::AddGroup { id: "g1".into() });
    l.add_node("b0", "g1");
    l.add_node("b1", "g1");
    let start = |to: &str, from: Option<&str>| Command::StartMigration {
        index: "i".into(),
        shard: 0,
        group: "g1".into(),
        from: from.map(Into::into),
        to: to.into(),
        at: 1,
    };
    assert!(l.run(start("b0", Some("b1"))).is_err(), "nothing to replace in an empty placement");
    assert!(l.run(start("a0", None)).is_err(), "a node of another group");
    for n in ["a0", "a1"] {
        l.ok(Command::SetNodeStatus { id: n.into(), status: NodeStatus::Failed });
    }
    assert!(l.run(start("b0", None)).is_err(), "no live source");
    assert!(plan(&l.s, &BTreeSet::new(), 10).is_empty());
}

#[test]
fn a_copy_lost_from_a_group_is_restored_from_another_group() {
    let mut l = cluster(2);
    // No index: g1 is Active at once and gets `j` with its (only) node.
    l.ok(Command::DeleteIndex { uid: "i".into() });
    l.ok(Command::AddGroup { id: "g1".into() });
    l.add_node("b0", "g1");
    l.create("j", 2, 1);
    assert_eq!(l.group("g1"), GroupStatus::Active);
    // `j` lives on b0 only in g1. b0 is lost past its grace period and b1 replaces it.
    l.add_node("b1", "g1");
    l.ok(Command::NodeFailed { id: "b0".into() });
    let past: BTreeSet<String> = ["b0".to_string()].into();
    let m = plan(&l.s, &past, 100).into_iter().find(|m| m.index == "j").expect("a move for j");
    assert_eq!(m.to, "b1");
    assert_eq!(m.from.as_deref(), Some("b0"));
    assert_eq!(l.s.nodes[&copy_source(&l.s, "j", m.shard, "g1", "b1").unwrap()].group, "g0");
}

#[test]
fn a_group_is_removed_only_after_it_was_drained() {
    let mut l = cluster(2);
    assert!(
        l.run(Command::SetGroupStatus { id: "g0".into(), status: GroupStatus::Draining }).is_err(),
        "last Active group"
    );
    l.ok(Command::AddGroup { id: "g1".into() });
    l.add_node("b0", "g1");
    l.add_node("b1", "g1");
    let m = plan(&l.s, &BTreeSet::new(), 1).pop().unwrap();
    let id = l.start(&m);
    assert!(matches!(l.run(Command::RemoveGroup { id: "g1".into() }), Err(CommandError::GroupNotEmpty { .. })));
    l.ok(Command::SetGroupStatus { id: "g1".into(), status: GroupStatus::Draining });
    assert!(plan(&l.s, &BTreeSet::new(), 10).is_empty(), "a draining group is not filled");
    assert!(matches!(l.run(Command::RemoveGroup { id: "g1".into() }), Err(CommandError::MigrationInFlight { .. })));
    l.ok(Command::AbortMigration { id });
    l.ok(Command::RemoveGroup { id: "g1".into() });
    assert!(!l.s.groups.contains_key("g1"));
    assert_eq!(l.s.nodes["b0"].status, NodeStatus::Removed);
    assert!(l.s.placements["i"].iter().all(|groups| groups.keys().eq(["g0"])));
}

/// g0 (a0, a1) holds `i` (1 shard, RF 1); g1 (b0) is being filled and b0 already holds the copy,
/// while index `j` keeps g1 Initializing (it lacks `j`, which needs two nodes).
fn filling_with_one_copy() -> Log {
    let mut l = Log { s: ClusterState::default(), i: 0 };
    l.ok(Command::AddGroup { id: "g0".into() });
    l.add_node("a0", "g0");
    l.add_node("a1", "g0");
    l.create("i", 1, 1);
    l.create("j", 1, 2);
    l.ok(Command::AddGroup { id: "g1".into() });
    l.add_node("b0", "g1");
    let m = plan(&l.s, &BTreeSet::new(), 10).into_iter().find(|m| m.index == "i").unwrap();
    let id = l.start(&m);
    l.complete(id);
    assert_eq!(l.s.placement("i", 0, "g1").unwrap().in_sync_owners().collect::<Vec<_>>(), ["b0"]);
    assert_eq!(l.group("g1"), GroupStatus::Initializing);
    l
}

#[test]
fn a_write_missed_by_the_only_copy_of_a_group_being_filled_marks_it_stale_instead_of_failing() {
    let mut l = filling_with_one_copy();
    let stale = Command::MarkStale { index: "i".into(), shard: 0, group: "g1".into(), node: "b0".into() };
    l.ok(stale);
    assert_eq!(l.s.placement("i", 0, "g1").unwrap().in_sync_owners().count(), 0);
    // In a group that serves reads the last copy is kept in sync: the write is refused instead.
    let owner = l.s.placement("i", 0, "g0").unwrap().owners[0].node.clone();
    let stale = Command::MarkStale { index: "i".into(), shard: 0, group: "g0".into(), node: owner };
    assert!(matches!(l.run(stale), Err(CommandError::WouldLoseQuorum { .. })));
    // The stale copy is repaired in place, from g0.
    let m = plan(&l.s, &BTreeSet::new(), 10).into_iter().find(|m| m.index == "i").expect("a repair");
    assert_eq!((m.from.as_deref(), m.to.as_str()), (None, "b0"));
    assert_eq!(l.s.nodes[&copy_source(&l.s, "i", 0, "g1", "b0").unwrap()].group, "g0");
    let id = l.start(&m);
    l.complete(id);
    assert_eq!(l.s.placement("i", 0, "g1").unwrap().in_sync_owners().count(), 1);
}

#[test]
fn a_lost_node_of_a_group_being_filled_has_its_last_copies_marked_stale() {
    let mut l = filling_with_one_copy();
    l.ok(Command::NodeFailed { id: "b0".into() });
    assert_eq!(l.s.placement("i", 0, "g1").unwrap().in_sync_owners().count(), 0, "it may come back empty");
    let a = l.s.placement("i", 0, "g0").unwrap().owners[0].node.clone();
    l.ok(Command::NodeFailed { id: a.clone() });
    assert!(l.s.placement("i", 0, "g0").unwrap().owner(&a).unwrap().in_sync, "the last copy of a serving group");
}
