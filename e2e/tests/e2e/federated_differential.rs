//! Differential test of federated multi-search: the same two indexes in one dev node and in a
//! cluster of three dev nodes behind the gateway (S = 8, RF = 2); generated federated requests
//! (several queries per index and across indexes, close weights, filters, both pagination modes) must
//! give the same hits (documents, `_federation`, scores) in the same order and the same totals.

use miroir_devtools::in_process::{start_cluster, InProcessCluster, TestNode};
use miroir_devtools::rng::Rng;
use serde_json::{json, Value};

use crate::common;

const KEY: &str = "federated-differential-master-key";
const DOCS: u64 = 400;
const REQUESTS: usize = 200;
const WORDS: [&str; 10] =
    ["river", "stone", "night", "garden", "silver", "winter", "harbor", "forest", "ember", "meadow"];
const GENRES: [&str; 4] = ["drama", "comedy", "horror", "romance"];
const INDEXES: [&str; 2] = ["books", "films"];

fn corpus(seed: u64) -> Vec<Value> {
    let mut rng = Rng(seed);
    (0..DOCS)
        .map(|id| {
            let n = 2 + rng.below(4) as usize;
            let title: Vec<&str> = (0..n).map(|_| rng.pick(&WORDS)).collect();
            json!({"id": id, "title": title.join(" "), "genre": rng.pick(&GENRES), "price": rng.below(500)})
        })
        .collect()
}

fn query(rng: &mut Rng) -> Value {
    let mut q = serde_json::Map::new();
    q.insert("indexUid".into(), json!(rng.pick(&INDEXES)));
    match rng.below(6) {
        0 => {}
        1..=3 => {
            q.insert("q".into(), json!(rng.pick(&WORDS)));
        }
        _ => {
            q.insert("q".into(), json!(format!("{} {}", rng.pick(&WORDS), rng.pick(&WORDS))));
        }
    }
    match rng.below(3) {
        0 => {}
        1 => {
            q.insert("filter".into(), json!(format!("genre = {}", rng.pick(&GENRES))));
        }
        _ => {
            q.insert("filter".into(), json!(format!("price < {}", rng.below(500))));
        }
    }
    match rng.below(4) {
        0 => {
            // Close weights, so that both indexes' hits interleave.
            q.insert("federationOptions".into(), json!({"weight": 0.9 + rng.below(3) as f64 * 0.1}));
        }
        1 => {
            q.insert("federationOptions".into(), json!({"weight": 1.0}));
        }
        _ => {}
    }
    if rng.below(3) == 0 {
        q.insert("showRankingScore".into(), json!(true));
    }
    if rng.below(4) == 0 {
        q.insert("attributesToRetrieve".into(), json!(["title"]));
    }
    Value::Object(q)
}

fn request(rng: &mut Rng) -> Value {
    let queries: Vec<Value> = (0..1 + rng.below(4)).map(|_| query(rng)).collect();
    let mut federation = match rng.below(4) {
        0 => json!({}),
        1 => json!({"page": 1 + rng.below(5), "hitsPerPage": 1 + rng.below(30)}),
        2 => json!({"offset": 100 + rng.below(300), "limit": 1 + rng.below(40)}),
        _ => json!({"offset": rng.below(50), "limit": 10 + rng.below(100)}),
    };
    // Facets per index (`films` orders genres by count, `books` alphabetically and cuts prices at
    // 10 values), sometimes for an index no query uses, sometimes merged (on prices only: the
    // genre orders differ, which merging refuses).
    match rng.below(4) {
        0 | 1 => {
            let lists = [json!(["genre"]), json!(["price"]), json!(["genre", "price"]), json!(["*"]), json!(null)];
            let mut by_index = serde_json::Map::new();
            for uid in INDEXES {
                if rng.below(3) != 0 {
                    by_index.insert(uid.into(), lists[rng.below(5) as usize].clone());
                }
            }
            federation["facetsByIndex"] = Value::Object(by_index);
        }
        2 => {
            let mut by_index = serde_json::Map::new();
            for uid in INDEXES {
                if rng.below(4) != 0 {
                    by_index.insert(uid.into(), json!(["price"]));
                }
            }
            federation["facetsByIndex"] = Value::Object(by_index);
            federation["mergeFacets"] =
                if rng.below(2) == 0 { json!({}) } else { json!({"maxValuesPerFacet": 1 + rng.below(30)}) };
        }
        _ => {}
    }
    json!({"federation": federation, "queries": queries})
}

