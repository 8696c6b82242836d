//! Index settings as clients see them and as nodes hold them. Nodes always also have
//! `_miroir_shard` filterable: shard-scoped reads, copies and cleanups filter on it.

use serde_json::Value;

pub use miroir::settings::{max_values_per_facet, node_patch, node_settings, SHARD_FIELD};
pub use miroir_meili::settings::SETTINGS;

pub fn by_segment(segment: &str) -> Option<(&'static str, &'static str)> {
    SETTINGS.iter().find(|(s, _, _)| *s == segment).map(|(_, key, verb)| (*key, *verb))
}

/// The settings the client set, as the coordinator stores them.
pub fn stored_settings(map: &miroir::RoutingMap, uid: &str) -> Value {
    map.indexes.get(uid).map(|i| i.settings.clone()).unwrap_or(Value::Null)
}

/// Shows the client's `maxValuesPerFacet` in settings read back from a node (whole settings, or
/// the `faceting` sub-route's object), where nodes hold Miroir's own.
pub fn show_client_faceting(read_back: &mut Value, stored: &Value) {
    let faceting = match read_back.get_mut("faceting") {
        Some(f) => f,
        None => read_back,
    };
    if let Some(f) = faceting.as_object_mut().filter(|f| f.contains_key("maxValuesPerFacet")) {
        f.insert("maxValuesPerFacet".into(), Value::from(max_values_per_facet(stored)));
    }
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
        assert_eq!(node_settings(&json!({}))["filterableAttributes"], json!(["_miroir_shard"]));
        assert_eq!(
            node_settings(&json!({"filterableAttributes": ["genre"], "rankingRules": ["words"]}))
                ["filterableAttributes"],
            json!(["genre", "_miroir_shard"])
        );
        assert_eq!(
            node_settings(&json!({"filterableAttributes": null}))["filterableAttributes"],
            json!(["_miroir_shard"])
        );
        let mut back = json!({"filterableAttributes": ["genre", "_miroir_shard"]});
        strip_shard_field(&mut back);
        assert_eq!(back, json!({"filterableAttributes": ["genre"]}));
    }

    #[test]
    fn clients_see_their_own_max_values_per_facet() {
        let node = json!({"maxValuesPerFacet": 1_000_000, "sortFacetValuesBy": {"*": "alpha"}});
        let mut one = node.clone();
        show_client_faceting(&mut one, &json!({"faceting": {"maxValuesPerFacet": 7}}));
        assert_eq!(one, json!({"maxValuesPerFacet": 7, "sortFacetValuesBy": {"*": "alpha"}}));
        let mut all = json!({"rankingRules": [], "faceting": node});
        show_client_faceting(&mut all, &json!({}));
        assert_eq!(all["faceting"]["maxValuesPerFacet"], 100);
    }
}
