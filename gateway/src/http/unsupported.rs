//! Meilisearch routes the gateway does not serve (yet) answer 501 `miroir_not_supported` naming the
//! route, so an SDK gets a clear error instead of a 404 that looks like a missing index or a hang.
//! Paths Meilisearch does not know at all keep Meilisearch's empty 404.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::error::{AppError, Code};

/// Top-level Meilisearch route prefixes (1.x) without a cluster implementation in Miroir yet.
const ROOT: &[&str] = &["/chats", "/dumps", "/export", "/logs", "/network", "/render-template", "/snapshots"];

/// Index sub-routes (after `/indexes/{uid}/`) without a cluster implementation in Miroir yet.
const INDEX: &[&str] = &["chat"];

/// Whether Meilisearch serves `path` (some method of it), while this gateway does not.
pub fn is_unsupported_meilisearch_route(path: &str) -> bool {
    let path = path.trim_end_matches('/');
    if ROOT.iter().any(|r| path == *r || path.strip_prefix(r).is_some_and(|rest| rest.starts_with('/'))) {
        return true;
    }
    let Some(rest) = path.strip_prefix("/indexes/") else { return false };
    let Some((_uid, sub)) = rest.split_once('/') else { return false };
    INDEX.iter().any(|r| sub == *r || sub.strip_prefix(r).is_some_and(|s| s.starts_with('/')))
}

/// Whether the path is `/tasks/{uid}/documents`, which Meilisearch serves behind a feature.
fn is_task_documents(path: &str) -> bool {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    matches!(segments.as_slice(), ["tasks", _, "documents"])
}

pub async fn fallback(State(app): State<Arc<AppState>>, method: Method, uri: Uri) -> Response {
    if is_unsupported_meilisearch_route(uri.path()) || is_task_documents(uri.path()) {
        if let Err(e) = crate::http::feature_gate::check(&app.map(), &method, uri.path()) {
            return e.into_response();
        }
        let msg = format!("`{method} {}` is not supported by Miroir yet.", uri.path());
        return AppError::new(Code::MIROIR_NOT_SUPPORTED, msg).into_response();
    }
    StatusCode::NOT_FOUND.into_response()
}

#[cfg(test)]
mod tests {
    use super::is_unsupported_meilisearch_route as unsupported;

    #[test]
    fn known_meilisearch_routes_are_recognised_and_others_are_not() {
        for p in ["/dumps", "/indexes/m/chat", "/network/"] {
            assert!(unsupported(p), "{p}");
        }
        for p in [
            "/nope",
            "/keys",
            "/keys/abc",
            "/indexes/movies",
            "/indexes/movies/documents",
            "/indexes/movies/fields",
            "/indexes/movies/documents/edit",
            "/indexes/searchable",
        ] {
            assert!(!unsupported(p), "{p}");
        }
    }
}
