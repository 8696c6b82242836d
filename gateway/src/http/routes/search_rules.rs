//! `/dynamic-search-rules` (Meilisearch's `dynamicSearchRules` experimental feature): rules live in
//! the replicated state and travel in the routing map; changes answer 202 with a task (`dsrUpdate`,
//! `dsrClear`) as Meilisearch does. The gateway applies the rules to searches itself (see
//! `search::pins`); nodes never see them.

use miroir_meili::TaskKind;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{Method, Uri};
use axum::response::Response;
use miroir::command::Command;
use miroir::task::{NewTask, TaskStatus};
use miroir_meili::search_rules::{self, TASK_INDEX_UID};
use serde_json::{json, Value};

use super::{accepted, json_ok};
use crate::app::AppState;
use crate::error::{AppError, AppResult, Code};
use crate::http::extract::Json;
use crate::write::fanout::Outcome;

fn gate(app: &AppState, method: &Method, uri: &Uri) -> AppResult<()> {
    crate::http::feature_gate::check(&app.map(), method, uri.path())
}

fn check_uid(uid: &str) -> AppResult<()> {
    search_rules::check_uid(uid).map_err(AppError::from)
}

fn not_found(uid: &str) -> AppError {
    AppError::new(Code::DYNAMIC_SEARCH_RULE_NOT_FOUND, format!("Dynamic search rule `{uid}` not found."))
}

/// Commits `cmd`, then registers its task, already succeeded (the change is applied once committed).
async fn change(app: &AppState, cmd: Command, kind: TaskKind, details: Value) -> AppResult<Response> {
    app.check_writable()?;
    let (_, version) = app.cluster.propose(cmd).await?;
    app.wait_for_version(version).await?;
    let task = NewTask {
        index_uid: Some(TASK_INDEX_UID.into()),
        kind,
        details,
        node_tasks: vec![],
        finished: Some((TaskStatus::Succeeded, None)),
        shares: vec![],
    };
    accepted(app, task, Outcome::default(), vec![]).await
}

pub async fn list(
    State(app): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    Json(body): Json<Value>,
) -> AppResult<Response> {
    gate(&app, &method, &uri)?;
    let req = search_rules::parse_list(&body).map_err(AppError::from)?;
    Ok(json_ok(app.map().search_rules.list(&req)))
}

pub async fn get(
    State(app): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    Path(uid): Path<String>,
) -> AppResult<Response> {
    gate(&app, &method, &uri)?;
    check_uid(&uid)?;
    let map = app.map();
    let rule = map.search_rules.get(&uid).ok_or_else(|| not_found(&uid))?;
    Ok(json_ok(serde_json::to_value(rule).unwrap_or(Value::Null)))
}

pub async fn update(
    State(app): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    Path(uid): Path<String>,
    Json(body): Json<Value>,
) -> AppResult<Response> {
    gate(&app, &method, &uri)?;
    check_uid(&uid)?;
    let update = search_rules::parse_update(&body).map_err(AppError::from)?;
    let details = json!({"rule": update.view(), "updatedRules": 1});
    let cmd = Command::PutSearchRule { uid, update: Box::new(update), at: crate::write::tasks::now_millis() };
    change(&app, cmd, TaskKind::DsrUpdate, details).await
}

pub async fn delete(
    State(app): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    Path(uid): Path<String>,
) -> AppResult<Response> {
    gate(&app, &method, &uri)?;
    check_uid(&uid)?;
    change(&app, Command::DeleteSearchRule { uid }, TaskKind::DsrUpdate, json!({"updatedRules": 1})).await
}

pub async fn clear(State(app): State<Arc<AppState>>, method: Method, uri: Uri) -> AppResult<Response> {
    gate(&app, &method, &uri)?;
    let count = app.map().search_rules.rules.len();
    change(&app, Command::ClearSearchRules, TaskKind::DsrClear, json!({"deletedDocuments": count})).await
}
