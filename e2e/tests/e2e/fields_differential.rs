//! Differential test of `POST /indexes/{uid}/fields`: the same documents and settings in one dev
//! node and in a cluster of three dev nodes behind the gateway (S = 8, RF = 2). Fields that only a
//! few documents have (so only some shards hold them) must be listed, Miroir's `_miroir_shard`
//! never; paging, filters and refusals must give the same answers, byte for byte.

use miroir_devtools::in_process::{start_cluster, InProcessCluster, TestNode};
use serde_json::{json, Value};

use crate::common;

const KEY: &str = "fields-differential-master-key";
const DOCS: u64 = 400;

fn corpus() -> Vec<Value> {
    (0..DOCS)
        .map(|id| {
            let mut doc = json!({"id": id, "title": format!("book {id}"), "year": 1960 + id % 60});
            // Thirteen optional fields spread over the shards, a nested object, and one field only
            // a single document has.
            doc[format!("extra_{}", id % 13)] = json!(id);
            if id % 5 == 0 {
                doc["meta"] = json!({"family": format!("f{}", id % 7), "tags": [{"label": "x"}]});
            }
            if id == 217 {
                doc["rare"] = json!({"deep": true});
            }
            // Forty fields of one document each: together in every shard, so no single node
            // holds them all and only the union lists every one.
            if id % 10 == 7 {
                doc[format!("solo_{id:03}")] = json!(id);
            }
            doc
        })
        .collect()
}

async fn send(http: &reqwest::Client, method: reqwest::Method, url: &str, body: &Value) -> (u16, Value) {
    common::send(http, KEY, method, url, body).await
}

async fn post(http: &reqwest::Client, url: &str, body: &Value) -> (u16, Value) {
    common::post(http, KEY, url, body).await
}

