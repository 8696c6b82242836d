//! Meilisearch's validation of rule bodies (deserr's messages, the route's error codes), done by
//! the gateway before anything is committed.

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{Action, Conditions, FilterCondition, QueryCondition, RuleAction, RuleUpdate, SearchRule, Selector};
use super::{Setting, TimeCondition};
use crate::error::{Code, MeiliError};
use crate::json::found;

type R<T> = Result<T, MeiliError>;

fn err(code: Code, message: String) -> MeiliError {
    MeiliError::new(code, message)
}

fn wrong_type(code: Code, at: &str, expected: &str, v: &Value) -> MeiliError {
    let at = if at.is_empty() { String::new() } else { format!(" at `{at}`") };
    err(code, format!("Invalid value type{at}: expected {expected}, but found {}", found(v)))
}

fn unknown(code: Code, at: &str, field: &str, expected: &[&str]) -> MeiliError {
    let list = crate::listed(expected);
    let inside = if at.is_empty() { String::new() } else { format!(" inside `{at}`") };
    err(code, format!("Unknown field `{field}`{inside}: expected one of {list}"))
}

fn missing(code: Code, at: &str, field: &str) -> MeiliError {
    let inside = if at.is_empty() { String::new() } else { format!(" inside `{at}`") };
    err(code, format!("Missing field `{field}`{inside}"))
}

fn object<'a>(code: Code, at: &str, v: &'a Value) -> R<&'a Map<String, Value>> {
    v.as_object().ok_or_else(|| wrong_type(code, at, "an object", v))
}

fn uint(code: Code, at: &str, v: &Value) -> R<u64> {
    v.as_u64().ok_or_else(|| wrong_type(code, at, "a positive integer", v))
}

fn string(code: Code, at: &str, v: &Value) -> R<String> {
    v.as_str().map(str::to_string).ok_or_else(|| wrong_type(code, at, "a string", v))
}

fn boolean(code: Code, at: &str, v: &Value) -> R<bool> {
    v.as_bool().ok_or_else(|| wrong_type(code, at, "a boolean", v))
}

fn setting<T>(v: &Value, f: impl FnOnce(&Value) -> R<T>) -> R<Setting<T>> {
    if v.is_null() {
        Ok(Setting::Reset)
    } else {
        f(v).map(Setting::Set)
    }
}

const CONDITIONS: Code = Code::INVALID_DYNAMIC_SEARCH_RULE_CONDITIONS;
const ACTIONS: Code = Code::INVALID_DYNAMIC_SEARCH_RULE_ACTIONS;
/// Meilisearch's cross-field checks of conditions answer with the generic code.
const BAD_REQUEST: Code = Code::BAD_REQUEST;

/// A rule uid is an index uid (`RuleUid = IndexUid`): at most 400 bytes of `A-Z a-z 0-9 - _`,
/// refused with `IndexUidFormatError`'s text (which says 512).
pub fn check_uid(uid: &str) -> R<()> {
    if !uid.is_empty() && uid.len() <= 400 && uid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Ok(());
    }
    Err(err(
        Code::INVALID_INDEX_UID,
        format!("`{uid}` is not a valid index uid. Index uid can be an integer or a string containing only alphanumeric characters, hyphens (-) and underscores (_), and can not be more than 512 bytes."),
    ))
}

/// `PATCH /dynamic-search-rules/{uid}`'s body.
pub fn parse_update(body: &Value) -> R<RuleUpdate> {
    const FIELDS: &[&str] = &["description", "precedence", "active", "conditions", "actions"];
    let obj = object(BAD_REQUEST, "", body)?;
    let mut u = RuleUpdate::default();
    for (k, v) in obj {
        match k.as_str() {
            "description" => {
                u.description =
                    setting(v, |v| string(Code::INVALID_DYNAMIC_SEARCH_RULE_DESCRIPTION, ".description", v))?
            }
            "precedence" => {
                u.precedence = setting(v, |v| uint(Code::INVALID_DYNAMIC_SEARCH_RULE_PRIORITY, ".precedence", v))?
            }
            "active" => u.active = setting(v, |v| boolean(Code::INVALID_DYNAMIC_SEARCH_RULE_ACTIVE, ".active", v))?,
            "conditions" => u.conditions = setting(v, conditions)?,
            "actions" => u.actions = setting(v, actions)?,
            other => return Err(unknown(BAD_REQUEST, "", other, FIELDS)),
        }
    }
    Ok(u)
}

