//! `/keys`, with Meilisearch's fields, validation, errors and statuses. Keys live in the replicated
//! state and travel in the routing map; their values are derived here from the master key.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use miroir::command::Command;
use miroir::ids::Millis;
use miroir_meili::keys::{is_known_action, is_valid_index_pattern, ApiKey, FieldChange, ACTIONS};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::macros::{format_description, time};
use time::{Date, OffsetDateTime, PrimitiveDateTime};

use super::json_ok;
use super::webhooks::wrong_type;
use crate::app::AppState;
use crate::cluster::ClusterError;
use crate::error::{AppError, AppResult, Code};
use crate::http::auth::{resolve_key_param, token::key_value};
use crate::http::extract::Json;
use crate::write::tasks::{now_millis, rfc3339};
use miroir_meili::json::found;
use miroir_meili::listed;

const CREATE_FIELDS: &[&str] = &["description", "name", "uid", "actions", "indexes", "expiresAt"];
const PATCH_FIELDS: &[&str] = &["description", "name"];

fn view(app: &AppState, k: &ApiKey) -> Value {
    json!({
        "name": k.name,
        "description": k.description,
        "key": app.master_key().map(|m| key_value(m, &k.uid)).unwrap_or_default(),
        "uid": k.uid,
        "actions": k.actions,
        "indexes": k.indexes,
        "expiresAt": k.expires_at.map(rfc3339),
        "createdAt": rfc3339(k.created_at),
        "updatedAt": rfc3339(k.updated_at),
    })
}

/// deserr's unknown-field error, with its "did you mean" when only case or underscores differ.
fn unknown_field(field: &str, accepted: &[&str]) -> AppError {
    let norm = |s: &str| s.replace('_', "").to_ascii_lowercase();
    let hint =
        accepted.iter().find(|a| norm(a) == norm(field)).map(|a| format!("did you mean `{a}`? ")).unwrap_or_default();
    AppError::new(Code::BAD_REQUEST, format!("Unknown field `{field}`: {hint}expected one of {}", listed(accepted)))
}

fn optional_string(v: Value, at: &str, c: Code) -> AppResult<Option<String>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        other => Err(wrong_type(c, at, "a string", &other)),
    }
}

fn string_list(v: Value, at: &str, c: Code) -> AppResult<Vec<String>> {
    let Value::Array(items) = v else { return Err(wrong_type(c, at, "an array", &v)) };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(s) => Ok(s),
            other => Err(wrong_type(c, &format!("{at}[{i}]"), "a string", &other)),
        })
        .collect()
}

/// Meilisearch's `parse_expiration_date`: RFC 3339, or a UTC date-time or date, in the future.
fn expiration(raw: &str, now: OffsetDateTime) -> Option<OffsetDateTime> {
    let at = OffsetDateTime::parse(raw, &Rfc3339)
        .ok()
        .or_else(|| {
            let f = format_description!(
                "[year repr:full base:calendar]-[month repr:numerical]-[day]T[hour]:[minute]:[second]"
            );
            PrimitiveDateTime::parse(raw, f).ok().map(PrimitiveDateTime::assume_utc)
        })
        .or_else(|| {
            let f = format_description!(
                "[year repr:full base:calendar]-[month repr:numerical]-[day] [hour]:[minute]:[second]"
            );
            PrimitiveDateTime::parse(raw, f).ok().map(PrimitiveDateTime::assume_utc)
        })
        .or_else(|| {
            let f = format_description!("[year repr:full base:calendar]-[month repr:numerical]-[day]");
            Date::parse(raw, f).ok().map(|d| PrimitiveDateTime::new(d, time!(00:00)).assume_utc())
        })?;
    (at > now).then_some(at)
}

