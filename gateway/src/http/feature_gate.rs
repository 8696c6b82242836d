//! Routes Meilisearch serves only with an experimental feature on: while the feature is off in the
//! cluster (`PATCH /experimental-features`), the gateway answers Meilisearch's own
//! `feature_not_enabled` error, exactly as one node would, before saying anything about its own
//! support for the route.

use axum::http::Method;
use miroir::RoutingMap;

use crate::error::{AppError, Code};

/// Meilisearch's `FeatureNotEnabledError` for a route: (feature flag, disabled action, feature
/// name, discussion link), from `index-scheduler/src/features.rs` and the route handlers of 1.50.
fn gate(method: &Method, path: &str) -> Option<(&'static str, &'static str, &'static str, &'static str)> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["indexes", _, "documents", "edit"] if method == Method::POST => Some((
            "editDocumentsByFunction",
            "Using the documents edit route",
            "edit documents by function",
            "https://github.com/orgs/meilisearch/discussions/762",
        )),
        ["dynamic-search-rules"] if method == Method::POST => Some((
            "dynamicSearchRules",
            "Calling the `POST /dynamic-search-rules` route",
            "dynamic search rules",
            "https://github.com/orgs/meilisearch/discussions/884",
        )),
        ["dynamic-search-rules", _] if method == Method::GET => Some((
            "dynamicSearchRules",
            "Calling the `GET /dynamic-search-rules/{:ruleUid}` route",
            "dynamic search rules",
            "https://github.com/orgs/meilisearch/discussions/884",
        )),
        ["dynamic-search-rules", ..] => Some((
            "dynamicSearchRules",
            "Using the `/dynamic-search-rules` routes",
            "dynamic search rules",
            "https://github.com/orgs/meilisearch/discussions/884",
        )),
        ["tasks", _, "documents"] if method == Method::GET => Some((
            "getTaskDocumentsRoute",
            "Getting the documents of an enqueued task",
            "get task documents route",
            "https://github.com/orgs/meilisearch/discussions/808",
        )),
        ["logs", ..] => Some((
            "logsRoute",
            "Modifying logs through the `/logs/*` routes",
            "logs route",
            "https://github.com/orgs/meilisearch/discussions/721",
        )),
        _ => None,
    }
}

/// `Err(feature_not_enabled)` when `path` needs a feature the cluster has off.
pub fn check(map: &RoutingMap, method: &Method, path: &str) -> Result<(), AppError> {
    let Some((flag, action, feature, link)) = gate(method, path) else { return Ok(()) };
    if map.experimental_features.get(flag).and_then(|v| v.as_bool()) == Some(true) {
        return Ok(());
    }
    let code = Code::FEATURE_NOT_ENABLED;
    Err(AppError::new(code, format!("{action} requires enabling the `{feature}` experimental feature. See {link}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gated_routes_answer_feature_not_enabled_until_the_feature_is_on() {
        let mut map = RoutingMap::default();
        let e = check(&map, &Method::POST, "/indexes/movies/documents/edit").unwrap_err();
        assert_eq!(e.code, Code::FEATURE_NOT_ENABLED);
        assert_eq!(e.message, "Using the documents edit route requires enabling the `edit documents by function` experimental feature. See https://github.com/orgs/meilisearch/discussions/762");
        assert!(check(&map, &Method::GET, "/tasks/3/documents").is_err());
        assert!(check(&map, &Method::PATCH, "/dynamic-search-rules/r1").is_err());
        assert!(check(&map, &Method::GET, "/indexes/movies/documents").is_ok());
        map.experimental_features.insert("editDocumentsByFunction".into(), true.into());
        assert!(check(&map, &Method::POST, "/indexes/movies/documents/edit").is_ok());
    }
}
