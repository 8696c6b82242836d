//! Property tests of `apply`: invariants hold under random command sequences, and a refused
//! command changes nothing.

use std::collections::BTreeSet;

use miroir::command::Command;
use miroir::state::{ClusterState, GroupStatus, MigrationPhase, NodeStatus};
use miroir::task::{NewTask, NodeTaskReport, TaskStatus};
use miroir::{apply, Response};
use proptest::prelude::*;
use serde_json::json;

const NODES: &[&str] = &["n0", "n1", "n2", "n3", "n4", "n5"];
const GROUPS: &[&str] = &["g0", "g1"];
const INDEXES: &[&str] = &["movies", "books"];

fn name(pool: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::sample::select(pool).prop_map(str::to_string)
}

fn phase() -> impl Strategy<Value = MigrationPhase> {
    prop::sample::select(vec![
        MigrationPhase::DualWrite,
        MigrationPhase::Copy,
        MigrationPhase::Verify,
        MigrationPhase::Cutover,
        MigrationPhase::Cleanup,
    ])
}

fn node_status() -> impl Strategy<Value = NodeStatus> {
    prop::sample::select(vec![NodeStatus::Joining, NodeStatus::Active, NodeStatus::Draining, NodeStatus::Failed])
}

fn task_status() -> impl Strategy<Value = TaskStatus> {
    prop::sample::select(vec![TaskStatus::Processing, TaskStatus::Succeeded, TaskStatus::Failed, TaskStatus::Canceled])
}

fn command() -> impl Strategy<Value = Command> {
    let at = 0u64..1_000_000;
    prop_oneof![
        1 => (prop::option::of(1u32..16), prop::option::of(0u32..4), prop::option::of(0u32..3))
            .prop_map(|(shards, rf, min_in_sync)| Command::SetDefaults { shards, rf, min_in_sync, task_retention: None }),
        1 => name(GROUPS).prop_map(|id| Command::AddGroup { id }),
        1 => (name(GROUPS), prop::sample::select(vec![GroupStatus::Active, GroupStatus::Initializing, GroupStatus::Draining]))
            .prop_map(|(id, status)| Command::SetGroupStatus { id, status }),
        1 => name(GROUPS).prop_map(|id| Command::RemoveGroup { id }),
        4 => (name(NODES), name(GROUPS)).prop_map(|(id, group)| Command::AddNode { url: format!("http://{id}:7700"), id, group }),
        1 => (name(NODES), node_status()).prop_map(|(id, status)| Command::SetNodeStatus { id, status }),
        1 => name(NODES).prop_map(|id| Command::RemoveNode { id }),
        1 => name(NODES).prop_map(|id| Command::NodeFailed { id }),
        3 => (name(INDEXES), prop::option::of(1u32..6), prop::option::of(1u32..3), at.clone())
            .prop_map(|(uid, shards, rf, at)| Command::CreateIndex { uid, primary_key: Some("id".into()), shards, rf, at }),
        1 => name(INDEXES).prop_map(|uid| Command::DeleteIndex { uid }),
        1 => (name(INDEXES), name(NODES)).prop_map(|(uid, node)| Command::IndexDeletedOn { uid, node }),
        1 => (name(INDEXES), at.clone()).prop_map(|(uid, at)| Command::UpdateSettings { uid, patch: json!({"rankingRules": ["words"], "pagination": {"maxTotalHits": 10}}), at }),
        1 => (name(INDEXES), 0u32..3, name(GROUPS), name(NODES)).prop_map(|(index, shard, group, node)| Command::MarkStale { index, shard, group, node }),
        1 => (name(INDEXES), 0u32..3, name(GROUPS), name(NODES)).prop_map(|(index, shard, group, node)| Command::MarkInSync { index, shard, group, node }),
        4 => (name(INDEXES), 0u32..3, name(GROUPS), prop::option::of(name(NODES)), name(NODES), at.clone())
            .prop_map(|(index, shard, group, from, to, at)| Command::StartMigration { index, shard, group, from, to, at }),
        4 => (0u64..6, phase(), at.clone()).prop_map(|(id, phase, at)| Command::AdvanceMigration { id, phase, at }),
        1 => (0u64..6).prop_map(|id| Command::FinishMigration { id }),
        1 => (0u64..6).prop_map(|id| Command::AbortMigration { id }),
        1 => (prop::collection::vec(name(NODES), 0..3), at.clone()).prop_map(|(nodes, at)| Command::RegisterTasks {
            tasks: vec![NewTask { index_uid: Some("movies".into()), kind: miroir_meili::TaskKind::DocumentAdditionOrUpdate, details: json!({}), node_tasks: nodes.into_iter().enumerate().map(|(i, n)| (n, i as u64)).collect(), finished: None, shares: vec![] }],
            at,
        }),
        1 => (0u64..8, name(NODES), task_status()).prop_map(|(task, node, status)| Command::ReportNodeTasks {
            reports: vec![NodeTaskReport { task, node_task: 0, node, status, error: (status == TaskStatus::Failed).then(|| json!({"code": "x"})), started_at: Some(1), finished_at: status.is_finished().then_some(2), details: None }],
        }),
        1 => (prop::sample::select(vec!["metrics", "containsFilter"]), prop::sample::select(vec![json!(true), json!(false), json!(null), json!("yes")]))
            .prop_map(|(k, v)| Command::SetExperimentalFeatures { features: [(k.to_string(), v)].into_iter().collect() }),
        1 => (0u8..3, any::<bool>()).prop_map(|(n, create)| Command::PutWebhook {
            uuid: format!("w{n}"), webhook: miroir::webhook::Webhook { url: "http://hook".into(), headers: Default::default() }, create }),
        1 => (0u8..3).prop_map(|n| Command::DeleteWebhook { uuid: format!("w{n}") }),
        1 => prop::collection::vec(0u64..8, 0..3).prop_map(|uids| Command::MarkTasksNotified { uids }),
        1 => prop::collection::vec(0u64..8, 0..3).prop_map(|uids| Command::CancelTasks { uids, canceled_by: 99, at: 7 }),
        2 => (name(&["movies", "books", "films"]), name(&["movies", "books", "films"]), any::<bool>()).prop_map(|(a, b, rename)| Command::SwapIndexes {
            swaps: vec![miroir::swap::IndexSwap { indexes: (a, b), rename }] }),
    ]
}