fn conditions(v: &Value) -> R<Conditions> {
    let obj = object(CONDITIONS, ".conditions", v)?;
    let mut c = Conditions::default();
    for (k, v) in obj {
        match k.as_str() {
            "time" if !v.is_null() => c.time = Some(time(v)?),
            "query" if !v.is_null() => c.query = Some(query(v)?),
            "filter" if !v.is_null() => c.filter = Some(filter(v)?),
            "time" | "query" | "filter" => {}
            other => return Err(unknown(CONDITIONS, ".conditions", other, &["time", "query", "filter"])),
        }
    }
    if let Some(q) = &c.query {
        if q.is_empty == Some(true) && q.words.is_some() {
            return Err(err(
                BAD_REQUEST,
                "Invalid value at `.conditions.query`: either `isEmpty` or `words` can be used, not both at once"
                    .into(),
            ));
        }
    }
    if let Some(TimeCondition { start: Some(s), end: Some(e) }) = &c.time {
        let (s, e) = (parse_time(s).expect("validated"), parse_time(e).expect("validated"));
        if s > e {
            return Err(err(
                BAD_REQUEST,
                format!("Invalid value at `.conditions.time`: `end` (`{e}`) should be later than `start` (`{s}`)"),
            ));
        }
    }
    Ok(c)
}

pub(super) fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

fn time(v: &Value) -> R<TimeCondition> {
    let at = ".conditions.time";
    let obj = object(CONDITIONS, at, v)?;
    let mut t = TimeCondition::default();
    for (k, v) in obj {
        let slot = match k.as_str() {
            "start" => &mut t.start,
            "end" => &mut t.end,
            other => return Err(unknown(CONDITIONS, at, other, &["start", "end"])),
        };
        if v.is_null() {
            continue;
        }
        let raw = string(CONDITIONS, &format!("{at}.{k}"), v)?;
        let parsed = parse_time(&raw).ok_or_else(|| {
            err(
                CONDITIONS,
                format!("Invalid value at `{at}.{k}`: `{raw}` is not a valid date. It should follow the RFC 3339 format to represents a date or datetime in the future or specified as a null value. e.g. 'YYYY-MM-DD' or 'YYYY-MM-DD HH:MM:SS'.\n"),
            )
        })?;
        // Shown back as Meilisearch formats the date it parsed.
        *slot = Some(parsed.format(&Rfc3339).unwrap_or(raw));
    }
    Ok(t)
}

fn query(v: &Value) -> R<QueryCondition> {
    let at = ".conditions.query";
    let obj = object(CONDITIONS, at, v)?;
    let mut q = QueryCondition::default();
    for (k, v) in obj {
        match k.as_str() {
            "isEmpty" if !v.is_null() => q.is_empty = Some(boolean(CONDITIONS, &format!("{at}.isEmpty"), v)?),
            "words" if !v.is_null() => q.words = Some(string(CONDITIONS, &format!("{at}.words"), v)?),
            "isEmpty" | "words" => {}
            other => return Err(unknown(CONDITIONS, at, other, &["isEmpty", "words"])),
        }
    }
    Ok(q)
}

fn filter(v: &Value) -> R<FilterCondition> {
    let at = ".conditions.filter";
    let obj = object(CONDITIONS, at, v)?;
    let mut f = FilterCondition::default();
    for (k, v) in obj {
        match k.as_str() {
            "values" => {
                f.values = object(CONDITIONS, &format!("{at}.values"), v)?
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            }
            other => return Err(unknown(CONDITIONS, at, other, &["values"])),
        }
    }
    Ok(f)
}

fn actions(v: &Value) -> R<Vec<RuleAction>> {
    let list = v.as_array().ok_or_else(|| wrong_type(ACTIONS, ".actions", "an array", v))?;
    list.iter().enumerate().map(|(i, a)| action(&format!(".actions[{i}]"), a)).collect()
}

