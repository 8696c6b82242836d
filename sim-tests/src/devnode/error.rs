//! Meilisearch's error object. One type for the whole dev node; the HTTP layer maps it to a
//! response in one place, the engine only says which code and message.

use std::borrow::Cow;

use serde_json::{json, Value};

/// A Meilisearch error: its code decides the HTTP status and the `type` field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct DevError {
    /// Most codes are literals; a few are built from a parameter name (`invalid_search_limit`).
    pub code: Cow<'static, str>,
    pub message: String,
    /// The HTTP status when it is not the code's usual one (a federated search answers an unknown
    /// index with 400, not 404: the missing resource is not in the URL).
    pub status_override: Option<u16>,
}

impl DevError {
    pub fn new(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        DevError { code: code.into(), message: message.into(), status_override: None }
    }

    pub fn index_not_found(uid: &str) -> Self {
        Self::new("index_not_found", format!("Index `{uid}` not found."))
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new("bad_request", message)
    }

    /// HTTP status Meilisearch answers with for this code.
    pub fn status(&self) -> u16 {
        if let Some(s) = self.status_override {
            return s;
        }
        match self.code.as_ref() {
            "index_not_found"
            | "document_not_found"
            | "task_not_found"
            | "batch_not_found"
            | "api_key_not_found"
            | "dynamic_search_rule_not_found" => 404,
            "index_already_exists" | "api_key_already_exists" => 409,
            "missing_authorization_header" => 401,
            "invalid_api_key" => 403,
            "missing_content_type" | "invalid_content_type" => 415,
            "payload_too_large" => 413,
            "internal" | "miroir_devnode_injected_fault" => 500,
            "miroir_devnode_stopped" => 503,
            _ => 400,
        }
    }

    /// Meilisearch's `type` field.
    pub fn kind(&self) -> &'static str {
        match self.code.as_ref() {
            "missing_authorization_header" | "invalid_api_key" => "auth",
            "internal" | "miroir_devnode_injected_fault" => "internal",
            "miroir_devnode_stopped" => "system",
            _ => "invalid_request",
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "message": self.message,
            "code": self.code,
            "type": self.kind(),
            "link": format!("https://docs.meilisearch.com/errors#{}", self.code),
        })
    }
}

pub type DevResult<T> = Result<T, DevError>;