/// A step is either a random command, or "advance migration `id` to its next phase", resolved
/// against the state at run time: random phases alone almost never walk a migration to Cutover.
#[derive(Debug, Clone)]
enum Step {
    Raw(Command),
    AdvanceNext(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![3 => command().prop_map(Step::Raw), 1 => (0u64..4).prop_map(Step::AdvanceNext)]
}

fn resolve(s: &ClusterState, step: &Step) -> Command {
    match step {
        Step::Raw(c) => c.clone(),
        Step::AdvanceNext(id) => match s.migrations.get(id).map(|m| m.phase.next()) {
            Some(Some(phase)) => Command::AdvanceMigration { id: *id, phase, at: 9 },
            _ => Command::FinishMigration { id: *id },
        },
    }
}

/// Everything that must hold after any sequence of commands.
fn check_invariants(s: &ClusterState) -> Result<(), TestCaseError> {
    for (index, shards) in &s.placements {
        // No copy of an index lives on a node that may still hold a deleted index of that uid.
        if let Some(held) = s.deleting.get(index) {
            for p in shards.iter().flat_map(|g| g.values()) {
                prop_assert!(p.owners.iter().all(|o| !held.contains(&o.node)), "{index} placed on {held:?}");
                prop_assert!(p.incoming.iter().all(|n| !held.contains(n)), "{index} moving onto {held:?}");
            }
        }
        let idx =
            s.indexes.get(index).ok_or_else(|| TestCaseError::fail(format!("placement of unknown index {index}")))?;
        prop_assert_eq!(shards.len(), idx.shards as usize);
        for groups in shards {
            for (group, p) in groups {
                // A node is an owner once at most and incoming once at most; it may be both only
                // while its stale copy is being repaired.
                let mut owners = BTreeSet::new();
                for o in &p.owners {
                    prop_assert!(owners.insert(o.node.clone()), "duplicate owner {} in {:?}", o.node, p);
                }
                let mut incoming = BTreeSet::new();
                for n in &p.incoming {
                    prop_assert!(incoming.insert(n.clone()), "duplicate incoming {} in {:?}", n, p);
                    prop_assert!(p.owner(n).is_none_or(|o| !o.in_sync), "in-sync owner {} also incoming", n);
                }
                let targets: Vec<_> = p.write_targets().collect();
                prop_assert_eq!(
                    targets.iter().collect::<BTreeSet<_>>().len(),
                    targets.len(),
                    "a write would reach a node twice"
                );
                for n in owners.iter().chain(&incoming) {
                    let node = s.nodes.get(n).ok_or_else(|| TestCaseError::fail(format!("unknown owner {n}")))?;
                    prop_assert_eq!(&node.group, group, "owner from another group");
                    prop_assert!(node.status != NodeStatus::Removed, "removed node owns data");
                }
                // Only the first copy into a group being filled has no owner yet, and only a group
                // being filled (it serves no reads; it may be drained before it is Active) may lose
                // its last in-sync copy.
                let filling = s.groups.get(group).is_some_and(|g| g.status != GroupStatus::Active);
                prop_assert!(
                    p.in_sync_owners().count() >= 1 || (p.owners.is_empty() && p.migration.is_some()) || filling,
                    "no in-sync copy left: {:?}",
                    p
                );
                match p.migration {
                    Some(id) => {
                        let m = s.migrations.get(&id).ok_or_else(|| TestCaseError::fail("dangling migration"))?;
                        prop_assert!((&m.index, &m.group) == (index, group));
                        prop_assert_eq!(p.incoming.contains(&m.to), m.phase < MigrationPhase::Cutover);
                    }
                    None => prop_assert!(p.incoming.is_empty()),
                }
            }
        }
    }
    for (id, m) in &s.migrations {
        prop_assert_eq!(s.placement(&m.index, m.shard, &m.group).and_then(|p| p.migration), Some(*id));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn apply_keeps_invariants(steps in prop::collection::vec(step(), 1..80)) {
        // Start from a populated cluster so that most random commands meet a state they can act on.
        let mut s = populated();
        let offset = s.map_version;
        let mut settings_versions = std::collections::BTreeMap::new();
        for (i, step) in steps.iter().enumerate() {
            let cmd = &resolve(&s, step);
            let before = s.clone();
            let version_before = s.map_version;
            let log_index = offset + i as u64 + 1;
            match apply(&mut s, cmd, log_index) {
                Ok(_) => {
                    prop_assert!(s.map_version >= version_before);
                    if miroir::changes_routing(cmd) {
                        prop_assert_eq!(s.map_version, log_index);
                    } else if s.placements != before.placements {
                        prop_assert!(matches!(cmd, Command::ReportNodeTasks { .. }), "{:?} moved copies", cmd);
                        prop_assert_eq!(s.map_version, log_index);
                    } else {
                        prop_assert_eq!(s.map_version, version_before);
                    }
                }
                Err(e) => prop_assert_eq!(&s, &before, "refused command {:?} ({}) changed the state", cmd, e),
            }
            check_invariants(&s)?;
            for (uid, idx) in &s.indexes {
                let prev = settings_versions.insert(uid.clone(), idx.settings_version).unwrap_or(0);
                // A swap moves an index, settings version and all, under another uid.
                if !matches!(cmd, Command::CreateIndex { .. } | Command::DeleteIndex { .. } | Command::SwapIndexes { .. }) {
                    prop_assert!(idx.settings_version >= prev);
                }
            }
            settings_versions.retain(|uid, _| s.indexes.contains_key(uid));
        }
    }

    /// Commands travel through Raft as JSON: every command must come back equal.
    #[test]
    fn commands_round_trip_through_json(cmd in command()) {
        let bytes = serde_json::to_vec(&cmd).unwrap();
        let back: Command = serde_json::from_slice(&bytes).unwrap();
        prop_assert_eq!(back, cmd);
    }

    /// Replaying the same log gives byte-identical states: what every Raft peer relies on.
    #[test]
    fn apply_is_deterministic(cmds in prop::collection::vec(command(), 1..60)) {
        let run = || {
            let mut s = ClusterState::default();
            let results: Vec<_> = cmds.iter().enumerate().map(|(i, c)| apply(&mut s, c, i as u64 + 1)).collect();
            (serde_json::to_vec(&s).unwrap(), results)
        };
        prop_assert_eq!(run(), run());
    }

    /// A log in which proposals repeat (retries, forwards) leaves the state that applying each
    /// proposal once leaves, and every repeat answers what its first occurrence answered. With a
    /// small table, ids evicted before they repeat are applied again, like any new proposal.
    #[test]
    fn duplicate_proposals_apply_once(
        entries in prop::collection::vec((command(), prop::option::of(0u8..12), any::<prop::sample::Index>()), 1..80),
        capacity in 1usize..16,
    ) {
        use miroir::proposal::{apply_proposal_with_capacity, Proposal};
        let mut s = populated();
        let mut reference = s.clone();
        let offset = s.map_version;
        // The model: id -> (log index, answer) of its first occurrence, and which ids are evicted.
        let mut first: std::collections::BTreeMap<String, (u64, miroir::CommandResult)> = Default::default();
        let mut log: Vec<(u64, Proposal)> = Vec::new();
        for (i, (cmd, id, pick)) in entries.iter().enumerate() {
            let index = offset + i as u64 + 1;
            // Half of the identified entries repeat an earlier proposal verbatim.
            let p = match (id, log.is_empty()) {
                (Some(n), false) if n % 2 == 0 => log[pick.index(log.len())].1.clone(),
                (Some(n), _) => Proposal::new(Some(format!("p{i}-{n}")), cmd.clone()),
                (None, _) => Proposal::new(None, cmd.clone()),
            };
            let got = apply_proposal_with_capacity(&mut s, &p, index, capacity);
            let remembered = p.id.as_ref().and_then(|id| first.get(id)).filter(|(at, _)| {
                // Still in the table: fewer than `capacity` identified entries applied since.
                first.values().filter(|(j, _)| j > at).count() < capacity
            });
            match remembered {
                Some((at, result)) => {
                    prop_assert_eq!(&got.result, result);
                    prop_assert_eq!(got.log_index, *at);
                }
                None => {
                    let want = apply(&mut reference, &p.command, index);
                    prop_assert_eq!(&got.result, &want);
                    prop_assert_eq!(got.log_index, index);
                    if let Some(id) = &p.id {
                        first.insert(id.clone(), (index, want));
                    }
                }
            }
            let mut without_table = s.clone();
            without_table.proposals = Default::default();
            prop_assert_eq!(&without_table, &reference);
            prop_assert!(s.proposals.len() <= capacity);
            log.push((index, p));
        }
    }
}

/// Two groups of three nodes and two indexes with two shards, RF 2.
fn populated() -> ClusterState {
    let mut s = cluster(&[("g0", &["n0", "n1", "n2"]), ("g1", &["n3", "n4", "n5"])]);
    for (i, uid) in INDEXES.iter().enumerate() {
        let create =
            Command::CreateIndex { uid: uid.to_string(), primary_key: None, shards: Some(2), rf: Some(2), at: 0 };
        apply(&mut s, &create, 100 + i as u64).unwrap();
    }
    s
}

fn cluster(nodes_per_group: &[(&str, &[&str])]) -> ClusterState {
    let mut s = ClusterState::default();
    let mut i = 0;
    let mut run = |s: &mut ClusterState, c: Command| {
        i += 1;
        apply(s, &c, i).unwrap()
    };
    for (g, nodes) in nodes_per_group {
        run(&mut s, Command::AddGroup { id: g.to_string() });
        for n in *nodes {
            run(&mut s, Command::AddNode { id: n.to_string(), url: format!("http://{n}"), group: g.to_string() });
        }
    }
    s
}

#[test]
fn migration_lifecycle_swaps_owner_only_at_cutover() {
    let mut s = cluster(&[("g", &["a", "b"])]);
    apply(
        &mut s,
        &Command::CreateIndex { uid: "i".into(), primary_key: None, shards: Some(1), rf: Some(1), at: 1 },
        10,
    )
    .unwrap();
    let from = s.placement("i", 0, "g").unwrap().owners[0].node.clone();
    let to = if from == "a" { "b" } else { "a" }.to_string();
    let Response::Migration(id) = apply(
        &mut s,
        &Command::StartMigration {
            index: "i".into(),
            shard: 0,
            group: "g".into(),
            from: Some(from.clone()),
            to: to.clone(),
            at: 2,
        },
        11,
    )
    .unwrap() else {
        panic!("no migration id")
    };
    assert_eq!(s.migrations[&id].phase_version, 11);
    let p = s.placement("i", 0, "g").unwrap();
    assert_eq!(p.write_targets().cloned().collect::<Vec<_>>(), vec![from.clone(), to.clone()]);
    // Skipping a phase is refused.
    assert!(apply(&mut s, &Command::AdvanceMigration { id, phase: MigrationPhase::Cutover, at: 3 }, 12).is_err());
    for (v, phase) in [(13, MigrationPhase::Copy), (14, MigrationPhase::Verify)] {
        apply(&mut s, &Command::AdvanceMigration { id, phase, at: 3 }, v).unwrap();
        assert_eq!(s.placement("i", 0, "g").unwrap().owners[0].node, from, "reads stay on the source until cutover");
    }
    apply(&mut s, &Command::AdvanceMigration { id, phase: MigrationPhase::Cutover, at: 4 }, 15).unwrap();
    let p = s.placement("i", 0, "g").unwrap();
    assert_eq!(p.in_sync_owners().cloned().collect::<Vec<_>>(), vec![to.clone()]);
    assert!(p.incoming.is_empty());
    assert_eq!(s.migrations[&id].phase_version, 15);
    assert!(apply(&mut s, &Command::AbortMigration { id }, 16).is_err(), "no abort after cutover");
    apply(&mut s, &Command::AdvanceMigration { id, phase: MigrationPhase::Cleanup, at: 5 }, 17).unwrap();
    apply(&mut s, &Command::FinishMigration { id }, 18).unwrap();
    assert!(s.migrations.is_empty());
    assert_eq!(s.placement("i", 0, "g").unwrap().migration, None);
    assert_eq!(s.map_version, 18);
}

#[test]
fn mark_stale_never_drops_the_last_in_sync_copy() {
    let mut s = cluster(&[("g", &["a", "b"])]);
    apply(
        &mut s,
        &Command::CreateIndex { uid: "i".into(), primary_key: None, shards: Some(1), rf: Some(2), at: 1 },
        10,
    )
    .unwrap();
    let stale = |n: &str| Command::MarkStale { index: "i".into(), shard: 0, group: "g".into(), node: n.into() };
    apply(&mut s, &stale("a"), 11).unwrap();
    let err = apply(&mut s, &stale("b"), 12).unwrap_err();
    assert!(matches!(err, miroir::CommandError::WouldLoseQuorum { left: 0, min: 1, .. }), "{err}");
    assert_eq!(s.placement("i", 0, "g").unwrap().in_sync_owners().collect::<Vec<_>>(), vec!["b"]);
}

#[test]
fn create_index_needs_rf_active_nodes_in_every_group() {
    let mut s = cluster(&[("g1", &["a", "b"]), ("g2", &["c"])]);
    let err = apply(
        &mut s,
        &Command::CreateIndex { uid: "i".into(), primary_key: None, shards: None, rf: Some(2), at: 1 },
        10,
    )
    .unwrap_err();
    assert_eq!(err, miroir::CommandError::NotEnoughNodes { group: "g2".into(), eligible: 1, rf: 2 });
    assert!(s.indexes.is_empty());
    apply(&mut s, &Command::CreateIndex { uid: "i".into(), primary_key: None, shards: None, rf: Some(1), at: 1 }, 11)
        .unwrap();
    assert_eq!(s.placements["i"].len(), 8, "default shard count");
    assert!(s.placements["i"].iter().all(|g| g.len() == 2), "every shard placed in both groups");
}

#[test]
fn task_folds_node_states() {
    let mut s = ClusterState::default();
    let new = NewTask {
        index_uid: Some("i".into()),
        kind: miroir_meili::TaskKind::DocumentAdditionOrUpdate,
        details: json!({"receivedDocuments": 2}),
        node_tasks: vec![("a".into(), 7), ("b".into(), 9)],
        finished: None,
        shares: vec![],
    };
    let Response::Tasks(uids) =
        apply(&mut s, &Command::RegisterTasks { tasks: vec![new.clone(), new], at: 5 }, 1).unwrap()
    else {
        panic!()
    };
    assert_eq!(uids, vec![0, 1]);
    let report = |node: &str, status, error| Command::ReportNodeTasks {
        reports: vec![NodeTaskReport {
            task: 0,
            node: node.into(),
            node_task: if node == "a" { 7 } else { 9 },
            status,
            error,
            started_at: Some(6),
            finished_at: Some(8),
            details: None,
        }],
    };
    apply(&mut s, &report("a", TaskStatus::Succeeded, None), 2).unwrap();
    assert_eq!(s.tasks.get(0).unwrap().status, TaskStatus::Processing);
    // A report naming another task of the same node is not this one's.
    let mut stray = report("b", TaskStatus::Failed, None);
    if let Command::ReportNodeTasks { reports } = &mut stray {
        reports[0].node_task = 1234;
    }
    apply(&mut s, &stray, 2).unwrap();
    assert_eq!(s.tasks.get(0).unwrap().status, TaskStatus::Processing);
    apply(&mut s, &report("b", TaskStatus::Failed, Some(json!({"code": "invalid_document_id"}))), 3).unwrap();
    let t = s.tasks.get(0).unwrap();
    assert_eq!(t.status, TaskStatus::Failed);
    assert_eq!(t.error, Some(json!({"code": "invalid_document_id"})));
    assert_eq!((t.started_at, t.finished_at), (Some(6), Some(8)));
    assert_eq!(s.tasks.get(1).unwrap().status, TaskStatus::Enqueued);
}

#[test]
fn task_log_is_compacted_oldest_finished_first() {
    let mut s = ClusterState::default();
    apply(&mut s, &Command::SetDefaults { shards: None, rf: None, min_in_sync: None, task_retention: Some(3) }, 1)
        .unwrap();
    let new = |finished: bool| NewTask {
        index_uid: None,
        kind: miroir_meili::TaskKind::IndexCreation,
        details: json!({}),
        // An unfinished task waits for a node; one with nothing to wait for is born finished.
        node_tasks: vec![("a".into(), 1)],
        finished: finished.then_some((TaskStatus::Succeeded, None)),
        shares: vec![],
    };
    let tasks = vec![new(false), new(true), new(true), new(true), new(true)];
    apply(&mut s, &Command::RegisterTasks { tasks, at: 1 }, 2).unwrap();
    assert_eq!(s.tasks.tasks.keys().copied().collect::<Vec<_>>(), vec![0, 3, 4], "unfinished task 0 is kept");
    assert_eq!(s.tasks.next_uid, 5, "uids are never reused");
}

#[test]
fn experimental_features_merge_and_refuse_non_booleans() {
    let mut s = ClusterState::default();
    let set = |v: serde_json::Value| Command::SetExperimentalFeatures { features: v.as_object().unwrap().clone() };
    apply(&mut s, &set(json!({"metrics": true, "containsFilter": true})), 5).unwrap();
    apply(&mut s, &set(json!({"metrics": false, "logsRoute": null})), 6).unwrap();
    assert_eq!(
        serde_json::Value::Object(s.experimental_features.clone()),
        json!({"metrics": false, "containsFilter": true})
    );
    assert_eq!(s.routing_map().experimental_features, s.experimental_features, "gateways see the features");
    let before = s.clone();
    assert!(apply(&mut s, &set(json!({"metrics": "yes"})), 7).is_err());
    assert_eq!(s, before, "a refused command changes nothing");
}

#[test]
fn a_deleted_index_is_not_placed_again_on_nodes_that_may_still_hold_it() {
    let mut s = cluster(&[("g", &["a", "b", "c"])]);
    let create = |rf| Command::CreateIndex { uid: "i".into(), primary_key: None, shards: Some(4), rf: Some(rf), at: 1 };
    apply(&mut s, &create(3), 10).unwrap();
    apply(&mut s, &Command::DeleteIndex { uid: "i".into() }, 11).unwrap();
    let all: BTreeSet<String> = ["a", "b", "c"].map(String::from).into();
    assert_eq!(s.deleting["i"], all, "every holder must confirm the deletion");
    assert_eq!(s.routing_map().deleting, s.deleting, "gateways see it too");

    let err = apply(&mut s, &create(1), 12).unwrap_err();
    assert!(matches!(err, miroir::CommandError::IndexStillOnNodes { .. }), "{err}");
    apply(&mut s, &Command::IndexDeletedOn { uid: "i".into(), node: "b".into() }, 13).unwrap();
    apply(&mut s, &create(1), 14).unwrap();
    let owners: BTreeSet<&str> =
        s.placements["i"].iter().flat_map(|g| g["g"].owners.iter().map(|o| o.node.as_str())).collect();
    assert_eq!(owners, ["b"].into(), "only the node known to be clean gets the new index");
    let to_held = Command::StartMigration {
        index: "i".into(),
        shard: 0,
        group: "g".into(),
        from: Some("b".into()),
        to: "a".into(),
        at: 2,
    };
    assert!(apply(&mut s, &to_held, 15).is_err(), "no copy moves onto a node that may hold old documents");

    // Clearing is idempotent and a removed node drops out.
    apply(&mut s, &Command::IndexDeletedOn { uid: "i".into(), node: "b".into() }, 16).unwrap();
    apply(&mut s, &Command::IndexDeletedOn { uid: "i".into(), node: "a".into() }, 17).unwrap();
    apply(&mut s, &Command::RemoveNode { id: "c".into() }, 18).unwrap();
    assert!(s.deleting.is_empty(), "{:?}", s.deleting);
}
