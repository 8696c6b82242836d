//! Client authentication, as Meilisearch does it with a master key: every route but `/health`
//! needs `Authorization: Bearer <key>`; no header is 401 `missing_authorization_header`, a wrong
//! key 403 `invalid_api_key`. Without a master key every route is open, as in Meilisearch's
//! development mode. API keys and tenant tokens (issue 8) will extend `authorized`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::error::{AppError, Code};

/// Routes anyone may call, key or not.
const OPEN: &[&str] = &["/health"];

pub async fn check(State(app): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let Some(master) = app.master_key() else { return next.run(req).await };
    if OPEN.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    match bearer(&req) {
        None => AppError::new(
            Code::MISSING_AUTHORIZATION_HEADER,
            "The Authorization header is missing. It must use the bearer authorization method.",
        )
        .into_response(),
        Some(key) if constant_time_eq(key.as_bytes(), master.as_bytes()) => next.run(req).await,
        Some(_) => AppError::new(Code::INVALID_API_KEY, "The provided API key is invalid.").into_response(),
    }
}

/// The bearer token, if the header is there (an empty or non-bearer header counts as a wrong key,
/// as in Meilisearch).
fn bearer(req: &Request) -> Option<&str> {
    let value = req.headers().get(AUTHORIZATION)?.to_str().unwrap_or("");
    Some(value.strip_prefix("Bearer ").unwrap_or("").trim())
}

/// Compares without an early exit, so the time taken does not tell how much of a guess was right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        diff |= (a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0)) as usize;
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn equal_only_when_same_bytes_and_length() {
        assert!(constant_time_eq(b"master-key-123456", b"master-key-123456"));
        assert!(!constant_time_eq(b"master-key-123456", b"master-key-123457"));
        assert!(!constant_time_eq(b"master-key", b"master-key-123456"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(constant_time_eq(b"", b""));
    }
}
