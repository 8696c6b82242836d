//! Task cancelation with node tasks: the Miroir task ends as its node tasks do, and copies that
//! canceled a write their shard's other copies processed are marked stale.

use miroir::apply;
use miroir::command::Command;
use miroir::state::ClusterState;
use miroir::task::{NewTask, NodeTaskReport, TaskStatus};
use serde_json::json;

const NODES: [&str; 3] = ["n0", "n1", "n2"];

fn cluster() -> (ClusterState, u64) {
    let mut s = ClusterState::default();
    let mut i = 0;
    let mut run = |s: &mut ClusterState, c: Command| {
        i += 1;
        apply(s, &c, i).unwrap()
    };
    run(&mut s, Command::AddGroup { id: "g".into() });
    for n in NODES {
        run(&mut s, Command::AddNode { id: n.into(), url: format!("http://{n}"), group: "g".into() });
    }
    run(&mut s, Command::CreateIndex { uid: "a".into(), primary_key: None, shards: Some(6), rf: Some(2), at: 1 });
    let task = NewTask {
        index_uid: Some("a".into()),
        kind: miroir_meili::TaskKind::DocumentAdditionOrUpdate,
        details: json!({"receivedDocuments": 3, "indexedDocuments": null}),
        node_tasks: NODES.iter().enumerate().map(|(k, n)| (n.to_string(), k as u64 + 10)).collect(),
        finished: None,
        shares: vec![],
    };
    run(&mut s, Command::RegisterTasks { tasks: vec![task], at: 2 });
    // A task with no node task (work the coordinator did): finished when registered.
    let bare = NewTask {
        index_uid: None,
        kind: miroir_meili::TaskKind::IndexSwap,
        details: json!({}),
        node_tasks: vec![],
        finished: None,
        shares: vec![],
    };
    run(&mut s, Command::RegisterTasks { tasks: vec![bare], at: 2 });
    (s, i)
}

fn report(node: usize, status: TaskStatus) -> NodeTaskReport {
    NodeTaskReport {
        task: 0,
        node: NODES[node].into(),
        node_task: node as u64 + 10,
        status,
        error: None,
        started_at: Some(3),
        finished_at: Some(4),
        details: None,
    }
}

#[test]
fn a_task_with_node_tasks_is_canceled_once_every_node_canceled_it() {
    let (mut s, i) = cluster();
    apply(&mut s, &Command::CancelTasks { uids: vec![0, 1], canceled_by: 7, at: 3 }, i + 1).unwrap();
    let t = s.tasks.get(0).unwrap();
    assert_eq!((t.status, t.canceled_by), (TaskStatus::Enqueued, None), "waits for its nodes");
    let bare = s.tasks.get(1).unwrap();
    assert_eq!((bare.status, bare.canceled_by), (TaskStatus::Succeeded, None), "finished at registration");
    let before = s.clone();
    let reports = (0..3).map(|n| report(n, TaskStatus::Canceled)).collect();
    apply(&mut s, &Command::ReportNodeTasks { reports }, i + 2).unwrap();
    let t = s.tasks.get(0).unwrap();
    assert_eq!((t.status, t.canceled_by), (TaskStatus::Canceled, Some(7)));
    assert_eq!(s.placements, before.placements);
    assert_eq!(s.map_version, before.map_version, "nothing diverged");
}

#[test]
fn copies_that_canceled_what_others_processed_are_marked_stale() {
    let (mut s, i) = cluster();
    apply(&mut s, &Command::CancelTasks { uids: vec![0], canceled_by: 7, at: 3 }, i + 1).unwrap();
    let before = s.clone();
    let reports =
        vec![report(0, TaskStatus::Succeeded), report(1, TaskStatus::Canceled), report(2, TaskStatus::Canceled)];
    apply(&mut s, &Command::ReportNodeTasks { reports }, i + 2).unwrap();
    let t = s.tasks.get(0).unwrap();
    assert_eq!((t.status, t.canceled_by), (TaskStatus::Succeeded, None), "the cancelation was not effective");
    assert_eq!(s.map_version, i + 2, "gateways must stop reading the stale copies");
    let mut staled = 0;
    for (shard, groups) in s.placements["a"].iter().enumerate() {
        let (old, new) = (&before.placements["a"][shard]["g"], &groups["g"]);
        let has_n0 = old.owner("n0").is_some();
        for o in &new.owners {
            let expect = !has_n0 || o.node == "n0";
            assert_eq!(o.in_sync, expect, "shard {shard}, owner {}", o.node);
            staled += usize::from(!o.in_sync);
        }
        assert!(new.in_sync_owners().count() >= 1);
    }
    assert!(staled > 0, "some shard had n0 and another copy");
}
