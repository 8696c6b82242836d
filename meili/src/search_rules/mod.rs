//! Dynamic search rules (`/dynamic-search-rules`, Meilisearch's `dynamicSearchRules` experimental
//! feature): rules that pin documents at given positions of a search's results when the search
//! meets their conditions. They live in the replicated state and are applied by the gateway after
//! it merged the shards' answers (see docs/search-rules.md), never sent to the nodes.

pub mod parse;
pub mod pins;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use parse::{check_uid, parse_list, parse_update, ListRequest};

/// Meilisearch reports rule tasks as tasks of this (hidden) index.
pub const TASK_INDEX_UID: &str = ".meili_dsr";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchRule {
    pub uid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub last_updated_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precedence: Option<u64>,
    pub active: bool,
    #[serde(default)]
    pub conditions: Conditions,
    #[serde(default)]
    pub actions: Vec<RuleAction>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conditions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<TimeCondition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<QueryCondition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<FilterCondition>,
}

/// RFC 3339 instants, as Meilisearch formats them back.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeCondition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryCondition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_empty: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub words: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FilterCondition {
    #[serde(default)]
    pub values: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleAction {
    pub selector: Selector,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Selector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_uid: Option<String>,
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Action {
    Pin { position: u32 },
}

/// A field of an update: absent, `null` (back to its default), or given.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Setting<T> {
    #[default]
    NotSet,
    Reset,
    Set(T),
}

impl<T: Serialize> Setting<T> {
    fn insert_into(&self, out: &mut serde_json::Map<String, Value>, key: &str) {
        match self {
            Setting::NotSet => {}
            Setting::Reset => {
                out.insert(key.into(), Value::Null);
            }
            Setting::Set(v) => {
                out.insert(key.into(), serde_json::to_value(v).unwrap_or(Value::Null));
            }
        }
    }
}

/// `PATCH /dynamic-search-rules/{uid}`'s body: creates the rule if missing, else changes only
/// the given fields (Meilisearch's `DynamicSearchRuleUpdateRequest`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleUpdate {
    pub description: Setting<String>,
    pub precedence: Setting<u64>,
    pub active: Setting<bool>,
    pub conditions: Setting<Conditions>,
    pub actions: Setting<Vec<RuleAction>>,
}

impl RuleUpdate {
    /// The update as Meilisearch shows it in the task's `details.rule`.
    pub fn view(&self) -> Value {
        let mut out = serde_json::Map::new();
        self.description.insert_into(&mut out, "description");
        self.precedence.insert_into(&mut out, "precedence");
        self.active.insert_into(&mut out, "active");
        self.conditions.insert_into(&mut out, "conditions");
        self.actions.insert_into(&mut out, "actions");
        Value::Object(out)
    }
}

impl SearchRule {
    pub fn new(uid: String) -> Self {
        Self {
            uid,
            description: None,
            last_updated_at: None,
            precedence: None,
            active: true,
            conditions: Conditions::default(),
            actions: vec![],
        }
    }

    /// Meilisearch's `apply_update`: given fields replace, `null` resets, absent ones stay.
    pub fn apply(&mut self, update: &RuleUpdate, updated_at: String) {
        fn take<T: Clone>(s: &Setting<T>, old: Option<T>) -> Option<T> {
            match s {
                Setting::Set(v) => Some(v.clone()),
                Setting::Reset => None,
                Setting::NotSet => old,
            }
        }
        self.description = take(&update.description, self.description.take());
        self.precedence = take(&update.precedence, self.precedence.take());
        self.active = take(&update.active, Some(self.active)).unwrap_or(true);
        self.conditions = take(&update.conditions, Some(std::mem::take(&mut self.conditions))).unwrap_or_default();
        self.actions = take(&update.actions, Some(std::mem::take(&mut self.actions))).unwrap_or_default();
        self.last_updated_at = Some(updated_at);
    }
}

/// A rule as the state keeps it: `seq` is its creation order, Meilisearch's tie-break between
/// rules of equal (or no) precedence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRule {
    pub seq: u64,
    pub rule: SearchRule,
}

/// All rules, by uid, with the next creation number.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchRules {
    pub rules: BTreeMap<String, StoredRule>,
    pub next_seq: u64,
}

impl SearchRules {
    pub fn put(&mut self, uid: &str, update: &RuleUpdate, updated_at: String) {
        let next = self.next_seq;
        let stored = self
            .rules
            .entry(uid.to_string())
            .or_insert_with(|| StoredRule { seq: next, rule: SearchRule::new(uid.to_string()) });
        if stored.seq == next {
            self.next_seq += 1;
        }
        stored.rule.apply(update, updated_at);
    }

