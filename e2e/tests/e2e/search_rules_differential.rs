//! Dynamic search rules: the same documents and rules in one dev node and in the in-process
//! cluster (three dev nodes, S = 8, RF = 2, rules applied by the gateway after the merge). The
//! routes answer the same (statuses, bodies, tasks, errors), and hundreds of searches that trigger
//! or miss rules — words, empty queries, filters that keep or drop pinned documents, facets, both
//! pagination modes, pins past the organic results — give the same hits, totals and facets.

use miroir_devnode::{start, DevNode, DevNodeConfig};
use miroir_devtools::in_process::{start_cluster, InProcessCluster};
use miroir_devtools::rng::Rng;
use serde_json::{json, Value};

use crate::common::ids;

const KEY: &str = "search-rules-differential-master-key";
const DOCS: u64 = 600;
const QUERIES: usize = 240;
const WORDS: [&str; 8] = ["river", "stone", "night", "garden", "silver", "winter", "harbor", "forest"];
const GENRES: [&str; 4] = ["drama", "comedy", "horror", "romance"];

fn corpus() -> Vec<Value> {
    let mut rng = Rng(0xd5e);
    (0..DOCS)
        .map(|id| {
            let n = 1 + rng.below(3) as usize;
            let title: Vec<&str> = (0..n).map(|_| rng.pick(&WORDS)).collect();
            json!({"id": id, "title": title.join(" "), "genre": rng.pick(&GENRES), "price": rng.below(500)})
        })
        .collect()
}

fn pin(id: u64, position: u32) -> Value {
    json!({"selector": {"id": id.to_string()}, "action": {"type": "pin", "position": position}})
}

/// Rules that fire on words, on empty queries, on a filter, always; inactive and expired ones; one
/// for the other index only. Pinned documents are of every genre, some matching the words.
fn rules() -> Vec<(&'static str, Value)> {
    vec![
        ("river", json!({"conditions": {"query": {"words": "river"}}, "actions": [pin(5, 0), pin(77, 3), pin(5, 6)]})),
        (
            "empty",
            json!({"precedence": 1, "conditions": {"query": {"isEmpty": true}}, "actions": [pin(10, 1), pin(11, 30)]}),
        ),
        (
            "drama",
            json!({"precedence": 5, "conditions": {"filter": {"values": {"genre": "drama"}}}, "actions": [pin(123, 0), pin(124, 2)]}),
        ),
        (
            "two-words",
            json!({"precedence": 2, "conditions": {"query": {"words": "Stone night"}}, "actions": [pin(200, 2), pin(201, 0)]}),
        ),
        ("always", json!({"actions": [pin(450, 15), pin(451, 4)]})),
        ("off", json!({"active": false, "actions": [pin(300, 0)]})),
        ("expired", json!({"conditions": {"time": {"end": "2001-01-01T00:00:00Z"}}, "actions": [pin(301, 0)]})),
        (
            "films-only",
            json!({"actions": [{"selector": {"indexUid": "films", "id": "400"}, "action": {"type": "pin", "position": 1}}]}),
        ),
        ("missing-doc", json!({"actions": [pin(99_999, 0)]})),
    ]
}

fn query(rng: &mut Rng) -> Value {
    let mut q = serde_json::Map::new();
    match rng.below(5) {
        0 => {}
        1 => {
            q.insert("q".into(), json!(rng.pick(&WORDS)));
        }
        2 => {
            q.insert("q".into(), json!(format!("{} {}", rng.pick(&WORDS), rng.pick(&WORDS))));
        }
        3 => {
            q.insert("q".into(), json!("stone night"));
        }
        _ => {
            q.insert("q".into(), json!("river"));
        }
    }
    match rng.below(5) {
        0 => {
            q.insert("filter".into(), json!("genre = drama"));
        }
        1 => {
            q.insert("filter".into(), json!("price < 250"));
        }
        2 => {
            q.insert("filter".into(), json!(["genre = drama", "price < 250"]));
        }
        _ => {}
    }
    if rng.below(3) == 0 {
        q.insert("facets".into(), json!(["genre", "price"]));
    }
    if rng.below(2) == 0 {
        q.insert("page".into(), json!(1 + rng.below(4)));
        q.insert("hitsPerPage".into(), json!(1 + rng.below(12)));
    } else {
        q.insert("offset".into(), json!(rng.below(40)));
        q.insert("limit".into(), json!(1 + rng.below(30)));
    }
    Value::Object(q)
}

