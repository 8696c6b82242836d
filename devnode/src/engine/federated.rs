//! Federated `POST /multi-search` (a `federation` object): the hits of every query, each query's
//! ranking scores multiplied by its `federationOptions.weight`, merged into one list as
//! Meilisearch's `perform_federated_search` does: queries grouped by index, each index's ranked
//! lists merged (a document found by several queries of an index kept once, where it ranks best),
//! then the indexes' lists merged; equal weighted scores (within `f64::EPSILON`) go to the earlier
//! query, and hits of one query keep that query's order.
//!
//! Facets (`facetsByIndex`, `mergeFacets`) are computed over each index's matched documents (see
//! `federated_facets`). Not served (refused with an error, never approximated):
//! `federation.distinct`, remote queries (`federationOptions.remote`/`queryPosition`) and `sort`
//! inside a federated query (whose cross-query comparison needs per-rule weighted scores).

use std::collections::{BTreeMap, HashSet};

use serde_json::{json, Map, Value};

use super::federated_facets;
use super::pins::{pinned, render as render_pin, Pinned};
use super::search::{evaluate, render_hit, Evaluated, Ranked, SemanticHits};
use super::{Doc, Index};
use crate::error::{DevResult, MeiliError};
use miroir_meili::federation::{self, FacetRequest, Query as FederatedQuery, Unserved};
use miroir_meili::pagination::Window;
use miroir_meili::search_rules::pins::merge_into_page;
use miroir_meili::search_rules::SearchRules;

/// What the dev node does not serve in a federated search.
fn unserved(u: Unserved) -> Option<MeiliError> {
    let message = match u {
        Unserved::FederationDistinct => "The dev node does not support `federation.distinct`.".to_string(),
        Unserved::QueryParameter { query, name: "sort" } => {
            format!("Inside `.queries[{query}]`: the dev node does not support `sort` in a federated query.")
        }
        Unserved::QueryParameter { .. } => return None,
        Unserved::FederationOption { query, name } => {
            format!("Inside `.queries[{query}]`: the dev node does not support `federationOptions.{name}`.")
        }
    };
    Some(MeiliError::bad_request(message))
}

/// Parses `federation`, refusing what is not served.
pub fn parse_federation(f: &Value) -> DevResult<(Window, FacetRequest)> {
    federation::parse_federation(f, unserved)
}

/// Meilisearch's `weighted_scores::compare` for hits whose scores are one value each (no sort
/// rule): equal within `f64::EPSILON`.
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
        let best = best.map(|(b, _)| b);
        match best {
            Some(b) => out.push(lists[b].next().expect("peeked")),
            None => return out,
        }
    }
}

/// A hit on its way through the merges.
/// A hit on its way through the merges: an organic one (`ranked`) or a pinned one (`pin`).
struct Candidate<'a> {
    weighted: f64,
    query: usize,
    ranked: Option<&'a Ranked>,
    pin: Option<u32>,
    internal: u64,
    doc: &'a Doc,
    evaluated: usize,
    index: &'a str,
}

fn before(a: &Candidate, b: &Candidate) -> bool {
    // A placeholder query's hits have no ranking values: Meilisearch's weighted comparison puts
    // them after every scored hit, whatever their weight.
    let scored = |c: &Candidate| c.ranked.is_none_or(|r| !r.details().is_empty());
    match (scored(a), scored(b)) {
        (true, false) => return true,
        (false, true) => return false,
        (false, false) => return a.query < b.query,
        (true, true) => {}
    }
    match cmp_weighted(a.weighted, b.weighted) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Equal => a.query < b.query,
        std::cmp::Ordering::Less => false,
    }
}

/// Meilisearch's pinned hits in a federation: taken out of `lists` (each list keeps its order),
/// then sorted by position (stably: list order among equal positions).
fn take_pins<'a>(lists: &mut [Vec<Candidate<'a>>]) -> Vec<(u32, Candidate<'a>)> {
    let mut pins = Vec::new();
    for list in lists.iter_mut() {
        let (pinned, organic): (Vec<_>, Vec<_>) = std::mem::take(list).into_iter().partition(|c| c.pin.is_some());
        *list = organic;
        pins.extend(pinned.into_iter().map(|c| (c.pin.unwrap_or(0), c)));
    }
    pins.sort_by_key(|(p, _)| *p);
    pins
}

/// The organic list (already ranked) with `pins` merged in, cut to `[skip, skip + take)`.
fn with_pins<'a>(
    pins: Vec<(u32, Candidate<'a>)>,
    skip: usize,
    take: usize,
    organic: Vec<Candidate<'a>>,
) -> Vec<Candidate<'a>> {
    if pins.is_empty() {
        return organic.into_iter().skip(skip).take(take).collect();
    }
    let prefix = organic.into_iter().take(skip + take).collect();
    merge_into_page(pins, skip, take, prefix)
}