fn parse_create(body: Value, now: Millis) -> AppResult<ApiKey> {
    let Value::Object(obj) = body else {
        return Err(AppError::new(
            Code::BAD_REQUEST,
            format!("Invalid value type: expected an object, but found {}", found(&body)),
        ));
    };
    let mut key = ApiKey {
        uid: uuid::Uuid::new_v4().to_string(),
        name: None,
        description: None,
        actions: vec![],
        indexes: vec![],
        expires_at: None,
        created_at: now,
        updated_at: now,
    };
    let (mut actions, mut indexes, mut expires) = (false, false, false);
    let now_dt =
        OffsetDateTime::from_unix_timestamp_nanos(now as i128 * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    for (k, v) in obj {
        match k.as_str() {
            "description" => key.description = optional_string(v, ".description", Code::INVALID_API_KEY_DESCRIPTION)?,
            "name" => key.name = optional_string(v, ".name", Code::INVALID_API_KEY_NAME)?,
            "uid" => {
                let Value::String(s) = v else {
                    return Err(wrong_type(Code::INVALID_API_KEY_UID, ".uid", "a string", &v));
                };
                let uid = uuid::Uuid::parse_str(&s)
                    .map_err(|e| AppError::new(Code::INVALID_API_KEY_UID, format!("Invalid value at `.uid`: {e}")))?;
                key.uid = uid.hyphenated().to_string();
            }
            "actions" => {
                key.actions = string_list(v, ".actions", Code::INVALID_API_KEY_ACTIONS)?;
                if let Some((i, a)) = key.actions.iter().enumerate().find(|(_, a)| !is_known_action(a)) {
                    let all = ACTIONS.iter().map(|(a, _, _)| *a).collect::<Vec<_>>();
                    return Err(AppError::new(
                        Code::INVALID_API_KEY_ACTIONS,
                        format!("Unknown value `{a}` at `.actions[{i}]`: expected one of {}", listed(&all)),
                    ));
                }
                actions = true;
            }
            "indexes" => {
                key.indexes = string_list(v, ".indexes", Code::INVALID_API_KEY_INDEXES)?;
                if let Some((i, p)) = key.indexes.iter().enumerate().find(|(_, p)| !is_valid_index_pattern(p)) {
                    return Err(AppError::new(
                        Code::INVALID_API_KEY_INDEXES,
                        format!("Invalid value at `.indexes[{i}]`: `{p}` is not a valid index uid pattern. Index uid patterns can be an integer or a string containing only alphanumeric characters, hyphens (-), underscores (_), and optionally end with a star (*)."),
                    ));
                }
                indexes = true;
            }
            "expiresAt" => {
                key.expires_at = match v {
                    Value::Null => None,
                    Value::String(s) => {
                        let at = expiration(&s, now_dt).ok_or_else(|| {
                            AppError::new(
                                Code::INVALID_API_KEY_EXPIRES_AT,
                                format!("Invalid value at `.expiresAt`: `{s}` is not a valid date. It should follow the RFC 3339 format to represents a date or datetime in the future or specified as a null value. e.g. 'YYYY-MM-DD' or 'YYYY-MM-DD HH:MM:SS'.\n"),
                            )
                        })?;
                        Some((at.unix_timestamp_nanos() / 1_000_000).max(now as i128 + 1) as Millis)
                    }
                    other => {
                        return Err(wrong_type(Code::INVALID_API_KEY_EXPIRES_AT, ".expiresAt", "a string", &other))
                    }
                };
                expires = true;
            }
            other => return Err(unknown_field(other, CREATE_FIELDS)),
        }
    }
    for (present, field, c) in [
        (actions, "actions", Code::MISSING_API_KEY_ACTIONS),
        (indexes, "indexes", Code::MISSING_API_KEY_INDEXES),
        (expires, "expiresAt", Code::MISSING_API_KEY_EXPIRES_AT),
    ] {
        if !present {
            return Err(AppError::new(c, format!("Missing field `{field}`")));
        }
    }
    Ok(key)
}

fn parse_patch(body: Value) -> AppResult<(FieldChange, FieldChange)> {
    let Value::Object(obj) = body else {
        return Err(AppError::new(
            Code::BAD_REQUEST,
            format!("Invalid value type: expected an object, but found {}", found(&body)),
        ));
    };
    let (mut name, mut description) = (FieldChange::Keep, FieldChange::Keep);
    for (k, v) in obj {
        let immutable =
            |c: Code| AppError::new(c, format!("Immutable field `{k}`: expected one of {}", listed(PATCH_FIELDS)));
        match k.as_str() {
            "description" => {
                description = FieldChange::Set(optional_string(v, ".description", Code::INVALID_API_KEY_DESCRIPTION)?)
            }
            "name" => name = FieldChange::Set(optional_string(v, ".name", Code::INVALID_API_KEY_NAME)?),
            "uid" => return Err(immutable(Code::IMMUTABLE_API_KEY_UID)),
            "actions" => return Err(immutable(Code::IMMUTABLE_API_KEY_ACTIONS)),
            "indexes" => return Err(immutable(Code::IMMUTABLE_API_KEY_INDEXES)),
            "expiresAt" => return Err(immutable(Code::IMMUTABLE_API_KEY_EXPIRES_AT)),
            "createdAt" => return Err(immutable(Code::IMMUTABLE_API_KEY_CREATED_AT)),
            "updatedAt" => return Err(immutable(Code::IMMUTABLE_API_KEY_UPDATED_AT)),
            other => return Err(unknown_field(other, PATCH_FIELDS)),
        }
    }
    Ok((name, description))
}

fn not_found(param: &str) -> AppError {
    AppError::new(Code::API_KEY_NOT_FOUND, format!("API key `{param}` not found."))
}

async fn commit(app: &AppState, cmd: Command) -> AppResult<()> {
    app.check_writable()?;
    let (_, version) = app.cluster.propose(cmd).await?;
    app.wait_for_version(version).await?;
    Ok(())
}

fn uid_of(app: &AppState, param: &str) -> AppResult<String> {
    resolve_key_param(app, param).ok_or_else(|| not_found(param))
}

pub async fn create(State(app): State<Arc<AppState>>, Json(body): Json<Value>) -> AppResult<Response> {
    let key = parse_create(body, now_millis())?;
    if let Err(miroir_meili::keys::KeyProblem::GlobalActionOnIndexScopedKey(a)) = key.check() {
        return Err(ClusterError::Rejected(miroir::CommandError::IndexScopedApiKeyWithGlobalAction(a)).into());
    }
    if app.map().api_keys.contains_key(&key.uid) {
        return Err(ClusterError::Rejected(miroir::CommandError::ApiKeyExists(key.uid)).into());
    }
    commit(&app, Command::CreateApiKey { key: key.clone() }).await?;
    Ok((StatusCode::CREATED, axum::Json(view(&app, &key))).into_response())
}

/// `offset` and `limit` as Meilisearch's query-parameter deserializer reads them.
fn paging(raw: Option<String>) -> AppResult<(usize, usize)> {
    let (mut offset, mut limit) = (0, 20);
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        let (slot, c) = match k.as_ref() {
            "offset" => (&mut offset, Code::INVALID_API_KEY_OFFSET),
            "limit" => (&mut limit, Code::INVALID_API_KEY_LIMIT),
            other => {
                return Err(AppError::new(
                    Code::BAD_REQUEST,
                    format!("Unknown parameter `{other}`: expected one of `offset`, `limit`"),
                ))
            }
        };
        *slot = v.parse().map_err(|_| {
            AppError::new(c, format!("Invalid value in parameter `{k}`: could not parse `{v}` as a positive integer"))
        })?;
    }
    Ok((offset, limit))
}

