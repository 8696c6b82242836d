//! Index settings: every setting Meilisearch 1.50 has, its sub-route and verb, and how a PATCH
//! body merges into the settings set so far (only what the client set is kept).

use serde_json::{Map, Value};

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

/// Default of `faceting.maxValuesPerFacet` in Meilisearch.
pub const DEFAULT_MAX_VALUES_PER_FACET: u64 = 100;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patch(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_reset_of_displayed_or_searchable_attributes_shows_a_star() {
        let patch = serde_json::json!({"displayedAttributes": null, "searchableAttributes": null, "stopWords": null});
        assert_eq!(
            super::task_details(patch.as_object().unwrap()),
            serde_json::json!({"displayedAttributes": ["*"], "searchableAttributes": ["*"], "stopWords": null})
        );
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
}
