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
        serde_json::from_slice(&body.bytes).map(Json).map_err(json_error)
    }
}

/// Meilisearch splits JSON errors: a body that is not JSON at all is `malformed_payload`, a
/// well-formed value of the wrong shape is `bad_request`.
pub fn json_error(e: serde_json::Error) -> AppError {
    match e.classify() {
        serde_json::error::Category::Data => AppError::new(Code::BAD_REQUEST, format!("Json deserialize error: {e}")),
        _ => AppError::new(Code::MALFORMED_PAYLOAD, format!("The json payload provided is malformed. `{e}`.")),
    }
}

/// Query string parameters, with Meilisearch's error on a bad one.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AppError> {
        let q = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str(q).map(Query).map_err(|e| query_error(&e.to_string()))
    }
}

/// serde's "unknown field `x`, expected one of `a`, `b`" as Meilisearch words it for query
/// parameters; any other failure is a plain `bad_request`.
fn query_error(serde_message: &str) -> AppError {
    let message = match serde_message.strip_prefix("unknown field ") {
        Some(rest) => {
            let (name, expected) = rest.split_once(", ").unwrap_or((rest, ""));
            let expected = expected
                .strip_prefix("expected one of ")
                .or_else(|| expected.strip_prefix("expected "))
                .unwrap_or(expected)
                .replace("` or `", "`, `");
            format!("Unknown parameter {name}: expected one of {expected}")
        }
        None => serde_message.to_string(),
    };
    AppError::new(Code::BAD_REQUEST, message)
}

/// A query parameter that must be a non-negative integer, refused with Meilisearch's `code` for
/// that parameter.
pub fn uint_param(raw: Option<&str>, name: &str, code: Code) -> Result<Option<usize>, AppError> {
    raw.map(|s| {
        s.parse().map_err(|_| {
            AppError::new(
                code,
                format!("Invalid value in parameter `{name}`: could not parse `{s}` as a positive integer"),
            )
        })
    })
    .transpose()
}

/// A boolean query parameter (`true` or `false`).
pub fn bool_param(raw: Option<&str>, name: &str, code: Code) -> Result<Option<bool>, AppError> {
    raw.map(|s| match s {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(AppError::new(
            code,
            format!("Invalid value in parameter `{name}`: could not parse `{s}` as a boolean, expected either `true` or `false`"),
        )),
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_parameters_are_named_like_meilisearch() {
        let e = query_error("unknown field `doggo`, expected one of `offset`, `limit`");
        assert_eq!(e.message, "Unknown parameter `doggo`: expected one of `offset`, `limit`");
        assert_eq!(e.code, Code::BAD_REQUEST);
        let e = uint_param(Some("x"), "limit", Code::INVALID_TASK_LIMIT).unwrap_err();
        assert_eq!(e.code, Code::INVALID_TASK_LIMIT);
        assert_eq!(e.message, "Invalid value in parameter `limit`: could not parse `x` as a positive integer");
        assert_eq!(uint_param(Some("7"), "limit", Code::INVALID_TASK_LIMIT).unwrap(), Some(7));
    }
}
