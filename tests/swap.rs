//! Swaps and renames in the kernel: one command moves everything kept under the index uids, with
//! Meilisearch's refusals, and nothing changes when it is refused.

use miroir::apply;
use miroir::command::Command;
use miroir::error::CommandError;
use miroir::state::ClusterState;
use miroir::swap::IndexSwap;
use miroir::task::NewTask;
use serde_json::json;

fn cluster() -> ClusterState {
    let mut s = ClusterState::default();
    let mut i = 0;
    let mut run = |s: &mut ClusterState, c: Command| {
        i += 1;
        apply(s, &c, i).unwrap();
    };
    run(&mut s, Command::AddGroup { id: "g".into() });
    for n in ["n0", "n1", "n2"] {
        run(&mut s, Command::AddNode { id: n.into(), url: format!("http://{n}"), group: "g".into() });
    }
    for (uid, pk, shards) in [("a", "id", 2), ("b", "sku", 3), ("c", "ref", 1)] {
        let create = Command::CreateIndex {
            uid: uid.into(),
            primary_key: Some(pk.into()),
            shards: Some(shards),
            rf: Some(1),
            at: 5,
        };
        run(&mut s, create);
    }
    let task = |uid: &str| NewTask {
        index_uid: Some(uid.into()),
        kind: miroir_meili::TaskKind::DocumentAdditionOrUpdate,
        details: json!({}),
        node_tasks: vec![],
        finished: None,
        shares: vec![],
    };
    run(&mut s, Command::RegisterTasks { tasks: vec![task("a"), task("b"), task("c")], at: 9 });
    s
}

fn swap(a: &str, b: &str, rename: bool) -> IndexSwap {
    IndexSwap { indexes: (a.into(), b.into()), rename }
}

#[test]
fn a_swap_exchanges_indexes_placements_and_task_history_in_one_map_version() {
    let mut s = cluster();
    let before = s.clone();
    apply(&mut s, &Command::SwapIndexes { swaps: vec![swap("a", "b", false)] }, 100).unwrap();
    assert_eq!(s.map_version, 100);
    let keyed =
        |uid: &str, key: &str| miroir::state::Index { placement_key: Some(key.into()), ..before.indexes[uid].clone() };
    assert_eq!(s.indexes["a"], keyed("b", "b"));
    assert_eq!(s.indexes["b"], keyed("a", "a"));
    // The rebalancer's target for every shard is where the shard already is.
    for uid in ["a", "b"] {
        for (shard, groups) in s.placements[uid].iter().enumerate() {
            let target = miroir::placement::target_owners(&s, uid, shard as u32, "g");
            let owners: Vec<_> = groups["g"].owners.iter().map(|o| o.node.clone()).collect();
            assert_eq!(target, owners, "{uid} shard {shard}");
        }
    }
    assert_eq!(s.placements["a"], before.placements["b"]);
    assert_eq!(s.placements["b"], before.placements["a"]);
    assert_eq!(s.indexes["c"], before.indexes["c"]);
    let index_of = |s: &ClusterState, t| s.tasks.get(t).unwrap().index_uid.clone().unwrap();
    assert_eq!([index_of(&s, 0), index_of(&s, 1), index_of(&s, 2)], ["b", "a", "c"]);
    // Swapping back restores everything but the map version (and the now explicit keys).
    apply(&mut s, &Command::SwapIndexes { swaps: vec![swap("b", "a", false)] }, 101).unwrap();
    for (uid, idx) in s.indexes.iter_mut() {
        assert_eq!(idx.placement_key.take().unwrap_or_else(|| uid.clone()), *uid);
    }
    assert_eq!(ClusterState { map_version: before.map_version, ..s }, before);
}

#[test]
fn a_rename_moves_the_index_and_frees_its_name() {
    let mut s = cluster();
    let before = s.clone();
    apply(&mut s, &Command::SwapIndexes { swaps: vec![swap("a", "z", true)] }, 100).unwrap();
    assert!(!s.indexes.contains_key("a") && !s.placements.contains_key("a"));
    assert_eq!(s.indexes["z"].placement_key.as_deref(), Some("a"));
    assert_eq!(s.indexes["z"].primary_key, before.indexes["a"].primary_key);
    assert_eq!(s.placements["z"], before.placements["a"]);
    assert_eq!(s.tasks.get(0).unwrap().index_uid.as_deref(), Some("z"));
}

#[test]
fn several_pairs_swap_atomically() {
    let mut s = cluster();
    let before = s.clone();
    apply(&mut s, &Command::SwapIndexes { swaps: vec![swap("a", "b", false), swap("c", "d", true)] }, 100).unwrap();
    assert_eq!(s.indexes.keys().collect::<Vec<_>>(), ["a", "b", "d"]);
    assert_eq!(s.indexes["d"].created_at, before.indexes["c"].created_at);
}