pub async fn list(State(app): State<Arc<AppState>>, RawQuery(raw): RawQuery) -> AppResult<Response> {
    let (offset, limit) = paging(raw)?;
    let map = app.map();
    let mut keys: Vec<&ApiKey> = map.api_keys.values().collect();
    keys.sort_by_key(|k| std::cmp::Reverse(k.created_at));
    let results: Vec<Value> = keys.iter().skip(offset).take(limit).map(|k| view(&app, k)).collect();
    Ok(json_ok(json!({"results": results, "offset": offset, "limit": limit, "total": keys.len()})))
}

pub async fn get(State(app): State<Arc<AppState>>, Path(param): Path<String>) -> AppResult<Response> {
    let uid = uid_of(&app, &param)?;
    let map = app.map();
    let key = map.api_keys.get(&uid).ok_or_else(|| not_found(&uid))?;
    Ok(json_ok(view(&app, key)))
}

pub async fn update(
    State(app): State<Arc<AppState>>,
    Path(param): Path<String>,
    Json(body): Json<Value>,
) -> AppResult<Response> {
    let (name, description) = parse_patch(body)?;
    let uid = uid_of(&app, &param)?;
    if !app.map().api_keys.contains_key(&uid) {
        return Err(not_found(&uid));
    }
    commit(&app, Command::UpdateApiKey { uid: uid.clone(), name, description, at: now_millis() }).await?;
    let map = app.map();
    let key = map.api_keys.get(&uid).ok_or_else(|| not_found(&uid))?;
    Ok(json_ok(view(&app, key)))
}

pub async fn delete(State(app): State<Arc<AppState>>, Path(param): Path<String>) -> AppResult<Response> {
    let uid = uid_of(&app, &param)?;
    if !app.map().api_keys.contains_key(&uid) {
        return Err(not_found(&uid));
    }
    commit(&app, Command::DeleteApiKey { uid }).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
