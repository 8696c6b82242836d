//! The gateway's one error type, and the one place it becomes Meilisearch's error format:
//! `{message, code, type, link}` with the HTTP status Meilisearch uses for that code.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    InvalidRequest,
    Internal,
    Auth,
    System,
}

/// An error code as Meilisearch (or Miroir, for `miroir_*`) names it, with its status and type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code {
    pub name: &'static str,
    pub status: StatusCode,
    pub kind: ErrorType,
}

macro_rules! codes {
    ($($ident:ident = $name:literal, $status:ident, $kind:ident;)*) => {
        impl Code {
            $(pub const $ident: Code = Code { name: $name, status: StatusCode::$status, kind: ErrorType::$kind };)*
        }
    };
}

codes! {
    BAD_REQUEST = "bad_request", BAD_REQUEST, InvalidRequest;
    INTERNAL = "internal", INTERNAL_SERVER_ERROR, Internal;
    INDEX_NOT_FOUND = "index_not_found", NOT_FOUND, InvalidRequest;
    INDEX_ALREADY_EXISTS = "index_already_exists", CONFLICT, InvalidRequest;
    INVALID_INDEX_UID = "invalid_index_uid", BAD_REQUEST, InvalidRequest;
    INVALID_INDEX_PRIMARY_KEY = "invalid_index_primary_key", BAD_REQUEST, InvalidRequest;
    INDEX_PRIMARY_KEY_ALREADY_EXISTS = "index_primary_key_already_exists", BAD_REQUEST, InvalidRequest;
    INDEX_PRIMARY_KEY_NO_CANDIDATE_FOUND = "index_primary_key_no_candidate_found", BAD_REQUEST, InvalidRequest;
    INDEX_PRIMARY_KEY_MULTIPLE_CANDIDATES_FOUND = "index_primary_key_multiple_candidates_found", BAD_REQUEST, InvalidRequest;
    INVALID_DOCUMENT_ID = "invalid_document_id", BAD_REQUEST, InvalidRequest;
    MISSING_DOCUMENT_ID = "missing_document_id", BAD_REQUEST, InvalidRequest;
    DOCUMENT_NOT_FOUND = "document_not_found", NOT_FOUND, InvalidRequest;
    MALFORMED_PAYLOAD = "malformed_payload", BAD_REQUEST, InvalidRequest;
    MISSING_PAYLOAD = "missing_payload", BAD_REQUEST, InvalidRequest;
    MISSING_CONTENT_TYPE = "missing_content_type", UNSUPPORTED_MEDIA_TYPE, InvalidRequest;
    INVALID_CONTENT_TYPE = "invalid_content_type", UNSUPPORTED_MEDIA_TYPE, InvalidRequest;
    PAYLOAD_TOO_LARGE = "payload_too_large", PAYLOAD_TOO_LARGE, InvalidRequest;
    INVALID_DOCUMENT_CSV_DELIMITER = "invalid_document_csv_delimiter", BAD_REQUEST, InvalidRequest;
    TASK_NOT_FOUND = "task_not_found", NOT_FOUND, InvalidRequest;
    BATCH_NOT_FOUND = "batch_not_found", NOT_FOUND, InvalidRequest;
    MISSING_INDEX_UID = "missing_index_uid", BAD_REQUEST, InvalidRequest;
    MISSING_DOCUMENT_FILTER = "missing_document_filter", BAD_REQUEST, InvalidRequest;
    INVALID_DOCUMENT_FILTER = "invalid_document_filter", BAD_REQUEST, InvalidRequest;
    MISSING_DOCUMENT_EDITION_FUNCTION = "missing_document_edition_function", BAD_REQUEST, InvalidRequest;
    INVALID_DOCUMENT_EDITION_FUNCTION_FILTER = "invalid_document_edition_function_filter", BAD_REQUEST, InvalidRequest;
    INVALID_DOCUMENT_EDITION_CONTEXT = "invalid_document_edition_context", BAD_REQUEST, InvalidRequest;
    MISSING_MULTI_SEARCH_QUERIES = "missing_multi_search_queries", BAD_REQUEST, InvalidRequest;
    WEBHOOK_NOT_FOUND = "webhook_not_found", NOT_FOUND, InvalidRequest;
    DYNAMIC_SEARCH_RULE_NOT_FOUND = "dynamic_search_rule_not_found", NOT_FOUND, InvalidRequest;
    INVALID_WEBHOOK_URL = "invalid_webhook_url", BAD_REQUEST, InvalidRequest;
    INVALID_WEBHOOK_HEADERS = "invalid_webhook_headers", BAD_REQUEST, InvalidRequest;
    INVALID_WEBHOOKS = "invalid_webhooks", BAD_REQUEST, InvalidRequest;
    INVALID_WEBHOOK_UUID = "invalid_webhook_uuid", BAD_REQUEST, InvalidRequest;
    IMMUTABLE_WEBHOOK = "immutable_webhook", BAD_REQUEST, InvalidRequest;
    IMMUTABLE_WEBHOOK_UUID = "immutable_webhook_uuid", BAD_REQUEST, InvalidRequest;
    IMMUTABLE_WEBHOOK_IS_EDITABLE = "immutable_webhook_is_editable", BAD_REQUEST, InvalidRequest;
    API_KEY_ALREADY_EXISTS = "api_key_already_exists", CONFLICT, InvalidRequest;
    API_KEY_NOT_FOUND = "api_key_not_found", NOT_FOUND, InvalidRequest;
    INDEX_SCOPED_API_KEY_WITH_GLOBAL_ACTION = "index_scoped_api_key_with_global_action", BAD_REQUEST, InvalidRequest;
    INVALID_API_KEY_ACTIONS = "invalid_api_key_actions", BAD_REQUEST, InvalidRequest;
    INVALID_API_KEY_DESCRIPTION = "invalid_api_key_description", BAD_REQUEST, InvalidRequest;
    INVALID_API_KEY_EXPIRES_AT = "invalid_api_key_expires_at", BAD_REQUEST, InvalidRequest;
    INVALID_API_KEY_INDEXES = "invalid_api_key_indexes", BAD_REQUEST, InvalidRequest;
    INVALID_API_KEY_LIMIT = "invalid_api_key_limit", BAD_REQUEST, InvalidRequest;
    INVALID_API_KEY_NAME = "invalid_api_key_name", BAD_REQUEST, InvalidRequest;
    INVALID_API_KEY_OFFSET = "invalid_api_key_offset", BAD_REQUEST, InvalidRequest;
    INVALID_API_KEY_UID = "invalid_api_key_uid", BAD_REQUEST, InvalidRequest;
    MISSING_API_KEY_ACTIONS = "missing_api_key_actions", BAD_REQUEST, InvalidRequest;
    MISSING_API_KEY_EXPIRES_AT = "missing_api_key_expires_at", BAD_REQUEST, InvalidRequest;
    MISSING_API_KEY_INDEXES = "missing_api_key_indexes", BAD_REQUEST, InvalidRequest;
    IMMUTABLE_API_KEY_ACTIONS = "immutable_api_key_actions", BAD_REQUEST, InvalidRequest;
    IMMUTABLE_API_KEY_CREATED_AT = "immutable_api_key_created_at", BAD_REQUEST, InvalidRequest;
    IMMUTABLE_API_KEY_EXPIRES_AT = "immutable_api_key_expires_at", BAD_REQUEST, InvalidRequest;
    IMMUTABLE_API_KEY_INDEXES = "immutable_api_key_indexes", BAD_REQUEST, InvalidRequest;
    IMMUTABLE_API_KEY_UID = "immutable_api_key_uid", BAD_REQUEST, InvalidRequest;
    IMMUTABLE_API_KEY_UPDATED_AT = "immutable_api_key_updated_at", BAD_REQUEST, InvalidRequest;
    MISSING_AUTHORIZATION_HEADER = "missing_authorization_header", UNAUTHORIZED, Auth;
    INVALID_API_KEY = "invalid_api_key", FORBIDDEN, Auth;
    MISSING_MASTER_KEY = "missing_master_key", UNAUTHORIZED, Auth;
    MIROIR_RESERVED_FIELD = "miroir_reserved_field", BAD_REQUEST, InvalidRequest;
    MIROIR_NO_QUORUM = "miroir_no_quorum", SERVICE_UNAVAILABLE, System;
    MIROIR_UNAVAILABLE = "miroir_unavailable", SERVICE_UNAVAILABLE, System;
    MIROIR_WRITES_FENCED = "miroir_writes_fenced", SERVICE_UNAVAILABLE, System;
    MIROIR_NOT_SUPPORTED = "miroir_not_supported", NOT_IMPLEMENTED, InvalidRequest;
    MIROIR_INVALID_HEADER = "miroir_invalid_header", BAD_REQUEST, InvalidRequest;
    MIROIR_NOT_FOUND = "miroir_not_found", NOT_FOUND, InvalidRequest;
    MIROIR_ALREADY_EXISTS = "miroir_already_exists", CONFLICT, InvalidRequest;
    MIROIR_TOPOLOGY_REFUSED = "miroir_topology_refused", CONFLICT, InvalidRequest;
}

