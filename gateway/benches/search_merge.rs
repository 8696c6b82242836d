//! The gateway's CPU per search answer: three node answers of 200 hits each (documents of about
//! 1.5 KB), merged into a page of 20 at offset 180. `whole` parses every hit into a `Value` (what
//! the gateway did before hits stayed raw); `raw` parses only what the merge orders by.
//!
//! `cargo bench -p miroir-gateway --bench search_merge`

use criterion::{criterion_group, criterion_main, Criterion};
use miroir_gateway::read::search::merge::{merge, MergeSpec};
use miroir_gateway::read::search::raw;
use serde_json::{json, Map, Value};

fn answers() -> Vec<Vec<u8>> {
    (0..3u64)
        .map(|node| {
            let hits: Vec<Value> = (0..200u64)
                .map(|i| {
                    let id = i * 3 + node;
                    let score = 1.0 - id as f64 / 1000.0;
                    json!({
                        "id": id,
                        "title": format!("title of document {id}"),
                        "overview": "lorem ipsum dolor sit amet ".repeat(40),
                        "genres": ["drama", "crime", "history"],
                        "year": 1950 + id % 70,
                        "cast": (0..8).map(|c| json!({"name": format!("actor {c}"), "role": "someone"})).collect::<Vec<_>>(),
                        "_miroir_shard": id % 8,
                        "_rankingScore": score,
                        "_rankingScoreDetails": {
                            "words": {"order": 0, "matchingWords": 2, "maxMatchingWords": 2, "score": 1.0},
                            "typo": {"order": 1, "typoCount": 0, "maxTypoCount": 2, "score": 1.0},
                            "proximity": {"order": 2, "score": score},
                        },
                    })
                })
                .collect();
            serde_json::to_vec(&json!({"hits": hits, "query": "a b", "processingTimeMs": 3, "limit": 200, "offset": 0, "estimatedTotalHits": 4000}))
                .unwrap()
        })
        .collect()
}

fn spec() -> MergeSpec {
    MergeSpec {
        primary_key: "id".into(),
        start: 180,
        count: 20,
        max_total_hits: 1000,
        max_values_per_facet: 100,
        offset_mode: true,
        page: 1,
        hits_per_page: 20,
        facet_orders: Map::new(),
        total_override: None,
    }
}

fn bench(c: &mut Criterion) {
    let bodies = answers();
    let spec = spec();
    c.bench_function("merge_whole_values", |b| {
        b.iter(|| {
            let answers: Vec<Value> = bodies.iter().map(|a| serde_json::from_slice(a).unwrap()).collect();
            let mut merged = merge(answers, &spec, None);
            for h in merged["hits"].as_array_mut().unwrap() {
                let h = h.as_object_mut().unwrap();
                h.remove("_miroir_shard");
                h.remove("_rankingScore");
                h.remove("_rankingScoreDetails");
            }
            serde_json::to_vec(&merged).unwrap()
        })
    });
    c.bench_function("merge_raw_hits", |b| {
        b.iter(|| {
            let parsed = raw::parse(bodies.iter().map(Vec::as_slice), "id", None).unwrap();
            let merged = merge(parsed.answers.clone(), &spec, None);
            let strip = raw::Strip { show_score: false, show_details: false, pk: None, distinct: None };
            let hits = merged["hits"].as_array().unwrap().iter().map(|k| parsed.render(k, &strip).unwrap()).collect();
            let mut rest = merged.as_object().unwrap().clone();
            rest.shift_remove("hits");
            serde_json::to_vec(&raw::Answer { hits, rest }).unwrap()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
