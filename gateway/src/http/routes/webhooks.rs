//! `/webhooks`, with Meilisearch's fields, validation, errors and statuses. Webhooks live in the
//! replicated state (and travel in the routing map, so every gateway serves the same list); the
//! coordinator leader sends finished tasks to them.

use miroir_meili::json::found;
use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use miroir::command::Command;
use miroir::webhook::{Webhook, MAX_HEADERS, MAX_WEBHOOKS};
use serde_json::{json, Value};
use uuid::Uuid;

use super::json_ok;
use crate::app::AppState;
use crate::error::{AppError, AppResult, Code};
use crate::http::extract::Json;

const FIELDS: &str = "`url`, `headers`";

fn view(uuid: &str, w: &Webhook) -> Value {
    let w = w.redacted();
    json!({"uuid": uuid, "isEditable": true, "url": w.url, "headers": w.headers})
}

pub(super) fn wrong_type(code: Code, at: &str, expected: &str, v: &Value) -> AppError {
    AppError::new(code, format!("Invalid value type at `{at}`: expected {expected}, but found {}", found(v)))
}

/// A field of the request: absent, `null` (reset), or set.
enum Setting<T> {
    NotSet,
    Reset,
    Set(T),
}

/// `{url, headers}` as Meilisearch's deserializer reads it.
struct Settings {
    url: Setting<String>,
    headers: Setting<BTreeMap<String, Option<String>>>,
}

fn parse(body: Value) -> AppResult<Settings> {
    let Value::Object(obj) = body else {
        return Err(AppError::new(
            Code::BAD_REQUEST,
            format!("Invalid value type: expected an object, but found {}", found(&body)),
        ));
    };
    let mut s = Settings { url: Setting::NotSet, headers: Setting::NotSet };
    for (k, v) in obj {
        match k.as_str() {
            "url" => {
                s.url = match v {
                    Value::Null => Setting::Reset,
                    Value::String(u) => Setting::Set(u),
                    other => return Err(wrong_type(Code::INVALID_WEBHOOK_URL, ".url", "a string", &other)),
                }
            }
            "headers" => s.headers = parse_headers(v)?,
            "uuid" => return Err(immutable(Code::IMMUTABLE_WEBHOOK_UUID, "uuid")),
            "isEditable" => return Err(immutable(Code::IMMUTABLE_WEBHOOK_IS_EDITABLE, "isEditable")),
            other => {
                return Err(AppError::new(
                    Code::BAD_REQUEST,
                    format!("Unknown field `{other}`: expected one of {FIELDS}"),
                ))
            }
        }
    }
    Ok(s)
}

fn immutable(code: Code, field: &str) -> AppError {
    AppError::new(code, format!("Immutable field `{field}`: expected one of {FIELDS}"))
}

fn parse_headers(v: Value) -> AppResult<Setting<BTreeMap<String, Option<String>>>> {
    match v {
        Value::Null => Ok(Setting::Reset),
        Value::Object(m) => {
            let mut out = BTreeMap::new();
            for (name, value) in m {
                let value = match value {
                    Value::Null => None,
                    Value::String(s) => Some(s),
                    other => {
                        return Err(wrong_type(
                            Code::INVALID_WEBHOOK_HEADERS,
                            &format!(".headers.{name}"),
                            "a string",
                            &other,
                        ))
                    }
                };
                out.insert(name, value);
            }
            Ok(Setting::Set(out))
        }
        other => Err(wrong_type(Code::INVALID_WEBHOOK_HEADERS, ".headers", "an object", &other)),
    }
}

fn missing_url(uuid: &str) -> AppError {
    AppError::new(Code::INVALID_WEBHOOK_URL, format!("The URL for the webhook `{uuid}` is missing."))
}

fn too_many_headers(uuid: &str) -> AppError {
    AppError::new(
        Code::INVALID_WEBHOOK_HEADERS,
        format!("Too many headers for the webhook `{uuid}`. Please limit the number of headers to 200. Hint: To remove an already defined header set its value to `null`"),
    )
}

/// Meilisearch's `check_changed`: a URL, at most 200 valid headers, a parsable URL.
fn check(uuid: &str, w: &Webhook) -> AppResult<()> {
    if w.url.is_empty() {
        return Err(missing_url(uuid));
    }
    if w.headers.len() > MAX_HEADERS {
        return Err(too_many_headers(uuid));
    }
    for (name, value) in &w.headers {
        if let Err(e) = HeaderName::from_bytes(name.as_bytes()) {
            return Err(AppError::new(Code::INVALID_WEBHOOK_HEADERS, format!("Invalid header name `{name}`: {e}")));
        }
        if let Err(e) = HeaderValue::from_str(value) {
            return Err(AppError::new(Code::INVALID_WEBHOOK_HEADERS, format!("Invalid header value `{name}`: {e}")));
        }
    }
    if let Err(e) = url::Url::parse(&w.url) {
        return Err(AppError::new(Code::INVALID_WEBHOOK_URL, format!("Invalid URL `{}`: {e}", w.url)));
    }
    Ok(())
}

