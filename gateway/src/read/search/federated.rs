//! Federated `POST /multi-search` (a `federation` object): one list of hits from several queries,
//! merged as Meilisearch's `perform_federated_search` does. Every query is first answered exactly
//! as a single search over the whole cluster (its best `offset + limit` hits, in the order one node
//! would give); then, as in Meilisearch, the queries of each index are merged by weighted ranking
//! score (`_rankingScore × federationOptions.weight`; equal within `f64::EPSILON` goes to the
//! earlier query) with a document found by several of them kept once, and the indexes' lists are
//! merged the same way. The total is, per index, the number of documents any of its queries
//! matches: each node counts it for its shards with a federated search of its own, and shards do
//! not share documents, so the counts add up. Pins of dynamic search rules (each query's, from
//! `search_value`) are taken out and placed by position per index, then in the federation, as
//! Meilisearch does (docs/search-rules.md).
//!
//! Facets (`facetsByIndex`, `mergeFacets`) ride on the same per-node count (`federated_facets`).
//! Refused (never approximated), see docs/search.md: `federation.distinct`, remote queries, `sort` inside a federated query, and `distinct` (the
//! query's or the index's `distinctAttribute`), whose union count cannot be added up over shards.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use serde_json::{json, Map, Value};

use super::federated_facets;
use crate::app::AppState;
use crate::error::{AppError, AppResult, Code};
use crate::read::replicas::scoped_filter;
use crate::read::scatter::{scatter, MissingPolicy};
use miroir_meili::federation::{self, FacetRequest, Query, Unserved};
use miroir_meili::pagination::Window;
use miroir_meili::MeiliError;

/// A Meilisearch error answered with the status a federated search gives it (an unknown index is
/// 400 there: the missing resource is not in the URL).
fn meili(status: u16, code: Code, message: String) -> AppError {
    AppError::new(code.with_status(status), message)
}

fn not_supported(what: &str) -> AppError {
    AppError::new(Code::MIROIR_NOT_SUPPORTED, format!("{what} is not supported by Miroir in a federated search."))
}

/// What Miroir refuses rather than approximate (see docs/search.md).
fn unserved(u: Unserved) -> Option<MeiliError> {
    let what = match u {
        Unserved::FederationDistinct => "`federation.distinct`".to_string(),
        Unserved::QueryParameter { query, name } => format!("`{name}` inside a query (`.queries[{query}]`)"),
        Unserved::FederationOption { query, name } => format!("`.queries[{query}].federationOptions.{name}`"),
    };
    Some(MeiliError::new(
        Code::MIROIR_NOT_SUPPORTED,
        format!("{what} is not supported by Miroir in a federated search."),
    ))
}

/// Parses `federation`, refusing what Miroir does not serve.
pub fn parse_federation(f: &Value) -> AppResult<(Window, FacetRequest)> {
    Ok(federation::parse_federation(f, unserved)?)
}

/// Parses query `i` of a federated search, refusing what Miroir does not serve.
pub fn parse_query(i: usize, q: &Value) -> AppResult<Query> {
    Ok(federation::parse_query(i, q, unserved)?)
}

/// Meilisearch's `weighted_scores::compare` for scores of one value each (no sort rule): equal
/// within `f64::EPSILON`.
pub fn cmp_weighted(a: f64, b: f64) -> std::cmp::Ordering {
    if (a - b).abs() <= f64::EPSILON {
        std::cmp::Ordering::Equal
    } else {
        a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal)
    }
}

/// `itertools::kmerge_by` over lists each already in order: repeatedly the head that `first`
/// puts before every other head.
pub fn kmerge<T>(lists: Vec<Vec<T>>, first: impl Fn(&T, &T) -> bool) -> Vec<T> {
    let mut lists: Vec<std::iter::Peekable<std::vec::IntoIter<T>>> =
        lists.into_iter().map(|l| l.into_iter().peekable()).collect();
    let mut out = Vec::new();
    loop {
        let mut best: Option<(usize, &T)> = None;
        for (i, list) in lists.iter_mut().enumerate() {
            let Some(h) = list.peek() else { continue };
            best = match best {
                Some((b, bh)) if !first(h, bh) => Some((b, bh)),
                _ => Some((i, h)),
            };
        }
        match best.map(|(b, _)| b) {
            Some(b) => out.extend(lists[b].next()),
            None => return out,
        }
    }
}