fn refused(s: &mut ClusterState, swaps: Vec<IndexSwap>) -> (String, String) {
    let before = s.clone();
    match apply(s, &Command::SwapIndexes { swaps }, 100) {
        Err(CommandError::SwapRefused { code, message }) => {
            assert_eq!(*s, before, "a refused swap changed the state");
            (code, message)
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn refusals_are_meilisearchs() {
    let mut s = cluster();
    let (code, msg) = refused(&mut s, vec![swap("a", "a", false)]);
    assert_eq!(code, "invalid_swap_duplicate_index_found");
    assert_eq!(msg, "Indexes must be declared only once during a swap. `a` was specified several times.");
    let (_, msg) = refused(&mut s, vec![swap("a", "b", false), swap("b", "a", false)]);
    assert_eq!(msg, "Indexes must be declared only once during a swap. `a`, `b` were specified several times.");
    let (code, msg) = refused(&mut s, vec![swap("a", "x", false)]);
    assert_eq!((code.as_str(), msg.as_str()), ("index_not_found", "Index `x` not found."));
    let (_, msg) = refused(&mut s, vec![swap("y", "a", false), swap("x", "b", true)]);
    assert_eq!(msg, "Indexes `x`, `y` not found.");
    let (code, msg) = refused(&mut s, vec![swap("a", "b", true)]);
    assert_eq!(code, "index_already_exists");
    assert_eq!(
        msg,
        "Cannot rename `a` to `b` as the index already exists. Hint: You can remove `b` first and then do your remove."
    );
    let (_, msg) = refused(&mut s, vec![swap("a", "b", true), swap("c", "d", false)]);
    assert_eq!(msg, "Index `d` not found.", "missing indexes are reported before taken names");
    let (_, msg) = refused(&mut s, vec![swap("a", "b", true), swap("c", "a2", false), swap("a2", "x", true)]);
    assert_eq!(msg, "Indexes must be declared only once during a swap. `a2` was specified several times.");
}

#[test]
fn an_index_with_a_migration_in_flight_is_not_swapped() {
    let mut s = cluster();
    let p = &s.placements["a"][0]["g"];
    let from = p.owners[0].node.clone();
    let to = ["n0", "n1", "n2"].into_iter().find(|n| *n != from).unwrap();
    let start = Command::StartMigration {
        index: "a".into(),
        shard: 0,
        group: "g".into(),
        from: Some(from),
        to: to.into(),
        at: 1,
    };
    apply(&mut s, &start, 50).unwrap();
    let before = s.clone();
    let r = apply(&mut s, &Command::SwapIndexes { swaps: vec![swap("b", "a", false)] }, 100);
    assert_eq!(r, Err(CommandError::IndexMigrating("a".into())));
    assert_eq!(s, before);
}

#[test]
fn a_name_still_being_deleted_on_nodes_is_not_swapped_to() {
    let mut s = cluster();
    apply(&mut s, &Command::DeleteIndex { uid: "c".into() }, 50).unwrap();
    assert!(s.deleting.contains_key("c"));
    let before = s.clone();
    let r = apply(&mut s, &Command::SwapIndexes { swaps: vec![swap("a", "c", true)] }, 100);
    assert!(matches!(r, Err(CommandError::IndexStillOnNodes { .. })), "{r:?}");
    assert_eq!(s, before);
}

#[test]
fn bodies_are_parsed_with_meilisearchs_errors() {
    use miroir_meili::swap::parse;
    let e = |v: serde_json::Value| parse(&v).map(|_| ()).unwrap_err();
    let r = e(json!("doggo"));
    assert_eq!(
        (r.code.name, r.message.as_str()),
        ("bad_request", "Invalid value type: expected an array, but found a string: `\"doggo\"`")
    );
    let r = e(json!(["doggo"]));
    assert_eq!(r.message, "Invalid value type at `[0]`: expected an object, but found a string: `\"doggo\"`");
    let r = e(json!([{"indexes": "doggo"}]));
    assert_eq!(
        (r.code.name, r.message.as_str()),
        (
            "invalid_swap_indexes",
            "Invalid value type at `[0].indexes`: expected an array, but found a string: `\"doggo\"`"
        )
    );
    let r = e(json!([{"indexes": ["doggo"]}]));
    assert_eq!(r.message, "Two indexes must be given for each swap. The list `[\"doggo\"]` contains 1 indexes.");
    let r = e(json!([{"indexes": ["doggo", "crabo", "croco"]}]));
    assert_eq!(
        r.message,
        "Two indexes must be given for each swap. The list `[\"doggo\", \"crabo\", \"croco\"]` contains 3 indexes."
    );
    let r = e(json!([{"indexes": ["doggo", "catto"]}, {"indexes": ["girafo", "doggo"]}]));
    assert_eq!(r.code, "invalid_swap_duplicate_index_found");
    let r = e(json!([{"indexes": ["kefir", "intel"], "rename": "hello"}]));
    assert_eq!(
        (r.code.name, r.message.as_str()),
        (
            "invalid_swap_rename",
            "Invalid value type at `[0].rename`: expected a boolean, but found a string: `\"hello\"`"
        )
    );
    assert_eq!(e(json!([{}])).code, "missing_swap_indexes");
    assert_eq!(e(json!([{"indexes": ["a b", "c"]}])).code, "invalid_swap_indexes");
    let ok = parse(&json!([{"indexes": ["a", "b"]}, {"indexes": ["c", "d"], "rename": true}])).unwrap();
    assert_eq!(ok, [swap("a", "b", false), swap("c", "d", true)]);
    assert!(parse(&json!([])).unwrap().is_empty());
}
