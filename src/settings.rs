//! Index settings as stored in the state: only what the client set, merged with Meilisearch's
//! PATCH semantics.

use serde_json::{Map, Value};

/// The field every document carries on the nodes: the shard it belongs to. Nodes always have it
/// filterable, because shard-scoped reads, copies and cleanups filter on it; clients never see it.
pub const SHARD_FIELD: &str = "_miroir_shard";

/// Settings whose object value is merged key by key on PATCH, as Meilisearch does; every other
/// setting is replaced whole.
const MERGED_OBJECTS: &[&str] = &["typoTolerance", "faceting", "pagination", "embedders", "chat"];

/// Objects inside merged settings that Meilisearch nevertheless replaces whole: the facet order map
/// (`update_sort_facet_values_by` stores the map it is given) and the chat search parameters'
/// `hybrid` (`update_chat_config` sets it as one value).
const REPLACED_WHOLE: &[&[&str]] = &[&["faceting", "sortFacetValuesBy"], &["chat", "searchParameters", "hybrid"]];

/// A settings task's `details` as Meilisearch 1.50 shows them: the patch, with a reset of
/// `displayedAttributes` or `searchableAttributes` shown as `["*"]` (checked against a real node).
pub fn task_details(patch: &Map<String, Value>) -> Value {
    let mut out = patch.clone();
    for key in ["displayedAttributes", "searchableAttributes"] {
        if let Some(v) = out.get_mut(key).filter(|v| v.is_null()) {
            *v = Value::Array(vec![Value::from("*")]);
        }
    }
    Value::Object(out)
}

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
                let merged = merge_object(out.get(key), sub, &[key.as_str()]);
                out.insert(key.clone(), Value::Object(merged));
            }
            v => {
                out.insert(key.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

fn merge_object(current: Option<&Value>, patch: &Map<String, Value>, path: &[&str]) -> Map<String, Value> {
    let mut out = current.and_then(Value::as_object).cloned().unwrap_or_default();
    for (k, v) in patch {
        let sub_path = [path, &[k.as_str()]].concat();
        match v {
            Value::Null => {
                out.remove(k);
            }
            Value::Object(sub)
                if out.get(k).is_some_and(Value::is_object) && !REPLACED_WHOLE.contains(&sub_path.as_slice()) =>
            {
                let merged = merge_object(out.get(k), sub, &sub_path);
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
    ("foreign-keys", "foreignKeys", "PUT"),
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

/// `faceting.maxValuesPerFacet` on the nodes, whatever the client set: a shard must return every
/// facet value it has so that the gateway's sums, ordered by count or alphabetically and cut to
/// the client's `maxValuesPerFacet`, are the global ones (and a distinct count can be taken from
/// the distinct attribute's values). Clients never see it: the gateway shows their own value.
pub const NODE_MAX_VALUES_PER_FACET: u64 = 1_000_000;

/// Default of `faceting.maxValuesPerFacet` in Meilisearch.
pub const DEFAULT_MAX_VALUES_PER_FACET: u64 = 100;

/// The client's `faceting` (absent: nothing set) as nodes must hold it. A value of the wrong type
/// is passed through unchanged, so that the node refuses it with Meilisearch's error.
fn node_faceting(faceting: Option<&Value>) -> Value {
    let mut out = match faceting {
        None => Map::new(),
        Some(Value::Null) => Map::from_iter([("sortFacetValuesBy".to_string(), Value::Null)]),
        Some(Value::Object(f)) => f.clone(),
        Some(other) => return other.clone(),
    };
    match out.get("maxValuesPerFacet") {
        None | Some(Value::Null) => {}
        Some(v) if v.as_u64().is_some() => {}
        Some(_) => return Value::Object(out),
    }
    out.insert("maxValuesPerFacet".into(), Value::from(NODE_MAX_VALUES_PER_FACET));
    Value::Object(out)
}

/// What a node must receive for a client's settings patch: the same, with `_miroir_shard` added
/// to the filterable attributes if the patch sets them, and the nodes' own `maxValuesPerFacet` if
/// it sets faceting.
pub fn node_patch(patch: &Value) -> Value {
    let mut out: Map<String, Value> = patch.as_object().cloned().unwrap_or_default();
    if let Some(filterable) = out.get("filterableAttributes").cloned() {
        out.insert("filterableAttributes".into(), with_shard_field(&filterable));
    }
    if out.contains_key("faceting") {
        let faceting = node_faceting(out.get("faceting"));
        out.insert("faceting".into(), faceting);
    }
    Value::Object(out)
}

/// What a node must receive for a client's whole settings object (index creation, reset,
/// reconciliation): as `node_patch`, and the shard field and the nodes' `maxValuesPerFacet` even
/// where the client set nothing.
pub fn node_settings(patch: &Value) -> Value {
    let mut out: Map<String, Value> = patch.as_object().cloned().unwrap_or_default();
    let filterable = out.get("filterableAttributes").cloned().unwrap_or(Value::Null);
    out.insert("filterableAttributes".into(), with_shard_field(&filterable));
    let faceting = node_faceting(out.get("faceting"));
    out.insert("faceting".into(), faceting);
    Value::Object(out)
}

/// The client's `maxValuesPerFacet` from the stored (client-set) settings.
pub fn max_values_per_facet(stored: &Value) -> u64 {
    stored.pointer("/faceting/maxValuesPerFacet").and_then(Value::as_u64).unwrap_or(DEFAULT_MAX_VALUES_PER_FACET)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_reset_of_displayed_or_searchable_attributes_shows_a_star() {
        let patch = serde_json::json!({"displayedAttributes": null, "searchableAttributes": null, "stopWords": null});
        assert_eq!(
            super::task_details(patch.as_object().unwrap()),
            serde_json::json!({"displayedAttributes": ["*"], "searchableAttributes": ["*"], "stopWords": null})
        );
    }

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
    fn facet_orders_are_replaced_whole_and_chat_is_patched_field_by_field() {
        let cur = json!({"faceting": {"maxValuesPerFacet": 10, "sortFacetValuesBy": {"genre": "count"}}});
        let out = merge_settings(&cur, &patch(json!({"faceting": {"sortFacetValuesBy": {"year": "count"}}})));
        assert_eq!(out, json!({"faceting": {"maxValuesPerFacet": 10, "sortFacetValuesBy": {"year": "count"}}}));

        let cur = json!({"chat": {"description": "books", "searchParameters": {"limit": 5, "hybrid": {"embedder": "a", "semanticRatio": 0.2}}}});
        let out = merge_settings(
            &cur,
            &patch(
                json!({"chat": {"documentTemplateMaxBytes": 100, "searchParameters": {"sort": ["price:asc"], "hybrid": {"embedder": "b"}}}}),
            ),
        );
        assert_eq!(
            out,
            json!({"chat": {"description": "books", "documentTemplateMaxBytes": 100, "searchParameters": {"limit": 5, "sort": ["price:asc"], "hybrid": {"embedder": "b"}}}})
        );
        let out =
            merge_settings(&out, &patch(json!({"chat": {"description": null, "searchParameters": {"limit": null}}})));
        assert_eq!(
            out,
            json!({"chat": {"documentTemplateMaxBytes": 100, "searchParameters": {"sort": ["price:asc"], "hybrid": {"embedder": "b"}}}})
        );
    }

    #[test]
    fn the_settings_list_is_meilisearch_1_50s() {
        let keys: Vec<&str> = settings_keys().collect();
        assert!(keys.contains(&"foreignKeys"));
        assert!(!keys.contains(&"vectorStore"), "Meilisearch 1.50 refuses vectorStore, even null");
        assert_eq!(keys.len(), 22);
    }

    #[test]
    fn nodes_always_filter_on_the_shard_field() {
        let big = json!({"maxValuesPerFacet": NODE_MAX_VALUES_PER_FACET});
        assert_eq!(node_settings(&json!({})), json!({"filterableAttributes": ["_miroir_shard"], "faceting": big}));
        assert_eq!(
            node_settings(&json!({"filterableAttributes": ["genre"], "rankingRules": ["words"]})),
            json!({"filterableAttributes": ["genre", "_miroir_shard"], "rankingRules": ["words"], "faceting": big})
        );
        assert_eq!(
            node_settings(&json!({"filterableAttributes": null}))["filterableAttributes"],
            json!(["_miroir_shard"])
        );
        assert_eq!(node_patch(&json!({"rankingRules": ["words"]})), json!({"rankingRules": ["words"]}));
    }

    #[test]
    fn nodes_return_every_facet_value_whatever_the_client_set() {
        let patch = node_patch(&json!({"faceting": {"maxValuesPerFacet": 3, "sortFacetValuesBy": {"genre": "count"}}}));
        assert_eq!(
            patch,
            json!({"faceting": {"maxValuesPerFacet": NODE_MAX_VALUES_PER_FACET, "sortFacetValuesBy": {"genre": "count"}}})
        );
        // A reset of faceting keeps the nodes' own maximum.
        assert_eq!(
            node_patch(&json!({"faceting": null})),
            json!({"faceting": {"sortFacetValuesBy": null, "maxValuesPerFacet": NODE_MAX_VALUES_PER_FACET}})
        );
        // A wrong value reaches the node unchanged, which refuses it as Meilisearch does.
        assert_eq!(
            node_patch(&json!({"faceting": {"maxValuesPerFacet": "ten"}})),
            json!({"faceting": {"maxValuesPerFacet": "ten"}})
        );
        assert_eq!(node_patch(&json!({"faceting": 7})), json!({"faceting": 7}));
        assert_eq!(max_values_per_facet(&json!({"faceting": {"maxValuesPerFacet": 3}})), 3);
        assert_eq!(max_values_per_facet(&json!({})), DEFAULT_MAX_VALUES_PER_FACET);
    }
}