async fn post(http: &reqwest::Client, url: &str, body: &Value) -> (u16, Value) {
    common::post(http, KEY, url, body).await
}

async fn patch(http: &reqwest::Client, url: &str, body: &Value) -> u16 {
    common::patch(http, KEY, url, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_answers_federated_searches_exactly_like_one_node() {
    let http = reqwest::Client::new();
    let settings = |uid: &str| {
        // `films` ranks the genre first: the two indexes score the same words differently.
        let searchable = if uid == "books" { json!(["title", "genre"]) } else { json!(["genre", "title"]) };
        let faceting = if uid == "books" {
            json!({"maxValuesPerFacet": 10})
        } else {
            json!({"sortFacetValuesBy": {"genre": "count"}})
        };
        json!({"searchableAttributes": searchable, "filterableAttributes": ["genre", "price"], "faceting": faceting})
    };

    let single = TestNode::start(KEY).await;
    let base = single.url();
    for (n, uid) in INDEXES.iter().enumerate() {
        post(&http, &format!("{base}/indexes"), &json!({"uid": uid, "primaryKey": "id"})).await;
        patch(&http, &format!("{base}/indexes/{uid}/settings"), &settings(uid)).await;
        post(&http, &format!("{base}/indexes/{uid}/documents"), &json!(corpus(0x5eed + n as u64))).await;
    }
    single.wait_idle().await;

    let InProcessCluster { gateway: gw, nodes, .. } = start_cluster(KEY).await;
    for (n, uid) in INDEXES.iter().enumerate() {
        let (status, t) = post(&http, &format!("{gw}/indexes"), &json!({"uid": uid, "primaryKey": "id"})).await;
        assert_eq!(status, 202, "{t}");
        assert_eq!(patch(&http, &format!("{gw}/indexes/{uid}/settings"), &settings(uid)).await, 202);
        for chunk in corpus(0x5eed + n as u64).chunks(150) {
            let (status, t) = post(&http, &format!("{gw}/indexes/{uid}/documents"), &json!(chunk)).await;
            assert_eq!(status, 202, "{t}");
        }
    }
    for n in &nodes {
        n.wait_idle().await;
    }

    let mut rng = Rng(0xfed_5eed);
    let (mut nonempty, mut mixed, mut shared, mut reordered, mut faceted, mut merged) = (0, 0, 0, 0, 0, 0);
    for i in 0..REQUESTS {
        let body = request(&mut rng);
        let (s1, one) = post(&http, &format!("{base}/multi-search"), &body).await;
        let (s2, many) = post(&http, &format!("{gw}/multi-search"), &body).await;
        assert_eq!((s1, s2), (200, 200), "request {i} {body}: {one} / {many}");
        assert_eq!(many["hits"], one["hits"], "request {i} {body}: hits differ");
        for k in [
            "estimatedTotalHits",
            "totalHits",
            "totalPages",
            "offset",
            "limit",
            "page",
            "hitsPerPage",
            "facetsByIndex",
            "facetDistribution",
            "facetStats",
        ] {
            assert_eq!(many.get(k), one.get(k), "request {i} {body}: `{k}` differs");
        }
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<std::collections::BTreeSet<_>>();
        assert_eq!(keys(&many), keys(&one), "request {i}: the same fields as one node's answer");
        faceted += usize::from(one["facetsByIndex"].as_object().is_some_and(|m| !m.is_empty()));
        merged += usize::from(one["facetDistribution"]["price"].as_object().is_some_and(|m| !m.is_empty()));
        let hits = one["hits"].as_array().unwrap();
        if !hits.is_empty() {
            nonempty += 1;
        }
        let from: std::collections::BTreeSet<&str> =
            hits.iter().filter_map(|h| h["_federation"]["indexUid"].as_str()).collect();
        mixed += usize::from(from.len() == 2);
        // The merge by score, not the queries' order, decided: a later query's hit came first.
        let positions: Vec<u64> = hits.iter().filter_map(|h| h["_federation"]["queriesPosition"].as_u64()).collect();
        reordered += usize::from(positions.windows(2).any(|w| w[0] > w[1]));
        let uids: Vec<&str> =
            body["queries"].as_array().unwrap().iter().filter_map(|q| q["indexUid"].as_str()).collect();
        shared += usize::from(uids.iter().any(|u| uids.iter().filter(|v| *v == u).count() > 1));
    }
    assert!(nonempty > REQUESTS / 2, "most requests find something ({nonempty} of {REQUESTS})");
    assert!(mixed > REQUESTS / 25, "hits of both indexes in one answer ({mixed} requests)");
    assert!(reordered > REQUESTS / 20, "hits of several queries interleaved by score ({reordered} requests)");
    assert!(shared > REQUESTS / 8, "several queries share an index ({shared} requests)");
    assert!(faceted > REQUESTS / 10, "facets by index ({faceted} requests)");
    assert!(merged > REQUESTS / 20, "merged facets ({merged} requests)");

    // Errors shaped like Meilisearch's, the same from both.
    for body in [
        json!({"federation": {}, "queries": [{"indexUid": "books", "q": "river"}, {"indexUid": "nope"}]}),
        json!({"federation": {}, "queries": [{"indexUid": "books", "limit": 3}]}),
        json!({"federation": {}, "queries": [{"indexUid": "films", "facets": ["genre"]}]}),
        json!({"federation": {}, "queries": [{"indexUid": "films", "federationOptions": {"weight": -2}}]}),
        json!({"federation": {"limit": "ten"}, "queries": [{"indexUid": "films"}]}),
        json!({"federation": {"facetsByIndex": {"films": ["title"]}}, "queries": [{"indexUid": "films"}]}),
        json!({"federation": {"facetsByIndex": {"books": ["title"]}}, "queries": [{"indexUid": "films"}]}),
        json!({"federation": {"facetsByIndex": {"nope": ["genre"]}}, "queries": [{"indexUid": "films"}]}),
        json!({"federation": {"facetsByIndex": {"books": ["genre"], "films": ["genre"]}, "mergeFacets": {}},
               "queries": [{"indexUid": "films"}, {"indexUid": "books"}]}),
        json!({"federation": {"facetsByIndex": {"films": "genre"}}, "queries": [{"indexUid": "films"}]}),
        json!({"federation": {"mergeFacets": {"maxValuesPerFacet": -1}}, "queries": [{"indexUid": "films"}]}),
    ] {
        let (s1, one) = post(&http, &format!("{base}/multi-search"), &body).await;
        let (s2, many) = post(&http, &format!("{gw}/multi-search"), &body).await;
        assert_eq!((s2, &many), (s1, &one), "{body}");
        assert_eq!(s1, 400, "{body}: {one}");
    }
    // What Miroir does not merge is refused, not answered approximately.
    for body in [
        json!({"federation": {"distinct": "genre"}, "queries": [{"indexUid": "books"}]}),
        json!({"federation": {}, "queries": [{"indexUid": "books", "sort": ["price:asc"]}]}),
    ] {
        let (status, e) = post(&http, &format!("{gw}/multi-search"), &body).await;
        assert_eq!((status, e["code"].as_str()), (501, Some("miroir_not_supported")), "{body}: {e}");
    }
}
