//! `POST /indexes/{uid}/fields`: every field the index has seen, with what its settings make of
//! it, as Meilisearch 1.50 computes it (`routes/indexes/fields.rs` over milli's `MetadataBuilder`).

use std::collections::BTreeSet;

use miroir_meili::fields::{is_faceted_by, match_any, ListFields, PatternMatch};
use serde_json::{json, Map, Value};

use super::settings::View;
use super::{Doc, Index};

/// Adds every path of a document to `seen`: top-level keys, nested objects' dotted paths (the
/// parents too), through arrays, as milli's fields ids map grows (and never shrinks).
pub fn record(seen: &mut BTreeSet<String>, doc: &Doc) {
    fn walk(seen: &mut BTreeSet<String>, prefix: &str, v: &Value) {
        match v {
            Value::Object(o) => {
                for (k, v) in o {
                    let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    seen.insert(path.clone());
                    walk(seen, &path, v);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(seen, prefix, i)),
            _ => {}
        }
    }
    for (k, v) in doc {
        seen.insert(k.clone());
        walk(seen, k, v);
    }
}

/// milli's `match_field_legacy` over a list (`field_match_any_patterns_legacy`), Match only.
fn legacy(list: &[String], field: &str) -> bool {
    list.iter().any(|p| is_faceted_by(field, p))
}

/// The features of the first filterable rule matching `field`: a plain name has every feature
/// (milli's `legacy_default`), a pattern rule its own (default: equality only).
fn filterable(rules: &Value, field: &str) -> (bool, bool, bool) {
    for rule in rules.as_array().into_iter().flatten() {
        if let Some(name) = rule.as_str() {
            if is_faceted_by(field, name) {
                return (true, true, true);
            }
            continue;
        }
        let patterns: Vec<String> = rule["attributePatterns"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_str().map(str::to_string))
            .collect();
        if match_any(&patterns, field) == PatternMatch::Match {
            let f = &rule["features"];
            return (
                f["facetSearch"].as_bool().unwrap_or(false),
                f["filter"]["equality"].as_bool().unwrap_or(true),
                f["filter"]["comparison"].as_bool().unwrap_or(false),
            );
        }
    }
    (false, false, false)
}

fn locales(rules: &Value, field: &str) -> Value {
    for rule in rules.as_array().into_iter().flatten() {
        let patterns: Vec<String> = rule["attributePatterns"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_str().map(str::to_string))
            .collect();
        if match_any(&patterns, field) == PatternMatch::Match {
            return rule["locales"].clone();
        }
    }
    json!([])
}

/// One field as Meilisearch answers it.
pub fn describe(full: &Value, view: &View, field: &str) -> Value {
    let vectors = is_faceted_by(field, "_vectors");
    let geo = is_faceted_by(field, "_geo");
    let geojson = is_faceted_by(field, "_geojson");
    let reserved = vectors || geo || geojson;
    let displayed = view.displayed.as_ref().is_none_or(|d| legacy(d, field));
    let searchable = !reserved && view.searchable.as_ref().is_none_or(|s| legacy(s, field));
    let sortable = !vectors && !geojson && legacy(&view.sortable, field);
    let distinct = !reserved && view.distinct.as_deref() == Some(field);
    let order = if reserved {
        None
    } else {
        // milli collects `field:asc`/`field:desc` rules into a map: the last one of a field wins.
        view.ranking_rules.iter().rev().find_map(|r| match r.rsplit_once(':') {
            Some((f, o @ ("asc" | "desc"))) if f == field => Some(o),
            _ => None,
        })
    };
    let (facet_search, equality, comparison) =
        if vectors { (false, false, false) } else { filterable(&full["filterableAttributes"], field) };
    let sort_by = if View::by_count(&view.facet_orders, field) { "count" } else { "alpha" };
    let mut ranking_rule = Map::new();
    ranking_rule.insert("enabled".into(), json!(order.is_some()));
    if let Some(o) = order {
        ranking_rule.insert("order".into(), json!(o));
    }
    json!({
        "name": field,
        "displayed": {"enabled": displayed},
        "searchable": {"enabled": searchable},
        "sortable": {"enabled": sortable},
        "distinct": {"enabled": distinct},
        "rankingRule": ranking_rule,
        "filterable": {
            "enabled": facet_search || equality || comparison,
            "sortBy": sort_by,
            "facetSearch": facet_search,
            "equality": equality,
            "comparison": comparison,
        },
        "localized": {"locales": if reserved { json!([]) } else { locales(&full["localizedAttributes"], field) }},
    })
}

/// The page of the index's fields the request asks for.
pub fn list(idx: &Index, req: &ListFields) -> Value {
    let full = idx.settings();
    let view = View::from_full(&full);
    let fields = idx.fields.iter().map(|f| describe(&full, &view, f)).filter(|f| req.keeps(f)).collect();
    req.page(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_include_parents_and_objects_in_arrays() {
        let mut seen = BTreeSet::new();
        let doc = json!({"id": 1, "cuisine": {"type": "x", "geo": {"lat": 1}}, "ing": [{"name": "a"}], "tags": ["t"]});
        record(&mut seen, doc.as_object().unwrap());
        let got: Vec<&str> = seen.iter().map(String::as_str).collect();
        assert_eq!(got, ["cuisine", "cuisine.geo", "cuisine.geo.lat", "cuisine.type", "id", "ing", "ing.name", "tags"]);
    }

    #[test]
    fn attributes_follow_the_settings() {
        let full = json!({
            "displayedAttributes": ["title", "cuisine"],
            "searchableAttributes": ["*"],
            "sortableAttributes": ["year"],
            "filterableAttributes": ["genre", {"attributePatterns": ["cuisine.*"], "features": {"facetSearch": true}}],
            "rankingRules": ["words", "year:desc"],
            "distinctAttribute": "title",
            "faceting": {"sortFacetValuesBy": {"*": "alpha", "genre": "count"}},
            "localizedAttributes": [{"attributePatterns": ["title"], "locales": ["fra"]}],
        });
        let view = View::from_full(&full);
        let title = describe(&full, &view, "title");
        assert_eq!(title["displayed"]["enabled"], json!(true));
        assert_eq!(title["distinct"]["enabled"], json!(true));
        assert_eq!(title["localized"]["locales"], json!(["fra"]));
        assert_eq!(title["rankingRule"], json!({"enabled": false}));
        let year = describe(&full, &view, "year");
        assert_eq!(year["displayed"]["enabled"], json!(false));
        assert_eq!(year["sortable"]["enabled"], json!(true));
        assert_eq!(year["rankingRule"], json!({"enabled": true, "order": "desc"}));
        let genre = describe(&full, &view, "genre");
        assert_eq!(
            genre["filterable"],
            json!({"enabled": true, "sortBy": "count", "facetSearch": true, "equality": true, "comparison": true})
        );
        let nested = describe(&full, &view, "cuisine.type");
        assert_eq!(nested["displayed"]["enabled"], json!(true), "a displayed parent shows its children");
        assert_eq!(
            nested["filterable"],
            json!({"enabled": true, "sortBy": "alpha", "facetSearch": true, "equality": true, "comparison": false})
        );
    }
}