fn action(at: &str, v: &Value) -> R<RuleAction> {
    let obj = object(ACTIONS, at, v)?;
    let (mut selector, mut act) = (None, None);
    for (k, v) in obj {
        match k.as_str() {
            "selector" => selector = Some(parse_selector(&format!("{at}.selector"), v)?),
            "action" => act = Some(parse_action(&format!("{at}.action"), v)?),
            other => return Err(unknown(ACTIONS, at, other, &["selector", "action"])),
        }
    }
    Ok(RuleAction {
        selector: selector.ok_or_else(|| missing(ACTIONS, at, "selector"))?,
        action: act.ok_or_else(|| missing(ACTIONS, at, "action"))?,
    })
}

fn parse_selector(at: &str, v: &Value) -> R<Selector> {
    let obj = object(ACTIONS, at, v)?;
    let (mut index_uid, mut id) = (None, None);
    for (k, v) in obj {
        match k.as_str() {
            "indexUid" if v.is_null() => {}
            "indexUid" => index_uid = Some(string(ACTIONS, &format!("{at}.indexUid"), v)?),
            "id" => id = Some(string(ACTIONS, &format!("{at}.id"), v)?),
            other => return Err(unknown(ACTIONS, at, other, &["indexUid", "id"])),
        }
    }
    Ok(Selector { index_uid, id: id.ok_or_else(|| missing(ACTIONS, at, "id"))? })
}

fn parse_action(at: &str, v: &Value) -> R<Action> {
    let obj = object(ACTIONS, at, v)?;
    match obj.get("type") {
        None => return Err(missing(ACTIONS, at, "type")),
        Some(Value::String(t)) if t == "pin" => {}
        Some(Value::String(t)) => {
            return Err(err(ACTIONS, format!("Unknown value `{t}` at `{at}.type`: expected one of `pin`")))
        }
        Some(other) => return Err(wrong_type(ACTIONS, &format!("{at}.type"), "a string", other)),
    }
    let mut position = None;
    for (k, v) in obj {
        match k.as_str() {
            "type" => {}
            "position" => {
                let n = uint(ACTIONS, &format!("{at}.position"), v)?;
                position = Some(
                    u32::try_from(n)
                        .map_err(|_| wrong_type(ACTIONS, &format!("{at}.position"), "a positive integer", v))?,
                );
            }
            other => return Err(unknown(ACTIONS, at, other, &["position"])),
        }
    }
    Ok(Action::Pin { position: position.ok_or_else(|| missing(ACTIONS, at, "position"))? })
}

/// `POST /dynamic-search-rules`'s body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRequest {
    pub offset: usize,
    pub limit: usize,
    pub query: Option<String>,
    pub active: Option<bool>,
}

pub fn parse_list(body: &Value) -> R<ListRequest> {
    let mut req = ListRequest { offset: 0, limit: 20, query: None, active: None };
    let obj = object(BAD_REQUEST, "", body)?;
    for (k, v) in obj {
        match k.as_str() {
            "offset" => req.offset = uint(Code::INVALID_DYNAMIC_SEARCH_RULE_OFFSET, ".offset", v)? as usize,
            "limit" => req.limit = uint(Code::INVALID_DYNAMIC_SEARCH_RULE_LIMIT, ".limit", v)? as usize,
            "filter" if v.is_null() => {}
            "filter" => {
                const CODE: Code = Code::INVALID_DYNAMIC_SEARCH_RULE_FILTER;
                for (k, v) in object(CODE, ".filter", v)? {
                    match k.as_str() {
                        "query" if v.is_null() => {}
                        "query" => {
                            req.query =
                                Some(string(Code::INVALID_DYNAMIC_SEARCH_RULE_FILTER_QUERY, ".filter.query", v)?)
                        }
                        "active" if v.is_null() => {}
                        "active" => {
                            req.active =
                                Some(boolean(Code::INVALID_DYNAMIC_SEARCH_RULE_FILTER_ACTIVE, ".filter.active", v)?)
                        }
                        other => return Err(unknown(CODE, ".filter", other, &["query", "active"])),
                    }
                }
            }
            other => return Err(unknown(BAD_REQUEST, "", other, &["offset", "limit", "filter"])),
        }
    }
    Ok(req)
}

