//! Differential test of search: the same documents and settings in one dev node and in a cluster of
//! three dev nodes behind the gateway (S = 8, RF = 2); hundreds of generated queries (words,
//! filters, one- and two-field sorts, facets, distinct on a nested key, both pagination modes, deep
//! offsets) must give the
//! same hits in the same order, the same totals and the same facets.

use std::time::Duration;

use miroir_devtools::in_process::{start_cluster, InProcessCluster, TestNode};
use miroir_devtools::rng::Rng;
use serde_json::{json, Value};

use crate::common::{self, ids};

const KEY: &str = "search-differential-master-key";
const DOCS: u64 = 5_000;
const QUERIES: usize = 320;
const WORDS: [&str; 16] = [
    "river", "stone", "night", "garden", "silver", "winter", "harbor", "forest", "ember", "meadow", "canyon",
    "lantern", "orchard", "thunder", "velvet", "willow",
];
const GENRES: [&str; 6] = ["drama", "comedy", "horror", "Sci-Fi", "romance", "thriller"];

fn corpus() -> Vec<Value> {
    let mut rng = Rng(0x5eed);
    (0..DOCS)
        .map(|id| {
            let n = 2 + rng.below(4) as usize;
            let title: Vec<&str> = (0..n).map(|_| rng.pick(&WORDS)).collect();
            let mut doc = json!({
                "id": id,
                "title": title.join(" "),
                "genre": rng.pick(&GENRES),
                "price": rng.below(500),
                "year": 1960 + rng.below(60),
            });
            // A nested distinct key: 128 families, each with documents in every shard, spelled in two
            // cases, and one document in ten without one (each of those counts on its own).
            if rng.below(10) != 0 {
                let family = format!("{}-{}", rng.pick(&WORDS), rng.below(8));
                let family = if rng.below(4) == 0 { family.to_uppercase() } else { family };
                doc["meta"] = json!({"family": family});
            }
            doc
        })
        .collect()
}

fn query(rng: &mut Rng) -> Value {
    let mut q = serde_json::Map::new();
    match rng.below(4) {
        0 => {}
        1 => {
            q.insert("q".into(), json!(rng.pick(&WORDS)));
        }
        2 => {
            q.insert("q".into(), json!(format!("{} {}", rng.pick(&WORDS), rng.pick(&WORDS))));
        }
        _ => {
            let w = rng.pick(&WORDS);
            q.insert("q".into(), json!(&w[..3]));
        }
    }
    match rng.below(5) {
        0 | 1 => {}
        2 => {
            q.insert("filter".into(), json!(format!("genre = \"{}\"", rng.pick(&GENRES))));
        }
        3 => {
            q.insert(
                "filter".into(),
                json!(format!(
                    "price > {} AND year {} TO {}",
                    rng.below(400),
                    1960 + rng.below(30),
                    1990 + rng.below(30)
                )),
            );
        }
        _ => {
            q.insert(
                "filter".into(),
                json!([
                    [format!("genre = \"{}\"", rng.pick(&GENRES)), format!("genre = \"{}\"", rng.pick(&GENRES))],
                    format!("price <= {}", rng.below(500))
                ]),
            );
        }
    }
    match rng.below(4) {
        0 | 1 => {}
        2 => {
            q.insert("sort".into(), json!([format!("price:{}", if rng.below(2) == 0 { "asc" } else { "desc" })]));
        }
        _ => {
            q.insert("sort".into(), json!(["year:desc", "price:asc"]));
        }
    }
    if rng.below(4) == 0 {
        // Facet counts under distinct depend on which shard's document wins each value, which
        // no shard knows (docs/search.md): distinct queries ask for none.
        q.insert("distinct".into(), json!("meta.family"));
        if rng.below(2) == 0 {
            q.insert("attributesToRetrieve".into(), json!(["id", "title"]));
        }
    } else if rng.below(2) == 0 {
        q.insert("facets".into(), json!(["genre", "year", "price"]));
    }
    if rng.below(3) == 0 {
        q.insert("page".into(), json!(1 + rng.below(12)));
        q.insert("hitsPerPage".into(), json!(1 + rng.below(40)));
    } else {
        let deep = rng.below(4) == 0;
        q.insert("offset".into(), json!(if deep { 200 + rng.below(900) } else { rng.below(60) }));
        q.insert("limit".into(), json!(1 + rng.below(50)));
    }
    Value::Object(q)
}