async fn call(http: &reqwest::Client, method: &str, url: &str, body: Option<&Value>) -> (u16, Value) {
    let mut r = http.request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url).bearer_auth(KEY);
    if let Some(b) = body {
        r = r.json(b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// What differs by construction between two servers: task uids, instants, request uids.
fn normalized(mut v: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for k in
                    ["taskUid", "uid", "enqueuedAt", "startedAt", "finishedAt", "lastUpdatedAt", "duration", "batchUid"]
                {
                    if m.get(k).is_some_and(|x| {
                        !x.is_string() || k != "uid" || x.as_str().is_some_and(|s| s.parse::<u64>().is_ok())
                    }) {
                        m.insert(k.into(), json!("[x]"));
                    }
                }
                m.values_mut().for_each(walk);
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}

async fn wait_task(http: &reqwest::Client, base: &str, t: &Value) -> Value {
    for _ in 0..500 {
        let (_, task) = call(http, "GET", &format!("{base}/tasks/{}", t["taskUid"]), None).await;
        if matches!(task["status"].as_str(), Some("succeeded" | "failed")) {
            return task;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("task {t} did not finish");
}

struct Pair {
    http: reqwest::Client,
    one: String,
    many: String,
    _single: DevNode,
    _cluster: InProcessCluster,
}

impl Pair {
    async fn new() -> Pair {
        let single = start(DevNodeConfig { listen: None, master_key: Some(KEY.into()) }).await.unwrap();
        let cluster = start_cluster(KEY).await;
        Pair {
            http: reqwest::Client::new(),
            one: single.url(),
            many: cluster.gateway.clone(),
            _single: single,
            _cluster: cluster,
        }
    }

    /// The same request to both; statuses and (normalized) bodies must agree. Tasks are awaited
    /// and compared too.
    async fn same(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (s1, a) = call(&self.http, method, &format!("{}{path}", self.one), body.as_ref()).await;
        let (s2, b) = call(&self.http, method, &format!("{}{path}", self.many), body.as_ref()).await;
        assert_eq!((s2, normalized(b.clone())), (s1, normalized(a.clone())), "{method} {path} {body:?}");
        if s1 == 202 {
            let t1 = wait_task(&self.http, &self.one, &a).await;
            if a["indexUid"] == ".meili_dsr" {
                // Registered finished by the gateway: nothing reaches a node.
                let t2 = wait_task(&self.http, &self.many, &b).await;
                assert_eq!(normalized(t2), normalized(t1), "task of {method} {path}");
            } else {
                for n in &self._cluster.nodes {
                    n.wait_idle().await;
                }
            }
        }
        a
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_answer_like_one_node() {
    let p = Pair::new().await;
    p.same("POST", "/dynamic-search-rules", Some(json!({}))).await;
    p.same("GET", "/dynamic-search-rules/r", None).await;
    p.same("PATCH", "/experimental-features", Some(json!({"dynamicSearchRules": true}))).await;
    p.same("POST", "/dynamic-search-rules", Some(json!({}))).await;
    p.same("PATCH", "/dynamic-search-rules/promo-a", Some(json!({"description": "promo a", "actions": [pin(1, 0)]})))
        .await;
    p.same("PATCH", "/dynamic-search-rules/promo-b", Some(json!({"description": "promo b", "active": false}))).await;
    p.same(
        "PATCH",
        "/dynamic-search-rules/standard",
        Some(json!({"description": "standard", "precedence": 3,
        "conditions": {"query": {"words": "Batman"}, "time": {"start": "2025-11-28T00:00:00.000Z"}}})),
    )
    .await;
    p.same("GET", "/dynamic-search-rules/standard", None).await;
    p.same(
        "PATCH",
        "/dynamic-search-rules/standard",
        Some(json!({"precedence": null, "conditions": {"query": {"isEmpty": false}}})),
    )
    .await;
    p.same("GET", "/dynamic-search-rules/standard", None).await;
    for body in [
        json!({"offset": 1, "limit": 1}),
        json!({"filter": {"active": true}}),
        json!({"filter": {"query": "promo"}}),
        json!({"filter": {"query": "promo", "active": false}}),
        json!({"limit": "x"}),
        json!({"filter": {"nope": 1}}),
        json!({"unknown": 1}),
    ] {
        p.same("POST", "/dynamic-search-rules", Some(body)).await;
    }
    for body in [
        json!({"bogusField": 42}),
        json!({"description": 3}),
        json!({"precedence": -1}),
        json!({"conditions": {"query": {"isEmpty": true, "words": "x"}}}),
        json!({"conditions": {"time": {"start": "2025-11-29T00:00:00Z", "end": "2025-11-28T00:00:00Z"}}}),
        json!({"conditions": {"time": {"start": "tomorrow"}}}),
        json!({"actions": [{"selector": {}, "action": {"type": "pin", "position": 0}}]}),
        json!({"actions": [{"selector": {"id": "1"}, "action": {"type": "boost"}}]}),
    ] {
        p.same("PATCH", "/dynamic-search-rules/bad", Some(body)).await;
    }
    p.same("GET", "/dynamic-search-rules/bad", None).await;
    p.same("GET", "/dynamic-search-rules/not%20valid", None).await;
    p.same("DELETE", "/dynamic-search-rules/promo-a", None).await;
    p.same("DELETE", "/dynamic-search-rules/phantom", None).await;
    p.same("POST", "/dynamic-search-rules", Some(json!({"filter": null}))).await;
    p.same("DELETE", "/dynamic-search-rules", None).await;
    p.same("POST", "/dynamic-search-rules", Some(json!({}))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_with_rules_answer_like_one_node() {
    let p = Pair::new().await;
    let docs = corpus();
    // `books` cannot filter on its primary key, `films` can: the gateway checks pins against the
    // query exactly only for `films` (docs/search-rules.md).
    let indexes = [
        ("books", json!({"searchableAttributes": ["title"], "filterableAttributes": ["genre", "price"]})),
        ("films", json!({"searchableAttributes": ["title"], "filterableAttributes": ["genre", "price", "id"]})),
    ];
    for (uid, settings) in &indexes {
        p.same("POST", "/indexes", Some(json!({"uid": uid, "primaryKey": "id"}))).await;
        p.same("PATCH", &format!("/indexes/{uid}/settings"), Some(settings.clone())).await;
        p.same("POST", &format!("/indexes/{uid}/documents"), Some(json!(docs))).await;
    }
    p.same("PATCH", "/experimental-features", Some(json!({"dynamicSearchRules": true}))).await;
    for (uid, body) in rules() {
        p.same("PATCH", &format!("/dynamic-search-rules/{uid}"), Some(body)).await;
    }

    let mut rng = Rng(0x5ea7c4);
    let (mut pinned_pages, mut inexact_totals) = (0, 0);
    for i in 0..QUERIES {
        let q = query(&mut rng);
        for (uid, _) in &indexes {
            let path = format!("/indexes/{uid}/search");
            let (s1, one) = call(&p.http, "POST", &format!("{}{path}", p.one), Some(&q)).await;
            let (s2, many) = call(&p.http, "POST", &format!("{}{path}", p.many), Some(&q)).await;
            assert_eq!((s1, s2), (200, 200), "query {i} {q}: {one} / {many}");
            assert_eq!(ids(&many), ids(&one), "{uid} query {i} {q}: hits differ");
            let exact = *uid == "films";
            for k in ["estimatedTotalHits", "totalHits", "totalPages", "facetDistribution", "facetStats"] {
                if exact || one.get(k) == many.get(k) {
                    assert_eq!(many.get(k), one.get(k), "{uid} query {i} {q}: `{k}` differs");
                } else if k == "estimatedTotalHits" || k == "totalHits" {
                    // Without a filterable primary key, a pin the query matches beyond the hits
                    // fetched is counted once more: never fewer, at most the pins more.
                    let (a, b) = (one[k].as_u64().unwrap(), many[k].as_u64().unwrap());
                    assert!(b > a && b <= a + 12, "{uid} query {i} {q}: `{k}` {b} vs {a}");
                    inexact_totals += 1;
                }
            }
            for k in ["offset", "limit", "page", "hitsPerPage"] {
                assert_eq!(many.get(k), one.get(k), "{uid} query {i} {q}: `{k}` differs");
            }
            let pinned: [u64; 9] = [5, 77, 10, 11, 123, 124, 200, 201, 451];
            if ids(&one).iter().any(|id| pinned.contains(id)) {
                pinned_pages += 1;
            }
        }
    }
    assert!(pinned_pages > QUERIES / 2, "most pages show pins ({pinned_pages})");
    println!("books answers with an inexact total: {inexact_totals}");

    // A multi-search without federation applies the rules to each query.
    let multi = json!({"queries": [
        {"indexUid": "films", "q": "river", "filter": "genre = drama", "limit": 5},
        {"indexUid": "books", "q": "", "facets": ["genre"], "hitsPerPage": 4, "page": 2}
    ]});
    let (_, one) = call(&p.http, "POST", &format!("{}/multi-search", p.one), Some(&multi)).await;
    let (_, many) = call(&p.http, "POST", &format!("{}/multi-search", p.many), Some(&multi)).await;
    for i in 0..2 {
        let (a, b) = (&one["results"][i], &many["results"][i]);
        assert_eq!(ids(b), ids(a), "multi-search query {i}");
        assert!(!ids(a).is_empty());
        for k in ["estimatedTotalHits", "totalHits", "facetDistribution"] {
            assert_eq!(b.get(k), a.get(k), "multi-search query {i}: `{k}`");
        }
    }

    // Federated searches: each query pins within its own first hits, each index keeps the pins
    // within its window, the federation places them by position.
    let mut federated_pins = 0;
    for i in 0..60 {
        let n = 1 + rng.below(3) as usize;
        let queries: Vec<Value> = (0..n)
            .map(|_| {
                let mut q = query(&mut rng);
                let q = q.as_object_mut().unwrap();
                for k in ["offset", "limit", "page", "hitsPerPage", "facets"] {
                    q.remove(k);
                }
                q.insert("indexUid".into(), json!(if rng.below(2) == 0 { "films" } else { "books" }));
                if rng.below(3) == 0 {
                    q.insert("federationOptions".into(), json!({"weight": if rng.below(2) == 0 { 0.5 } else { 2.0 }}));
                }
                Value::Object(q.clone())
            })
            .collect();
        let federation = if rng.below(2) == 0 {
            json!({"offset": rng.below(12), "limit": 1 + rng.below(15)})
        } else {
            json!({"page": 1 + rng.below(3), "hitsPerPage": 1 + rng.below(8)})
        };
        let body = json!({"federation": federation, "queries": queries});
        let (s1, one) = call(&p.http, "POST", &format!("{}/multi-search", p.one), Some(&body)).await;
        let (s2, many) = call(&p.http, "POST", &format!("{}/multi-search", p.many), Some(&body)).await;
        assert_eq!((s1, s2), (200, 200), "federated {i} {body}: {one} / {many}");
        let fed = |v: &Value| -> Vec<(u64, Value, Value)> {
            v["hits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| {
                    (
                        h["id"].as_u64().unwrap(),
                        h["_federation"]["indexUid"].clone(),
                        h["_federation"]["queriesPosition"].clone(),
                    )
                })
                .collect()
        };
        assert_eq!(fed(&many), fed(&one), "federated {i} {body}: hits differ");
        let pinned: [u64; 10] = [5, 77, 10, 11, 123, 124, 200, 201, 451, 450];
        federated_pins += ids(&one).iter().filter(|id| pinned.contains(id)).count();
        // Totals: the gateway counts the documents the queries match, not the pins they miss.
        for k in ["estimatedTotalHits", "totalHits"] {
            if let (Some(a), Some(b)) = (one[k].as_u64(), many[k].as_u64()) {
                assert!(b <= a && a <= b + 24, "federated {i} {body}: `{k}` {b} vs {a}");
            }
        }
    }
    assert!(federated_pins > 30, "federated pages show pins ({federated_pins})");

    // Scores of pins, and the switch.
    let q = json!({"q": "river", "showRankingScore": true, "showRankingScoreDetails": true, "limit": 3});
    let (_, one) = call(&p.http, "POST", &format!("{}/indexes/films/search", p.one), Some(&q)).await;
    let (_, many) = call(&p.http, "POST", &format!("{}/indexes/films/search", p.many), Some(&q)).await;
    assert_eq!(many["hits"][0], one["hits"][0]);
    assert_eq!(many["hits"][0]["_rankingScoreDetails"], json!({"pin": {"order": 0, "position": 0}}));
    p.same("PATCH", "/experimental-features", Some(json!({"dynamicSearchRules": false}))).await;
    let q = json!({"q": "", "limit": 3});
    let (_, one) = call(&p.http, "POST", &format!("{}/indexes/films/search", p.one), Some(&q)).await;
    let (_, many) = call(&p.http, "POST", &format!("{}/indexes/films/search", p.many), Some(&q)).await;
    assert_eq!(ids(&many), ids(&one));
    assert_eq!(ids(&one), [0, 1, 2], "no pins once the feature is off");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_token_filter_keeps_other_tenants_pins_out() {
    use miroir_gateway::http::auth::token::sign;
    let p = Pair::new().await;
    // Keys and tokens need the gateway to have a master key.
    p._cluster.app.require_master_key(KEY.into());
    p.same("POST", "/indexes", Some(json!({"uid": "films", "primaryKey": "id"}))).await;
    p.same(
        "PATCH",
        "/indexes/films/settings",
        Some(json!({"searchableAttributes": ["title"], "filterableAttributes": ["genre", "price"]})),
    )
    .await;
    p.same("POST", "/indexes/films/documents", Some(json!(corpus()))).await;
    p.same("PATCH", "/experimental-features", Some(json!({"dynamicSearchRules": true}))).await;
    for (uid, body) in rules() {
        p.same("PATCH", &format!("/dynamic-search-rules/{uid}"), Some(body)).await;
    }
    let (s, key) = call(
        &p.http,
        "POST",
        &format!("{}/keys", p.many),
        Some(&json!({"actions": ["search"], "indexes": ["films"], "expiresAt": null})),
    )
    .await;
    assert_eq!(s, 201, "{key}");
    let claims = json!({"searchRules": {"films": {"filter": "genre = comedy"}}, "apiKeyUid": key["uid"]});
    let token = sign("HS256", key["key"].as_str().unwrap(), &claims);
    let docs = corpus();
    for q in ["", "river", "stone night"] {
        let body = json!({"q": q, "limit": 40});
        let r = p
            .http
            .post(format!("{}/indexes/films/search", p.many))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let with_token: Value = r.json().await.unwrap();
        let explicit = json!({"q": q, "limit": 40, "filter": "genre = comedy"});
        let (_, with_filter) =
            call(&p.http, "POST", &format!("{}/indexes/films/search", p.many), Some(&explicit)).await;
        assert_eq!(ids(&with_token), ids(&with_filter), "q {q:?}: the token's filter is the search's filter");
        assert_eq!(with_token["estimatedTotalHits"], with_filter["estimatedTotalHits"]);
        assert!(
            ids(&with_token).iter().all(|id| docs[*id as usize]["genre"] == "comedy"),
            "q {q:?}: a pinned document of another tenant leaked: {with_token}"
        );
        let (_, one) = call(&p.http, "POST", &format!("{}/indexes/films/search", p.one), Some(&explicit)).await;
        assert_eq!(ids(&with_token), ids(&one), "q {q:?}: as one node with the filter");
    }
}
