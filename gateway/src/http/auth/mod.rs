//! Client authentication and authorisation, as Meilisearch does it (its `GuardedData` extractor
//! and `ActionPolicy`): the master key opens everything; an API key opens the actions and indexes
//! it was created for until it expires; a tenant token (a JWT signed with an API key) opens search
//! routes with its own index list and filters. Every gateway decides locally from the keys in its
//! routing map. Without a master key every route is open but `/keys`, as in Meilisearch.

pub mod policy;
pub mod token;

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use miroir::RoutingMap;
use miroir_meili::keys::ApiKey;
use serde_json::Value;

use crate::app::AppState;
use crate::error::{AppError, AppResult, Code};
use crate::write::tasks::now_millis;
use policy::{requirement, Requirement};
use token::{SearchRules, TokenError};

/// What the request was authorised with; handlers narrow lists and searches by it.
#[derive(Debug, Clone, Default)]
pub enum Access {
    /// The master key, or no master key configured: everything.
    #[default]
    Full,
    Key {
        key: Box<ApiKey>,
        /// Present when a tenant token was used.
        rules: Option<SearchRules>,
    },
}

impl Access {
    /// The index is open to the key and, with a tenant token, to the token too.
    pub fn index_authorized(&self, index: &str) -> bool {
        match self {
            Access::Full => true,
            Access::Key { key, rules } => {
                key.index_authorized(index) && rules.as_ref().is_none_or(|r| r.index_authorized(index))
            }
        }
    }

    pub fn all_indexes(&self) -> bool {
        match self {
            Access::Full => true,
            Access::Key { key, rules } => key.all_indexes() && rules.as_ref().is_none_or(SearchRules::all_indexes),
        }
    }

    /// The tenant token's filter for searches of `index`, to AND with the query's own.
    pub fn search_filter(&self, index: &str) -> Option<Value> {
        match self {
            Access::Key { rules: Some(r), .. } => r.filter(index),
            _ => None,
        }
    }

