//! Which rules a search triggers, the documents they pin, and how pins enter a page: Meilisearch's
//! `resolve_pins` and `merge_positioned_hits_into_page`, on a search's query, filter and instant.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use time::OffsetDateTime;

use super::parse::parse_time;
use super::{Action, SearchRule, SearchRules};

/// Meilisearch's default `wordsLimit`: query words past it are not part of the query.
const WORDS_LIMIT: usize = 10;

/// Lower-cased alphanumeric words, in order.
pub fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

/// What of a search decides which rules it triggers.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchFacts {
    pub index_uid: String,
    /// No query term at all (no `q`, a blank one, or only negated words).
    pub query_is_empty: bool,
    /// The query's words outside phrases and negations, distinct.
    pub query_words: BTreeSet<String>,
    /// `attribute = value` conditions the filter requires (its top-level conjunction), values
    /// lower-cased as Meilisearch normalises facet values.
    pub filter_equalities: BTreeMap<String, BTreeSet<String>>,
    pub now: OffsetDateTime,
}

impl SearchFacts {
    pub fn new(index_uid: &str, q: Option<&str>, filter: Option<&Value>, now: OffsetDateTime) -> Self {
        let (query_is_empty, query_words) = query_terms(q.unwrap_or(""));
        let mut filter_equalities: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (attr, value) in filter.map(conjuncts).unwrap_or_default().iter().filter_map(|c| equality(c)) {
            filter_equalities.entry(attr).or_default().insert(value);
        }
        Self { index_uid: index_uid.to_string(), query_is_empty, query_words, filter_equalities, now }
    }
}

/// Meilisearch's query terms: phrases (`"…"`) are terms without single words, `-word` and
/// `-"phrase"` are negations, not terms; only the first `WORDS_LIMIT` words count.
fn query_terms(q: &str) -> (bool, BTreeSet<String>) {
    let mut terms = 0usize;
    let mut single = Vec::new();
    let mut rest = q;
    while !rest.is_empty() {
        let trimmed = rest.trim_start();
        if trimmed.is_empty() {
            break;
        }
        let negated = trimmed.starts_with('-');
        let body = if negated { &trimmed[1..] } else { trimmed };
        if let Some(after) = body.strip_prefix('"') {
            let end = after.find('"').unwrap_or(after.len());
            if !negated && !words(&after[..end]).is_empty() {
                terms += 1;
            }
            rest = after.get(end + 1..).unwrap_or("");
            continue;
        }
        let end = body.find(char::is_whitespace).unwrap_or(body.len());
        if !negated {
            for w in words(&body[..end]) {
                terms += 1;
                single.push(w);
            }
        }
        rest = &body[end..];
    }
    let kept: BTreeSet<String> = single.into_iter().take(WORDS_LIMIT).collect();
    (terms == 0, kept)
}

/// The filter's top-level `AND` parts, as expressions.
fn conjuncts(filter: &Value) -> Vec<String> {
    match filter {
        Value::String(s) => split_and(s),
        Value::Array(parts) => parts
            .iter()
            .flat_map(|p| match p {
                Value::String(s) => split_and(s),
                Value::Array(or) if or.len() == 1 => or[0].as_str().map(split_and).unwrap_or_default(),
                _ => vec![],
            })
            .collect(),
        _ => vec![],
    }
}

