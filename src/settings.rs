//! What the nodes hold of an index's settings: the client's settings (kept in the state as
//! `miroir_meili::settings` merges them) plus what Miroir needs on every node.

use serde_json::{Map, Value};

use miroir_meili::settings::DEFAULT_MAX_VALUES_PER_FACET;

/// The field every document carries on the nodes: the shard it belongs to. Nodes always have it
/// filterable, because shard-scoped reads, copies and cleanups filter on it; clients never see it.
pub const SHARD_FIELD: &str = "_miroir_shard";

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
    use super::*;
    use serde_json::json;

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
