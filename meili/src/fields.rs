//! `POST /indexes/{uid}/fields` (Meilisearch 1.50, `routes/indexes/fields.rs`): the request body
//! with Meilisearch's checks, the filter it applies to each field, and the page it answers.
//! Shared by the gateway (which pages the union of its nodes' fields) and the dev node, so both
//! refuse a body with the same code and message, before anything is read.

use serde_json::{json, Map, Value};

use crate::error::{Code, MeiliError};
use crate::json::found;
use crate::listed;

/// `ListFieldsFilter`: every criterion given must hold (they are ANDed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldsFilter {
    pub attribute_patterns: Option<Vec<String>>,
    pub displayed: Option<bool>,
    pub searchable: Option<bool>,
    pub sortable: Option<bool>,
    pub distinct: Option<bool>,
    pub ranking_rule: Option<bool>,
    pub filterable: Option<bool>,
}

/// `ListFields`: `offset` (0), `limit` (20), `filter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListFields {
    pub offset: usize,
    pub limit: usize,
    pub filter: Option<FieldsFilter>,
}

/// Meilisearch's default page size (`PAGINATION_DEFAULT_LIMIT`).
pub const DEFAULT_LIMIT: usize = 20;

const FIELDS: &[&str] = &["offset", "limit", "filter"];
const FILTER_FIELDS: &[&str] =
    &["attributePatterns", "displayed", "searchable", "sortable", "distinct", "rankingRule", "filterable"];

fn wrong_type(code: Code, at: &str, expected: &str, v: &Value) -> MeiliError {
    MeiliError { code, message: format!("Invalid value type at `{at}`: expected {expected}, but found {}", found(v)) }
}

fn uint(v: &Value, key: &str, code: Code) -> Result<usize, MeiliError> {
    v.as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| wrong_type(code, &format!(".{key}"), "a positive integer", v))
}

fn opt_bool(v: &Value, key: &str, code: Code) -> Result<Option<bool>, MeiliError> {
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        other => Err(wrong_type(code, &format!(".filter.{key}"), "a boolean", other)),
    }
}

/// Parses the body with Meilisearch's checks, field by field in the body's order: an unknown
/// field is `bad_request` (`invalid_index_fields_filter` inside `filter`), a wrong type the
/// field's own code.
pub fn parse(body: &Value) -> Result<ListFields, MeiliError> {
    let obj = body.as_object().ok_or_else(|| MeiliError {
        code: Code::BAD_REQUEST,
        message: format!("Invalid value type: expected an object, but found {}", found(body)),
    })?;
    let mut out = ListFields { offset: 0, limit: DEFAULT_LIMIT, filter: None };
    for (k, v) in obj {
        match k.as_str() {
            "offset" => out.offset = uint(v, k, Code::INVALID_INDEX_OFFSET)?,
            "limit" => out.limit = uint(v, k, Code::INVALID_INDEX_LIMIT)?,
            "filter" => out.filter = parse_filter(v)?,
            other => {
                return Err(MeiliError {
                    code: Code::BAD_REQUEST,
                    message: format!("Unknown field `{other}`: expected one of {}", listed(FIELDS)),
                })
            }
        }
    }
    Ok(out)
}

fn parse_filter(v: &Value) -> Result<Option<FieldsFilter>, MeiliError> {
    const CODE: Code = Code::INVALID_INDEX_FIELDS_FILTER;
    let obj: &Map<String, Value> = match v {
        Value::Null => return Ok(None),
        Value::Object(o) => o,
        other => return Err(wrong_type(CODE, ".filter", "an object", other)),
    };
    let mut f = FieldsFilter::default();
    for (k, v) in obj {
        match k.as_str() {
            "attributePatterns" => f.attribute_patterns = patterns(v)?,
            "displayed" => f.displayed = opt_bool(v, k, Code::INVALID_INDEX_FIELDS_FILTER_DISPLAYED)?,
            "searchable" => f.searchable = opt_bool(v, k, Code::INVALID_INDEX_FIELDS_FILTER_SEARCHABLE)?,
            "sortable" => f.sortable = opt_bool(v, k, Code::INVALID_INDEX_FIELDS_FILTER_SORTABLE)?,
            "distinct" => f.distinct = opt_bool(v, k, Code::INVALID_INDEX_FIELDS_FILTER_DISTINCT)?,
            "rankingRule" => f.ranking_rule = opt_bool(v, k, Code::INVALID_INDEX_FIELDS_FILTER_RANKING_RULE)?,
            "filterable" => f.filterable = opt_bool(v, k, Code::INVALID_INDEX_FIELDS_FILTER_FILTERABLE)?,
            other => {
                return Err(MeiliError {
                    code: CODE,
                    message: format!(
                        "Unknown field `{other}` inside `.filter`: expected one of {}",
                        listed(FILTER_FIELDS)
                    ),
                })
            }
        }
    }
    Ok(Some(f))
}

