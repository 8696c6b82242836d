//! Dynamic search rules in a search, as Meilisearch applies them (`milli::dynamic_search_rules`):
//! the rules the search triggers pin documents of the filtered universe; those leave the organic
//! ranking and are placed at their positions, whether or not they match the query.

use serde_json::{json, Map, Value};

use miroir_meili::search_rules::pins::{candidate_pins, surviving_pins, SearchFacts};
use miroir_meili::search_rules::SearchRules;

use super::search::{checked_filter, project};
use super::settings::View;
use super::{Doc, Index};
use crate::error::{Code, DevResult};

/// A pinned document: its position, its internal id and the document.
pub struct Pinned<'a> {
    pub position: u32,
    pub internal: u64,
    pub doc: &'a Doc,
}

/// The documents `rules` pin in this search, in the order Meilisearch injects them.
pub fn pinned<'a>(
    idx: &'a Index,
    body: &Map<String, Value>,
    view: &View,
    rules: &SearchRules,
) -> DevResult<Vec<Pinned<'a>>> {
    let filter_raw = body.get("filter").filter(|f| !f.is_null());
    let facts =
        SearchFacts::new(&idx.uid, body.get("q").and_then(Value::as_str), filter_raw, time::OffsetDateTime::now_utc());
    let candidates = candidate_pins(rules, &facts);
    if candidates.is_empty() {
        return Ok(vec![]);
    }
    let filter = checked_filter(filter_raw.unwrap_or(&Value::Null), view, Code::INVALID_SEARCH_FILTER)?;
    let in_universe = |id: &str| idx.get(id).is_some_and(|d| filter.as_ref().is_none_or(|f| f.matches(d)));
    let mut out: Vec<Pinned> = surviving_pins(candidates, in_universe)
        .into_iter()
        .filter_map(|p| {
            let internal = *idx.ids.get(&p.id)?;
            Some(Pinned { position: p.position, internal, doc: idx.docs.get(&internal)? })
        })
        .collect();
    // Hybrid search sorts its pins by position (`milli::search::hybrid`); keyword search keeps
    // the rules' order.
    if body.get("hybrid").is_some_and(|h| !h.is_null()) {
        out.sort_by_key(|p| p.position);
    }
    Ok(out)
}

/// A pinned document as a hit: its ranking details are only the pin (score 1).
pub fn render(p: &Pinned, view: &View, fields: Option<&[String]>, body: &Map<String, Value>) -> Value {
    let flag = |k: &str| body.get(k).and_then(Value::as_bool).unwrap_or(false);
    let mut h = project(p.doc, view, fields);
    super::vectors::present(&mut h, p.doc, flag("retrieveVectors"));
    if flag("showRankingScore") {
        h.insert("_rankingScore".into(), json!(1.0));
    }
    if flag("showRankingScoreDetails") {
        h.insert("_rankingScoreDetails".into(), json!({"pin": {"order": 0, "position": p.position}}));
    }
    Value::Object(h)
}