/// Splits on `AND` outside quotes and parentheses; a part with a top-level `OR` is dropped.
fn split_and(s: &str) -> Vec<String> {
    let mut parts = vec![];
    let (mut depth, mut quote, mut start) = (0i32, None::<char>, 0usize);
    let bytes: Vec<(usize, char)> = s.char_indices().collect();
    let mut i = 0;
    let mut has_or = false;
    let word_at = |i: usize, w: &str| {
        let tail = &s[bytes[i].0..];
        let before_ok = i == 0 || bytes[i - 1].1.is_whitespace() || bytes[i - 1].1 == ')';
        let after = tail.get(w.len()..).and_then(|t| t.chars().next());
        before_ok
            && tail.len() >= w.len()
            && tail[..w.len()].eq_ignore_ascii_case(w)
            && after.is_none_or(|c| c.is_whitespace() || c == '(')
    };
    while i < bytes.len() {
        let c = bytes[i].1;
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '"' | '\'' => quote = Some(c),
                '(' => depth += 1,
                ')' => depth -= 1,
                _ if depth == 0 && word_at(i, "AND") => {
                    if !has_or {
                        parts.push(s[start..bytes[i].0].trim().to_string());
                    }
                    has_or = false;
                    start = bytes[i].0 + 3;
                    i += 3;
                    continue;
                }
                _ if depth == 0 && word_at(i, "OR") => has_or = true,
                _ => {}
            },
        }
        i += 1;
    }
    if !has_or {
        parts.push(s[start..].trim().to_string());
    }
    parts.retain(|p| !p.is_empty());
    parts
}

fn unquote(s: &str) -> &str {
    let s = s.trim();
    for q in ['"', '\''] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return &s[1..s.len() - 1];
        }
    }
    s
}

/// `attribute = value` (either side may be quoted), value lower-cased.
fn equality(expr: &str) -> Option<(String, String)> {
    let (attr, value) = expr.split_once('=')?;
    if attr.ends_with(['!', '<', '>']) || value.starts_with('=') {
        return None;
    }
    let attr = unquote(attr);
    if attr.is_empty() || attr.contains(char::is_whitespace) && !attr.starts_with(['"', '\'']) {
        return None;
    }
    Some((attr.to_string(), unquote(value).to_lowercase()))
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.to_lowercase()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn flatten(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Array(a) => a.iter().for_each(|x| flatten(x, out)),
        Value::Object(o) => o.values().for_each(|x| flatten(x, out)),
        other => out.extend(scalar(other)),
    }
}

/// Whether `rule` applies to the search described by `facts`.
pub fn triggers(rule: &SearchRule, facts: &SearchFacts) -> bool {
    if !rule.active {
        return false;
    }
    let c = &rule.conditions;
    if let Some(t) = &c.time {
        if t.start.as_deref().and_then(parse_time).is_some_and(|s| s > facts.now) {
            return false;
        }
        if t.end.as_deref().and_then(parse_time).is_some_and(|e| e < facts.now) {
            return false;
        }
    }
    if let Some(q) = &c.query {
        if q.is_empty.is_some_and(|e| e != facts.query_is_empty) {
            return false;
        }
        // Each word of the condition is one constraint; a word the query lacks (or a word
        // repeated, which one query word cannot satisfy twice) fails it.
        let required = words(q.words.as_deref().unwrap_or(""));
        let distinct: BTreeSet<&String> = required.iter().collect();
        if distinct.len() != required.len() || !distinct.iter().all(|w| facts.query_words.contains(*w)) {
            return false;
        }
    }
    if let Some(f) = &c.filter {
        // One constraint per value; an attribute satisfies one when every equality the filter
        // puts on it names one of the rule's values for it.
        let mut constraints = 0;
        let mut satisfied = 0;
        for (attr, value) in &f.values {
            let mut vals = vec![];
            flatten(value, &mut vals);
            constraints += vals.len();
            if let Some(required) = facts.filter_equalities.get(attr) {
                if !vals.is_empty() && required.iter().all(|r| vals.iter().any(|v| same_value(v, r))) {
                    satisfied += 1;
                }
            }
        }
        if satisfied < constraints {
            return false;
        }
    }
    true
}

fn same_value(a: &str, b: &str) -> bool {
    a == b || matches!((a.parse::<f64>(), b.parse::<f64>()), (Ok(x), Ok(y)) if x == y)
}

/// A document a rule pins, at a 0-based position of the whole result list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub position: u32,
    pub id: String,
}

