//! Pure routing decisions over a real kernel state: which copies serve reads, which take writes.

use miroir::command::Command;
use miroir::state::{GroupStatus, NodeStatus};
use miroir::{apply, ClusterState, RoutingMap};
use miroir_gateway::read::replicas::{covering_set, read_candidates, shard_filter};
use miroir_gateway::write::fanout::{degraded_shards, in_sync_copies, index_nodes};

fn cluster(groups: &[(&str, &[&str])], shards: u32, rf: u32) -> ClusterState {
    let mut s = ClusterState::default();
    let mut cmds = vec![];
    for (g, nodes) in groups {
        cmds.push(Command::AddGroup { id: g.to_string() });
        for n in *nodes {
            cmds.push(Command::AddNode { id: n.to_string(), url: format!("http://{n}"), group: g.to_string() });
        }
    }
    cmds.push(Command::CreateIndex {
        uid: "i".into(),
        primary_key: Some("id".into()),
        shards: Some(shards),
        rf: Some(rf),
        at: 0,
    });
    for (k, c) in cmds.iter().enumerate() {
        apply(&mut s, c, k as u64 + 1).unwrap();
    }
    s
}

fn run(s: &mut ClusterState, c: Command) {
    let next = s.map_version + 1;
    apply(s, &c, next).unwrap();
}

fn covered(map: &RoutingMap, start: usize) -> Vec<u32> {
    let mut shards: Vec<u32> = covering_set(map, "i", start).unwrap().into_values().flatten().collect();
    shards.sort_unstable();
    shards
}

#[test]
fn a_covering_set_answers_for_every_shard_exactly_once() {
    let s = cluster(&[("g1", &["a", "b", "c"]), ("g2", &["d", "e"])], 8, 2);
    let map = s.routing_map();
    for start in 0..6 {
        assert_eq!(covered(&map, start), (0..8).collect::<Vec<_>>());
        let cover = covering_set(&map, "i", start).unwrap();
        let group = &map.nodes[cover.keys().next().unwrap()].group;
        assert!(cover.keys().all(|n| &map.nodes[n].group == group), "one replica group per read");
    }
}

#[test]
fn reads_avoid_stale_and_failed_copies_and_skip_groups_that_cannot_cover() {
    let mut s = cluster(&[("g1", &["a", "b"]), ("g2", &["c"])], 4, 1);
    // Fail g2's only node: every read must come from g1.
    run(&mut s, Command::SetNodeStatus { id: "c".into(), status: NodeStatus::Failed });
    let map = s.routing_map();
    for start in 0..4 {
        let cover = covering_set(&map, "i", start).unwrap();
        assert!(cover.keys().all(|n| n != "c"));
    }
    // With g1 draining as well, nothing can cover: the shards are reported.
    run(&mut s, Command::SetGroupStatus { id: "g1".into(), status: GroupStatus::Draining });
    let missing = covering_set(&s.routing_map(), "i", 0).unwrap_err();
    assert_eq!(missing, vec![0, 1, 2, 3]);
}

#[test]
fn stale_owners_are_not_read_and_degrade_their_shard() {
    let mut s = cluster(&[("g", &["a", "b"])], 2, 2);
    let map = s.routing_map();
    assert!(degraded_shards(&map, "i").is_empty());
    run(&mut s, Command::MarkStale { index: "i".into(), shard: 1, group: "g".into(), node: "a".into() });
    let map = s.routing_map();
    assert_eq!(read_candidates(&map, "i", 1), vec!["b".to_string()]);
    assert_eq!(read_candidates(&map, "i", 0).len(), 2);
    assert_eq!(degraded_shards(&map, "i").into_iter().collect::<Vec<_>>(), vec![1]);
    assert_eq!(in_sync_copies(&map, "i", "a"), vec![(0, "g".to_string())]);
    assert_eq!(index_nodes(&map, "i").len(), 2);
}

#[test]
fn shard_filter_uses_meilisearch_in_syntax() {
    assert_eq!(shard_filter(&[1, 5, 7]), "_miroir_shard IN [1, 5, 7]");
}

#[test]
fn covering_sets_spread_shards_and_prefer_the_cheapest_copies() {
    use miroir_gateway::read::replicas::covering_set_by;
    // One group of three nodes, RF 3: every node owns every shard.
    let s = cluster(&[("g1", &["a", "b", "c"])], 9, 3);
    let map = s.routing_map();
    let even = covering_set_by(&map, "i", 0, |_| 1.0).unwrap();
    let sizes: Vec<usize> = even.values().map(Vec::len).collect();
    assert_eq!(sizes, [3, 3, 3], "equal costs spread the shards: {even:?}");
    // `c` answers ten times slower: it gets no shard while the others can take them.
    let slow_c = covering_set_by(&map, "i", 0, |n| if n == "c" { 10.0 } else { 1.0 }).unwrap();
    assert!(!slow_c.contains_key("c"), "{slow_c:?}");
    let mut shards: Vec<u32> = slow_c.into_values().flatten().collect();
    shards.sort_unstable();
    assert_eq!(shards, (0..9).collect::<Vec<_>>(), "still every shard exactly once");
}