/// A hit with what the merges compare: its weighted score and its query's position.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub weighted: f64,
    pub position: usize,
    pub hit: Value,
    /// The position a dynamic search rule pinned this hit at.
    pub pin: Option<u32>,
}

/// Meilisearch's pinned hits in a federation: taken out of `lists` (each list keeps its order),
/// then sorted by position (stably: list order among equal positions).
fn take_pins(lists: &mut [Vec<Scored>]) -> Vec<(u32, Scored)> {
    let mut pins = Vec::new();
    for list in lists.iter_mut() {
        let (pinned, organic): (Vec<_>, Vec<_>) = std::mem::take(list).into_iter().partition(|s| s.pin.is_some());
        *list = organic;
        pins.extend(pinned.into_iter().map(|s| (s.pin.unwrap_or(0), s)));
    }
    pins.sort_by_key(|(p, _)| *p);
    pins
}

/// The ranked organic list with `pins` merged in as Meilisearch does, cut to `[skip, skip+take)`.
fn with_pins(pins: Vec<(u32, Scored)>, skip: usize, take: usize, organic: Vec<Scored>) -> Vec<Scored> {
    if pins.is_empty() {
        return organic.into_iter().skip(skip).take(take).collect();
    }
    let prefix = organic.into_iter().take(skip + take).collect();
    miroir_meili::search_rules::pins::merge_into_page(pins, skip, take, prefix)
}

/// Whether a hit has ranking values to compare: a placeholder query's hits have none (empty
/// details), and Meilisearch's `weighted_scores::compare` puts them after every scored hit,
/// whatever their weight (checked against a real Meilisearch 1.50). Without details, assumed.
fn has_values(hit: &Value) -> bool {
    hit.get("_rankingScoreDetails").and_then(Value::as_object).is_none_or(|d| !d.is_empty())
}

pub fn before(a: &Scored, b: &Scored) -> bool {
    match (has_values(&a.hit), has_values(&b.hit)) {
        (true, false) => return true,
        (false, true) => return false,
        (false, false) => return a.position < b.position,
        (true, true) => {}
    }
    match cmp_weighted(a.weighted, b.weighted) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Equal => a.position < b.position,
        std::cmp::Ordering::Less => false,
    }
}

/// Merges one index's queries (each list in its query's order), keeping a document (by primary
/// key) where it first comes, up to `take` hits.
pub fn merge_index(lists: Vec<Vec<Scored>>, primary_key: &str, take: usize) -> Vec<Scored> {
    let mut seen = HashSet::new();
    kmerge(lists, before)
        .into_iter()
        .filter(|s| seen.insert(s.hit.get(primary_key).map(Value::to_string).unwrap_or_default()))
        .take(take)
        .collect()
}

/// The query a node counts matches of: a hybrid query becomes the search whose candidates its
/// answer counted (each node would otherwise decide for itself whether its keyword results are
/// good enough, and count other documents).
fn counted_query(q: &Query, resolved: super::hybrid::Kind) -> Query {
    let mut q = q.clone();
    if matches!(super::hybrid::kind(&q.body), super::hybrid::Kind::Hybrid { .. }) {
        match resolved {
            super::hybrid::Kind::Keyword => {
                q.body.remove("hybrid");
                q.body.remove("vector");
            }
            _ => {
                if let Some(h) = q.body.get_mut("hybrid").and_then(Value::as_object_mut) {
                    h.insert("semanticRatio".into(), json!(1.0));
                }
            }
        }
    }
    q
}

/// A query with the shard filter of `shards` in front of its own.
fn scoped(body: &Map<String, Value>, shards: &[u32]) -> Map<String, Value> {
    let mut b = body.clone();
    let filter = scoped_filter(shards, b.get("filter"));
    b.insert("filter".into(), filter);
    b
}

