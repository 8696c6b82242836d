//! Index settings: Meilisearch's defaults, validation of a patch, and the typed view search uses.

use serde_json::{json, Map, Value};

use crate::error::{Code, DevResult, MeiliError};

/// The settings object a fresh Meilisearch index answers with.
pub fn defaults() -> Value {
    json!({
        "displayedAttributes": ["*"],
        "searchableAttributes": ["*"],
        "filterableAttributes": [],
        "sortableAttributes": [],
        "rankingRules": ["words", "typo", "proximity", "attributeRank", "sort", "wordPosition", "exactness"],
        "stopWords": [],
        "nonSeparatorTokens": [],
        "separatorTokens": [],
        "dictionary": [],
        "synonyms": {},
        "distinctAttribute": null,
        "proximityPrecision": "byWord",
        "typoTolerance": {
            "enabled": true,
            "minWordSizeForTypos": {"oneTypo": 5, "twoTypos": 9},
            "disableOnWords": [],
            "disableOnAttributes": [],
            "disableOnNumbers": false
        },
        "faceting": {"maxValuesPerFacet": 100, "sortFacetValuesBy": {"*": "alpha"}},
        "pagination": {"maxTotalHits": 1000},
        "embedders": {},
        "searchCutoffMs": null,
        "localizedAttributes": null,
        "facetSearch": true,
        "prefixSearch": "indexingTime",
        "foreignKeys": [],
        "chat": {
            "description": "",
            "documentTemplate": DEFAULT_CHAT_TEMPLATE,
            "documentTemplateMaxBytes": 400,
            "searchParameters": {}
        }
    })
}

/// `milli::prompt::default_template_text()`.
const DEFAULT_CHAT_TEMPLATE: &str = "{% for field in fields %}{% if field.is_searchable and field.value != nil %}{{ field.name }}: {{ field.value }}\n{% endif %}{% endfor %}";

/// `Settings<Unchecked>`'s fields in declaration order (the order of deserr's "expected one of").
const KEYS: &[&str] = &[
    "displayedAttributes",
    "searchableAttributes",
    "filterableAttributes",
    "sortableAttributes",
    "foreignKeys",
    "rankingRules",
    "stopWords",
    "nonSeparatorTokens",
    "separatorTokens",
    "dictionary",
    "synonyms",
    "distinctAttribute",
    "proximityPrecision",
    "typoTolerance",
    "faceting",
    "pagination",
    "embedders",
    "searchCutoffMs",
    "localizedAttributes",
    "facetSearch",
    "prefixSearch",
    "chat",
];

/// Settings only shown by `GET /settings`, and only settable, while an experimental feature is on
/// (`get_all` and `validate_settings` in Meilisearch's settings routes).
pub const GATED: &[(&str, &str, &str, &str)] = &[
    ("chat", "chatCompletions", "chat completions", "https://github.com/orgs/meilisearch/discussions/835"),
    ("foreignKeys", "foreignKeys", "foreign_keys", "https://github.com/orgs/meilisearch/discussions/873"),
];

/// Refuses a gated setting given a value (a reset is always allowed) while its feature is off.
pub fn check_features(patch: &Map<String, Value>, enabled: impl Fn(&str) -> bool) -> DevResult<()> {
    for (key, feature, name, link) in GATED {
        if patch.get(*key).is_some_and(|v| !v.is_null()) && !enabled(feature) {
            return Err(MeiliError::new(
                Code::FEATURE_NOT_ENABLED,
                format!("setting `{key}` in the index settings requires enabling the `{name}` experimental feature. See {link}"),
            ));
        }
    }
    Ok(())
}

/// Settings Meilisearch keeps as a `BTreeSet`: echoed (and shown in task details) sorted and
/// without duplicates.
const SETS: &[&str] = &["sortableAttributes", "stopWords", "nonSeparatorTokens", "separatorTokens", "dictionary"];

/// What Meilisearch's deserializer makes of a valid patch before it is enqueued.
pub fn normalize(patch: &mut Map<String, Value>) {
    fn sort(v: Option<&mut Value>) {
        if let Some(Value::Array(items)) = v {
            let set: std::collections::BTreeSet<String> =
                items.iter().filter_map(Value::as_str).map(str::to_string).collect();
            *items = set.into_iter().map(Value::from).collect();
        }
    }
    for key in SETS {
        sort(patch.get_mut(*key));
    }
    if let Some(Value::Object(typo)) = patch.get_mut("typoTolerance") {
        sort(typo.get_mut("disableOnWords"));
        sort(typo.get_mut("disableOnAttributes"));
    }
}