fn parse_uuid(raw: &str) -> AppResult<Uuid> {
    let uuid =
        Uuid::parse_str(raw).map_err(|e| AppError::new(Code::INVALID_WEBHOOK_UUID, format!("Invalid UUID: {e}")))?;
    if uuid.is_nil() {
        return Err(AppError::new(
            Code::IMMUTABLE_WEBHOOK,
            format!("Webhook `{uuid}` is immutable. The webhook defined from the command line cannot be modified using the API."),
        ));
    }
    Ok(uuid)
}

fn not_found(uuid: &Uuid) -> AppError {
    AppError::new(Code::WEBHOOK_NOT_FOUND, format!("Webhook `{uuid}` not found."))
}

async fn commit(app: &AppState, cmd: Command) -> AppResult<()> {
    app.check_writable()?;
    let (_, version) = app.cluster.propose(cmd).await?;
    app.wait_for_version(version).await?;
    Ok(())
}

pub async fn list(State(app): State<Arc<AppState>>) -> AppResult<Response> {
    let map = app.map();
    let results: Vec<Value> = map.webhooks.iter().map(|(u, w)| view(u, w)).collect();
    Ok(json_ok(json!({ "results": results })))
}

pub async fn get(State(app): State<Arc<AppState>>, Path(raw): Path<String>) -> AppResult<Response> {
    let uuid =
        Uuid::parse_str(&raw).map_err(|e| AppError::new(Code::INVALID_WEBHOOK_UUID, format!("Invalid UUID: {e}")))?;
    let map = app.map();
    let w = map.webhooks.get(&uuid.to_string()).ok_or_else(|| not_found(&uuid))?;
    Ok(json_ok(view(&uuid.to_string(), w)))
}

pub async fn create(State(app): State<Arc<AppState>>, Json(body): Json<Value>) -> AppResult<Response> {
    let settings = parse(body)?;
    let uuid = Uuid::new_v4().to_string();
    if matches!(&settings.headers, Setting::Set(h) if h.len() > MAX_HEADERS) {
        return Err(too_many_headers(&uuid));
    }
    if app.map().webhooks.len() >= MAX_WEBHOOKS {
        return Err(AppError::from(crate::cluster::ClusterError::Rejected(miroir::CommandError::TooManyWebhooks(
            MAX_WEBHOOKS,
        ))));
    }
    let url = match settings.url {
        Setting::Set(u) => u,
        _ => return Err(missing_url(&uuid)),
    };
    let headers = match settings.headers {
        Setting::Set(h) => h.into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect(),
        _ => BTreeMap::new(),
    };
    let webhook = Webhook { url, headers };
    check(&uuid, &webhook)?;
    commit(&app, Command::PutWebhook { uuid: uuid.clone(), webhook: webhook.clone(), create: true }).await?;
    Ok((StatusCode::CREATED, axum::Json(view(&uuid, &webhook))).into_response())
}

pub async fn update(
    State(app): State<Arc<AppState>>,
    Path(raw): Path<String>,
    Json(body): Json<Value>,
) -> AppResult<Response> {
    let uuid = parse_uuid(&raw)?;
    let settings = parse(body)?;
    let key = uuid.to_string();
    let old = app.map().webhooks.get(&key).cloned().ok_or_else(|| not_found(&uuid))?;
    let url = match settings.url {
        Setting::Set(u) => u,
        Setting::NotSet => old.url,
        Setting::Reset => return Err(missing_url(&key)),
    };
    let mut headers = old.headers;
    match settings.headers {
        Setting::Set(h) => {
            for (name, value) in h {
                match value {
                    Some(v) => headers.insert(name, v),
                    None => headers.remove(&name),
                };
            }
        }
        Setting::Reset => headers.clear(),
        Setting::NotSet => {}
    }
    let webhook = Webhook { url, headers };
    check(&key, &webhook)?;
    commit(&app, Command::PutWebhook { uuid: key.clone(), webhook: webhook.clone(), create: false }).await?;
    Ok(json_ok(view(&key, &webhook)))
}

pub async fn delete(State(app): State<Arc<AppState>>, Path(raw): Path<String>) -> AppResult<Response> {
    let uuid = parse_uuid(&raw)?;
    if !app.map().webhooks.contains_key(&uuid.to_string()) {
        return Err(not_found(&uuid));
    }
    commit(&app, Command::DeleteWebhook { uuid: uuid.to_string() }).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
