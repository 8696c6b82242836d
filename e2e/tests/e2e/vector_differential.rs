//! Differential test of semantic search, hybrid search and `similar`: the same documents (with
//! user-provided embeddings, some without any) in one dev node and in a cluster of three dev
//! nodes behind the gateway (S = 8, RF = 2). Every answer must be the same: hits, order, scores,
//! totals, facets, `semanticHitCount`; and documents keep their embeddings through the cluster.

use miroir_devtools::in_process::{start_cluster, InProcessCluster, TestNode};
use miroir_devtools::rng::Rng;
use serde_json::{json, Map, Value};

use crate::common::{self, ids};

const KEY: &str = "vector-differential-master-key";
const DOCS: u64 = 900;
const DIM: usize = 6;
const WORDS: [&str; 8] = ["river", "stone", "light", "glass", "storm", "field", "ember", "frost"];
const GENRES: [&str; 4] = ["fantasy", "crime", "poetry", "travel"];

/// Coarse components: documents share similarities, so ties are exercised too.
fn vector(rng: &mut Rng) -> Vec<f64> {
    (0..DIM).map(|_| (rng.below(9) as f64 - 4.0) / 4.0).collect()
}

fn corpus() -> Vec<Value> {
    let mut rng = Rng(0x5eed_1234_abcd);
    (0..DOCS)
        .map(|id| {
            let title = format!(
                "{} {} {}",
                WORDS[rng.below(8) as usize],
                WORDS[rng.below(8) as usize],
                if id % 3 == 0 { "river" } else { "dust" }
            );
            let mut doc = json!({"id": id, "title": title, "genre": GENRES[(id % 4) as usize], "year": 1950 + id % 70});
            if id % 11 == 0 {
                // No embedding: a user-provided embedder needs an explicit opt-out.
                doc["_vectors"] = json!({"e": null});
            } else {
                let v = vector(&mut rng);
                // Every accepted form of `_vectors`.
                doc["_vectors"] = match id % 3 {
                    0 => json!({"e": v}),
                    1 => json!({"e": [v]}),
                    _ => json!({"e": {"embeddings": [v], "regenerate": false}}),
                };
            }
            doc
        })
        .collect()
}

async fn post(http: &reqwest::Client, url: &str, body: &Value) -> (u16, Value) {
    common::post(http, KEY, url, body).await
}

async fn get(http: &reqwest::Client, url: &str) -> (u16, Value) {
    common::get(http, KEY, url).await
}

/// Timing and request ids differ by nature.
fn comparable(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("processingTimeMs");
        o.remove("requestUid");
    }
    v
}

