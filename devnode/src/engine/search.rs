//! Search: matching, a deterministic ranking that follows the ranking rules and emits
//! Meilisearch-shaped `_rankingScoreDetails`, facets, distinct and both pagination modes.
//!
//! Every score depends only on the document and the query (no corpus statistics), so shards of
//! one index rank a document the same way one node would.

use std::cmp::Ordering;

use serde_json::{json, Map, Value};

pub use super::browse::browse;
pub(super) use super::evaluate::evaluate;
use super::facets::facet_distribution;
pub use super::facets::facet_search;
use super::filter::{self, Filter};
use super::settings::View;
use super::vectors;
use super::{Doc, Index};
use crate::error::{Code, DevResult, MeiliError};
use miroir_meili::search_rules::pins::merge_into_page;

/// Parses a filter and checks every attribute it reads is filterable.
pub fn checked_filter(v: &Value, view: &View, code: Code) -> DevResult<Option<Filter>> {
    let f = filter::parse(v, code)?;
    if let Some(f) = &f {
        let mut fields = Vec::new();
        f.fields(&mut fields);
        for a in fields {
            if !view.is_filterable(&a) {
                return Err(MeiliError::new(
                    code,
                    format!(
                        "Attribute `{a}` is not filterable. Available filterable attribute patterns are: `{}`.\n{}:{}",
                        view.filterable.join(", "),
                        1,
                        1
                    ),
                ));
            }
        }
    }
    Ok(f)
}

pub fn tokens(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric()).filter(|t| !t.is_empty()).map(str::to_lowercase).collect()
}

pub(super) fn num_param(body: &Map<String, Value>, key: &str, code: Code) -> DevResult<Option<usize>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(|n| Some(n as usize)).ok_or_else(|| {
            MeiliError::new(
                code,
                format!("Invalid value type at `.{key}`: expected a positive integer, but found {v}: `{v}`"),
            )
        }),
    }
}

pub(super) fn string_list(body: &Map<String, Value>, key: &str, code: Code) -> DevResult<Option<Vec<String>>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str().map(str::to_string).ok_or_else(|| {
                    MeiliError::new(code, format!("Invalid value type at `.{key}`: expected a string, but found `{x}`"))
                })
            })
            .collect::<DevResult<Vec<_>>>()
            .map(Some),
        Some(v) => {
            Err(MeiliError::new(code, format!("Invalid value type at `.{key}`: expected an array, but found `{v}`")))
        }
    }
}

/// One searchable token with the rank of its attribute and its position.
struct Tok {
    word: String,
    attr: usize,
    pos: usize,
}

fn searchable_tokens(doc: &Doc, view: &View) -> (Vec<Tok>, Vec<String>, usize) {
    let attrs: Vec<String> = match &view.searchable {
        Some(list) => list.clone(),
        // `_vectors` holds embeddings, never searchable text.
        None => doc.keys().filter(|k| *k != vectors::FIELD).cloned().collect(),
    };
    let mut toks = Vec::new();
    let mut texts = Vec::new();
    for (ai, a) in attrs.iter().enumerate() {
        let text = filter::leaf_values(doc, a)
            .iter()
            .map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))
            .collect::<Vec<_>>()
            .join(" ");
        for (pos, w) in tokens(&text).into_iter().enumerate() {
            toks.push(Tok { word: w, attr: ai, pos });
        }
        texts.push(tokens(&text).join(" "));
    }
    (toks, texts, attrs.len().max(1))
}

/// A comparable ranking key per rule: numbers compare descending (higher is better).
#[derive(Debug, Clone)]
pub(super) enum Key {
    Score(f64),
    Sort(Option<Value>, bool),
}

pub(super) struct Ranked {
    pub(super) internal: u64,
    pub(super) keys: Vec<Key>,
    details: Map<String, Value>,
    pub(super) score: f64,
    /// Found by the semantic side of a search (counted in `semanticHitCount`).
    pub semantic: bool,
}

pub(super) fn cmp_values(a: &Value, b: &Value) -> Ordering {
    match (a.as_f64(), b.as_f64(), a.as_str(), b.as_str()) {
        (Some(x), Some(y), ..) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        (Some(_), None, ..) => Ordering::Less,
        (None, Some(_), ..) => Ordering::Greater,
        (_, _, Some(x), Some(y)) => x.to_lowercase().cmp(&y.to_lowercase()),
        _ => Ordering::Equal,
    }
}