/// What processing the task does before storing: `Settings::check` turns a displayed or searchable
/// list holding `*` into a reset; `chat` is patched field by field into the current value.
pub fn prepare(mut patch: Map<String, Value>, current: &Value) -> Map<String, Value> {
    for key in ["displayedAttributes", "searchableAttributes"] {
        if patch.get(key).and_then(Value::as_array).is_some_and(|a| a.iter().any(|v| v == "*")) {
            patch.insert(key.into(), Value::Null);
        }
    }
    if let Some(Value::Object(chat)) = patch.get("chat") {
        let mut merged = current["chat"].as_object().cloned().unwrap_or_default();
        for (k, v) in chat {
            match v {
                Value::Null => merged.insert(k.clone(), defaults()["chat"][k].clone()),
                v => merged.insert(k.clone(), v.clone()),
            };
        }
        patch.insert("chat".into(), Value::Object(merged));
    }
    patch
}

pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a positive integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a map",
    }
}

fn invalid(key: &str, expected: &str, v: &Value) -> MeiliError {
    // `chat` is the one setting whose code does not follow its name (`InvalidSettingsIndexChat`).
    let code = if key == "chat" { Code::INVALID_SETTINGS_INDEX_CHAT } else { Code::for_param("invalid_settings", key) };
    MeiliError::new(
        code,
        format!("Invalid value type at `.{key}`: expected {expected}, but found {}: `{v}`", type_name(v)),
    )
}