/// Meilisearch searches `filter.query` in the rules' descriptions and query words (a placeholder
/// search with prefix matching on the last word): here every word of the query must start a word
/// of the description or the words, the last one as a prefix, the others whole.
pub(super) fn list_query_matches(query: &str, rule: &SearchRule) -> bool {
    let words = super::pins::words(query);
    if words.is_empty() {
        return true;
    }
    let mut haystack = super::pins::words(rule.description.as_deref().unwrap_or(""));
    if let Some(w) = rule.conditions.query.as_ref().and_then(|q| q.words.as_deref()) {
        haystack.extend(super::pins::words(w));
    }
    let last = words.len() - 1;
    words
        .iter()
        .enumerate()
        .all(|(i, w)| haystack.iter().any(|h| if i == last { h.starts_with(w.as_str()) } else { h == w }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refused(v: Value) -> MeiliError {
        parse_update(&v).unwrap_err()
    }

    #[test]
    fn errors_are_meilisearchs() {
        let e = refused(json!({"unknownField": true}));
        assert_eq!(e.code, Code::BAD_REQUEST);
        assert_eq!(
            e.message,
            "Unknown field `unknownField`: expected one of `description`, `precedence`, `active`, `conditions`, `actions`"
        );
        let e = refused(json!({"conditions": {"query": {"isEmpty": true, "words": "batman"}}}));
        assert_eq!(e.code, Code::BAD_REQUEST);
        assert_eq!(
            e.message,
            "Invalid value at `.conditions.query`: either `isEmpty` or `words` can be used, not both at once"
        );
        let e = refused(json!({"description": 1}));
        assert_eq!(e.code, Code::INVALID_DYNAMIC_SEARCH_RULE_DESCRIPTION);
        assert_eq!(
            e.message,
            "Invalid value type at `.description`: expected a string, but found a positive integer: `1`"
        );
        assert_eq!(refused(json!({"precedence": -1})).code, Code::INVALID_DYNAMIC_SEARCH_RULE_PRIORITY);
        assert_eq!(refused(json!({"active": "yes"})).code, Code::INVALID_DYNAMIC_SEARCH_RULE_ACTIVE);
        assert_eq!(refused(json!({"conditions": {"time": {"start": "nope"}}})).code, CONDITIONS);
        let e =
            refused(json!({"conditions": {"time": {"start": "2025-11-29T00:00:00Z", "end": "2025-11-28T00:00:00Z"}}}));
        assert_eq!(e.code, Code::BAD_REQUEST);
        assert!(e.message.starts_with("Invalid value at `.conditions.time`: `end` (`2025-11-28"), "{}", e.message);
        let e = refused(json!({"actions": [{"selector": {}, "action": {"type": "pin", "position": 0}}]}));
        assert_eq!(e.code, ACTIONS);
        assert_eq!(e.message, "Missing field `id` inside `.actions[0].selector`");
        let e = refused(json!({"actions": [{"selector": {"id": "1"}, "action": {"type": "boost"}}]}));
        assert_eq!(e.message, "Unknown value `boost` at `.actions[0].action.type`: expected one of `pin`");
    }

    #[test]
    fn times_are_shown_as_parsed() {
        let u = parse_update(&json!({"conditions": {"time": {"start": "2025-11-28T00:00:00.000Z"}}})).unwrap();
        let Setting::Set(c) = u.conditions else { panic!() };
        assert_eq!(c.time.unwrap().start.as_deref(), Some("2025-11-28T00:00:00Z"));
    }

    #[test]
    fn list_body() {
        assert_eq!(parse_list(&json!({})).unwrap(), ListRequest { offset: 0, limit: 20, query: None, active: None });
        let e = parse_list(&json!({"limit": "x"})).unwrap_err();
        assert_eq!(e.code, Code::INVALID_DYNAMIC_SEARCH_RULE_LIMIT);
        let e = parse_list(&json!({"filter": {"nope": 1}})).unwrap_err();
        assert_eq!(e.code, Code::INVALID_DYNAMIC_SEARCH_RULE_FILTER);
        assert_eq!(e.message, "Unknown field `nope` inside `.filter`: expected one of `query`, `active`");
        assert_eq!(
            parse_list(&json!({"filter": {"active": 1}})).unwrap_err().code,
            Code::INVALID_DYNAMIC_SEARCH_RULE_FILTER_ACTIVE
        );
    }
}