async fn post(http: &reqwest::Client, url: &str, body: &Value) -> (u16, Value) {
    common::post(http, KEY, url, body).await
}

async fn patch(http: &reqwest::Client, url: &str, body: &Value) -> u16 {
    common::patch(http, KEY, url, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_answers_every_search_exactly_like_one_node() {
    let http = reqwest::Client::new();
    // Searchable attributes are listed: with the default `["*"]` the nodes would also search the
    // shard field, which shifts attributeRank scores (a known gap, docs/architecture.md).
    let settings = json!({
        "searchableAttributes": ["title", "genre"],
        "filterableAttributes": ["genre", "price", "year", "meta.family"],
        "sortableAttributes": ["price", "year"],
        // Few values per facet, some facets by count: the global top values must come out,
        // not each shard's.
        "faceting": {"maxValuesPerFacet": 4, "sortFacetValuesBy": {"genre": "count", "price": "count"}},
    });
    let docs = corpus();

    // One node holding everything, documents inserted in id order.
    let single = TestNode::start(KEY).await;
    let base = single.url();
    post(&http, &format!("{base}/indexes"), &json!({"uid": "books", "primaryKey": "id"})).await;
    patch(&http, &format!("{base}/indexes/books/settings"), &settings).await;
    post(&http, &format!("{base}/indexes/books/documents"), &json!(docs)).await;
    single.wait_idle().await;

    // The cluster: three dev nodes behind an in-process gateway.
    let InProcessCluster { gateway: gw, app: gateway_state, nodes } = start_cluster(KEY).await;
    let (status, t) = post(&http, &format!("{gw}/indexes"), &json!({"uid": "books", "primaryKey": "id"})).await;
    assert_eq!(status, 202, "{t}");
    assert_eq!(patch(&http, &format!("{gw}/indexes/books/settings"), &settings).await, 202);
    for chunk in docs.chunks(1000) {
        let (status, t) = post(&http, &format!("{gw}/indexes/books/documents"), &json!(chunk)).await;
        assert_eq!(status, 202, "{t}");
    }
    for n in &nodes {
        n.wait_idle().await;
    }

    // Index stats: every shard counted once (nodes hold two copies each and more documents than
    // maxTotalHits), fields summed, not the largest node's.
    // (This branch's gateway serves them in `GET /stats`, its dev node in `/indexes/{uid}/stats`.)
    let get_json = |url: String| {
        let http = http.clone();
        async move { http.get(url).bearer_auth(KEY).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let one = get_json(format!("{base}/indexes/books/stats")).await;
    let many = get_json(format!("{gw}/stats")).await["indexes"]["books"].clone();
    assert_eq!(one["numberOfDocuments"], DOCS);
    assert_eq!(many["numberOfDocuments"], one["numberOfDocuments"], "{many}");
    assert_eq!(many["fieldDistribution"], one["fieldDistribution"], "{many}");

    // Clients see their own maxValuesPerFacet, not the one Miroir gives the nodes.
    let faceting = http.get(format!("{gw}/indexes/books/settings/faceting")).bearer_auth(KEY).send().await.unwrap();
    let faceting: Value = faceting.json().await.unwrap();
    assert_eq!(
        faceting,
        json!({"maxValuesPerFacet": 4, "sortFacetValuesBy": {"*": "alpha", "genre": "count", "price": "count"}})
    );
    let all = http.get(format!("{gw}/indexes/books/settings")).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(all.json::<Value>().await.unwrap()["faceting"], faceting);

    // `*` facets every filterable attribute the client declared, never Miroir's shard field.
    let star = json!({"q": "river", "facets": ["*"]});
    let (_, one) = post(&http, &format!("{base}/indexes/books/search"), &star).await;
    let (_, many) = post(&http, &format!("{gw}/indexes/books/search"), &star).await;
    assert!(one["facetDistribution"].get("genre").is_some(), "{one}");
    let names = |v: &Value| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
    assert_eq!(names(&many["facetDistribution"]), names(&one["facetDistribution"]), "{many}");
    assert_eq!(many["facetStats"], one["facetStats"]);
    // (A value spelt two ways shows the spelling its node saw first: see docs/search.md.)
    for f in ["genre", "year", "price"] {
        assert_eq!(many["facetDistribution"][f], one["facetDistribution"][f], "{f}");
    }

    let mut rng = Rng(0xfeed_beef);
    let mut nonempty = 0;
    let mut distinct_queries = 0;
    for i in 0..QUERIES {
        let q = query(&mut rng);
        let (s1, one) = post(&http, &format!("{base}/indexes/books/search"), &q).await;
        let (s2, many) = post(&http, &format!("{gw}/indexes/books/search"), &q).await;
        assert_eq!((s1, s2), (200, 200), "query {i} {q}: {one} / {many}");
        if ids(&many) != ids(&one) && std::env::var("SEARCH_DEBUG").is_ok() {
            let mut dq = q.clone();
            dq["showRankingScoreDetails"] = json!(true);
            dq["limit"] = json!(3);
            dq.as_object_mut().unwrap().remove("page");
            dq.as_object_mut().unwrap().remove("hitsPerPage");
            let (_, a) = post(&http, &format!("{base}/indexes/books/search"), &dq).await;
            let (_, b) = post(&http, &format!("{gw}/indexes/books/search"), &dq).await;
            println!("ONE {}\nMANY {}", a["hits"], b["hits"]);
        }
        assert_eq!(ids(&many), ids(&one), "query {i} {q}: hits differ");
        for k in [
            "estimatedTotalHits",
            "totalHits",
            "totalPages",
            "offset",
            "limit",
            "page",
            "hitsPerPage",
            "facetDistribution",
            "facetStats",
        ] {
            assert_eq!(many.get(k), one.get(k), "query {i} {q}: `{k}` differs");
        }
        if !ids(&one).is_empty() {
            nonempty += 1;
            if q.get("distinct").is_some() {
                distinct_queries += 1;
            }
        }
        if q.get("attributesToRetrieve").is_some() {
            assert!(
                many["hits"].as_array().unwrap().iter().all(|h| h.get("meta").is_none()),
                "query {i}: the distinct attribute fetched for the merge is not shown"
            );
        }
        // Shard bookkeeping never leaks to clients.
        assert!(many["hits"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h.get("_miroir_shard").is_none() && h.get("_rankingScoreDetails").is_none()));
    }
    assert!(nonempty > QUERIES / 2, "the generated queries mostly match something ({nonempty} of {QUERIES})");
    assert!(distinct_queries > QUERIES / 8, "distinct is exercised ({distinct_queries} queries with hits)");

    // GET: the query string parsed as Meilisearch does (lists, JSON filters, sort, booleans).
    for qs in [
        "q=riv&sort=price:asc,year:desc&facets=genre,year&offset=3&limit=7&showRankingScore=false",
        "filter=%5B%5B%22genre%20%3D%20drama%22%2C%22genre%20%3D%20comedy%22%5D%2C%22price%20%3C%20200%22%5D&page=2&hitsPerPage=9",
        "q=stone%20night&distinct=meta.family&attributesToRetrieve=id,title&limit=30",
        "showRankingScore=yes",
        "limit=ten",
        "facets=title",
    ] {
        let get = |base: String| {
            let http = http.clone();
            async move {
                let r = http.get(format!("{base}/indexes/books/search?{qs}")).bearer_auth(KEY).send().await.unwrap();
                (r.status().as_u16(), r.json::<Value>().await.unwrap())
            }
        };
        let ((s1, one), (s2, many)) = (get(base.clone()).await, get(gw.clone()).await);
        assert_eq!(s2, s1, "GET {qs}: {one} / {many}");
        if s1 == 200 {
            assert_eq!(ids(&many), ids(&one), "GET {qs}");
            for k in ["estimatedTotalHits", "totalHits", "facetDistribution", "limit", "offset"] {
                assert_eq!(many.get(k), one.get(k), "GET {qs}: `{k}`");
            }
        } else {
            assert_eq!(many, one, "GET {qs}: the same error");
        }
    }

    // Facet search: counts summed over shards, ordered (genre by count, families alphabetically)
    // and cut to maxValuesPerFacet (4) like one node.
    for body in [
        json!({"facetName": "genre"}),
        json!({"facetName": "genre", "q": "river", "filter": "price < 250"}),
        json!({"facetName": "meta.family"}),
        json!({"facetName": "meta.family", "facetQuery": "wil"}),
        json!({"facetName": "meta.family", "facetQuery": "th", "filter": ["genre = drama"]}),
        json!({"facetName": "title"}),
    ] {
        let (s1, one) = post(&http, &format!("{base}/indexes/books/facet-search"), &body).await;
        let (s2, many) = post(&http, &format!("{gw}/indexes/books/facet-search"), &body).await;
        assert_eq!(s2, s1, "facet-search {body}: {one} / {many}");
        if s1 == 200 {
            assert!(!one["facetHits"].as_array().unwrap().is_empty(), "{body} finds values");
            // A value spelled in several cases is shown as one node's first document spells it,
            // which shards cannot know (docs/search.md): compared case-insensitively.
            let lower = |v: &Value| v.to_string().to_lowercase();
            assert_eq!(lower(&many["facetHits"]), lower(&one["facetHits"]), "facet-search {body}");
            assert_eq!(many["facetQuery"], one["facetQuery"], "facet-search {body}");
        } else {
            assert_eq!(many, one, "facet-search {body}: the same error");
        }
    }

    // Multi-search (per query): each result as the single node's, in order.
    let queries: Vec<Value> = (0..5)
        .map(|_| {
            let mut q = query(&mut rng);
            q["indexUid"] = json!("books");
            q
        })
        .collect();
    let body = json!({"queries": queries});
    let (s1, one) = post(&http, &format!("{base}/multi-search"), &body).await;
    let (s2, many) = post(&http, &format!("{gw}/multi-search"), &body).await;
    assert_eq!((s1, s2), (200, 200), "{one} / {many}");
    let request_uid = many["results"][0]["requestUid"].as_str().expect("requestUid in every result").to_string();
    let dashes: Vec<usize> = request_uid.char_indices().filter(|(_, c)| *c == '-').map(|(i, _)| i).collect();
    assert_eq!((request_uid.len(), dashes), (36, vec![8, 13, 18, 23]), "a UUID: {request_uid}");
    for i in 0..5 {
        let (a, b) = (&one["results"][i], &many["results"][i]);
        assert_eq!(ids(b), ids(a), "multi-search query {i}");
        assert_eq!(b["indexUid"], "books");
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<std::collections::BTreeSet<_>>();
        assert_eq!(keys(b), keys(a), "multi-search query {i}: the same fields as one node's result");
        assert_eq!(b["requestUid"], request_uid.as_str(), "one requestUid for the whole multi-search");
        for k in ["estimatedTotalHits", "totalHits", "facetDistribution"] {
            assert_eq!(b.get(k), a.get(k), "multi-search query {i}: `{k}`");
        }
    }
    // One deadline for the whole read: when a node hangs past it, the retry round has no time
    // left and its shards are reported missing, instead of the read taking a second deadline.
    // (Dev nodes only: real Meilisearch cannot be told to hang.)
    if let Some(slow) = nodes[0].dev() {
        gateway_state.set_read_deadline(Duration::from_millis(300));
        slow.set_delay(Duration::from_millis(1500));
        let mut degraded = 0;
        for _ in 0..6 {
            let r = http
                .post(format!("{gw}/indexes/books/search"))
                .bearer_auth(KEY)
                .json(&json!({"q": "river"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            degraded += usize::from(r.headers().contains_key("x-miroir-degraded"));
        }
        slow.set_delay(Duration::ZERO);
        gateway_state.set_read_deadline(Duration::from_secs(10));
        assert!(degraded > 0, "a read never outlives its deadline by retrying");
    }

    let bad = json!({"queries": [{"q": "x"}]});
    let (status, e) = post(&http, &format!("{gw}/multi-search"), &bad).await;
    assert_eq!((status, e["code"].as_str()), (400, Some("missing_index_uid")), "{e}");
}