/// Every pin of the rules the search triggers, in precedence order (lowest precedence first,
/// rules without one last, ties by creation), before checking the documents exist.
pub fn candidate_pins(rules: &SearchRules, facts: &SearchFacts) -> Vec<Pin> {
    let mut active: Vec<_> = rules.rules.values().filter(|s| triggers(&s.rule, facts)).collect();
    active.sort_by_key(|s| (s.rule.precedence.is_none(), s.rule.precedence, s.seq));
    active
        .into_iter()
        .flat_map(|s| &s.rule.actions)
        .filter(|a| a.selector.index_uid.as_deref().is_none_or(|i| i == facts.index_uid))
        .map(|a| match a.action {
            Action::Pin { position } => Pin { position, id: a.selector.id.clone() },
        })
        .collect()
}

/// The pins whose document is in the search's filtered universe (`present`), each document once
/// (its first pin wins), as Meilisearch keeps them.
pub fn surviving_pins(pins: Vec<Pin>, present: impl Fn(&str) -> bool) -> Vec<Pin> {
    let mut seen = BTreeSet::new();
    pins.into_iter().filter(|p| present(&p.id) && seen.insert(p.id.clone())).collect()
}

/// Meilisearch's `merge_positioned_hits_into_page`: walks the combined list up to the page's end,
/// taking the next pin (in the given order) when its position is reached or organic hits ran
/// out, and returns the page `[skip, skip + take)`.
pub fn merge_into_page<T>(pins: Vec<(u32, T)>, skip: usize, take: usize, organic: Vec<T>) -> Vec<T> {
    if pins.is_empty() {
        return organic;
    }
    let end = skip.saturating_add(take);
    let mut out = Vec::new();
    let mut organic = organic.into_iter();
    let mut pins = pins.into_iter().peekable();
    let mut index = 0usize;
    while index < end {
        let next = match pins.peek() {
            Some((pos, _)) if (*pos as usize) <= index => pins.next().map(|p| p.1),
            Some(_) => organic.next().or_else(|| pins.next().map(|p| p.1)),
            None => organic.next(),
        };
        let Some(hit) = next else { break };
        if index >= skip {
            out.push(hit);
        }
        index += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::parse_update;
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    fn facts(q: &str, filter: Value) -> SearchFacts {
        SearchFacts::new("movies", Some(q), Some(&filter), datetime!(2025-11-28 12:00 UTC))
    }

    fn rules(list: Value) -> SearchRules {
        let mut r = SearchRules::default();
        for (uid, body) in list.as_object().unwrap() {
            r.put(uid, &parse_update(body).unwrap(), "t".into());
        }
        r
    }

    fn pin(id: &str, pos: u32) -> Value {
        json!({"selector": {"id": id}, "action": {"type": "pin", "position": pos}})
    }

    #[test]
    fn query_terms_skip_negations_and_phrases() {
        let f = facts("Batman -joker \"the dark\" Returns", Value::Null);
        assert!(!f.query_is_empty);
        assert_eq!(f.query_words, ["batman", "returns"].iter().map(|s| s.to_string()).collect());
        assert!(facts("  ", Value::Null).query_is_empty);
        assert!(facts("-joker", Value::Null).query_is_empty);
        assert!(!facts("\"dark knight\"", Value::Null).query_is_empty);
    }

    #[test]
    fn word_conditions_need_every_word() {
        let r = rules(json!({"w": {"conditions": {"query": {"words": "Mario Luigi"}}, "actions": [pin("p", 0)]}}));
        assert_eq!(candidate_pins(&r, &facts("mario luigi", Value::Null)).len(), 1);
        assert!(candidate_pins(&r, &facts("mario", Value::Null)).is_empty());
        assert!(candidate_pins(&r, &facts("mario mario", Value::Null)).is_empty());
        let e = rules(json!({"e": {"conditions": {"query": {"isEmpty": true}}, "actions": [pin("p", 0)]}}));
        assert_eq!(candidate_pins(&e, &facts("", Value::Null)).len(), 1);
        assert!(candidate_pins(&e, &facts("x", Value::Null)).is_empty());
    }

    #[test]
    fn time_windows_and_active() {
        let r = rules(json!({
            "past": {"conditions": {"time": {"end": "2025-11-27T00:00:00Z"}}, "actions": [pin("a", 0)]},
            "future": {"conditions": {"time": {"start": "2025-11-29T00:00:00Z"}}, "actions": [pin("b", 0)]},
            "now": {"conditions": {"time": {"start": "2025-11-28T00:00:00Z", "end": "2025-11-28T23:59:59Z"}}, "actions": [pin("c", 0)]},
            "off": {"active": false, "actions": [pin("d", 0)]}
        }));
        let ids: Vec<String> = candidate_pins(&r, &facts("", Value::Null)).into_iter().map(|p| p.id).collect();
        assert_eq!(ids, ["c"]);
    }

    #[test]
    fn filter_conditions_need_the_filter_to_name_the_values() {
        let r =
            rules(json!({"f": {"conditions": {"filter": {"values": {"genres": "action"}}}, "actions": [pin("p", 0)]}}));
        assert!(candidate_pins(&r, &facts("", Value::Null)).is_empty());
        assert_eq!(candidate_pins(&r, &facts("", json!("genres = Action"))).len(), 1);
        assert_eq!(candidate_pins(&r, &facts("", json!(["year > 2000", "genres = 'action' AND x = 1"]))).len(), 1);
        assert!(candidate_pins(&r, &facts("", json!("genres = action OR x = 1"))).is_empty());
        assert!(candidate_pins(&r, &facts("", json!("genres = drama"))).is_empty());
        assert!(candidate_pins(&r, &facts("", json!("genres != action"))).is_empty());
    }

    #[test]
    fn precedence_orders_pins_and_index_selector_applies() {
        let r = rules(json!({
            "a-none": {"actions": [pin("late", 1)]},
            "b-ten": {"precedence": 10, "actions": [pin("x", 0)]},
            "c-one": {"precedence": 1, "actions": [pin("y", 3), {"selector": {"indexUid": "other", "id": "z"}, "action": {"type": "pin", "position": 0}}]}
        }));
        let ids: Vec<String> = candidate_pins(&r, &facts("", Value::Null)).into_iter().map(|p| p.id).collect();
        assert_eq!(ids, ["y", "x", "late"]);
    }

    #[test]
    fn surviving_pins_drop_missing_and_repeated_documents() {
        let pins = vec![
            Pin { position: 0, id: "a".into() },
            Pin { position: 1, id: "gone".into() },
            Pin { position: 2, id: "a".into() },
        ];
        assert_eq!(surviving_pins(pins, |id| id != "gone"), vec![Pin { position: 0, id: "a".into() }]);
    }

    #[test]
    fn merge_places_pins_and_pumps_late_ones() {
        let organic = vec!["o1", "o2"];
        assert_eq!(merge_into_page(vec![(10, "p1"), (20, "p2")], 0, 10, organic.clone()), ["o1", "o2", "p1", "p2"]);
        assert_eq!(merge_into_page(vec![(10, "p1"), (20, "p2")], 2, 2, organic.clone()), ["p1", "p2"]);
        assert_eq!(merge_into_page(vec![(1, "p")], 0, 3, vec!["o1", "o2", "o3"]), ["o1", "p", "o2"]);
        // Pins are taken in their given order, not sorted by position.
        assert_eq!(merge_into_page(vec![(2, "a"), (0, "b")], 0, 4, vec!["o1", "o2", "o3"]), ["o1", "o2", "a", "b"]);
        assert_eq!(merge_into_page(vec![(0, "p")], 1, 1, vec!["o1"]), ["o1"]);
    }
}