/// The number of documents any of `queries` (all on index `uid`) matches, and their `facets`:
/// each node counts them for its shards with a federated search asking for no hits.
async fn union_count(
    app: &AppState,
    uid: &str,
    queries: &[&Query],
    facets: Option<&[String]>,
    policy: MissingPolicy,
) -> AppResult<(usize, Option<Value>, Vec<u32>)> {
    let map = app.map();
    let build = |shards: &[u32]| {
        let qs: Vec<Value> = queries
            .iter()
            .map(|q| {
                let mut b = scoped(&q.body, shards);
                b.insert("indexUid".into(), Value::from(uid));
                Value::Object(b)
            })
            .collect();
        let mut federation = json!({"limit": 0, "offset": 0});
        if let Some(f) = facets {
            federation["facetsByIndex"] = json!({ uid: f });
        }
        json!({"federation": federation, "queries": qs})
    };
    let gathered = scatter(app.reads(), &map, uid, "/multi-search", build, app.read_deadline(), policy).await?;
    let mut total = 0;
    let mut entries = Vec::new();
    for a in &gathered.answers {
        let v: Value = serde_json::from_slice(&a.body).map_err(|e| {
            AppError::new(Code::MIROIR_UNAVAILABLE, format!("Node `{}` answered an unreadable search: {e}", a.node))
        })?;
        total += v.get("estimatedTotalHits").and_then(Value::as_u64).unwrap_or(0) as usize;
        entries.extend(v.pointer(&format!("/facetsByIndex/{uid}")).cloned());
    }
    let computed = facets.map(|_| {
        let settings = map.indexes.get(uid).map(|i| i.settings.clone()).unwrap_or(Value::Null);
        federated_facets::from_nodes(&entries, &settings)
    });
    Ok((total, computed, gathered.missing))
}

/// Checks an index listed in `facetsByIndex` that no query uses, as Meilisearch does: it must
/// exist and its facets be filterable.
async fn check_unused(app: &AppState, uid: &str, facets: Option<&[String]>, policy: MissingPolicy) -> AppResult<()> {
    let wrap = |e: AppError| {
        let message = format!(
            "Inside `.federation.facetsByIndex.{uid}`: {}\n - Note: index `{uid}` is not used in queries",
            e.body()["message"].as_str().unwrap_or_default()
        );
        let mut body = e.body();
        body["message"] = Value::from(message);
        AppError::forwarded(400, body)
    };
    if !app.map().indexes.contains_key(uid) {
        return Err(wrap(AppError::index_not_found(uid)));
    }
    let Some(facets) = facets else { return Ok(()) };
    let body = serde_json::Map::from_iter([("facets".to_string(), json!(facets)), ("limit".to_string(), json!(0))]);
    super::merged_search(app, uid, body, policy, "", false).await.map(|_| ()).map_err(wrap)
}

