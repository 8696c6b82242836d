//! Dynamic search rules applied by the gateway, after the shards' organic answers are merged, so
//! the answer is the one a single Meilisearch holding every document gives (docs/search-rules.md).
//!
//! Rules are never sent to nodes: a node would pin inside its own shard-filtered answer, the merge
//! would then see each pin once per node (or not at all) at a score it does not have. Instead:
//! 1. the rules the search triggers give candidate pins (kernel, `miroir_meili::search_rules::pins`);
//! 2. the candidates are looked up on the shards that own them, within the search's filter: only
//!    those in the filtered universe survive (Meilisearch's `universe.remove`);
//! 3. nodes are asked for `pins` more organic hits; pinned documents are removed from the merged
//!    organic list (Meilisearch ranks the universe without them) and injected at their positions;
//! 4. totals and facets count the pins that the query alone would not have matched.

use std::collections::BTreeSet;

use miroir::RoutingMap;
use miroir_meili::search_rules::pins::{candidate_pins, merge_into_page, surviving_pins, Pin, SearchFacts};
use serde_json::{json, Map, Value};

use crate::app::AppState;
use crate::error::{AppError, AppResult, Code};
use crate::read::replicas::scoped_filter;
use crate::read::scatter::{scatter, MissingPolicy};
use crate::write::settings::SHARD_FIELD;

/// The pins of a search whose documents are in its filtered universe, with what the answer needs.
#[derive(Debug, Default)]
pub struct Pinned {
    /// `(position, hit)` in the order Meilisearch injects them.
    pub hits: Vec<(u32, Value)>,
    pub ids: BTreeSet<String>,
    /// Pins known to match the query too (they are among the organic candidates already); `None`
    /// when that cannot be asked of the nodes (primary key not filterable, see `finish`).
    pub matching: Option<BTreeSet<String>>,
    /// Facet distribution and stats of the pins the query does not match, as one more "shard
    /// answer" for the facet merge.
    pub extra_facets: Option<Value>,
    /// Shards no copy answered for while looking the pins up.
    pub missing: Vec<u32>,
}

/// Candidate pins of this search: none while the feature is off or no rule applies.
pub fn candidates(map: &RoutingMap, uid: &str, body: &Map<String, Value>) -> Vec<Pin> {
    let on = map.experimental_features.get("dynamicSearchRules").and_then(Value::as_bool) == Some(true);
    if !on || map.search_rules.rules.is_empty() {
        return vec![];
    }
    let filter = body.get("filter").filter(|f| !f.is_null());
    let facts = SearchFacts::new(uid, body.get("q").and_then(Value::as_str), filter, time::OffsetDateTime::now_utc());
    candidate_pins(&map.search_rules, &facts)
}

/// Whether the client made the primary key filterable (then nodes can be asked about one
/// document by its id).
fn pk_filterable(settings: &Value, pk: &str) -> bool {
    let Some(list) = settings.get("filterableAttributes").and_then(Value::as_array) else { return false };
    list.iter().any(|f| match f {
        Value::String(s) => s == pk || s == "*",
        Value::Object(o) => o
            .get("attributePatterns")
            .and_then(Value::as_array)
            .is_some_and(|p| p.iter().any(|x| x.as_str() == Some(pk) || x.as_str() == Some("*"))),
        _ => false,
    })
}

