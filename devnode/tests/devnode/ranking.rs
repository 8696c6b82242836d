//! The dev node's ranking is a function of (document, query) only: a document gets the same
//! `_rankingScoreDetails` whether it sits alone on a shard or with every other document, and
//! merging shard answers by the details gives one node's order.

use miroir_devnode::engine::{search, Engine, Op};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const WORDS: &[&str] = &["star", "wars", "trek", "matrix", "the", "star-crossed", "ring", "lord"];

fn engine_with(docs: &[Map<String, Value>]) -> Engine {
    let mut e = Engine::default();
    let now = time::OffsetDateTime::UNIX_EPOCH;
    let op = Op::AddDocuments { docs: docs.to_vec(), primary_key: Some("id".into()), replace: true };
    e.enqueue("i", op, now);
    let mut patch = Map::new();
    patch.insert("sortableAttributes".into(), json!(["n"]));
    e.enqueue("i", Op::Settings(patch), now);
    e.process_all(now);
    e
}

fn hits(e: &Engine, q: &str, sort: bool) -> Vec<Value> {
    let mut body = Map::new();
    body.insert("q".into(), json!(q));
    body.insert("limit".into(), json!(1000));
    body.insert("showRankingScoreDetails".into(), json!(true));
    if sort {
        body.insert("sort".into(), json!(["n:desc"]));
    }
    match e.index("i") {
        Ok(idx) => search::search(idx, &body, String::new(), None).expect("search")["hits"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
        Err(_) => vec![],
    }
}

fn doc_strategy() -> impl Strategy<Value = (String, i64)> {
    (proptest::collection::vec(0..WORDS.len(), 1..6), 0i64..5)
        .prop_map(|(ws, n)| (ws.iter().map(|i| WORDS[*i]).collect::<Vec<_>>().join(" "), n))
}

proptest! {
    #[test]
    fn details_do_not_depend_on_other_documents(
        docs in proptest::collection::vec(doc_strategy(), 1..25),
        q in proptest::collection::vec(0..WORDS.len(), 0..3),
        sort in any::<bool>(),
    ) {
        let docs: Vec<Map<String, Value>> = docs
            .iter()
            .enumerate()
            .map(|(i, (title, n))| json!({"id": i, "title": title, "n": n}).as_object().cloned().unwrap_or_default())
            .collect();
        let q = q.iter().map(|i| WORDS[*i]).collect::<Vec<_>>().join(" ");
        let whole = hits(&engine_with(&docs), &q, sort);
        let (even, odd): (Vec<_>, Vec<_>) = docs.iter().cloned().partition(|d| d["id"].as_u64().unwrap_or(0) % 2 == 0);
        let mut parts = hits(&engine_with(&even), &q, sort);
        parts.extend(hits(&engine_with(&odd), &q, sort));
        prop_assert_eq!(parts.len(), whole.len());
        // Every hit carries the same details on a shard as on the single node.
        for h in &whole {
            let same = parts.iter().find(|p| p["id"] == h["id"]);
            prop_assert_eq!(same, Some(h));
        }
        // Same query twice: same order (no hidden state).
        prop_assert_eq!(hits(&engine_with(&docs), &q, sort), whole);
    }
}
