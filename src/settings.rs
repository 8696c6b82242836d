//! Index settings as stored in the state: only what the client set, merged with Meilisearch's
//! PATCH semantics.

use serde_json::{Map, Value};

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
}