/// Checks a settings patch the way Meilisearch's deserializer does: unknown keys are
/// `bad_request`, wrong types are `invalid_settings_<key>`. Null always means "reset".
pub fn validate(patch: &Map<String, Value>) -> DevResult<()> {
    let known = KEYS;
    for (key, v) in patch {
        if !known.contains(&key.as_str()) {
            return Err(MeiliError::bad_request(format!(
                "Unknown field `{key}`: expected one of {}",
                miroir_meili::listed(known)
            )));
        }
        if v.is_null() {
            continue;
        }
        match key.as_str() {
            "displayedAttributes"
            | "searchableAttributes"
            | "filterableAttributes"
            | "sortableAttributes"
            | "stopWords"
            | "nonSeparatorTokens"
            | "separatorTokens"
            | "dictionary"
            | "rankingRules" => {
                let Some(arr) = v.as_array() else { return Err(invalid(key, "an array", v)) };
                for item in arr {
                    let ok = item.is_string() || (key == "filterableAttributes" && item.is_object());
                    if !ok {
                        return Err(invalid(key, "a string", item));
                    }
                }
                if key == "rankingRules" {
                    for r in arr.iter().filter_map(Value::as_str) {
                        let builtin = [
                            "words",
                            "typo",
                            "proximity",
                            "attribute",
                            "attributeRank",
                            "wordPosition",
                            "sort",
                            "exactness",
                        ]
                        .contains(&r);
                        let custom =
                            r.rsplit_once(':').is_some_and(|(f, d)| !f.is_empty() && (d == "asc" || d == "desc"));
                        if !builtin && !custom {
                            return Err(MeiliError::new(Code::INVALID_SETTINGS_RANKING_RULES, format!("Invalid value at `.rankingRules[0]`: `{r}` ranking rule is invalid. Valid ranking rules are words, typo, sort, proximity, attribute, attributeRank, wordPosition, exactness and custom ranking rules.")));
                        }
                    }
                    // `Settings::validate_ranking_rules_settings`: `attribute` already covers the
                    // two rules that split it.
                    let has = |r: &str| arr.iter().any(|v| v == r);
                    if has("attribute") && (has("attributeRank") || has("wordPosition")) {
                        return Err(MeiliError::new(Code::INVALID_SETTINGS_RANKING_RULES, "Mixed usage of the attribute, attributeRank, and wordPosition ranking rules. You must either use the attribute ranking rule alone or the attributeRank and wordPosition ranking rules."));
                    }
                }
            }
            "distinctAttribute" | "proximityPrecision" | "prefixSearch" if !v.is_string() => {
                return Err(invalid(key, "a string", v))
            }
            "synonyms" | "typoTolerance" | "faceting" | "pagination" | "embedders" | "chat" if !v.is_object() => {
                return Err(invalid(key, "an object", v))
            }
            "foreignKeys" if !v.is_array() => return Err(invalid(key, "an array", v)),
            "facetSearch" if !v.is_boolean() => return Err(invalid(key, "a boolean", v)),
            "searchCutoffMs" if !v.is_u64() => return Err(invalid(key, "a positive integer", v)),
            "pagination" => {
                if let Some(m) = v.get("maxTotalHits") {
                    if !m.is_u64() && !m.is_null() {
                        return Err(MeiliError::new(Code::INVALID_SETTINGS_PAGINATION, format!("Invalid value type at `.pagination.maxTotalHits`: expected a positive integer, but found {}: `{m}`", type_name(m))));
                    }
                }
            }
            "faceting" => {
                if let Some(m) = v.get("maxValuesPerFacet") {
                    if !m.is_u64() && !m.is_null() {
                        return Err(MeiliError::new(Code::INVALID_SETTINGS_FACETING, format!("Invalid value type at `.faceting.maxValuesPerFacet`: expected a positive integer, but found {}: `{m}`", type_name(m))));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// What search needs from the settings, read once per request.
#[derive(Debug, Clone)]
pub struct View {
    pub displayed: Option<Vec<String>>,
    pub searchable: Option<Vec<String>>,
    pub filterable: Vec<String>,
    pub sortable: Vec<String>,
    pub ranking_rules: Vec<String>,
    pub distinct: Option<String>,
    pub max_total_hits: usize,
    pub max_values_per_facet: usize,
    /// `faceting.sortFacetValuesBy`: facet name (or `*`) → `alpha` or `count`.
    pub facet_orders: Map<String, Value>,
    pub stop_words: Vec<String>,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| {
                    x.as_str().map(str::to_string).or_else(|| {
                        x.get("attributePatterns")
                            .and_then(|p| p.as_array())
                            .map(|p| p.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("\u{0}"))
                    })
                })
                .flat_map(|s| s.split('\u{0}').map(str::to_string).collect::<Vec<_>>())
                .collect()
        })
        .unwrap_or_default()
}

fn star_or(v: &Value) -> Option<Vec<String>> {
    let s = strings(v);
    if s.iter().any(|x| x == "*") {
        None
    } else {
        Some(s)
    }
}

impl View {
    pub fn from_full(full: &Value) -> View {
        View {
            displayed: star_or(&full["displayedAttributes"]),
            searchable: star_or(&full["searchableAttributes"]),
            filterable: strings(&full["filterableAttributes"]),
            sortable: strings(&full["sortableAttributes"]),
            ranking_rules: strings(&full["rankingRules"]),
            distinct: full["distinctAttribute"].as_str().map(str::to_string),
            max_total_hits: full["pagination"]["maxTotalHits"].as_u64().unwrap_or(1000) as usize,
            max_values_per_facet: full["faceting"]["maxValuesPerFacet"].as_u64().unwrap_or(100) as usize,
            facet_orders: full["faceting"]["sortFacetValuesBy"].as_object().cloned().unwrap_or_default(),
            stop_words: strings(&full["stopWords"]),
        }
    }

    /// Meilisearch matches an attribute against a pattern list: exact, `*`, `prefix*`, or a
    /// parent object (`a` covers `a.b`).
    pub fn matches_any(list: &[String], attr: &str) -> bool {
        list.iter().any(|p| {
            p == "*"
                || p == attr
                || attr.starts_with(&format!("{p}."))
                || (p.ends_with('*') && attr.starts_with(&p[..p.len() - 1]))
        })
    }

    /// Whether a facet's values are ordered by count (its own entry, else `*`'s; milli's
    /// `OrderByMap::get`).
    pub fn by_count(orders: &Map<String, Value>, facet: &str) -> bool {
        orders.get(facet).or_else(|| orders.get("*")).and_then(Value::as_str) == Some("count")
    }

    pub fn is_filterable(&self, attr: &str) -> bool {
        attr == miroir::settings::SHARD_FIELD || Self::matches_any(&self.filterable, attr)
    }
}