pub(super) fn cmp_keys(a: &[Key], b: &[Key]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let o = match (x, y) {
            (Key::Score(x), Key::Score(y)) => y.partial_cmp(x).unwrap_or(Ordering::Equal),
            (Key::Sort(x, asc), Key::Sort(y, _)) => match (x, y) {
                (Some(x), Some(y)) => {
                    let o = cmp_values(x, y);
                    if *asc {
                        o
                    } else {
                        o.reverse()
                    }
                }
                // A document without the sort value always comes last, whatever the direction.
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            },
            _ => Ordering::Equal,
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

pub(super) fn sort_value(doc: &Doc, field: &str, asc: bool) -> Option<Value> {
    let mut vals = filter::leaf_values(doc, field);
    vals.sort_by(cmp_values);
    if asc {
        vals.into_iter().next()
    } else {
        vals.pop()
    }
}

/// Ranks one document; `None` when it does not match the query.
/// The query as ranking sees it: its words, whether the last is a prefix, and the joined text.
pub(super) struct Query<'a> {
    pub words: &'a [String],
    pub prefix_last: bool,
    pub text: &'a str,
}

pub(super) fn rank(
    internal: u64,
    doc: &Doc,
    query: &Query,
    rules: &[String],
    sort: &[(String, bool)],
    view: &View,
) -> Option<Ranked> {
    let (q, prefix_last, q_text) = (query.words, query.prefix_last, query.text);
    let (toks, texts, n_attrs) = searchable_tokens(doc, view);
    let word_matches =
        |i: usize, t: &Tok| t.word == q[i] || (prefix_last && i + 1 == q.len() && t.word.starts_with(&q[i]));
    // Matching strategy `last`: the longest run of leading query words all present in the document.
    let mut matching = 0;
    while matching < q.len() && toks.iter().any(|t| word_matches(matching, t)) {
        matching += 1;
    }
    if !q.is_empty() && matching == 0 {
        return None;
    }
    let mut keys = Vec::new();
    let mut details = Map::new();
    let mut weighted = Vec::new();
    for rule in rules {
        let order = details.len();
        let mut put = |name: &str, mut d: Map<String, Value>, key: Key| {
            d.insert("order".into(), json!(order));
            let mut full = Map::new();
            full.insert("order".into(), json!(order));
            full.extend(d.into_iter().filter(|(k, _)| k != "order"));
            details.insert(name.to_string(), Value::Object(full));
            keys.push(key);
        };
        match rule.as_str() {
            "words" if !q.is_empty() => {
                let s = matching as f64 / q.len() as f64;
                weighted.push(s);
                let mut d = Map::new();
                d.insert("matchingWords".into(), json!(matching));
                d.insert("maxMatchingWords".into(), json!(q.len()));
                d.insert("score".into(), json!(s));
                put("words", d, Key::Score(s));
            }
            "typo" if !q.is_empty() => {
                weighted.push(1.0);
                let mut d = Map::new();
                d.insert("typoCount".into(), json!(0));
                d.insert("maxTypoCount".into(), json!(0));
                d.insert("score".into(), json!(1.0));
                put("typo", d, Key::Score(1.0));
            }
            "proximity" if !q.is_empty() => {
                let mut cost = 0usize;
                for i in 1..matching {
                    let best = toks
                        .iter()
                        .filter(|a| word_matches(i - 1, a))
                        .flat_map(|a| {
                            toks.iter().filter(move |b| b.attr == a.attr).filter(|b| word_matches(i, b)).map(move |b| {
                                if b.pos > a.pos {
                                    (b.pos - a.pos).min(7)
                                } else {
                                    (a.pos - b.pos + 1).min(7)
                                }
                            })
                        })
                        .min()
                        .unwrap_or(7);
                    cost += best - 1;
                }
                let max = 6 * matching.saturating_sub(1);
                let s = if max == 0 { 1.0 } else { 1.0 - cost as f64 / max as f64 };
                weighted.push(s);
                let mut d = Map::new();
                d.insert("score".into(), json!(s));
                put("proximity", d, Key::Score(s));
            }
            "attribute" if !q.is_empty() => {
                let (ao, qd) = attribute_scores(&toks, matching, &word_matches, n_attrs);
                let s = (ao + qd) / 2.0;
                weighted.push(s);
                let mut d = Map::new();
                d.insert("attributeRankingOrderScore".into(), json!(ao));
                d.insert("queryWordDistanceScore".into(), json!(qd));
                d.insert("score".into(), json!(s));
                put("attribute", d, Key::Score(s));
            }
            "attributeRank" if !q.is_empty() => {
                let (ao, _) = attribute_scores(&toks, matching, &word_matches, n_attrs);
                weighted.push(ao);
                let mut d = Map::new();
                d.insert("score".into(), json!(ao));
                put("attributeRank", d, Key::Score(ao));
            }
            "wordPosition" if !q.is_empty() => {
                let (_, qd) = attribute_scores(&toks, matching, &word_matches, n_attrs);
                weighted.push(qd);
                let mut d = Map::new();
                d.insert("score".into(), json!(qd));
                put("wordPosition", d, Key::Score(qd));
            }
            "exactness" if !q.is_empty() => {
                let mut d = Map::new();
                let s = if texts.iter().any(|t| t == q_text) {
                    d.insert("matchType".into(), json!("exactMatch"));
                    1.0
                } else if texts.iter().any(|t| t.starts_with(q_text)) {
                    d.insert("matchType".into(), json!("matchesStart"));
                    0.5
                } else {
                    // As in Meilisearch, a document without an exact attribute is then ranked by
                    // how many query words it contains as whole words.
                    let exact = q.iter().filter(|w| toks.iter().any(|t| &t.word == *w)).count();
                    d.insert("matchType".into(), json!("noExactMatch"));
                    d.insert("matchingWords".into(), json!(exact));
                    d.insert("maxMatchingWords".into(), json!(q.len()));
                    0.5 * exact as f64 / q.len() as f64
                };
                weighted.push(s);
                d.insert("score".into(), json!(s));
                put("exactness", d, Key::Score(s));
            }
            "sort" => {
                for (field, asc) in sort {
                    let v = sort_value(doc, field, *asc);
                    let name = format!("{field}:{}", if *asc { "asc" } else { "desc" });
                    let mut d = Map::new();
                    d.insert("value".into(), v.clone().unwrap_or(Value::Null));
                    let order = details.len();
                    d.insert("order".into(), json!(order));
                    let mut full = Map::new();
                    full.insert("order".into(), json!(order));
                    full.insert("value".into(), v.clone().unwrap_or(Value::Null));
                    details.insert(name, Value::Object(full));
                    keys.push(Key::Sort(v, *asc));
                }
            }
            custom => {
                if let Some((field, dir)) = custom.rsplit_once(':') {
                    let asc = dir == "asc";
                    let v = sort_value(doc, field, asc);
                    let mut d = Map::new();
                    d.insert("value".into(), v.clone().unwrap_or(Value::Null));
                    put(custom, d, Key::Sort(v, asc));
                }
            }
        }
    }
    // `_rankingScore` ignores sort rules, as in Meilisearch; earlier rules weigh more so the
    // global score follows the lexicographic order of the rules in most cases.
    let (mut num, mut den, mut w) = (0.0, 0.0, 1.0);
    for s in &weighted {
        num += s * w;
        den += w;
        w /= 8.0;
    }
    let score = if den == 0.0 { 1.0 } else { num / den };
    Some(Ranked::new(internal, keys, details, score))
}

/// Attribute rank (an earlier searchable attribute is better) and word position (earlier in the
/// attribute is better) of the best occurrence of a matched query word.
fn attribute_scores(
    toks: &[Tok],
    matching: usize,
    word_matches: &dyn Fn(usize, &Tok) -> bool,
    n_attrs: usize,
) -> (f64, f64) {
    let first = toks.iter().filter(|t| (0..matching).any(|i| word_matches(i, t))).min_by_key(|t| (t.attr, t.pos));
    match first {
        Some(t) => (1.0 - t.attr as f64 / n_attrs as f64, 1.0 / (1.0 + t.pos as f64)),
        None => (0.0, 0.0),
    }
}

/// A document as the documents routes return it: `fields` only, and never filtered by
/// `displayedAttributes` (Meilisearch's `some_documents` starts from every field of the index).
pub fn document_fields(doc: &Doc, fields: Option<&[String]>) -> Doc {
    doc.iter()
        .filter(|(k, _)| fields.is_none_or(|f| View::matches_any(f, k)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Projects a search hit on `displayedAttributes` ∩ `attributesToRetrieve`. A nested attribute
/// (`meta.family`) retrieves that part of its parent object, as Meilisearch's
/// `permissive_json_pointer::select_values` does.
pub fn project(doc: &Doc, view: &View, fields: Option<&[String]>) -> Doc {
    let shown: Doc = doc
        .iter()
        .filter(|(k, _)| view.displayed.as_ref().is_none_or(|d| View::matches_any(d, k)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    match fields {
        None => shown,
        Some(f) => select(&shown, "", f),
    }
}

fn select(obj: &Doc, prefix: &str, fields: &[String]) -> Doc {
    let mut out = Doc::new();
    for (k, v) in obj {
        let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        if View::matches_any(fields, &path) {
            out.insert(k.clone(), v.clone());
        } else if let Value::Object(child) = v {
            if fields.iter().any(|f| f.starts_with(&format!("{path}."))) {
                let inner = select(child, &path, fields);
                if !inner.is_empty() {
                    out.insert(k.clone(), Value::Object(inner));
                }
            }
        }
    }
    out
}

pub(super) fn facet_key(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A query evaluated on one index: every matching document, ranked (and deduplicated under
/// `distinct`), with what rendering its hits needs.
pub(super) struct Evaluated<'a> {
    pub view: View,
    pub ranked: Vec<(Ranked, &'a Doc)>,
    pub q_raw: String,
    pub offset: usize,
    pub limit: usize,
    pub page: Option<usize>,
    pub hits_per_page: Option<usize>,
    pub fields: Option<Vec<String>>,
    pub facets: Option<Vec<String>>,
    /// The number of matching documents when it is not `ranked.len()` (a hybrid search ranks
    /// only the best `offset + limit` of each side; its candidates are both sides').
    pub total: Option<usize>,
    /// The matching documents (internal id, document) when they are not the ranked ones (a
    /// hybrid search's candidates are both sides'): facets and federated totals count them.
    pub candidates: Option<Vec<(u64, &'a Doc)>>,
    pub semantic_hits: SemanticHits,
}

impl<'a> Evaluated<'a> {
    /// Every matching document: the candidates, or else the ranked ones.
    pub fn candidates(&self) -> Vec<(u64, &'a Doc)> {
        match &self.candidates {
            Some(c) => c.clone(),
            None => self.ranked.iter().map(|(r, d)| (r.internal, *d)).collect(),
        }
    }
}

/// What `semanticHitCount` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SemanticHits {
    /// A keyword search: no `semanticHitCount`.
    None,
    /// Every hit of the page (a semantic search).
    All,
    /// The hits of the page found by the semantic side (a hybrid search; 0 when the keyword
    /// results were good enough to skip it).
    Counted,
}

impl Ranked {
    pub(super) fn new(internal: u64, keys: Vec<Key>, details: Map<String, Value>, score: f64) -> Ranked {
        Ranked { internal, keys, details, score, semantic: false }
    }
    pub fn details(&self) -> &Map<String, Value> {
        &self.details
    }
    pub fn internal(&self) -> u64 {
        self.internal
    }
    pub fn score(&self) -> f64 {
        self.score
    }
}

/// One hit as a search shows it: the document projected, then the scores asked for.
pub(super) fn render_hit(r: &Ranked, d: &Doc, ev: &Evaluated, body: &Map<String, Value>) -> Map<String, Value> {
    let flag = |k: &str| body.get(k).and_then(Value::as_bool).unwrap_or(false);
    let mut h = project(d, &ev.view, ev.fields.as_deref());
    vectors::present(&mut h, d, flag("retrieveVectors"));
    if flag("showRankingScore") {
        h.insert("_rankingScore".into(), json!(r.score));
    }
    if flag("showRankingScoreDetails") {
        h.insert("_rankingScoreDetails".into(), Value::Object(r.details.clone()));
    }
    h
}

/// `rules`: the dynamic search rules to apply (`None` while the feature is off).
pub fn search(
    idx: &Index,
    body: &Map<String, Value>,
    request_uid: String,
    rules: Option<&miroir_meili::search_rules::SearchRules>,
) -> DevResult<Value> {
    let ev = evaluate(idx, body)?;
    let Evaluated { view, ranked, q_raw, offset, limit, page, hits_per_page, facets, .. } = &ev;
    let pins = match rules {
        Some(r) => super::pins::pinned(idx, body, view, r)?,
        None => vec![],
    };
    // Pinned documents leave the organic ranking (milli removes them from the universe).
    let organic: Vec<&(Ranked, &Doc)> =
        ranked.iter().filter(|(r, _)| !pins.iter().any(|p| p.internal == r.internal)).collect();
    let (offset, limit, page, hits_per_page) = (*offset, *limit, *page, *hits_per_page);
    // Pins count among the candidates whether the query matches them or not, once.
    let pinned_candidates = ev.candidates().iter().filter(|(i, _)| pins.iter().any(|p| p.internal == *i)).count();
    let total = ev.total.unwrap_or(ranked.len()) - pinned_candidates + pins.len();
    let mut out = Map::new();
    let (start, count) = window(offset, limit, page, hits_per_page);
    // Meilisearch clamps offset and limit to maxTotalHits; it echoes the clamped offset but the
    // requested limit (`perform_search` answers with `SearchQuery.limit`).
    // Meilisearch 1.50 reports the whole count; `maxTotalHits` bounds only the reachable hits.
    let capped = total;
    let start = start.min(view.max_total_hits);
    let count = count.min(view.max_total_hits.saturating_sub(start));
    let offset = start;
    // The page: without pins, the ranked hits; with pins, the organic prefix up to the page's end
    // with the pins merged in (`inject_pins`).
    let page_hits: Vec<Result<&(Ranked, &Doc), &super::pins::Pinned>> = if pins.is_empty() {
        let end = (start + count).min(capped).min(organic.len());
        organic.get(start.min(end)..end).unwrap_or(&[]).iter().map(|h| Ok(*h)).collect()
    } else {
        let prefix = organic.iter().take(start + count).map(|h| Ok(*h)).collect();
        merge_into_page(pins.iter().map(|p| (p.position, Err(p))).collect(), start, count, prefix)
    };
    let organic_in_page = || page_hits.iter().filter_map(|h| h.as_ref().ok());
    let semantic_hits = match ev.semantic_hits {
        SemanticHits::None => None,
        SemanticHits::All => Some(organic_in_page().count()),
        SemanticHits::Counted => Some(organic_in_page().filter(|(r, _)| r.semantic).count()),
    };
    let hits: Vec<Value> = page_hits
        .iter()
        .map(|h| match h {
            Ok((r, d)) => Value::Object(render_hit(r, d, &ev, body)),
            Err(p) => super::pins::render(p, view, ev.fields.as_deref(), body),
        })
        .collect();
    out.insert("hits".into(), Value::Array(hits));
    out.insert("query".into(), json!(q_raw));
    out.insert("processingTimeMs".into(), json!(0));
    match (page, hits_per_page) {
        (None, None) => {
            out.insert("limit".into(), json!(limit));
            out.insert("offset".into(), json!(offset));
            out.insert("estimatedTotalHits".into(), json!(capped));
        }
        (p, h) => {
            let h = h.unwrap_or(20);
            out.insert("hitsPerPage".into(), json!(h));
            out.insert("page".into(), json!(p.unwrap_or(1)));
            out.insert("totalPages".into(), json!(if h == 0 { 0 } else { capped.div_ceil(h) }));
            out.insert("totalHits".into(), json!(capped));
        }
    }
    if let Some(fs) = facets {
        let names: Vec<String> = if fs.iter().any(|f| f == "*") { view.filterable.clone() } else { fs.clone() };
        // Pins count among the candidates, matching the query or not.
        let docs: Vec<&Doc> = ev
            .candidates()
            .into_iter()
            .filter(|(i, _)| !pins.iter().any(|p| p.internal == *i))
            .map(|(_, d)| d)
            .chain(pins.iter().map(|p| p.doc))
            .collect();
        let (dist, stats) = facet_distribution(docs.into_iter(), &names, view.max_values_per_facet, &view.facet_orders);
        out.insert("facetDistribution".into(), dist);
        out.insert("facetStats".into(), stats);
    }
    if let Some(n) = semantic_hits {
        out.insert("semanticHitCount".into(), json!(n));
    }
    out.insert("requestUid".into(), json!(request_uid));
    Ok(Value::Object(out))
}

/// The first hit and the number of hits a request's pagination asks for.
pub(super) fn window(offset: usize, limit: usize, page: Option<usize>, hits_per_page: Option<usize>) -> (usize, usize) {
    match (page, hits_per_page) {
        (None, None) => (offset, limit),
        (p, h) => {
            let p = p.unwrap_or(1);
            let h = h.unwrap_or(20);
            if p == 0 {
                (0, 0)
            } else {
                ((p - 1) * h, h)
            }
        }
    }
}