/// A query of the federation once evaluated: its position, weight, ranking, body and pins.
type QueryRun<'a> = (usize, f64, Evaluated<'a>, Map<String, Value>, Vec<Pinned<'a>>);

/// Runs a federated search. `index` looks an index up (an unknown one is a 400 here: the missing
/// resource is not in the URL). `rules`: the dynamic search rules (`None` while off), applied as
/// Meilisearch does in a federation: each query pins within its own first `required` hits, each
/// index keeps the pins of its queries within its own window, and the federation places the pins
/// that remain by position.
pub fn search<'a>(
    index: impl Fn(&str) -> DevResult<&'a Index>,
    queries: &[Value],
    window: Window,
    facets: &FacetRequest,
    request_uid: String,
    rules: Option<&SearchRules>,
) -> DevResult<Value> {
    let mut by_index: BTreeMap<String, Vec<(usize, FederatedQuery)>> = BTreeMap::new();
    for (i, q) in queries.iter().enumerate() {
        let q = federation::parse_query(i, q, unserved)?;
        by_index.entry(q.index_uid.clone()).or_default().push((i, q));
    }
    let required = window.required();
    let inside =
        |i: usize, e: MeiliError| MeiliError { message: format!("Inside `.queries[{i}]`: {}", e.message), ..e };
    // Every query is evaluated before any hit is made, so `evaluated` outlives the candidates.
    let mut evaluated: Vec<QueryRun<'a>> = Vec::new();
    let mut uids: Vec<(&String, &Vec<(usize, FederatedQuery)>)> = by_index.iter().collect();
    uids.sort_by(|a, b| a.0.cmp(b.0));
    let mut per_index: Vec<(String, usize, usize)> = Vec::new();
    for (uid, qs) in uids {
        let first = qs[0].0;
        let idx = index(uid).map_err(|e| {
            let e = inside(first, e);
            MeiliError { code: e.code.with_status(400), ..e }
        })?;
        let from = evaluated.len();
        for (i, q) in qs {
            // Each query ranks the federation's `required` hits (a hybrid search merges that many
            // of each side).
            let mut body = q.body.clone();
            body.insert("limit".into(), json!(required));
            let ev = evaluate(idx, &body).map_err(|e| inside(*i, e))?;
            let pins = match rules {
                Some(r) => pinned(idx, &q.body, &ev.view, r).map_err(|e| inside(*i, e))?,
                None => vec![],
            };
            evaluated.push((*i, q.weight, ev, q.body.clone(), pins));
        }
        per_index.push((uid.clone(), from, evaluated.len()));
    }
    let mut total = 0;
    let mut index_lists = Vec::new();
    let mut facets_of: BTreeMap<String, Value> = BTreeMap::new();
    let in_facets = |uid: &str, e: MeiliError| {
        MeiliError::new(e.code.with_status(400), format!("Inside `.federation.facetsByIndex.{uid}`: {}", e.message))
    };
    for (uid, from, to) in &per_index {
        let mut lists = Vec::new();
        let mut candidates = HashSet::new();
        let mut matched: BTreeMap<u64, &Doc> = BTreeMap::new();
        let mut max_total_hits = usize::MAX;
        for (_, _, ev, _, _) in evaluated.iter().take(*to).skip(*from) {
            max_total_hits = max_total_hits.min(ev.view.max_total_hits);
        }
        let wanted = required.min(max_total_hits);
        for (n, (i, weight, ev, _, pins)) in evaluated.iter().enumerate().take(*to).skip(*from) {
            for (id, d) in ev.candidates() {
                candidates.insert(id);
                matched.insert(id, d);
            }
            // Pins count among the candidates (and facets) whether the query matches them or not.
            for p in pins {
                candidates.insert(p.internal);
                matched.insert(p.internal, p.doc);
            }
            // The query's own first `wanted` hits, its pins merged in.
            let organic: Vec<Candidate> = ev
                .ranked
                .iter()
                .filter(|(r, _)| !pins.iter().any(|p| p.internal == r.internal()))
                .map(|(r, d)| Candidate {
                    weighted: r.score() * weight,
                    query: *i,
                    ranked: Some(r),
                    pin: None,
                    internal: r.internal(),
                    doc: d,
                    evaluated: n,
                    index: uid.as_str(),
                })
                .collect();
            let pinned_hits: Vec<(u32, Candidate)> = pins
                .iter()
                .map(|p| {
                    let c = Candidate {
                        weighted: *weight,
                        query: *i,
                        ranked: None,
                        pin: Some(p.position),
                        internal: p.internal,
                        doc: p.doc,
                        evaluated: n,
                        index: uid.as_str(),
                    };
                    (p.position, c)
                })
                .collect();
            lists.push(with_pins(pinned_hits, 0, wanted, organic));
        }
        total += candidates.len();
        if let Some(Some(names)) = facets.by_index.get(uid) {
            let idx = index(uid)?;
            let computed = federated_facets::compute(idx, matched.values().copied(), names).map_err(|e| {
                // Meilisearch names the index's first query, then the facets.
                let first = evaluated[*from].0;
                let e = in_facets(uid, e);
                MeiliError { message: format!("Inside `.queries[{first}]`: {}", e.message), ..e }
            })?;
            facets_of.insert(uid.clone(), computed);
        }
        let local_pins = take_pins(&mut lists);
        let mut seen = HashSet::new();
        let organic: Vec<Candidate> =
            kmerge(lists, before).into_iter().filter(|c| seen.insert(c.internal)).take(wanted).collect();
        index_lists.push(with_pins(local_pins, 0, wanted, organic));
    }
    // Indexes listed for facets that no query uses are only checked.
    let unused = |uid: &str, e: MeiliError| {
        let mut e = in_facets(uid, e);
        e.message = format!("{}\n - Note: index `{uid}` is not used in queries", e.message);
        e
    };
    for (uid, names) in &facets.by_index {
        if per_index.iter().any(|(u, ..)| u == uid) {
            continue;
        }
        let idx = index(uid).map_err(|e| unused(uid, e))?;
        if let Some(names) = names {
            federated_facets::check_unused(idx, names).map_err(|e| unused(uid, e))?;
        }
    }
    let merged_facets = match facets.merge {
        Some(max) => {
            let mut listed = Vec::new();
            for (uid, names) in &facets.by_index {
                if let Some(names) = names {
                    listed.push((uid.as_str(), index(uid)?, names.as_slice()));
                }
            }
            let by_count = federated_facets::check_orders(listed.into_iter()).map_err(|e| {
                // Meilisearch names the index where the orders part, and its first query.
                let uid = e.message.split("but index `").nth(1).and_then(|r| r.split('`').next()).unwrap_or_default();
                let first = per_index
                    .iter()
                    .find(|(u, ..)| u == uid)
                    .map(|(_, from, _)| format!("Inside `.queries[{}]`: ", evaluated[*from].0))
                    .unwrap_or_default();
                MeiliError { message: format!("{first}Inside `.federation.facetsByIndex.{uid}`: {}", e.message), ..e }
            })?;
            Some(federated_facets::merge(&facets_of, &by_count, max))
        }
        None => None,
    };
    let (skip, take) = window.skip_take();
    let global_pins = take_pins(&mut index_lists);
    let page: Vec<Candidate> = with_pins(global_pins, skip, take, kmerge(index_lists, before));
    // Counted when any query is not a keyword search: the page's hits found by a semantic side.
    let semantic_hits = evaluated
        .iter()
        .any(|(_, _, ev, _, _)| ev.semantic_hits != SemanticHits::None)
        .then(|| page.iter().filter(|c| c.ranked.is_some_and(|r| r.details().contains_key("vectorSort"))).count());
    let hits: Vec<Value> = page
        .into_iter()
        .map(|c| {
            let (_, _, ev, body, _) = &evaluated[c.evaluated];
            let mut h = match (c.ranked, c.pin) {
                (Some(r), _) => render_hit(r, c.doc, ev, body),
                (None, pin) => {
                    let p = Pinned { position: pin.unwrap_or(0), internal: c.internal, doc: c.doc };
                    match render_pin(&p, &ev.view, ev.fields.as_deref(), body) {
                        Value::Object(h) => h,
                        _ => Map::new(),
                    }
                }
            };
            // Meilisearch puts `_federation` in the document, before the scores.
            let scores: Vec<(String, Value)> = ["_rankingScore", "_rankingScoreDetails"]
                .into_iter()
                .filter_map(|k| h.remove(k).map(|v| (k.to_string(), v)))
                .collect();
            h.insert(
                "_federation".into(),
                json!({"indexUid": c.index, "queriesPosition": c.query, "weightedRankingScore": c.weighted}),
            );
            h.extend(scores);
            Value::Object(h)
        })
        .collect();
    let mut out = Map::new();
    out.insert("hits".into(), Value::Array(hits));
    out.insert("processingTimeMs".into(), json!(0));
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
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kmerge_takes_the_best_head_and_breaks_ties_by_list_order() {
        let merged =
            kmerge(vec![vec![(0.9, 0), (0.5, 0)], vec![(0.9, 1), (0.7, 1)]], |a, b| match cmp_weighted(a.0, b.0) {
                std::cmp::Ordering::Greater => true,
                std::cmp::Ordering::Equal => a.1 < b.1,
                std::cmp::Ordering::Less => false,
            });
        assert_eq!(merged, vec![(0.9, 0), (0.9, 1), (0.7, 1), (0.5, 0)]);
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
}
