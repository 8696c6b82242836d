//! Request extractors whose rejections are Meilisearch errors, not axum's plain text.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::{AppError, Code};

/// Meilisearch's payload limit: 100 MB, in bytes.
pub const PAYLOAD_LIMIT: usize = 100_000_000;

/// The raw request body, at most [`PAYLOAD_LIMIT`] bytes, with its content type.
pub struct RawBody {
    pub content_type: Option<String>,
    pub bytes: Bytes,
}

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = AppError;

    async fn from_request(req: Request, _: &S) -> Result<Self, AppError> {
        let content_type = req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
        let too_large = || {
            AppError::new(
                Code::PAYLOAD_TOO_LARGE,
                "The provided payload reached the size limit. The maximum accepted payload size is 100 MB.",
            )
        };
        let declared = req.headers().get(axum::http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok());
        if declared.and_then(|v| v.parse::<usize>().ok()).is_some_and(|n| n > PAYLOAD_LIMIT) {
            return Err(too_large());
        }
        let bytes = axum::body::to_bytes(req.into_body(), PAYLOAD_LIMIT).await.map_err(|_| too_large())?;
        Ok(Self { content_type, bytes })
    }
}

/// A JSON body: content type checked and parse errors reported as Meilisearch does.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let body = RawBody::from_request(req, state).await?;
        match body.content_type.as_deref().map(|c| c.split(';').next().unwrap_or("").trim().to_ascii_lowercase()) {
            None if body.bytes.is_empty() => {}
            None => {
                return Err(AppError::new(
                    Code::MISSING_CONTENT_TYPE,
                    "A Content-Type header is missing. Accepted values for the Content-Type header are: `application/json`",
                ))
            }
            Some(ct) if ct == "application/json" => {}
            Some(ct) => {
                return Err(AppError::new(
                    Code::INVALID_CONTENT_TYPE,
                    format!("The Content-Type `{ct}` is invalid. Accepted values for the Content-Type header are: `application/json`"),
                ))
            }
        }
        if body.bytes.is_empty() {
            return Err(AppError::new(Code::MISSING_PAYLOAD, "A json payload is missing."));
        }
        serde_json::from_slice(&body.bytes)
            .map(Json)
            .map_err(|e| AppError::new(Code::BAD_REQUEST, format!("Json deserialize error: {e}")))
    }
}

/// Query string parameters, with Meilisearch's error on a bad one.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AppError> {
        let q = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str(q).map(Query).map_err(|e| AppError::new(Code::BAD_REQUEST, e.to_string()))
    }
}