fn quoted(id: &str) -> String {
    format!("\"{}\"", id.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A hit's primary key as the rules name documents.
pub fn id_of(doc: &Value, pk: &str) -> Option<String> {
    match doc.get(pk)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

async fn gather(
    app: &AppState,
    map: &RoutingMap,
    uid: &str,
    path: &str,
    build: impl Fn(&[u32]) -> Value,
    policy: MissingPolicy,
) -> AppResult<(Vec<Value>, Vec<u32>)> {
    let gathered = scatter(app.reads(), map, uid, path, build, app.read_deadline(), policy).await?;
    let mut out = Vec::new();
    for a in &gathered.answers {
        out.push(serde_json::from_slice::<Value>(&a.body).map_err(|e| {
            AppError::new(Code::MIROIR_UNAVAILABLE, format!("Node `{}` answered unreadably: {e}", a.node))
        })?);
    }
    Ok((out, gathered.missing))
}

fn hits_of(answers: &[Value], key: &str) -> Vec<Value> {
    answers.iter().flat_map(|a| a.get(key).and_then(Value::as_array).cloned().unwrap_or_default()).collect()
}

/// Marks a pinned hit among the merge's keys of raw hits (see `is_pinned`).
const PINNED: &str = "__miroir_pinned";

/// A pinned hit's ranking: the pin alone (score 1), as Meilisearch shows it.
fn mark(mut hit: Value, position: u32) -> Value {
    if let Some(h) = hit.as_object_mut() {
        h.remove(SHARD_FIELD);
        h.insert("_rankingScore".into(), json!(1.0));
        h.insert("_rankingScoreDetails".into(), json!({"pin": {"order": 0, "position": position}}));
        h.insert(PINNED.into(), Value::Bool(true));
    }
    hit
}

/// Whether a hit of the page is a pinned document (a whole document, not a key of a raw hit).
pub fn is_pinned(hit: &Value) -> bool {
    hit.get(PINNED).is_some()
}

/// A pinned hit as the page shows it, without what `strip` removes.
pub fn render(hit: &Value, strip: &super::raw::Strip) -> Result<Box<serde_json::value::RawValue>, serde_json::Error> {
    let mut h = hit.as_object().cloned().unwrap_or_default();
    h.shift_remove(PINNED);
    h.shift_remove(SHARD_FIELD);
    if !strip.show_score {
        h.shift_remove("_rankingScore");
    }
    if !strip.show_details {
        h.shift_remove("_rankingScoreDetails");
    }
    for k in strip.pk.into_iter().chain(strip.distinct) {
        h.shift_remove(k);
    }
    if let Some(f) = h.get_mut("_formatted").and_then(Value::as_object_mut) {
        f.shift_remove(SHARD_FIELD);
    }
    serde_json::value::to_raw_value(&h)
}

/// Looks the candidates up on their shards (step 2 above).
pub async fn resolve(
    app: &AppState,
    map: &RoutingMap,
    uid: &str,
    body: &Map<String, Value>,
    pk: &str,
    candidates: Vec<Pin>,
    policy: MissingPolicy,
) -> AppResult<Pinned> {
    let ids: Vec<String> = candidates.iter().map(|p| p.id.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let settings = map.indexes.get(uid).map(|i| i.settings.clone()).unwrap_or(Value::Null);
    let filter = body.get("filter").filter(|f| !f.is_null()).cloned();
    let with = |shards: &[u32], extra: Option<String>| {
        let mut f = scoped_filter(shards, filter.as_ref());
        if let (Some(extra), Value::Array(parts)) = (extra, &mut f) {
            parts.push(Value::from(extra));
        }
        f
    };
    let mut found: Vec<(String, Value)> = Vec::new();
    let mut missing = Vec::new();
    let mut matching = None;
    let mut extra_facets = None;
    let path = format!("/indexes/{uid}/search");
    if pk_filterable(&settings, pk) {
        // Exact: which pins the query matches (rendered by the node like any hit), then the
        // others without the query, with the facets asked for.
        let list =
            |ids: &[String]| format!("{pk} IN [{}]", ids.iter().map(|i| quoted(i)).collect::<Vec<_>>().join(", "));
        let search_body = |shards: &[u32], ids: &[String], q: bool| {
            let mut b = body.clone();
            for k in ["offset", "limit", "page", "hitsPerPage", "distinct"] {
                b.remove(k);
            }
            if !q {
                b.remove("q");
                b.remove("vector");
                b.remove("hybrid");
            } else {
                b.remove("facets");
            }
            b.insert("filter".into(), with(shards, Some(list(ids))));
            b.insert("limit".into(), json!(ids.len()));
            if let Some(Value::Array(attrs)) = b.get_mut("attributesToRetrieve") {
                attrs.push(Value::from(pk));
            }
            Value::Object(b)
        };
        let (answers, m) = gather(app, map, uid, &path, |s| search_body(s, &ids, true), policy).await?;
        missing.extend(m);
        let matched: Vec<Value> = hits_of(&answers, "hits");
        let matched_ids: BTreeSet<String> = matched.iter().filter_map(|h| id_of(h, pk)).collect();
        found.extend(matched.into_iter().filter_map(|h| Some((id_of(&h, pk)?, h))));
        let rest: Vec<String> = ids.iter().filter(|i| !matched_ids.contains(*i)).cloned().collect();
        if !rest.is_empty() {
            let (answers, m) = gather(app, map, uid, &path, |s| search_body(s, &rest, false), policy).await?;
            missing.extend(m);
            found.extend(hits_of(&answers, "hits").into_iter().filter_map(|h| Some((id_of(&h, pk)?, h))));
            if body.get("facets").is_some_and(|f| !f.is_null()) {
                let (facets, stats) = super::merge::merge_facets(&answers, usize::MAX, &Map::new());
                extra_facets = Some(json!({"facetDistribution": facets, "facetStats": stats}));
            }
        }
        matching = Some(matched_ids);
    } else {
        // Without a filterable primary key: the documents by id, within the filter.
        let fetch = |shards: &[u32]| {
            let mut b = json!({"ids": ids, "filter": with(shards, None), "limit": ids.len()});
            if let Some(Value::Array(attrs)) = body.get("attributesToRetrieve") {
                let mut fields = attrs.clone();
                fields.push(Value::from(pk));
                b["fields"] = Value::Array(fields);
            }
            if let Some(v) = body.get("retrieveVectors") {
                b["retrieveVectors"] = v.clone();
            }
            b
        };
        let (answers, m) = gather(app, map, uid, &format!("/indexes/{uid}/documents/fetch"), fetch, policy).await?;
        missing.extend(m);
        found.extend(hits_of(&answers, "results").into_iter().filter_map(|h| Some((id_of(&h, pk)?, h))));
        // A placeholder search matches its whole filtered universe: every pin is a candidate.
        let placeholder = body.get("q").and_then(Value::as_str).is_none_or(|q| q.trim().is_empty())
            && ["vector", "hybrid"].iter().all(|k| body.get(*k).is_none_or(Value::is_null));
        if placeholder {
            matching = Some(found.iter().map(|(id, _)| id.clone()).collect());
        }
    }
    let present: BTreeSet<&String> = found.iter().map(|(id, _)| id).collect();
    let surviving = surviving_pins(candidates, |id| present.contains(&id.to_string()));
    let mut hits = Vec::with_capacity(surviving.len());
    for p in &surviving {
        if let Some((_, h)) = found.iter().find(|(id, _)| *id == p.id) {
            hits.push((p.position, mark(h.clone(), p.position)));
        }
    }
    // Hybrid search sorts its pins by position (`milli::search::hybrid`).
    if body.get("hybrid").is_some_and(|h| !h.is_null()) {
        hits.sort_by_key(|(pos, _)| *pos);
    }
    missing.sort_unstable();
    missing.dedup();
    let ids = surviving.into_iter().map(|p| p.id).collect();
    Ok(Pinned { hits, ids, matching, extra_facets, missing })
}

/// What `finish` needs of the request.
pub struct Window {
    pub start: usize,
    pub count: usize,
    pub max_total_hits: usize,
    pub offset_mode: bool,
    pub page: usize,
    pub hits_per_page: usize,
}

/// Step 3 and 4 on an answer merged from `0` to `start + count + pins` without a total cap:
/// the page with the pins in it, and totals counting the pins the query did not match.
pub fn finish(merged: &mut Value, pinned: Pinned, w: &Window, pk: &str) {
    let Some(obj) = merged.as_object_mut() else { return };
    let total_key = if w.offset_mode { "estimatedTotalHits" } else { "totalHits" };
    let organic_total = obj.get(total_key).and_then(Value::as_u64).unwrap_or(0) as usize;
    let all: Vec<Value> = match obj.remove("hits") {
        Some(Value::Array(h)) => h,
        _ => vec![],
    };
    let seen: BTreeSet<String> = all.iter().filter_map(|h| id_of(h, pk)).collect();
    // Pins the query matched are organic candidates already. Without the nodes' word on it, a
    // pin among the merged hits matched; one absent while every organic hit is here did not;
    // otherwise it is counted as not matching (see docs/search-rules.md).
    let matching = match &pinned.matching {
        Some(m) => m.iter().filter(|id| pinned.ids.contains(*id)).count(),
        None => pinned.ids.iter().filter(|id| seen.contains(*id)).count(),
    };
    let organic: Vec<Value> =
        all.into_iter().filter(|h| id_of(h, pk).is_none_or(|id| !pinned.ids.contains(&id))).collect();
    let total = organic_total + pinned.ids.len() - matching;
    // Totals are not bounded by `maxTotalHits` (Meilisearch 1.50), only the page is.
    let capped = total;
    let start = w.start.min(w.max_total_hits);
    let count = w.count.min(w.max_total_hits.saturating_sub(start));
    let page = merge_into_page(pinned.hits, start, count, organic);
    obj.insert("hits".into(), Value::Array(page));
    if w.offset_mode {
        obj.insert("limit".into(), Value::from(w.count));
        obj.insert("offset".into(), Value::from(start));
        obj.insert("estimatedTotalHits".into(), Value::from(capped));
    } else {
        let h = w.hits_per_page;
        obj.insert("hitsPerPage".into(), Value::from(h));
        obj.insert("page".into(), Value::from(w.page));
        obj.insert("totalPages".into(), Value::from(if h == 0 { 0 } else { capped.div_ceil(h) }));
        obj.insert("totalHits".into(), Value::from(capped));
    }
}

/// A hybrid answer's totals and facets with pins. When the semantic side took part, its
/// candidates are the whole filtered index, pins included: nothing changes. When the keyword
/// side answered alone, the pins it did not match count too, once (`kw_seen`: the keyword hits,
/// for when the nodes cannot say which pins the query matches).
pub fn count_in_hybrid(
    obj: &mut Map<String, Value>,
    pinned: &Pinned,
    keyword_alone: bool,
    kw_seen: &BTreeSet<String>,
    offset_mode: bool,
) {
    if !keyword_alone {
        return;
    }
    let matching = match &pinned.matching {
        Some(m) => m.iter().filter(|id| pinned.ids.contains(*id)).count(),
        None => pinned.ids.iter().filter(|id| kw_seen.contains(*id)).count(),
    };
    let key = if offset_mode { "estimatedTotalHits" } else { "totalHits" };
    let total = obj.get(key).and_then(Value::as_u64).unwrap_or(0) as usize;
    obj.insert(key.into(), Value::from(total + pinned.ids.len() - matching));
    if let (Some(extra), Some(Value::Object(dist))) = (&pinned.extra_facets, obj.get_mut("facetDistribution")) {
        for (facet, values) in extra["facetDistribution"].as_object().into_iter().flatten() {
            let Some(Value::Object(into)) = dist.get_mut(facet) else { continue };
            for (v, n) in values.as_object().into_iter().flatten() {
                let sum = into.get(v).and_then(Value::as_u64).unwrap_or(0) + n.as_u64().unwrap_or(0);
                into.insert(v.clone(), Value::from(sum));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(start: usize, count: usize) -> Window {
        Window { start, count, max_total_hits: 1000, offset_mode: true, page: 1, hits_per_page: 20 }
    }

    fn pinned(ids: &[(&str, u32)], matching: Option<&[&str]>) -> Pinned {
        Pinned {
            hits: ids.iter().map(|(id, p)| (*p, json!({"id": id, "pinned": true}))).collect(),
            ids: ids.iter().map(|(id, _)| id.to_string()).collect(),
            matching: matching.map(|m| m.iter().map(|s| s.to_string()).collect()),
            ..Pinned::default()
        }
    }

    #[test]
    fn pinned_documents_leave_the_organic_list_and_totals_count_them_once() {
        let mut merged = json!({"hits": [{"id": "a"}, {"id": "p"}, {"id": "b"}], "estimatedTotalHits": 3});
        finish(&mut merged, pinned(&[("p", 0), ("q", 1)], Some(&["p"])), &window(0, 20), "id");
        let ids: Vec<&str> = merged["hits"].as_array().unwrap().iter().map(|h| h["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["p", "q", "a", "b"]);
        assert_eq!(merged["estimatedTotalHits"], 4, "3 organic (p among them) + q");
    }

    #[test]
    fn without_the_nodes_word_a_pin_seen_among_the_hits_matched() {
        let mut merged = json!({"hits": [{"id": "a"}, {"id": "p"}], "totalHits": 2});
        let w = Window { offset_mode: false, page: 2, hits_per_page: 1, ..window(1, 1) };
        finish(&mut merged, pinned(&[("p", 0), ("q", 5)], None), &w, "id");
        assert_eq!(merged["hits"], json!([{"id": "a"}]));
        assert_eq!((merged["totalHits"].as_u64(), merged["totalPages"].as_u64()), (Some(3), Some(3)));
    }
}