    pub fn delete(&mut self, uid: &str) -> bool {
        self.rules.remove(uid).is_some()
    }

    pub fn clear(&mut self) -> usize {
        std::mem::take(&mut self.rules).len()
    }

    pub fn get(&self, uid: &str) -> Option<&SearchRule> {
        self.rules.get(uid).map(|s| &s.rule)
    }

    /// `POST /dynamic-search-rules`: Meilisearch's page of rules, most recently updated first.
    pub fn list(&self, req: &ListRequest) -> Value {
        let mut matching: Vec<&StoredRule> = self
            .rules
            .values()
            .filter(|s| req.active.is_none_or(|a| s.rule.active == a))
            .filter(|s| req.query.as_deref().is_none_or(|q| parse::list_query_matches(q, &s.rule)))
            .collect();
        // Instants, not their text: RFC 3339 strings with fractions of varying length do not
        // sort as text.
        let at = |s: &StoredRule| s.rule.last_updated_at.as_deref().and_then(parse::parse_time);
        matching.sort_by(|a, b| at(b).cmp(&at(a)).then(b.seq.cmp(&a.seq)));
        let total = matching.len();
        let results: Vec<Value> = matching
            .into_iter()
            .skip(req.offset)
            .take(req.limit)
            .map(|s| serde_json::to_value(&s.rule).unwrap_or(Value::Null))
            .collect();
        serde_json::json!({"results": results, "offset": req.offset, "limit": req.limit, "total": total})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn update(v: Value) -> RuleUpdate {
        parse_update(&v).unwrap()
    }

    #[test]
    fn put_creates_then_patches_only_given_fields() {
        let mut rules = SearchRules::default();
        rules.put(
            "r",
            &update(json!({"description": "d", "precedence": 5, "conditions": {"query": {"isEmpty": true}},
                "actions": [{"selector": {"id": "1"}, "action": {"type": "pin", "position": 0}}]})),
            "t1".into(),
        );
        rules.put("r", &update(json!({"description": "new"})), "t2".into());
        let r = serde_json::to_value(rules.get("r").unwrap()).unwrap();
        assert_eq!(
            r,
            json!({"uid": "r", "description": "new", "lastUpdatedAt": "t2", "precedence": 5, "active": true,
                "conditions": {"query": {"isEmpty": true}},
                "actions": [{"selector": {"id": "1"}, "action": {"type": "pin", "position": 0}}]})
        );
        rules.put("r", &update(json!({"description": null, "precedence": null, "conditions": null})), "t3".into());
        let r = serde_json::to_value(rules.get("r").unwrap()).unwrap();
        assert_eq!(r["conditions"], json!({}));
        assert!(r.get("description").is_none() && r.get("precedence").is_none());
        assert_eq!(rules.rules["r"].seq, 0);
        rules.put("s", &RuleUpdate::default(), "t4".into());
        assert_eq!(rules.rules["s"].seq, 1);
        assert_eq!(rules.next_seq, 2);
    }

    #[test]
    fn list_pages_newest_first_and_filters() {
        let mut rules = SearchRules::default();
        // The second instant is later than the first, though it sorts first as text.
        let times = ["2025-01-01T00:00:00.5Z", "2025-01-01T00:00:01Z", "2025-01-01T00:00:01.25Z"];
        for (i, (uid, active)) in [("promo-a", true), ("promo-b", false), ("standard", true)].into_iter().enumerate() {
            rules.put(uid, &update(json!({"description": uid, "active": active})), times[i].into());
        }
        let page = rules.list(&parse_list(&json!({"offset": 1, "limit": 1})).unwrap());
        assert_eq!(page["total"], 3);
        assert_eq!(page["results"][0]["uid"], "promo-b");
        let active = rules.list(&parse_list(&json!({"filter": {"active": true}})).unwrap());
        let uids: Vec<&str> =
            active["results"].as_array().unwrap().iter().map(|r| r["uid"].as_str().unwrap()).collect();
        assert_eq!(uids, ["standard", "promo-a"]);
        let promo = rules.list(&parse_list(&json!({"filter": {"query": "promo", "active": true}})).unwrap());
        assert_eq!(promo["total"], 1);
        assert_eq!(promo["results"][0]["uid"], "promo-a");
    }

    #[test]
    fn update_view_shows_resets_as_null() {
        let u = update(json!({"description": null, "active": false}));
        assert_eq!(u.view(), json!({"description": null, "active": false}));
    }
}