fn names(answer: &Value) -> Vec<&str> {
    answer["results"].as_array().map(|r| r.iter().filter_map(|f| f["name"].as_str()).collect()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_lists_fields_exactly_like_one_node() {
    let http = reqwest::Client::new();
    let settings = json!({
        "displayedAttributes": ["id", "title", "meta", "extra_1"],
        "searchableAttributes": ["title", "meta.family"],
        "filterableAttributes": [
            "year",
            {"attributePatterns": ["extra_*"], "features": {"facetSearch": true, "filter": {"equality": true, "comparison": false}}}
        ],
        "sortableAttributes": ["year", "extra_3"],
        "rankingRules": ["words", "typo", "proximity", "attribute", "sort", "exactness", "year:desc"],
        "distinctAttribute": "meta.family",
        "faceting": {"sortFacetValuesBy": {"extra_2": "count"}},
    });
    let docs = corpus();

    let single = TestNode::start(KEY).await;
    let base = single.url();
    for uid in ["books", "empty"] {
        post(&http, &format!("{base}/indexes"), &json!({"uid": uid, "primaryKey": "id"})).await;
    }
    send(&http, reqwest::Method::PATCH, &format!("{base}/indexes/books/settings"), &settings).await;
    post(&http, &format!("{base}/indexes/books/documents"), &json!(docs)).await;
    single.wait_idle().await;

    let InProcessCluster { gateway: gw, nodes, .. } = start_cluster(KEY).await;
    for uid in ["books", "empty"] {
        let (status, t) = post(&http, &format!("{gw}/indexes"), &json!({"uid": uid, "primaryKey": "id"})).await;
        assert_eq!(status, 202, "{t}");
    }
    let (status, t) = send(&http, reqwest::Method::PATCH, &format!("{gw}/indexes/books/settings"), &settings).await;
    assert_eq!(status, 202, "{t}");
    for chunk in docs.chunks(100) {
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
            let one = post(&http, &format!("{base}{path}"), &body).await;
            let many = post(&http, &format!("{gw}{path}"), &body).await;
            assert!(
                many == one,
                "{path} {body}: the cluster answers differently: {} {:?} (total {}) vs one node {} {:?} (total {}); {} vs {}",
                many.0,
                names(&many.1),
                many.1["total"],
                one.0,
                names(&one.1),
                one.1["total"],
                many.1,
                one.1
            );
            one
        }
    };

    // Every field, in name order: nested paths and their parents, the field of one document.
    let (status, all) = compare("/indexes/books/fields".into(), json!({"limit": 1000})).await;
    assert_eq!(status, 200);
    let mut expected: Vec<String> = (0..13).map(|i| format!("extra_{i}")).collect();
    expected.extend((0..DOCS).filter(|id| id % 10 == 7).map(|id| format!("solo_{id:03}")));
    expected.extend(
        ["id", "meta", "meta.family", "meta.tags", "meta.tags.label", "rare", "rare.deep", "title", "year"]
            .map(String::from),
    );
    expected.sort();
    assert_eq!(names(&all), expected, "{all}");
    assert_eq!(all["total"], json!(expected.len()));

    // Pages of the union: each is the matching slice of the whole list.
    for (offset, limit) in [(0, 20), (0, 3), (5, 4), (20, 5), (40, 30), (62, 10), (100, 1), (3, 0)] {
        let (status, page) = compare("/indexes/books/fields".into(), json!({"offset": offset, "limit": limit})).await;
        assert_eq!(status, 200);
        let want: Vec<&str> = expected.iter().skip(offset).take(limit).map(String::as_str).collect();
        assert_eq!(names(&page), want, "offset {offset} limit {limit}");
        assert_eq!((page["offset"].clone(), page["limit"].clone()), (json!(offset), json!(limit)));
        assert_eq!(page["total"], json!(expected.len()));
    }

    // Filters, alone and with paging.
    for body in [
        json!({"filter": {"filterable": true}}),
        json!({"filter": {"attributePatterns": ["extra_*"], "sortable": false}, "offset": 2, "limit": 3}),
        json!({"filter": {"displayed": false}, "limit": 50}),
        json!({"filter": {"rankingRule": true}}),
        json!({"filter": {"distinct": true, "searchable": true}}),
        json!({"filter": {"attributePatterns": ["meta.tags.label"]}}),
        json!({"filter": {"attributePatterns": ["rare.*"]}}),
        json!({"filter": {"attributePatterns": ["solo_*"]}, "offset": 30, "limit": 7}),
        json!({"filter": null, "offset": 1}),
    ] {
        let (status, answer) = compare("/indexes/books/fields".into(), body.clone()).await;
        assert_eq!(status, 200, "{body}: {answer}");
    }
    let (_, filterable) = compare("/indexes/books/fields".into(), json!({"filter": {"filterable": true}})).await;
    assert_eq!(filterable["total"], json!(14), "year and the 13 extra fields: {filterable}");
    let (_, parent) =
        compare("/indexes/books/fields".into(), json!({"filter": {"attributePatterns": ["rare.deep"]}})).await;
    assert_eq!(names(&parent), ["rare.deep"], "a parent of a pattern is not listed");

    // Refusals: Meilisearch's codes and messages, before the index is looked up.
    for (path, body, code) in [
        ("/indexes/books/fields", json!({"offset": "x"}), "invalid_index_offset"),
        ("/indexes/books/fields", json!({"limit": -1}), "invalid_index_limit"),
        ("/indexes/books/fields", json!({"filter": {"startsWith": "ti"}}), "invalid_index_fields_filter"),
        ("/indexes/books/fields", json!({"filter": {"sortable": 1}}), "invalid_index_fields_filter_sortable"),
        (
            "/indexes/books/fields",
            json!({"filter": {"attributePatterns": "x"}}),
            "invalid_index_fields_filter_attribute_patterns",
        ),
        ("/indexes/books/fields", json!({"search": "ti"}), "bad_request"),
        ("/indexes/books/fields", json!([]), "bad_request"),
        ("/indexes/nope/fields", json!({"limit": "x"}), "invalid_index_limit"),
        ("/indexes/nope/fields", json!({}), "index_not_found"),
        ("/indexes/bad%20uid!/fields", json!({}), "index_not_found"),
        ("/indexes/.meili-x/fields", json!({}), "invalid_index_uid"),
    ] {
        let (status, err) = compare(path.into(), body.clone()).await;
        assert_eq!(err["code"], json!(code), "{path} {body}: {err}");
        assert_eq!(status, if code == "index_not_found" { 404 } else { 400 });
    }

    // A node that fails has its shards answered by their other copies: nothing is missing.
    // (Dev nodes only: real Meilisearch cannot be told to fail.)
    if let Some(failing) = nodes[0].dev() {
        failing.set_fail_rate(1.0);
        for body in
            [json!({"limit": 1000}), json!({"filter": {"attributePatterns": ["solo_*"]}, "offset": 3, "limit": 30})]
        {
            let (status, answer) = compare("/indexes/books/fields".into(), body.clone()).await;
            assert_eq!(status, 200, "{body}: {answer}");
        }
        failing.clear_faults();
    }

    // An index without documents has no field; a field outlives its documents, as in milli.
    let (_, empty) = compare("/indexes/empty/fields".into(), json!({})).await;
    assert_eq!(empty, json!({"results": [], "offset": 0, "limit": 20, "total": 0}));
    let one = post(&http, &format!("{base}/indexes/books/documents/delete-batch"), &json!([217])).await;
    let many = post(&http, &format!("{gw}/indexes/books/documents/delete-batch"), &json!([217])).await;
    assert_eq!((one.0, many.0), (202, 202), "{one:?} {many:?}");
    single.wait_idle().await;
    for n in &nodes {
        n.wait_idle().await;
    }
    let (_, rare) = compare("/indexes/books/fields".into(), json!({"filter": {"attributePatterns": ["rare*"]}})).await;
    assert_eq!(names(&rare), ["rare", "rare.deep"]);
}
