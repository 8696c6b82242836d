//! Edit documents by function through the cluster, end to end with real processes (coordinator,
//! gateway, three nodes, S = 8, RF = 2), next to one node given the same requests (dev nodes, or
//! real Meilisearch everywhere when `MEILI_BIN` is set): every edition (fields changed, documents
//! deleted, `doc` replaced, a context and filters, a top-level `return`, `fn` definitions, a
//! closure, a failing function) leaves the same documents, found by the same searches, and its task the same
//! status, details and error; refused requests get the same answer from both and change nothing.
//! Needs the workspace binaries (`cargo build --workspace`).

use std::time::Duration;

use miroir_devtools::harness::{ClusterSpec, TestCluster};
use miroir_devtools::in_process::TestNode;
use serde_json::{json, Value};

use crate::common::{self, call};

async fn post(url: &str, key: &str, body: &Value) -> (u16, Value) {
    call(reqwest::Method::POST, url, key, Some(body)).await
}

async fn wait_task(base: &str, key: &str, uid: &Value) -> Value {
    common::wait_task(base, key, uid, Duration::from_secs(30)).await
}

/// A task as both must show it: without its uid, batch and times.
fn comparable(mut t: Value) -> Value {
    for k in ["uid", "batchUid", "enqueuedAt", "startedAt", "finishedAt", "duration"] {
        t.as_object_mut().unwrap().remove(k);
    }
    t
}

fn by_id(mut docs: Vec<Value>) -> Vec<Value> {
    docs.sort_by_key(|d| d["id"].as_u64());
    docs
}

/// Everything a client can see of the index: its documents, a search with and without a filter,
/// and its document count.
async fn snapshot(base: &str, key: &str) -> Value {
    let (s, docs) = call(reqwest::Method::GET, &format!("{base}/indexes/books/documents?limit=1000"), key, None).await;
    assert_eq!(s, 200, "{docs}");
    let mut searches = vec![];
    for q in
        [json!({"limit": 1000}), json!({"limit": 1000, "filter": "genre = drama"}), json!({"q": "ed", "limit": 1000})]
    {
        let (s, r) = post(&format!("{base}/indexes/books/search"), key, &q).await;
        assert_eq!(s, 200, "{r}");
        searches.push(json!({"hits": by_id(r["hits"].as_array().unwrap().clone()), "total": r["estimatedTotalHits"]}));
    }
    json!({"documents": by_id(docs["results"].as_array().unwrap().clone()), "total": docs["total"], "searches": searches})
}

const GENRES: [&str; 4] = ["drama", "comedy", "horror", "poetry"];

