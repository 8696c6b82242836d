//! Index settings as stored in the state: only what the client set, merged with Meilisearch's
//! PATCH semantics.

use serde_json::{Map, Value};

/// The field every document carries on the nodes: the shard it belongs to. Nodes always have it
/// filterable, because shard-scoped reads, copies and cleanups filter on it; clients never see it.
pub const SHARD_FIELD: &str = "_miroir_shard";

/// Settings whose object value is merged key by key on PATCH, as Meilisearch does; every other
/// setting is replaced whole.
const MERGED_OBJECTS: &[&str] = &["typoTolerance", "faceting", "pagination", "embedders"];

/// Applies a PATCH body to stored settings. `null` resets a setting (or a merged sub-key) to
/// its default, which here means removing it.
pub fn merge_settings(current: &Value, patch: &Map<String, Value>) -> Value {
    let mut out = current.as_object().cloned().unwrap_or_default();
    for (key, value) in patch {
        match value {
            Value::Null => {
                out.remove(key);
            }
            Value::Object(sub) if MERGED_OBJECTS.contains(&key.as_str()) => {
                let merged = merge_object(out.get(key), sub);
                out.insert(key.clone(), Value::Object(merged));
            }
            v => {
                out.insert(key.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

fn merge_object(current: Option<&Value>, patch: &Map<String, Value>) -> Map<String, Value> {
    let mut out = current.and_then(Value::as_object).cloned().unwrap_or_default();
    for (k, v) in patch {
        match v {
            Value::Null => {
                out.remove(k);
            }
            Value::Object(sub) if out.get(k).is_some_and(Value::is_object) => {
                let merged = merge_object(out.get(k), sub);
                out.insert(k.clone(), Value::Object(merged));
            }
            v => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    out
}

/// Every Meilisearch setting: (sub-route path segment, settings key, HTTP verb that sets it).
pub const SETTINGS: &[(&str, &str, &str)] = &[
    ("displayed-attributes", "displayedAttributes", "PUT"),
    ("searchable-attributes", "searchableAttributes", "PUT"),
    ("filterable-attributes", "filterableAttributes", "PUT"),
    ("sortable-attributes", "sortableAttributes", "PUT"),
    ("ranking-rules", "rankingRules", "PUT"),
    ("stop-words", "stopWords", "PUT"),
    ("non-separator-tokens", "nonSeparatorTokens", "PUT"),
    ("separator-tokens", "separatorTokens", "PUT"),
    ("dictionary", "dictionary", "PUT"),
    ("synonyms", "synonyms", "PUT"),
    ("distinct-attribute", "distinctAttribute", "PUT"),
    ("proximity-precision", "proximityPrecision", "PUT"),
    ("typo-tolerance", "typoTolerance", "PATCH"),
    ("faceting", "faceting", "PATCH"),
    ("pagination", "pagination", "PATCH"),
    ("embedders", "embedders", "PATCH"),
    ("search-cutoff-ms", "searchCutoffMs", "PUT"),
    ("localized-attributes", "localizedAttributes", "PUT"),
    ("facet-search", "facetSearch", "PUT"),
    ("prefix-search", "prefixSearch", "PUT"),
    ("chat", "chat", "PATCH"),
    ("vector-store", "vectorStore", "PATCH"),
];

/// Every settings key, in Meilisearch's order.
pub fn settings_keys() -> impl Iterator<Item = &'static str> {
    SETTINGS.iter().map(|(_, key, _)| *key)
}

fn with_shard_field(filterable: &Value) -> Value {
    let mut list = filterable.as_array().cloned().unwrap_or_default();
    if !list.iter().any(|v| v == SHARD_FIELD) {
        list.push(Value::from(SHARD_FIELD));
    }
    Value::Array(list)
}

/// What a node must receive for a client's settings patch (or whole settings object): the same,
/// with `_miroir_shard` added to the filterable attributes.
pub fn node_settings(patch: &Value) -> Value {
    let mut out: Map<String, Value> = patch.as_object().cloned().unwrap_or_default();
    let filterable = out.get("filterableAttributes").cloned().unwrap_or(Value::Null);
    out.insert("filterableAttributes".into(), with_shard_field(&filterable));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patch(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn replaces_lists_merges_objects_and_resets_on_null() {
        let cur = json!({"searchableAttributes": ["a"], "typoTolerance": {"enabled": false, "minWordSizeForTypos": {"oneTypo": 4}}});
        let out = merge_settings(
            &cur,
            &patch(
                json!({"searchableAttributes": ["b", "c"], "typoTolerance": {"minWordSizeForTypos": {"twoTypos": 10}}}),
            ),
        );
        assert_eq!(
            out,
            json!({"searchableAttributes": ["b", "c"], "typoTolerance": {"enabled": false, "minWordSizeForTypos": {"oneTypo": 4, "twoTypos": 10}}})
        );
        let out =
            merge_settings(&out, &patch(json!({"searchableAttributes": null, "typoTolerance": {"enabled": null}})));
        assert_eq!(out, json!({"typoTolerance": {"minWordSizeForTypos": {"oneTypo": 4, "twoTypos": 10}}}));
    }

    #[test]
    fn nodes_always_filter_on_the_shard_field() {
        assert_eq!(node_settings(&json!({})), json!({"filterableAttributes": ["_miroir_shard"]}));
        assert_eq!(
            node_settings(&json!({"filterableAttributes": ["genre"], "rankingRules": ["words"]})),
            json!({"filterableAttributes": ["genre", "_miroir_shard"], "rankingRules": ["words"]})
        );
        assert_eq!(
            node_settings(&json!({"filterableAttributes": null}))["filterableAttributes"],
            json!(["_miroir_shard"])
        );
    }
}