impl Code {
    /// Meilisearch links every code to its documentation; Miroir's own codes point at ours
    /// (docs/errors.md in the Miroir repository).
    pub fn link(&self) -> String {
        if self.name.starts_with("miroir_") {
            format!("docs/errors.md#{}", self.name)
        } else {
            format!("https://docs.meilisearch.com/errors#{}", self.name)
        }
    }
}

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
        let retry_after = (code.status == StatusCode::SERVICE_UNAVAILABLE).then_some(1);
        Self { code, message: message.into(), retry_after, forwarded: None }
    }

    /// A node refused a request the gateway passed on: the client gets Meilisearch's own answer.
    pub fn forwarded(status: u16, body: serde_json::Value) -> Self {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
        let message = body.get("message").and_then(|m| m.as_str()).unwrap_or("node error").to_string();
        Self { code: Code::BAD_REQUEST, message, retry_after: None, forwarded: Some(Box::new((status, body))) }
    }

    pub fn index_not_found(uid: &str) -> Self {
        Self::new(Code::INDEX_NOT_FOUND, format!("Index `{uid}` not found."))
    }

    pub fn invalid_index_uid(uid: &str) -> Self {
        Self::new(
            Code::INVALID_INDEX_UID,
            format!("`{uid}` is not a valid index uid. Index uid can be an integer or a string containing only alphanumeric characters, hyphens (-) and underscores (_), and can not be more than 400 bytes."),
        )
    }

    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::new(Code::INTERNAL, message.to_string())
    }

    /// The body the client gets (a forwarded node error's own).
    pub fn body(&self) -> serde_json::Value {
        if let Some(forwarded) = &self.forwarded {
            return forwarded.1.clone();
        }
        serde_json::json!({
            "message": self.message,
            "code": self.code.name,
            "type": self.code.kind,
            "link": self.code.link(),
        })
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let Some(forwarded) = self.forwarded {
            let (status, body) = *forwarded;
            return (status, axum::Json(body)).into_response();
        }
        let mut resp = (self.code.status, axum::Json(self.body())).into_response();
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
