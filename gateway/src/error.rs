//! The gateway's one error type, and the one place it becomes Meilisearch's error format:
//! `{message, code, type, link}` with the HTTP status Meilisearch uses for that code. The codes
//! themselves are `miroir_meili`'s, shared with the kernel and the dev node.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

pub use miroir_meili::{Code, ErrorType, MeiliError};

/// Every error the gateway answers with: a code and a human message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    pub code: Code,
    pub message: String,
    /// Seconds to send in `Retry-After`; Meilisearch sets it on every 503.
    pub retry_after: Option<u32>,
    /// A node's own Meilisearch error, forwarded as it is (status and body).
    pub forwarded: Option<Box<(StatusCode, serde_json::Value)>>,
}

impl AppError {
    /// The same error with `prefix` before its message (multi-search names the failing query).
    pub fn inside(mut self, prefix: &str) -> Self {
        self.message = format!("{prefix}{}", self.message);
        if let Some(f) = self.forwarded.as_mut() {
            if let Some(m) = f.1.get("message").and_then(|m| m.as_str()).map(|m| format!("{prefix}{m}")) {
                f.1["message"] = serde_json::Value::String(m);
            }
        }
        self
    }

    pub fn new(code: Code, message: impl Into<String>) -> Self {
        let retry_after = (code.status == StatusCode::SERVICE_UNAVAILABLE.as_u16()).then_some(1);
        Self { code, message: message.into(), retry_after, forwarded: None }
    }

    /// A node refused a request the gateway passed on: the client gets Meilisearch's own answer.
    pub fn forwarded(status: u16, body: serde_json::Value) -> Self {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
        let message = body.get("message").and_then(|m| m.as_str()).unwrap_or("node error").to_string();
        Self { code: Code::BAD_REQUEST, message, retry_after: None, forwarded: Some(Box::new((status, body))) }
    }

    pub fn index_not_found(uid: &str) -> Self {
        MeiliError::index_not_found(uid).into()
    }

    /// The gateway may not write now: its lease lapsed, or its map is older than the cluster's.
    pub fn writes_fenced() -> Self {
        AppError::new(
            Code::MIROIR_WRITES_FENCED,
            "This gateway is not in sync with the coordinator; writes are refused until it is.",
        )
    }

    pub fn invalid_index_uid(uid: &str) -> Self {
        MeiliError::invalid_index_uid(uid).into()
    }

    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::new(Code::INTERNAL, message.to_string())
    }

    /// The body the client gets (a forwarded node error's own).
    pub fn body(&self) -> serde_json::Value {
        if let Some(forwarded) = &self.forwarded {
            return forwarded.1.clone();
        }
        MeiliError::new(self.code, self.message.clone()).to_json()
    }
}

impl From<MeiliError> for AppError {
    fn from(e: MeiliError) -> Self {
        AppError::new(e.code, e.message)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let Some(forwarded) = self.forwarded {
            let (status, body) = *forwarded;
            return (status, axum::Json(body)).into_response();
        }
        let status = StatusCode::from_u16(self.code.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (status, axum::Json(self.body())).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

pub type AppResult<T> = Result<T, AppError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_have_meilisearch_shape() {
        let e = AppError::index_not_found("movies");
        assert_eq!(
            e.body(),
            serde_json::json!({
                "message": "Index `movies` not found.",
                "code": "index_not_found",
                "type": "invalid_request",
                "link": "https://docs.meilisearch.com/errors#index_not_found"
            })
        );
        let resp = AppError::new(Code::MIROIR_NO_QUORUM, "no quorum").into_response();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "1");
    }
}