/// Runs a federated search whose queries are already authorised and carry their search rules.
pub async fn search(
    app: &AppState,
    queries: Vec<Query>,
    window: Window,
    facets: &FacetRequest,
    policy: MissingPolicy,
    request_uid: &str,
) -> AppResult<(Value, Vec<u32>)> {
    let started = Instant::now();
    let required = window.required();
    let mut by_index: BTreeMap<String, Vec<&Query>> = BTreeMap::new();
    for q in &queries {
        by_index.entry(q.index_uid.clone()).or_default().push(q);
    }
    let map = app.map();
    let mut missing = Vec::new();
    let mut total = 0;
    let mut index_lists = Vec::new();
    let mut facets_of: BTreeMap<String, Value> = BTreeMap::new();
    // Indexes in uid order, as Meilisearch runs them (which error comes first depends on it).
    for (uid, qs) in &by_index {
        let inside = |i: usize| format!("Inside `.queries[{i}]`: ");
        let Some(index) = map.indexes.get(uid) else {
            let message = format!("{}Index `{uid}` not found.", inside(qs[0].position));
            return Err(meili(400, Code::INDEX_NOT_FOUND, message));
        };
        if index.settings.get("distinctAttribute").is_some_and(|d| !d.is_null()) {
            return Err(not_supported(&format!("An index with a `distinctAttribute` (`{uid}`)")));
        }
        let primary_key = index.primary_key.clone().unwrap_or_else(|| "id".into());
        let max_total_hits =
            index.settings.pointer("/pagination/maxTotalHits").and_then(Value::as_u64).map_or(1000, |n| n as usize);
        let mut lists = Vec::new();
        let mut counted = Vec::new();
        for q in qs {
            let mut body = q.body.clone();
            body.insert("showRankingScore".into(), Value::Bool(true));
            // A hit found by the semantic side carries `vectorSort` (for `semanticHitCount`), a
            // pinned hit its `pin` (`render` shows the details only if asked for).
            body.insert("showRankingScoreDetails".into(), Value::Bool(true));
            body.insert("offset".into(), json!(0));
            body.insert("limit".into(), json!(required));
            // Documents are told apart by primary key, so it must come back.
            if let Some(Value::Array(attrs)) = body.get_mut("attributesToRetrieve") {
                if !attrs.iter().any(|a| a == "*" || a.as_str() == Some(primary_key.as_str())) {
                    attrs.push(Value::from(primary_key.clone()));
                }
            }
            let (answer, miss, resolved) = super::search_resolved(app, uid, body, policy, request_uid)
                .await
                .map_err(|e| e.inside(&inside(q.position)))?;
            counted.push(counted_query(q, resolved));
            let answer = answer.into_value();
            missing.extend(miss);
            let hits = answer.get("hits").and_then(Value::as_array).cloned().unwrap_or_default();
            lists.push(
                hits.into_iter()
                    .map(|hit| Scored {
                        weighted: hit.get("_rankingScore").and_then(Value::as_f64).unwrap_or(0.0) * q.weight,
                        position: q.position,
                        pin: hit
                            .pointer("/_rankingScoreDetails/pin/position")
                            .and_then(Value::as_u64)
                            .map(|p| p as u32),
                        hit,
                    })
                    .collect(),
            );
        }
        let wanted = facets.by_index.get(uid).and_then(|f| f.as_deref());
        let counted: Vec<&Query> = counted.iter().collect();
        let (count, computed, miss) = union_count(app, uid, &counted, wanted, policy).await.map_err(|e| {
            // The node's own federated search names its queries from 0: the client's positions
            // replace them (Meilisearch names the index's first query for a facet error).
            let mut body = e.body();
            let Some(message) = body["message"].as_str().map(str::to_string) else { return e };
            let rest = message
                .strip_prefix("Inside `.queries[")
                .and_then(|r| r.split_once("]`: "))
                .and_then(|(n, rest)| Some((qs.get(n.parse::<usize>().ok()?)?.position, rest)));
            let message = match rest {
                Some((position, rest)) => format!("{}{rest}", inside(position)),
                None if message.starts_with("Inside `.federation.") => format!("{}{message}", inside(qs[0].position)),
                None => return e.inside(&inside(qs[0].position)),
            };
            body["message"] = Value::from(message);
            let status = e.forwarded.as_ref().map_or(e.code.status, |f| f.0.as_u16());
            AppError::forwarded(status, body)
        })?;
        total += count;
        missing.extend(miss);
        facets_of.extend(computed.map(|c| (uid.clone(), c)));
        // Each query's list holds its pins within its first hits (`search_resolved`); the index
        // keeps those within its own window, the federation places the rest by position.
        let window_len = required.min(max_total_hits);
        let local_pins = take_pins(&mut lists);
        index_lists.push(with_pins(local_pins, 0, window_len, merge_index(lists, &primary_key, window_len)));
    }
    for (uid, names) in &facets.by_index {
        if !by_index.contains_key(uid) {
            check_unused(app, uid, names.as_deref(), policy).await?;
        }
    }
    let merged_facets = match facets.merge {
        Some(max) => {
            let mut listed = Vec::new();
            for (uid, names) in &facets.by_index {
                if let (Some(names), Some(index)) = (names, map.indexes.get(uid)) {
                    listed.push((uid.as_str(), &index.settings, names.as_slice()));
                }
            }
            let by_count = federated_facets::check_orders(listed.into_iter()).map_err(|e| {
                // Meilisearch names the index where the orders part, and its first query.
                let mut body = e.body();
                let message = body["message"].as_str().unwrap_or_default().to_string();
                let uid = message.split("but index `").nth(1).and_then(|r| r.split('`').next()).unwrap_or_default();
                let first =
                    by_index.get(uid).map(|qs| format!("Inside `.queries[{}]`: ", qs[0].position)).unwrap_or_default();
                body["message"] = Value::from(format!("{first}Inside `.federation.facetsByIndex.{uid}`: {message}"));
                AppError::forwarded(400, body)
            })?;
            Some(federated_facets::merge(&facets_of, &by_count, max))
        }
        None => None,
    };
    let (skip, take) = window.skip_take();
    let global_pins = take_pins(&mut index_lists);
    let page: Vec<Scored> = with_pins(global_pins, skip, take, kmerge(index_lists, before));
    // As Meilisearch: counted when any query is not a keyword search, the page's semantic hits.
    let semantic_hits = queries
        .iter()
        .any(|q| super::hybrid::kind(&q.body) != super::hybrid::Kind::Keyword)
        .then(|| page.iter().filter(|s| s.hit.pointer("/_rankingScoreDetails/vectorSort").is_some()).count());
    let hits: Vec<Value> = page.into_iter().map(|s| render(s, &queries, &map)).collect();
    let mut out = Map::new();
    out.insert("hits".into(), Value::Array(hits));
    out.insert("processingTimeMs".into(), json!(started.elapsed().as_millis() as u64));
    out.extend(window.info(total));
    if let Some(n) = semantic_hits {
        out.insert("semanticHitCount".into(), json!(n));
    }
    match merged_facets {
        Some(Some((distribution, stats))) => {
            out.insert("facetDistribution".into(), distribution);
            out.insert("facetStats".into(), stats);
        }
        Some(None) => {}
        None if !facets_of.is_empty() => {
            out.insert("facetsByIndex".into(), json!(facets_of));
        }
        None => {}
    }
    out.insert("requestUid".into(), json!(request_uid));
    missing.sort_unstable();
    missing.dedup();
    Ok((Value::Object(out), missing))
}

