//! Index settings as clients see them and as nodes hold them. Nodes always also have
//! `_miroir_shard` filterable: shard-scoped reads, copies and cleanups filter on it.

use serde_json::Value;

pub use miroir::settings::{node_settings, SETTINGS, SHARD_FIELD};

pub fn by_segment(segment: &str) -> Option<(&'static str, &'static str)> {
    SETTINGS.iter().find(|(s, _, _)| *s == segment).map(|(_, key, verb)| (*key, *verb))
}

/// Removes Miroir's field from settings read back from a node.
pub fn strip_shard_field(settings: &mut Value) {
    let strip = |v: &mut Value| {
        if let Some(list) = v.as_array_mut() {
            list.retain(|x| x != SHARD_FIELD);
        }
    };
    match settings {
        Value::Object(map) => {
            if let Some(v) = map.get_mut("filterableAttributes") {
                strip(v);
            }
        }
        v @ Value::Array(_) => strip(v),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        let mut back = json!({"filterableAttributes": ["genre", "_miroir_shard"]});
        strip_shard_field(&mut back);
        assert_eq!(back, json!({"filterableAttributes": ["genre"]}));
    }
}