fn patterns(v: &Value) -> Result<Option<Vec<String>>, MeiliError> {
    const CODE: Code = Code::INVALID_INDEX_FIELDS_FILTER_ATTRIBUTE_PATTERNS;
    match v {
        Value::Null => Ok(None),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, p)| {
                p.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| wrong_type(CODE, &format!(".filter.attributePatterns[{i}]"), "a string", p))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        other => Err(wrong_type(CODE, ".filter.attributePatterns", "an array", other)),
    }
}

/// After the body, Meilisearch's `user_index` refuses its own reserved uids (`.meili…`) as
/// invalid, with a message of its own (no backticks); any other unknown uid is not found.
pub fn check_uid(uid: &str) -> Result<(), MeiliError> {
    if uid.starts_with(".meili") {
        return Err(MeiliError {
            code: Code::INVALID_INDEX_UID,
            message: format!("{uid} is not a valid index uid. Index uid can be an integer or a string containing only alphanumeric characters, hyphens (-) and underscores (_), and can not be more than 400 bytes."),
        });
    }
    Ok(())
}

/// milli's `PatternMatch`: a field matches a pattern, is a parent of what it names, or neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternMatch {
    Match,
    Parent,
    NoMatch,
}

/// `field` is `facet` or nested under it (milli's `is_faceted_by`).
pub fn is_faceted_by(field: &str, facet: &str) -> bool {
    field.strip_prefix(facet).is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

/// milli's `match_pattern`: `*` anywhere at the ends is a wildcard; a field whose children the
/// pattern names is its parent.
pub fn match_pattern(pattern: &str, field: &str) -> PatternMatch {
    let matched = if pattern == "*" {
        true
    } else if pattern.len() >= 2 && pattern.starts_with('*') && pattern.ends_with('*') {
        field.contains(&pattern[1..pattern.len() - 1])
    } else if let Some(suffix) = pattern.strip_prefix('*') {
        field.ends_with(suffix)
    } else if let Some(prefix) = pattern.strip_suffix('*') {
        field.starts_with(prefix)
    } else {
        pattern == field
    };
    if matched {
        PatternMatch::Match
    } else if is_faceted_by(pattern, field) {
        PatternMatch::Parent
    } else {
        PatternMatch::NoMatch
    }
}

/// `AttributePatterns::match_str`: the first match wins, else a parent, else none.
pub fn match_any(patterns: &[String], field: &str) -> PatternMatch {
    let mut out = PatternMatch::NoMatch;
    for p in patterns {
        match match_pattern(p, field) {
            PatternMatch::Match => return PatternMatch::Match,
            PatternMatch::Parent => out = PatternMatch::Parent,
            PatternMatch::NoMatch => {}
        }
    }
    out
}

impl ListFields {
    /// Whether a field object (as Meilisearch answers it) passes the filter.
    pub fn keeps(&self, field: &Value) -> bool {
        let Some(f) = &self.filter else { return true };
        let name = field["name"].as_str().unwrap_or_default();
        if f.attribute_patterns.as_ref().is_some_and(|p| match_any(p, name) != PatternMatch::Match) {
            return false;
        }
        let checks = [
            (f.displayed, "displayed"),
            (f.searchable, "searchable"),
            (f.sortable, "sortable"),
            (f.distinct, "distinct"),
            (f.ranking_rule, "rankingRule"),
            (f.filterable, "filterable"),
        ];
        checks.iter().all(|(want, key)| want.is_none_or(|w| field[*key]["enabled"].as_bool().unwrap_or(false) == w))
    }

    /// The answer: fields in name order (as Meilisearch sorts them), this page of them, and the
    /// number of fields that passed the filter.
    pub fn page(&self, mut fields: Vec<Value>) -> Value {
        fields.sort_by(|a, b| a["name"].as_str().unwrap_or_default().cmp(b["name"].as_str().unwrap_or_default()));
        let total = fields.len();
        let results: Vec<Value> = fields.into_iter().skip(self.offset).take(self.limit).collect();
        json!({"results": results, "offset": self.offset, "limit": self.limit, "total": total})
    }
}

/// Every node's fields as one list, each name once (a field's attributes come from the index's
/// settings, the same on every node), without the fields `hidden` names (Miroir's own).
pub fn union<'a>(answers: impl IntoIterator<Item = &'a Value>, hidden: &[&str]) -> Vec<Value> {
    let mut seen = std::collections::BTreeMap::new();
    for answer in answers {
        for field in answer["results"].as_array().into_iter().flatten() {
            let Some(name) = field["name"].as_str() else { continue };
            if !hidden.contains(&name) {
                seen.entry(name.to_string()).or_insert_with(|| field.clone());
            }
        }
    }
    seen.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(body: Value) -> (Code, String) {
        let r = parse(&body).unwrap_err();
        (r.code, r.message)
    }

    #[test]
    fn defaults_and_values() {
        assert_eq!(parse(&json!({})).unwrap(), ListFields { offset: 0, limit: 20, filter: None });
        let l = parse(&json!({"offset": 2, "limit": 3, "filter": {"displayed": true, "attributePatterns": ["a*"]}}))
            .unwrap();
        assert_eq!((l.offset, l.limit), (2, 3));
        let f = l.filter.unwrap();
        assert_eq!(f.displayed, Some(true));
        assert_eq!(f.attribute_patterns, Some(vec!["a*".to_string()]));
        assert_eq!(parse(&json!({"filter": null})).unwrap().filter, None);
    }

    #[test]
    fn refusals_carry_meilisearch_codes_and_messages() {
        assert_eq!(
            refused(json!({"offset": "a"})),
            (
                Code::INVALID_INDEX_OFFSET,
                "Invalid value type at `.offset`: expected a positive integer, but found a string: `\"a\"`".into()
            )
        );
        assert_eq!(
            refused(json!({"limit": -1})),
            (
                Code::INVALID_INDEX_LIMIT,
                "Invalid value type at `.limit`: expected a positive integer, but found a negative integer: `-1`"
                    .into()
            )
        );
        assert_eq!(
            refused(json!({"nope": 1})),
            (Code::BAD_REQUEST, "Unknown field `nope`: expected one of `offset`, `limit`, `filter`".into())
        );
        assert_eq!(refused(json!({"filter": {"x": 1}})).0, Code::INVALID_INDEX_FIELDS_FILTER);
        assert_eq!(refused(json!({"filter": 3})).0, Code::INVALID_INDEX_FIELDS_FILTER);
        assert_eq!(
            refused(json!({"filter": {"sortable": "yes"}})),
            (
                Code::INVALID_INDEX_FIELDS_FILTER_SORTABLE,
                "Invalid value type at `.filter.sortable`: expected a boolean, but found a string: `\"yes\"`".into()
            )
        );
        assert_eq!(
            refused(json!({"filter": {"attributePatterns": [1]}})).0,
            Code::INVALID_INDEX_FIELDS_FILTER_ATTRIBUTE_PATTERNS
        );
        assert_eq!(
            refused(json!([])),
            (Code::BAD_REQUEST, "Invalid value type: expected an object, but found an array: `[]`".into())
        );
    }

    #[test]
    fn reserved_uids_are_invalid_others_pass() {
        assert_eq!(check_uid(".meili-dsr").unwrap_err().code, Code::INVALID_INDEX_UID);
        assert!(check_uid("bad uid!").is_ok(), "an invalid uid is just not found");
    }

    #[test]
    fn patterns_match_like_milli() {
        assert_eq!(match_pattern("*", "a.b"), PatternMatch::Match);
        assert_eq!(match_pattern("ti*", "title"), PatternMatch::Match);
        assert_eq!(match_pattern("*le", "title"), PatternMatch::Match);
        assert_eq!(match_pattern("*tl*", "title"), PatternMatch::Match);
        assert_eq!(match_pattern("a.b", "a"), PatternMatch::Parent);
        assert_eq!(match_pattern("a", "a.b"), PatternMatch::NoMatch);
        assert_eq!(match_pattern("ab", "a"), PatternMatch::NoMatch);
    }

    fn field(name: &str, displayed: bool) -> Value {
        json!({"name": name, "displayed": {"enabled": displayed}, "searchable": {"enabled": true}})
    }

    #[test]
    fn filter_ands_its_criteria_and_parents_do_not_match() {
        let l = parse(&json!({"filter": {"attributePatterns": ["a.b"], "displayed": true}})).unwrap();
        assert!(l.keeps(&field("a.b", true)));
        assert!(!l.keeps(&field("a.b", false)));
        assert!(!l.keeps(&field("a", true)));
        let l = parse(&json!({"filter": {"sortable": false}})).unwrap();
        assert!(l.keeps(&field("x", true)), "a missing attribute reads as disabled");
    }

    #[test]
    fn union_dedups_by_name_hides_and_pages_in_name_order() {
        let a = json!({"results": [field("b", true), field("_miroir_shard", true)]});
        let b = json!({"results": [field("a", true), field("b", true), field("c", false)]});
        let all = union([&a, &b], &["_miroir_shard"]);
        let l = parse(&json!({"offset": 1, "limit": 1})).unwrap();
        assert_eq!(l.page(all), json!({"results": [field("b", true)], "offset": 1, "limit": 1, "total": 3}));
    }
}
