//! The search merge on Meilisearch-shaped answers: order from ranking-score details, ties, missing
//! sort values, totals, windows and facets.

use miroir_gateway::read::search::merge::{compare, merge, MergeSpec};
use serde_json::{json, Value};

fn spec(start: usize, count: usize) -> MergeSpec {
    MergeSpec {
        primary_key: "id".into(),
        start,
        count,
        max_total_hits: 1000,
        max_values_per_facet: 2,
        offset_mode: true,
        page: 1,
        hits_per_page: 20,
        facet_orders: Default::default(),
        total_override: None,
    }
}

fn hit(id: u64, words: f64, price: Option<i64>) -> Value {
    let mut details = json!({"words": {"order": 0, "matchingWords": 1, "maxMatchingWords": 2, "score": words}});
    details["price:asc"] = json!({"order": 1, "value": price});
    json!({"id": id, "_rankingScoreDetails": details})
}

#[test]
fn rules_in_detail_order_then_sort_values_then_primary_key() {
    let s = spec(0, 10);
    // A better `words` score wins before any sort value.
    assert!(compare(&hit(1, 1.0, Some(900)), &hit(2, 0.5, Some(1)), &s).is_lt());
    // Equal words: the lower price first (asc).
    assert!(compare(&hit(1, 1.0, Some(5)), &hit(2, 1.0, Some(1)), &s).is_gt());
    // A document without the sort value is last.
    assert!(compare(&hit(1, 1.0, None), &hit(2, 1.0, Some(1000)), &s).is_gt());
    // Ties on everything: primary key order.
    assert!(compare(&hit(7, 1.0, Some(3)), &hit(3, 1.0, Some(3)), &s).is_gt());
}

