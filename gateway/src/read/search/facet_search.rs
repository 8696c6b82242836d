//! `POST /indexes/{uid}/facet-search`: every node of a covering set searches the facet values of
//! its shards (nodes return every matching value: their `maxValuesPerFacet` is Miroir's), the
//! counts are summed per value, ordered as the index's `sortFacetValuesBy` says and cut to the
//! client's `maxValuesPerFacet`, as one Meilisearch would.

use std::time::Instant;

use serde_json::{Map, Value};

use super::merge::{by_count, merge_facet_hits};

use crate::app::AppState;
use crate::error::{AppError, AppResult, Code};
use crate::read::replicas::scoped_filter;
use crate::read::scatter::{scatter, MissingPolicy};

/// A facet search over every shard: each node searches its shards' facet values, the gateway
/// merges them as one node would. Also returns the shards no copy answered for.
pub async fn facet_search(
    app: &AppState,
    uid: &str,
    body: Map<String, Value>,
    policy: MissingPolicy,
) -> AppResult<(Value, Vec<u32>)> {
    let started = Instant::now();
    let map = app.map();
    let index = map.indexes.get(uid).ok_or_else(|| AppError::index_not_found(uid))?;
    let max_values = miroir::settings::max_values_per_facet(&index.settings) as usize;
    let orders: Map<String, Value> =
        index.settings.pointer("/faceting/sortFacetValuesBy").and_then(Value::as_object).cloned().unwrap_or_default();
    let count_order = body.get("facetName").and_then(Value::as_str).is_some_and(|name| by_count(&orders, name));
    let build = |shards: &[u32]| {
        let mut b = body.clone();
        let filter = scoped_filter(shards, b.get("filter"));
        b.insert("filter".into(), filter);
        Value::Object(b)
    };
    let path = format!("/indexes/{uid}/facet-search");
    let gathered = scatter(app.reads(), &map, uid, &path, build, app.read_deadline(), policy).await?;
    let mut answers = Vec::with_capacity(gathered.answers.len());
    for a in &gathered.answers {
        answers.push(serde_json::from_slice::<Value>(&a.body).map_err(|e| {
            AppError::new(
                Code::MIROIR_UNAVAILABLE,
                format!("Node `{}` answered an unreadable facet search: {e}", a.node),
            )
        })?);
    }
    let hits = merge_facet_hits(&answers, max_values, count_order);
    let mut out = answers.first().and_then(Value::as_object).cloned().unwrap_or_default();
    out.insert("facetHits".into(), Value::Array(hits));
    out.insert("processingTimeMs".into(), Value::from(started.elapsed().as_millis() as u64));
    Ok((Value::Object(out), gathered.missing))
}
