//! Evaluating a search on one index: validation of the query, then every matching document
//! ranked the way its kind asks (keyword, semantic or hybrid, see `vectors`), deduplicated under
//! `distinct`.

use serde_json::{json, Map, Value};

use super::filter;
use super::search::{
    checked_filter, cmp_keys, facet_key, num_param, rank, string_list, tokens, window, Evaluated, Query, Ranked,
    SemanticHits,
};
use super::settings::View;
use super::vectors;
use super::{Doc, Index};
use crate::error::{Code, DevResult, MeiliError};

const PARAMS: &[&str] = &[
    "q",
    "vector",
    "offset",
    "limit",
    "page",
    "hitsPerPage",
    "attributesToRetrieve",
    "retrieveVectors",
    "attributesToCrop",
    "cropLength",
    "attributesToHighlight",
    "showMatchesPosition",
    "showRankingScore",
    "showRankingScoreDetails",
    "rankingScoreThreshold",
    "filter",
    "sort",
    "distinct",
    "facets",
    "highlightPreTag",
    "highlightPostTag",
    "cropMarker",
    "matchingStrategy",
    "attributesToSearchOn",
    "hybrid",
    "locales",
    "media",
    "personalize",
    "indexUid",
    "federationOptions",
    "useNetwork",
];

/// Validates a query and ranks every matching document.
pub(super) fn evaluate<'a>(idx: &'a Index, body: &Map<String, Value>) -> DevResult<Evaluated<'a>> {
    if let Some(k) = body.keys().find(|k| !PARAMS.contains(&k.as_str())) {
        return Err(MeiliError::bad_request(format!(
            "Unknown field `{k}`: expected one of {}",
            miroir_meili::listed(PARAMS)
        )));
    }
    let view = View::from_full(&idx.settings());
    let q_raw = match body.get("q") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => {
            return Err(MeiliError::new(
                Code::INVALID_SEARCH_Q,
                format!("Invalid value type at `.q`: expected a string, but found `{v}`"),
            ))
        }
    };
    let q: Vec<String> = tokens(&q_raw).into_iter().filter(|w| !view.stop_words.contains(w)).collect();
    let prefix_last = !q_raw.ends_with(char::is_whitespace);
    let q_text = q.join(" ");
    let offset = num_param(body, "offset", Code::INVALID_SEARCH_OFFSET)?.unwrap_or(0);
    let limit = num_param(body, "limit", Code::INVALID_SEARCH_LIMIT)?.unwrap_or(20);
    let page = num_param(body, "page", Code::INVALID_SEARCH_PAGE)?;
    let hits_per_page = num_param(body, "hitsPerPage", Code::INVALID_SEARCH_HITS_PER_PAGE)?;
    let fields = string_list(body, "attributesToRetrieve", Code::INVALID_SEARCH_ATTRIBUTES_TO_RETRIEVE)?;
    let facets = string_list(body, "facets", Code::INVALID_SEARCH_FACETS)?;
    let sort_raw = string_list(body, "sort", Code::INVALID_SEARCH_SORT)?.unwrap_or_default();
    let filter = checked_filter(body.get("filter").unwrap_or(&Value::Null), &view, Code::INVALID_SEARCH_FILTER)?;

    let mut sort = Vec::new();
    for s in &sort_raw {
        let Some((field, dir @ ("asc" | "desc"))) = s.rsplit_once(':') else {
            return Err(MeiliError::new(Code::INVALID_SEARCH_SORT, format!("Invalid syntax for the sort parameter: expected expression ending by `:asc` or `:desc`, found `{s}`.")));
        };
        if !View::matches_any(&view.sortable, field) {
            return Err(MeiliError::new(
                Code::INVALID_SEARCH_SORT,
                format!(
                    "Attribute `{field}` is not sortable. Available sortable attributes are: `{}`.",
                    view.sortable.join(", ")
                ),
            ));
        }
        sort.push((field.to_string(), dir == "asc"));
    }
    if !sort.is_empty() && !view.ranking_rules.iter().any(|r| r == "sort") {
        return Err(MeiliError::new(Code::INVALID_SEARCH_SORT, "You must specify where `sort` is listed in the rankingRules setting to use the sort parameter at search time."));
    }
    let distinct = match body.get("distinct") {
        Some(Value::String(d)) => {
            if !view.is_filterable(d) {
                return Err(MeiliError::new(Code::INVALID_SEARCH_DISTINCT, format!("Attribute `{d}` is not filterable and thus, cannot be used as distinct attribute. Available filterable attributes patterns are: `{}`.", view.filterable.join(", "))));
            }
            Some(d.clone())
        }
        _ => view.distinct.clone(),
    };
    if let Some(fs) = &facets {
        for f in fs {
            if f != "*" && !view.is_filterable(f) {
                return Err(MeiliError::new(
                    Code::INVALID_SEARCH_FACETS,
                    format!(
                        // Meilisearch 1.50's words (checked against a real node).
                        "Invalid facet distribution: Pattern `{f}` is not filterable. Available filterable attributes patterns are: `{}`.",
                        view.filterable.join(", ")
                    ),
                ));
            }
        }
    }

    let embedders = idx.settings().get("embedders").cloned().unwrap_or_else(|| json!({}));
    let kind = vectors::kind(body, &q_raw, &embedders)?;
    let universe: Vec<(u64, &Doc)> =
        idx.docs.iter().filter(|(_, d)| filter.as_ref().is_none_or(|f| f.matches(d))).map(|(i, d)| (*i, d)).collect();
    let keyword = || {
        let ranked: Vec<(Ranked, &Doc)> = universe
            .iter()
            .filter_map(|(i, d)| {
                rank(*i, d, &Query { words: &q, prefix_last, text: &q_text }, &view.ranking_rules, &sort, &view)
                    .map(|r| (r, *d))
            })
            .collect();
        finish(ranked, distinct.as_deref())
    };
    let semantic = |embedder: &str, vector: Option<&[f64]>| {
        let ranked: Vec<(Ranked, &Doc)> = universe
            .iter()
            .map(|(i, d)| (vectors::rank(*i, d, embedder, vector, &view.ranking_rules, &sort), *d))
            .collect();
        finish(ranked, distinct.as_deref())
    };
    let (start, count) = window(offset, limit, page, hits_per_page);
    let wanted = start + count;
    let (ranked, total, candidates, semantic_hits) = match &kind {
        vectors::Kind::Keyword => (keyword(), None, None, SemanticHits::None),
        vectors::Kind::Semantic { embedder, vector } => {
            (semantic(embedder, vector.as_deref()), None, None, SemanticHits::All)
        }
        vectors::Kind::Hybrid { embedder, vector, ratio } => {
            let mut kw = keyword();
            let kw_total = Some(kw.len());
            let kw_docs: Vec<(u64, &Doc)> = kw.iter().map(|(r, d)| (r.internal, *d)).collect();
            kw.truncate(wanted);
            let good =
                vectors::good_enough(kw.iter().map(|(r, _)| r.score).collect::<Vec<_>>().into_iter(), wanted, *ratio);
            match vector {
                // A user-provided embedder cannot embed `q`: milli falls back on the keyword results.
                _ if good => (kw, kw_total, Some(kw_docs), SemanticHits::Counted),
                None => (kw, kw_total, Some(kw_docs), SemanticHits::Counted),
                Some(v) => {
                    let mut sem = semantic(embedder, Some(v));
                    let total = sem.len();
                    sem.truncate(wanted);
                    let merged = vectors::merge(sem, kw, *ratio, distinct.as_deref());
                    let docs = universe.clone();
                    (merged, Some(total), Some(docs), SemanticHits::Counted)
                }
            }
        }
    };
    Ok(Evaluated {
        view,
        ranked,
        q_raw,
        offset,
        limit,
        page,
        hits_per_page,
        fields,
        facets,
        total,
        candidates,
        semantic_hits,
    })
}

/// Sorts ranked documents (ties by internal id, Meilisearch's insertion order) and keeps the
/// first of each `distinct` value.
fn finish<'a>(mut ranked: Vec<(Ranked, &'a Doc)>, distinct: Option<&str>) -> Vec<(Ranked, &'a Doc)> {
    ranked.sort_by(|(a, _), (b, _)| cmp_keys(&a.keys, &b.keys).then(a.internal.cmp(&b.internal)));
    if let Some(attr) = distinct {
        let mut seen = std::collections::HashSet::new();
        ranked.retain(|(_, d)| match filter::leaf_values(d, attr).first() {
            None => true,
            Some(v) => seen.insert(facet_key(v).to_lowercase()),
        });
    }
    ranked
}