fn search_query(rng: &mut Rng) -> Value {
    let mut q = Map::new();
    let ratio = [1.0, 0.5, 0.2, 0.8, 0.95, 0.0][rng.below(6) as usize];
    q.insert("hybrid".into(), json!({"embedder": "e", "semanticRatio": ratio}));
    q.insert("vector".into(), json!(vector(rng)));
    match rng.below(4) {
        0 => {}
        1 => {
            q.insert("q".into(), json!("river"));
        }
        2 => {
            q.insert("q".into(), json!(format!("{} {}", WORDS[rng.below(8) as usize], WORDS[rng.below(8) as usize])));
        }
        _ => {
            q.insert("q".into(), json!("dust"));
        }
    }
    if rng.below(3) == 0 {
        q.insert("filter".into(), json!(format!("genre = {}", GENRES[rng.below(4) as usize])));
    }
    if rng.below(4) == 0 {
        q.insert("sort".into(), json!(["year:asc"]));
    }
    if rng.below(3) == 0 {
        q.insert("facets".into(), json!(["genre"]));
    }
    if rng.below(3) == 0 {
        q.insert("showRankingScore".into(), json!(true));
    }
    if rng.below(5) == 0 {
        q.insert("attributesToRetrieve".into(), json!(["title"]));
    }
    if rng.below(4) == 0 {
        q.insert("retrieveVectors".into(), json!(true));
    }
    if rng.below(3) == 0 {
        q.insert("page".into(), json!(1 + rng.below(6)));
        q.insert("hitsPerPage".into(), json!(1 + rng.below(25)));
    } else {
        q.insert("offset".into(), json!(rng.below(80)));
        q.insert("limit".into(), json!(1 + rng.below(30)));
    }
    Value::Object(q)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_answers_semantic_hybrid_and_similar_queries_like_one_node() {
    let http = reqwest::Client::new();
    let settings = json!({
        "searchableAttributes": ["title"],
        // The primary key filterable: pins are then checked against the query exactly (docs/search-rules.md).
        "filterableAttributes": ["genre", "year", "id"],
        "sortableAttributes": ["year"],
        "rankingRules": ["words", "typo", "proximity", "attribute", "sort", "exactness"],
        "embedders": {"e": {"source": "userProvided", "dimensions": DIM}},
    });
    let docs = corpus();

    let single = TestNode::start(KEY).await;
    let base = single.url();
    post(&http, &format!("{base}/indexes"), &json!({"uid": "books", "primaryKey": "id"})).await;
    let r = http.patch(format!("{base}/indexes/books/settings")).bearer_auth(KEY).json(&settings).send().await;
    assert_eq!(r.unwrap().status().as_u16(), 202);
    post(&http, &format!("{base}/indexes/books/documents"), &json!(docs)).await;
    single.wait_idle().await;

    let InProcessCluster { gateway: gw, nodes, .. } = start_cluster(KEY).await;
    let (status, t) = post(&http, &format!("{gw}/indexes"), &json!({"uid": "books", "primaryKey": "id"})).await;
    assert_eq!(status, 202, "{t}");
    let r = http.patch(format!("{gw}/indexes/books/settings")).bearer_auth(KEY).json(&settings).send().await;
    assert_eq!(r.unwrap().status().as_u16(), 202);
    for chunk in docs.chunks(150) {
        let (status, t) = post(&http, &format!("{gw}/indexes/books/documents"), &json!(chunk)).await;
        assert_eq!(status, 202, "{t}");
    }
    for n in &nodes {
        n.wait_idle().await;
    }

    let compare = |path: String, body: Value| {
        let http = http.clone();
        let (base, gw) = (base.clone(), gw.clone());
        async move {
            let (s1, one) = post(&http, &format!("{base}{path}"), &body).await;
            let (s2, many) = post(&http, &format!("{gw}{path}"), &body).await;
            let (one, many) = (comparable(one), comparable(many));
            assert!(
                (s1, &one) == (s2, &many),
                "{path} {body}: the cluster answers {s2} {:?} vs one node {s1} {:?}\ncluster: {many}\none node: {one}",
                ids(&many),
                ids(&one)
            );
            one
        }
    };

    // Documents keep their embeddings, in Meilisearch's explicit form, only when asked.
    let one = compare("/indexes/books/documents/fetch".into(), json!({"limit": 30, "retrieveVectors": true})).await;
    assert_eq!(one["results"][1]["_vectors"]["e"]["regenerate"], json!(false));
    assert_eq!(one["results"][1]["_vectors"]["e"]["embeddings"].as_array().unwrap().len(), 1);
    let plain = compare("/indexes/books/documents/fetch".into(), json!({"limit": 5})).await;
    assert!(plain["results"][1].get("_vectors").is_none(), "{plain}");
    let (_, doc) = get(&http, &format!("{gw}/indexes/books/documents/5?retrieveVectors=true")).await;
    assert_eq!(doc["_vectors"], one["results"][5]["_vectors"]);

    // Semantic and hybrid searches of every kind.
    let mut rng = Rng(0xfeed_0042);
    let mut kinds = [0usize; 3];
    for _ in 0..160 {
        let body = search_query(&mut rng);
        let one = compare("/indexes/books/search".into(), body.clone()).await;
        match one.get("semanticHitCount").and_then(Value::as_u64) {
            None => kinds[0] += 1,
            Some(0) => kinds[1] += 1,
            Some(_) => kinds[2] += 1,
        }
    }
    assert!(kinds.iter().all(|k| *k > 5), "keyword, keyword-only hybrid and semantic answers all exercised: {kinds:?}");

    // Federated searches mixing keyword, semantic and hybrid queries: same hits, totals and
    // `semanticHitCount` (the page's hits found by a semantic side).
    let mut counted = 0;
    for i in 0..24u64 {
        let ratio = [1.0, 0.5, 0.8][(i % 3) as usize];
        let semantic = json!({"indexUid": "books", "vector": vector(&mut rng),
            "hybrid": {"embedder": "e", "semanticRatio": ratio},
            "q": if i % 2 == 0 { "river" } else { "" }, "showRankingScore": i % 4 == 0});
        let keyword = json!({"indexUid": "books", "q": WORDS[(i % 8) as usize], "federationOptions": {"weight": 0.9}});
        let federation =
            if i % 2 == 0 { json!({"limit": 15, "offset": i}) } else { json!({"page": 2, "hitsPerPage": 7}) };
        let body = json!({"federation": federation, "queries": [keyword, semantic]});
        let one = compare("/multi-search".into(), body).await;
        counted += usize::from(one["semanticHitCount"].as_u64().is_some_and(|n| n > 0));
    }
    assert!(counted > 5, "semantic hits counted in federated answers ({counted})");

    // Dynamic search rules in semantic and hybrid searches: pinned documents (some without an
    // embedding, some the keyword query does not match) at their positions, totals and facets.
    let send = |method: reqwest::Method, path: String, body: Value| {
        let http = http.clone();
        let (base, gw) = (base.clone(), gw.clone());
        async move {
            for url in [format!("{base}{path}"), format!("{gw}{path}")] {
                let r = http.request(method.clone(), url).bearer_auth(KEY).json(&body).send().await.unwrap();
                assert!(r.status().is_success(), "{path}: {}", r.status());
            }
        }
    };
    send(reqwest::Method::PATCH, "/experimental-features".into(), json!({"dynamicSearchRules": true})).await;
    let pin = |id: u64, position: u32| json!({"selector": {"id": id.to_string()}, "action": {"type": "pin", "position": position}});
    send(
        reqwest::Method::PATCH,
        "/dynamic-search-rules/river".into(),
        json!({"conditions": {"query": {"words": "river"}}, "actions": [pin(44, 0), pin(7, 3), pin(121, 40)]}),
    )
    .await;
    send(
        reqwest::Method::PATCH,
        "/dynamic-search-rules/empty".into(),
        json!({"conditions": {"query": {"isEmpty": true}}, "actions": [pin(500, 1), pin(2, 2)]}),
    )
    .await;
    single.wait_idle().await;
    for n in &nodes {
        n.wait_idle().await;
    }
    let mut pinned_pages = 0;
    for _ in 0..80 {
        let body = search_query(&mut rng);
        let one = compare("/indexes/books/search".into(), body).await;
        pinned_pages += usize::from(ids(&one).iter().any(|id| [44, 7, 121, 500, 2].contains(id)));
    }
    assert!(pinned_pages > 5, "pins shown in semantic and hybrid pages ({pinned_pages})");
    send(reqwest::Method::DELETE, "/dynamic-search-rules".into(), json!(null)).await;
    single.wait_idle().await;

    // Similar documents: with filters, deep offsets, scores, a reference without embeddings.
    for (i, id) in [1u64, 2, 7, 44, 121, 500, 899, 0].into_iter().enumerate() {
        let mut body = json!({"id": id, "embedder": "e", "offset": (i * 7) % 40, "limit": 5 + i * 3});
        if i % 2 == 0 {
            body["filter"] = json!(format!("genre != {}", GENRES[i % 4]));
        }
        if i % 3 == 0 {
            body["showRankingScore"] = json!(true);
            body["showRankingScoreDetails"] = json!(true);
        }
        if i == 5 {
            body["attributesToRetrieve"] = json!(["title"]);
            body["retrieveVectors"] = json!(true);
        }
        let one = compare("/indexes/books/similar".into(), body.clone()).await;
        if id % 11 != 0 {
            assert!(!ids(&one).is_empty() || i == 5, "{body}: {one}");
        }
        assert!(!ids(&one).contains(&id), "the reference document is never a hit");
    }
    let (status, one) = get(&http, &format!("{base}/indexes/books/similar?id=3&embedder=e&limit=4&offset=2")).await;
    let (s2, many) = get(&http, &format!("{gw}/indexes/books/similar?id=3&embedder=e&limit=4&offset=2")).await;
    assert_eq!((status, comparable(one)), (s2, comparable(many)));

    // Refusals, with Meilisearch's codes.
    for body in [
        json!({"id": "nope", "embedder": "e"}),
        json!({"id": 3, "embedder": "missing"}),
        json!({"id": 3}),
        json!({"embedder": "e"}),
        json!({"id": "a b", "embedder": "e"}),
        json!({"id": 3, "embedder": "e", "filter": "title = x"}),
        json!({"id": 3, "embedder": "e", "limit": "x"}),
        json!({"id": 3, "embedder": "e", "what": 1}),
    ] {
        let one = compare("/indexes/books/similar".into(), body.clone()).await;
        assert!(one.get("code").is_some(), "{body}: {one}");
    }
    for body in [
        json!({"vector": [1.0, 2.0], "hybrid": {"embedder": "e", "semanticRatio": 1.0}}),
        json!({"q": "river", "hybrid": {"embedder": "nope", "semanticRatio": 0.5}, "vector": [0, 0, 0, 0, 0, 1]}),
    ] {
        let one = compare("/indexes/books/search".into(), body.clone()).await;
        assert!(one.get("code").is_some(), "{body}: {one}");
    }
}