fn corpus() -> Vec<Value> {
    (0..120u64)
        .map(|id| json!({"id": id, "title": format!("book {id}"), "genre": GENRES[(id % 4) as usize], "n": id}))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editions_through_the_cluster_match_one_node() {
    let cluster = TestCluster::start(ClusterSpec {
        coordinators: 1,
        nodes: 3,
        gateways: 1,
        shards: 8,
        rf: 2,
        ..Default::default()
    });
    let key = cluster.master_key.clone();
    let gw = cluster.gateways[0].url.clone();
    let single_node = TestNode::start(&key).await;
    let one = single_node.url();
    let both = [one.clone(), gw.clone()];
    let edit_url = |base: &str, index: &str| format!("{base}/indexes/{index}/documents/edit");

    // The same answer from both, and the same task once finished.
    let same_answer = |body: Value, index: &'static str| {
        let (one, gw, key) = (one.clone(), gw.clone(), key.clone());
        async move {
            let (s1, a1) = post(&edit_url(&one, index), &key, &body).await;
            let (s2, a2) = post(&edit_url(&gw, index), &key, &body).await;
            assert_eq!((s1, &a1["type"], &a1["status"]), (s2, &a2["type"], &a2["status"]), "{body}: {a1} / {a2}");
            if s1 != 202 {
                assert_eq!(a1, a2, "{body}");
                return (s1, a1);
            }
            assert_eq!((a1["type"].as_str(), a2["indexUid"].as_str()), (Some("documentEdition"), Some(index)));
            let t1 = wait_task(&one, &key, &a1["taskUid"]).await;
            let t2 = wait_task(&gw, &key, &a2["taskUid"]).await;
            assert_eq!(comparable(t2.clone()), comparable(t1.clone()), "{body}");
            (s1, t1)
        }
    };

    // Off: Meilisearch's feature error, after the body was read.
    let (s, e) = same_answer(json!({"function": "doc.a = 1"}), "books").await;
    assert_eq!((s, e["code"].as_str()), (400, Some("feature_not_enabled")), "{e}");
    let (s, e) = same_answer(json!({"filter": "n = 1"}), "books").await;
    assert_eq!((s, e["code"].as_str()), (400, Some("missing_document_edition_function")), "{e}");
    for base in &both {
        let (s, f) = call(
            reqwest::Method::PATCH,
            &format!("{base}/experimental-features"),
            &key,
            Some(&json!({"editDocumentsByFunction": true})),
        )
        .await;
        assert_eq!((s, &f["editDocumentsByFunction"]), (200, &json!(true)), "{f}");
    }
    // No index yet: accepted, then failed.
    let (_, t) = same_answer(json!({"function": "doc.a = 1"}), "books").await;
    assert_eq!((t["status"].as_str(), t["error"]["code"].as_str()), (Some("failed"), Some("index_not_found")), "{t}");

    for base in &both {
        let (_, t) = post(&format!("{base}/indexes"), &key, &json!({"uid": "books", "primaryKey": "id"})).await;
        wait_task(base, &key, &t["taskUid"]).await;
        let settings = json!({"filterableAttributes": ["genre", "n"]});
        let (_, t) =
            call(reqwest::Method::PATCH, &format!("{base}/indexes/books/settings"), &key, Some(&settings)).await;
        wait_task(base, &key, &t["taskUid"]).await;
        let (_, t) = post(&format!("{base}/indexes/books/documents"), &key, &json!(corpus())).await;
        assert_eq!(wait_task(base, &key, &t["taskUid"]).await["status"], "succeeded");
    }
    let before = snapshot(&one, &key).await;
    assert_eq!(snapshot(&gw, &key).await, before);

    // Refused before anything is written, with the same error.
    for (body, code) in [
        (json!({"function": "doc.a = "}), "bad_request"),
        (json!({"function": 1}), "invalid_document_edition_function_filter"),
        (json!({"function": "1", "nope": 1}), "bad_request"),
        (json!({"function": "1", "filter": "genre = "}), "invalid_document_filter"),
        (json!({"function": "1", "filter": " "}), "invalid_document_filter"),
        (json!({"function": "1", "filter": 12}), "invalid_document_filter"),
        (json!({"function": "1", "context": [1]}), "invalid_document_edition_context"),
    ] {
        let (s, e) = same_answer(body.clone(), "books").await;
        assert_eq!((s, e["code"].as_str()), (400, Some(code)), "{body}: {e}");
    }
    assert_eq!(snapshot(&gw, &key).await, before, "a refused edition changed something");

    let editions = [
        json!({"function": "doc.n = doc.n * 2; doc.title = `${doc.title} ed`"}),
        json!({"function": "doc = ()", "filter": "genre = horror"}),
        json!({"function": "doc = #{id: doc.id, genre: doc.genre, replaced: true}", "filter": ["genre = comedy", ["n > 150", "n < 20"]]}),
        json!({"function": "doc.price = doc.n * context.rate; doc.tag = context.tags[doc.n % 2]", "context": {"rate": 3, "tags": ["even", "odd"]}, "filter": "n >= 100"}),
        json!({"function": "if type_of(doc.n) != \"i64\" || doc.n % 3 == 0 { return; }\ndoc.mod3 = false;"}),
        json!({"function": "fn label(n) { `n${n}` }\ndoc.label = label(doc.n);", "filter": "genre = drama"}),
        json!({"function": "doc.words = doc.title.split(\" \").map(|w| w.len());", "filter": ["genre = poetry"]}),
    ];
    let mut counts = vec![];
    for body in editions {
        let (_, t) = same_answer(body.clone(), "books").await;
        assert_eq!(t["status"], "succeeded", "{body}: {t}");
        assert_eq!(t["details"]["function"], body["function"]);
        assert_eq!(t["details"]["originalFilter"], body.get("filter").map_or(Value::Null, |f| f.to_string().into()));
        counts.push(t["details"]["editedDocuments"].clone());
        assert_eq!(snapshot(&gw, &key).await, snapshot(&one, &key).await, "after {body}");
    }
    // Each matching document counted once (not once per copy), as edited (and deleted: 1.50).
    assert_eq!(counts[..2], [json!(120), json!(30)]);
    let edited = snapshot(&gw, &key).await;
    assert_eq!(edited["total"], 90, "the horror books are gone");
    assert!(edited["documents"].as_array().unwrap().iter().all(|d| d.get("_miroir_shard").is_none()));

    // Failing editions: the same failure, nothing changed.
    for body in [
        json!({"function": "doc.id = 1000"}),
        json!({"function": "doc.x = nope(doc.n)"}),
        json!({"function": "doc.t = 1", "filter": "title = x"}),
    ] {
        let (_, t) = same_answer(body.clone(), "books").await;
        assert_eq!(t["status"], "failed", "{body}: {t}");
        assert_eq!(
            (t["details"]["editedDocuments"].clone(), t["details"]["deletedDocuments"].clone()),
            (json!(0), Value::Null)
        );
        assert_eq!(snapshot(&gw, &key).await, edited, "a failed edition changed something: {body}");
    }

    // Routing still works: every document is found by its id.
    for d in edited["documents"].as_array().unwrap() {
        let (s, got) =
            call(reqwest::Method::GET, &format!("{gw}/indexes/books/documents/{}", d["id"]), &key, None).await;
        assert_eq!((s, &got), (200, d));
    }
}