/// A merged hit as the client sees it: what its query asked for, then `_federation` before the
/// scores, as Meilisearch puts it in the document.
fn render(s: Scored, queries: &[Query], map: &miroir::RoutingMap) -> Value {
    let q = &queries[s.position];
    let Value::Object(mut h) = s.hit else { return s.hit };
    let flag = |k: &str| q.body.get(k).and_then(Value::as_bool).unwrap_or(false);
    let score = h.remove("_rankingScore");
    let details = h.remove("_rankingScoreDetails");
    let primary_key = map.indexes.get(&q.index_uid).and_then(|i| i.primary_key.clone()).unwrap_or_else(|| "id".into());
    if let Some(Value::Array(attrs)) = q.body.get("attributesToRetrieve") {
        if !attrs.iter().any(|a| a == "*" || a.as_str() == Some(primary_key.as_str())) {
            h.remove(&primary_key);
        }
    }
    h.insert(
        "_federation".into(),
        json!({"indexUid": q.index_uid, "queriesPosition": q.position, "weightedRankingScore": s.weighted}),
    );
    if flag("showRankingScore") {
        h.extend(score.map(|v| ("_rankingScore".to_string(), v)));
    }
    if flag("showRankingScoreDetails") {
        h.extend(details.map(|v| ("_rankingScoreDetails".to_string(), v)));
    }
    Value::Object(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(w: f64, p: usize, id: u64) -> Scored {
        Scored { weighted: w, position: p, hit: json!({"id": id}), pin: None }
    }

    #[test]
    fn pins_leave_their_lists_and_are_placed_by_position() {
        let pinned = |p: usize, id: u64, at: u32| Scored { pin: Some(at), ..s(1.0, p, id) };
        let mut lists = vec![vec![pinned(0, 9, 2), s(0.9, 0, 1)], vec![pinned(1, 8, 0), s(0.8, 1, 2), pinned(1, 7, 2)]];
        let pins = take_pins(&mut lists);
        let order: Vec<u64> = pins.iter().map(|(_, x)| x.hit["id"].as_u64().unwrap()).collect();
        assert_eq!(order, [8, 9, 7], "by position, list order among equals");
        let organic = kmerge(lists, before);
        let page: Vec<u64> = with_pins(pins, 1, 3, organic).iter().map(|x| x.hit["id"].as_u64().unwrap()).collect();
        assert_eq!(page, [1, 9, 7], "8 at 0 skipped, 1 organic, then 9 and 7 at 2 (7 pumped)");
    }

    #[test]
    fn merge_breaks_ties_by_query_and_keeps_a_document_once() {
        let q0 = vec![s(0.9, 0, 1), s(0.5, 0, 2)];
        let q1 = vec![s(0.9, 1, 3), s(0.7, 1, 2), s(0.1, 1, 4)];
        let ids: Vec<u64> = merge_index(vec![q0, q1], "id", 10).iter().map(|x| x.hit["id"].as_u64().unwrap()).collect();
        assert_eq!(ids, vec![1, 3, 2, 4]);
        assert_eq!(merge_index(vec![vec![s(1.0, 0, 1), s(0.5, 0, 2)]], "id", 1).len(), 1);
    }

    #[test]
    fn a_placeholder_querys_hits_come_after_scored_hits_whatever_their_weight() {
        let placeholder =
            |w: f64, p: usize, id: u64| Scored { hit: json!({"id": id, "_rankingScoreDetails": {}}), ..s(w, p, id) };
        let scored = |w: f64, p: usize, id: u64| Scored {
            hit: json!({"id": id, "_rankingScoreDetails": {"words": {"order": 0, "score": w}}}),
            ..s(w, p, id)
        };
        assert!(before(&scored(0.2, 1, 1), &placeholder(1.1, 0, 2)));
        assert!(!before(&placeholder(1.1, 0, 2), &scored(0.2, 1, 1)));
        assert!(before(&placeholder(0.5, 0, 3), &placeholder(2.0, 1, 4)), "then by query");
    }

    #[test]
    fn scores_within_epsilon_are_equal() {
        assert_eq!(cmp_weighted(0.3, 0.1 + 0.2), std::cmp::Ordering::Equal);
        assert!(before(&s(0.3, 0, 1), &s(0.1 + 0.2, 1, 2)));
    }

    #[test]
    fn windows_follow_meilisearch() {
        let w = Window { limit: 5, offset: 3, page: None, hits_per_page: None };
        assert_eq!((w.required(), w.skip_take()), (8, (3, 5)));
        let w = Window { limit: 20, offset: 0, page: Some(3), hits_per_page: Some(4) };
        assert_eq!((w.required(), w.skip_take()), (12, (8, 4)));
        assert_eq!(w.info(9)["totalPages"], json!(3));
        let w = Window { limit: 20, offset: 0, page: Some(0), hits_per_page: None };
        assert_eq!((w.required(), w.skip_take()), (0, (0, 0)));
    }

    #[test]
    fn queries_refuse_pagination_facets_sort_and_bad_weights() {
        let e = parse_query(1, &json!({"indexUid": "a", "limit": 3})).unwrap_err();
        assert_eq!(e.body()["code"], Code::INVALID_MULTI_SEARCH_QUERY_PAGINATION);
        let e = parse_query(0, &json!({"indexUid": "a", "facets": ["g"]})).unwrap_err();
        assert_eq!(e.body()["code"], Code::INVALID_MULTI_SEARCH_QUERY_FACETS);
        let e = parse_query(0, &json!({"indexUid": "a", "sort": ["p:asc"]})).unwrap_err();
        assert_eq!(e.body()["code"], Code::MIROIR_NOT_SUPPORTED);
        let e = parse_query(0, &json!({"indexUid": "a", "federationOptions": {"weight": -1}})).unwrap_err();
        assert_eq!(e.body()["code"], Code::INVALID_MULTI_SEARCH_WEIGHT);
        let q = parse_query(2, &json!({"indexUid": "a", "q": "x", "federationOptions": {"weight": 2.5}})).unwrap();
        assert_eq!((q.position, q.index_uid.as_str(), q.weight), (2, "a", 2.5));
        assert!(!q.body.contains_key("federationOptions"));
        assert!(parse_federation(&json!({"facetsByIndex": {"a": ["g"]}})).is_ok());
        assert!(parse_federation(&json!({"distinct": "g"})).is_err());
    }
}