#[test]
fn merged_window_totals_and_facets() {
    let a = json!({
        "hits": [hit(1, 1.0, Some(1)), hit(4, 0.5, Some(1))],
        "query": "x", "processingTimeMs": 1, "limit": 3, "offset": 0, "estimatedTotalHits": 2,
        "facetDistribution": {"genre": {"drama": 2, "Horror": 1}},
        "facetStats": {"price": {"min": 1.0, "max": 9.0}},
    });
    let b = json!({
        "hits": [hit(2, 1.0, Some(0)), hit(3, 0.2, None)],
        "query": "x", "processingTimeMs": 1, "limit": 3, "offset": 0, "estimatedTotalHits": 5,
        "facetDistribution": {"genre": {"comedy": 4, "horror": 2}},
        "facetStats": {"price": {"min": 0.5, "max": 4.0}},
    });
    let out = merge(vec![a.clone(), b.clone()], &spec(1, 2), None);
    let ids: Vec<u64> = out["hits"].as_array().unwrap().iter().map(|h| h["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, [1, 4], "global order 2,1,4,3 (2 has the lower price); window from 1, 2 hits");
    assert_eq!(out["estimatedTotalHits"], 7);
    assert_eq!((out["offset"].clone(), out["limit"].clone()), (json!(1), json!(2)));
    // maxTotalHits clamps the window but the requested limit is echoed, as Meilisearch does.
    let mut clamped = spec(1, 20);
    clamped.max_total_hits = 3;
    let out = merge(vec![a.clone(), b.clone()], &clamped, None);
    assert_eq!(out["hits"].as_array().unwrap().len(), 2, "hits 2 and 3 of the 3 allowed");
    assert_eq!(
        (out["offset"].clone(), out["limit"].clone(), out["estimatedTotalHits"].clone()),
        (json!(1), json!(20), json!(7)),
        "the total is not bounded by maxTotalHits (Meilisearch 1.50)"
    );
    // Alphabetical, case-insensitive grouping, truncated to maxValuesPerFacet (2).
    assert_eq!(out["facetDistribution"], json!({"genre": {"comedy": 4, "drama": 2}}));
    assert_eq!(out["facetStats"], json!({"price": {"min": 0.5, "max": 9.0}}));
}

#[test]
fn distinct_keeps_the_best_ranked_across_shards() {
    let mut a = hit(1, 1.0, Some(1));
    a["family"] = json!("f");
    let mut b = hit(2, 0.5, Some(1));
    b["family"] = json!("F");
    let answers = vec![json!({"hits": [a], "estimatedTotalHits": 1}), json!({"hits": [b], "estimatedTotalHits": 1})];
    let out = merge(answers, &spec(0, 10), Some("family"));
    assert_eq!(out["hits"].as_array().unwrap().len(), 1);
    assert_eq!(out["hits"][0]["id"], 1);
}

#[test]
fn facets_by_count_sum_every_shard_then_order_and_cut() {
    // Shard a's top value alone (drama) is not the global top: comedy wins on the sum.
    let a = json!({"hits": [], "estimatedTotalHits": 0, "facetDistribution": {"genre": {"drama": 5, "comedy": 3, "horror": 1}, "year": {"1990": 2, "2000": 2}}});
    let b = json!({"hits": [], "estimatedTotalHits": 0, "facetDistribution": {"genre": {"Comedy": 4, "horror": 4, "drama": 1}, "year": {"1990": 1, "1980": 3}}});
    let mut s = spec(0, 10);
    s.facet_orders = json!({"genre": "count", "*": "alpha"}).as_object().unwrap().clone();
    let out = merge(vec![a.clone(), b.clone()], &s, None);
    // comedy 7, drama 6, horror 5, cut to 2; the first spelling seen is shown.
    assert_eq!(serde_json::to_string(&out["facetDistribution"]["genre"]).unwrap(), r#"{"comedy":7,"drama":6}"#);
    assert_eq!(serde_json::to_string(&out["facetDistribution"]["year"]).unwrap(), r#"{"1980":3,"1990":3}"#);
    // `*: count`: ties broken by the greater value first, as milli's heap pops them.
    s.facet_orders = json!({"*": "count"}).as_object().unwrap().clone();
    let out = merge(vec![a, b], &s, None);
    assert_eq!(serde_json::to_string(&out["facetDistribution"]["year"]).unwrap(), r#"{"1990":3,"1980":3}"#);
}

#[test]
fn distinct_values_nested_case_insensitive_and_exact_totals() {
    use miroir_gateway::read::search::merge::{dedupe, distinct_key, distinct_total};
    assert_eq!(distinct_key(&json!({"meta": {"family": "Oak"}}), "meta.family").as_deref(), Some("oak"));
    assert_eq!(distinct_key(&json!({"meta.family": 7}), "meta.family").as_deref(), Some("7"));
    assert_eq!(distinct_key(&json!({"meta": {"family": ["X", "y"]}}), "meta.family").as_deref(), Some("x"));
    assert_eq!(distinct_key(&json!({"id": 1}), "meta.family"), None);
    let mut hits = vec![
        json!({"id": 1, "meta": {"family": "Oak"}}),
        json!({"id": 2}),
        json!({"id": 3, "meta": {"family": "oak"}}),
        json!({"id": 4}),
    ];
    dedupe(&mut hits, "meta.family");
    let ids: Vec<_> = hits.iter().map(|h| h["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, [1, 2, 4], "documents without a value are all kept");
    // Shard 1: 2 values + 1 document without; shard 2: 2 values (one shared, spelled otherwise).
    assert_eq!(distinct_total([(3, vec!["oak", "elm"]), (2, vec!["OAK", "ash"])]), 4);
}

#[test]
fn distinct_strips_only_what_the_merge_added() {
    use miroir_gateway::read::search::distinct::remove_path;
    let mut h = json!({"id": 1, "meta": {"family": "x", "kept": 1}}).as_object().unwrap().clone();
    remove_path(&mut h, "meta.family");
    assert_eq!(Value::Object(h.clone()), json!({"id": 1, "meta": {"kept": 1}}));
    let mut h = json!({"id": 1, "meta": {"family": "x"}}).as_object().unwrap().clone();
    remove_path(&mut h, "meta.family");
    assert_eq!(Value::Object(h), json!({"id": 1}), "a parent left empty was only there for it");
}

proptest::proptest! {
    /// Each shard answering its own best `offset + limit` distinct hits is enough for the merged
    /// window to be the one a single node would give, however the values spread over shards.
    #[test]
    fn one_round_of_distinct_hits_gives_the_global_window(
        docs in proptest::collection::vec((0u8..4, 0u8..6, 0u8..3), 1..60),
        start in 0usize..10,
        count in 1usize..10,
    ) {
        // (score bucket, family, shard); the family 5 stands for "no value".
        let hit_of = |id: usize, score: u8, family: u8| {
            let mut h = hit(id as u64, f64::from(score) / 4.0, Some(0));
            if family != 5 {
                h["family"] = json!(format!("f{family}"));
            }
            h
        };
        let s = spec(start, count);
        let ranked = |mut hits: Vec<Value>| {
            hits.sort_by(|a, b| compare(a, b, &s));
            miroir_gateway::read::search::merge::dedupe(&mut hits, "family");
            hits
        };
        let all: Vec<Value> = docs.iter().enumerate().map(|(i, (sc, f, _))| hit_of(i, *sc, *f)).collect();
        let global = ranked(all);
        let expected: Vec<Value> = global.iter().skip(start).take(count).map(|h| h["id"].clone()).collect();
        let answers: Vec<Value> = (0..3u8)
            .map(|shard| {
                let mine: Vec<Value> = docs
                    .iter()
                    .enumerate()
                    .filter(|(_, d)| d.2 == shard)
                    .map(|(i, (sc, f, _))| hit_of(i, *sc, *f))
                    .collect();
                let mine = ranked(mine);
                let total = mine.len();
                let top: Vec<Value> = mine.into_iter().take(start + count).collect();
                json!({"hits": top, "estimatedTotalHits": total})
            })
            .collect();
        let out = merge(answers, &s, Some("family"));
        let got: Vec<Value> = out["hits"].as_array().unwrap().iter().map(|h| h["id"].clone()).collect();
        proptest::prop_assert_eq!(got, expected);
    }
}

#[test]
fn without_details_hits_merge_by_ranking_score() {
    let scored = |id: u64, score: f64| json!({"id": id, "_rankingScore": score});
    let s = spec(0, 10);
    assert!(compare(&scored(1, 0.5), &scored(2, 0.9), &s).is_gt(), "the higher score first");
    assert!(compare(&scored(3, 0.5), &scored(2, 0.5), &s).is_gt(), "then the primary key");
    // One side without details: scores decide, not the other's details.
    let mut detailed = hit(1, 1.0, Some(1));
    detailed["_rankingScore"] = json!(0.3);
    assert!(compare(&detailed, &scored(2, 0.9), &s).is_gt());
}

#[test]
fn semantic_hits_merge_by_similarity_with_unembedded_documents_last() {
    let sem = |id: u64, sim: Value| {
        json!({"id": id, "_rankingScore": sim.as_f64().unwrap_or(0.0),
               "_rankingScoreDetails": {"vectorSort": {"order": 0, "similarity": sim}}})
    };
    let answers = vec![
        json!({"hits": [sem(1, json!(0.9)), sem(4, json!(null))], "estimatedTotalHits": 2, "semanticHitCount": 2}),
        json!({"hits": [sem(2, json!(0.95)), sem(3, json!(0.1))], "estimatedTotalHits": 2, "semanticHitCount": 2}),
    ];
    let out = merge(answers, &spec(0, 4), None);
    let ids: Vec<u64> = out["hits"].as_array().unwrap().iter().map(|h| h["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, [2, 1, 3, 4]);
    assert_eq!(out["estimatedTotalHits"], 4);
    assert!(out.get("semanticHitCount").is_none(), "the nodes' own page counts are not summed");
}

#[test]
fn facet_search_hits_sum_order_and_cut() {
    use miroir_gateway::read::search::merge::merge_facet_hits;
    let a = json!({"facetHits": [{"value": "Drama", "count": 2}, {"value": "horror", "count": 5}], "facetQuery": null});
    let b = json!({"facetHits": [{"value": "comedy", "count": 3}, {"value": "drama", "count": 4}], "facetQuery": null});
    let alpha = merge_facet_hits(&[a.clone(), b.clone()], 2, false);
    assert_eq!(json!(alpha), json!([{"value": "comedy", "count": 3}, {"value": "Drama", "count": 6}]));
    let by_count = merge_facet_hits(&[a, b], 3, true);
    assert_eq!(
        json!(by_count),
        json!([{"value": "Drama", "count": 6}, {"value": "horror", "count": 5}, {"value": "comedy", "count": 3}])
    );
}