    /// Meilisearch's `allow_index_creation`: the key may create indexes, and this one.
    pub fn may_create_index(&self, index: &str) -> bool {
        match self {
            Access::Full => true,
            Access::Key { key, .. } => {
                key.authorizes("indexes.create", None, now_millis()) && self.index_authorized(index)
            }
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Access {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<Access>().cloned().unwrap_or_default())
    }
}

pub fn invalid_api_key() -> AppError {
    AppError::new(Code::INVALID_API_KEY, "The provided API key is invalid.")
}

fn missing_header() -> AppError {
    AppError::new(
        Code::MISSING_AUTHORIZATION_HEADER,
        "The Authorization header is missing. It must use the bearer authorization method.",
    )
}

fn missing_master_key() -> AppError {
    AppError::new(
        Code::MISSING_MASTER_KEY,
        "Meilisearch is running without a master key. To access this API endpoint, you must have set a master key at launch.",
    )
}

pub async fn check(State(app): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let need = requirement(req.method(), req.uri().path());
    if need == Requirement::Open {
        return next.run(req).await;
    }
    // Meilisearch reads the header before anything else: a non-bearer one is refused even
    // without a master key.
    let token = match bearer(&req) {
        Ok(t) => t.map(str::to_string),
        Err(e) => return e.into_response(),
    };
    match authorize(&app, &need, token.as_deref()) {
        Ok(access) => {
            req.extensions_mut().insert(access);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

/// Meilisearch's `extract_token_from_request`: no header is no token; a header must be
/// `Bearer <token>` (the token as is, even empty).
fn bearer(req: &Request) -> AppResult<Option<&str>> {
    let Some(value) = req.headers().get(AUTHORIZATION) else { return Ok(None) };
    let mut parts = value.to_str().unwrap_or_default().splitn(2, ' ');
    match parts.next() {
        Some("Bearer") => parts.next().map(Some).ok_or_else(invalid_api_key),
        _ => Err(missing_header()),
    }
}

fn authorize(app: &AppState, need: &Requirement, token: Option<&str>) -> AppResult<Access> {
    let Requirement::Actions { actions, index } = need else {
        // Miroir's own routes: the master key, when there is one.
        return match (app.master_key(), token) {
            (None, _) => Ok(Access::Full),
            (Some(m), Some(t)) if constant_time_eq(t.as_bytes(), m.as_bytes()) => Ok(Access::Full),
            (Some(_), Some(_)) => Err(invalid_api_key()),
            (Some(_), None) => Err(missing_header()),
        };
    };
    let mut access = Access::Full;
    for action in actions.iter() {
        access = match authenticate(app, action, index.as_deref(), token.unwrap_or("")) {
            Ok(a) => a,
            Err(_) if app.master_key().is_none() => return Err(missing_master_key()),
            Err(_) if token.is_none() => return Err(missing_header()),
            Err(e) => return Err(e),
        };
    }
    Ok(access)
}

fn is_keys_action(action: &str) -> bool {
    action.starts_with("keys.")
}

/// Meilisearch's `ActionPolicy::authenticate` for one action.
fn authenticate(app: &AppState, action: &str, index: Option<&str>, token: &str) -> AppResult<Access> {
    let Some(master) = app.master_key() else {
        return if is_keys_action(action) { Err(invalid_api_key()) } else { Ok(Access::Full) };
    };
    if constant_time_eq(token.as_bytes(), master.as_bytes()) {
        return Ok(Access::Full);
    }
    let map = app.map();
    let now = now_millis();
    let (key, rules) = match tenant_token(master, action, token) {
        Ok(Some(t)) => {
            if let Some(exp) = t.exp {
                let now_s = (now / 1000) as i64;
                if now_s > exp {
                    return Err(AppError::new(
                        Code::INVALID_API_KEY,
                        format!("Tenant token expired. Was valid up to `{exp}` and we're now `{now_s}`."),
                    ));
                }
            }
            (map.api_keys.get(&t.key_uid).cloned(), Some(t.rules))
        }
        Ok(None) => (find_key(app, &map, master, token), None),
        Err(message) => return Err(AppError::new(Code::INVALID_API_KEY, message)),
    };
    let key = key.ok_or_else(invalid_api_key)?;
    if let Some(index) = index {
        if let Some(r) = &rules {
            if !r.index_authorized(index) {
                return Err(AppError::new(
                    Code::INVALID_API_KEY,
                    format!(
                        "The provided tenant token cannot acces the index `{index}`, allowed indexes are {:?}.",
                        r.listed()
                    ),
                ));
            }
        }
        if !key.index_authorized(index) {
            let message = if rules.is_some() {
                format!("The API key used to generate this tenant token cannot acces the index `{index}`.")
            } else {
                let mut allowed = key.indexes.clone();
                allowed.sort();
                allowed.dedup();
                format!("The API key cannot acces the index `{index}`, authorized indexes are {allowed:?}.")
            };
            return Err(AppError::new(Code::INVALID_API_KEY, message));
        }
    }
    if key.authorizes(action, index, now) {
        Ok(Access::Key { key: Box::new(key), rules })
    } else {
        Err(invalid_api_key())
    }
}

/// A tenant token on a route that accepts one: `Ok(None)` when the token is not one (it is then
/// tried as an API key), `Err(message)` when it is one that cannot be used.
fn tenant_token(master: &str, action: &str, token: &str) -> Result<Option<token::Tenant>, String> {
    if action != "search" && action != "chatCompletions" {
        return Ok(None);
    }
    match token::verify(token, |uid| token::key_value(master, uid)) {
        Ok(t) => Ok(Some(t)),
        Err(TokenError::NotAToken) => Ok(None),
        Err(TokenError::Undecodable(e)) => Err(format!("Could not decode tenant token, {e}.")),
    }
}

/// The key whose value is `token`, compared in constant time against every key's value.
fn find_key(app: &AppState, map: &RoutingMap, master: &str, token: &str) -> Option<ApiKey> {
    let presented = token::decode_hex(token)?;
    let values = app.key_values(map, master);
    let mut found = None;
    for (uid, value) in values.iter() {
        if constant_time_eq(&presented, value) {
            found = Some(uid);
        }
    }
    found.and_then(|uid| map.api_keys.get(uid).cloned())
}

/// The uid a `/keys/{uidOrKey}` path names: a UUID in any form Meilisearch accepts, or a key value.
pub fn resolve_key_param(app: &AppState, param: &str) -> Option<String> {
    if let Ok(uuid) = uuid::Uuid::parse_str(param) {
        return Some(uuid.hyphenated().to_string());
    }
    let master = app.master_key()?;
    let map = app.map();
    find_key(app, &map, master, param).map(|k| k.uid)
}

/// Proposes Meilisearch's default keys if the cluster never had them (idempotent in `apply`: of
/// gateways racing, the first wins and the others change nothing).
pub async fn ensure_default_keys(app: &AppState) -> AppResult<()> {
    if app.map().default_api_keys_created {
        return Ok(());
    }
    let uids = (0..miroir_meili::keys::DEFAULT_KEYS.len()).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let cmd = miroir::Command::CreateDefaultApiKeys { uids, at: now_millis() };
    let (_, version) = app.cluster.propose(cmd).await?;
    app.wait_for_version(version).await?;
    Ok(())
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
