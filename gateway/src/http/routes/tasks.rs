//! `/tasks`: served from the replicated Miroir task log, with Meilisearch's filters and paging.

use miroir_meili::tasks::filter_value;
use miroir_meili::TaskKind;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use miroir::command::Command;
use miroir::ids::Millis;
use miroir::task::{NewTask, Task, TaskFilter, TaskStatus};
use serde::Deserialize;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::json_ok;
use crate::app::AppState;
use crate::error::{AppError, AppResult, Code};
use crate::http::auth::Access;
use crate::http::extract::{bool_param, uint_param, Query};
use crate::write::tasks::{now_millis, summarized, view};

/// `/tasks` query parameters, in Meilisearch's order (its "unknown parameter" error lists them).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskParams {
    limit: Option<String>,
    from: Option<String>,
    reverse: Option<String>,
    /// A Miroir task is its own batch (batch uid = task uid, once it started).
    batch_uids: Option<String>,
    uids: Option<String>,
    canceled_by: Option<String>,
    types: Option<String>,
    statuses: Option<String>,
    index_uids: Option<String>,
    after_enqueued_at: Option<String>,
    before_enqueued_at: Option<String>,
    after_started_at: Option<String>,
    before_started_at: Option<String>,
    after_finished_at: Option<String>,
    before_finished_at: Option<String>,
}

fn task_types(raw: &Option<String>) -> AppResult<Option<Vec<TaskKind>>> {
    let kind = |t: &str| {
        filter_value(TaskKind::ALL, "type", "types", t)
            .map_err(|m| AppError::new(Code::INVALID_TASK_TYPES, format!("Invalid value in parameter `types`: {m}")))
    };
    split_list(raw).map(|l| l.into_iter().map(kind).collect()).transpose()
}

fn index_uids(raw: &Option<String>) -> AppResult<Option<Vec<String>>> {
    split_list(raw)
        .map(|l| {
            let many = l.len() > 1;
            l.iter()
                .enumerate()
                .map(|(i, u)| {
                    if miroir_meili::is_valid_index_uid(u) {
                        return Ok(u.to_string());
                    }
                    let at = if many { format!("indexUids[{i}]") } else { "indexUids".into() };
                    let e = AppError::invalid_index_uid(u);
                    Err(AppError::new(
                        Code::INVALID_INDEX_UID,
                        format!("Invalid value in parameter `{at}`: {}", e.message),
                    ))
                })
                .collect()
        })
        .transpose()
}

/// A comma-separated list where `*` means "no filter".
fn split_list(raw: &Option<String>) -> Option<Vec<&str>> {
    let raw = raw.as_deref()?;
    let items: Vec<&str> = raw.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    (!items.contains(&"*")).then_some(items)
}

fn uids(raw: &Option<String>, code: Code, name: &str) -> AppResult<Option<Vec<u64>>> {
    split_list(raw)
        .map(|items| {
            let many = items.len() > 1;
            items
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    s.parse().map_err(|_| {
                        let at = if many { format!("{name}[{i}]") } else { name.to_string() };
                        AppError::new(
                            code,
                            format!("Invalid value in parameter `{at}`: could not parse `{s}` as a positive integer"),
                        )
                    })
                })
                .collect()
        })
        .transpose()
}

fn date(raw: &Option<String>, code: Code, name: &str) -> AppResult<Option<Millis>> {
    raw.as_deref()
        .map(|s| {
            OffsetDateTime::parse(s, &Rfc3339)
                .ok()
                .or_else(|| {
                    let day = time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok()?;
                    Some(day.midnight().assume_utc())
                })
                .map(|t| (t.unix_timestamp_nanos() / 1_000_000).max(0) as Millis)
                .ok_or_else(|| {
                    AppError::new(code,
                        format!("Invalid value in parameter `{name}`: `{s}` is an invalid date-time. It should follow the YYYY-MM-DD or RFC 3339 date-time format."),
                    )
                })
        })
        .transpose()
}

fn status(s: &str) -> AppResult<TaskStatus> {
    filter_value(TaskStatus::ALL, "status", "statuses", s)
        .map_err(|m| AppError::new(Code::INVALID_TASK_STATUSES, format!("Invalid value in parameter `statuses`: {m}")))
}

/// Statuses of tasks that have a batch: every one but `enqueued`.
const BATCHED: [TaskStatus; 4] =
    [TaskStatus::Processing, TaskStatus::Succeeded, TaskStatus::Failed, TaskStatus::Canceled];

fn filter(p: &TaskParams, access: &Access) -> AppResult<TaskFilter> {
    let mut statuses: Option<Vec<TaskStatus>> =
        split_list(&p.statuses).map(|l| l.into_iter().map(status).collect()).transpose()?;
    let mut task_uids = uids(&p.uids, Code::INVALID_TASK_UIDS, "uids")?;
    if let Some(batches) = uids(&p.batch_uids, Code::INVALID_BATCH_UIDS, "batchUids")? {
        task_uids = Some(match task_uids {
            Some(t) => t.into_iter().filter(|u| batches.contains(u)).collect(),
            None => batches,
        });
        statuses = Some(statuses.unwrap_or(BATCHED.to_vec()).into_iter().filter(|s| BATCHED.contains(s)).collect());
    }
    Ok(TaskFilter {
        uids: task_uids,
        statuses,
        types: task_types(&p.types)?,
        index_uids: index_uids(&p.index_uids)?,
        canceled_by: uids(&p.canceled_by, Code::INVALID_TASK_CANCELED_BY, "canceledBy")?,
        before_enqueued_at: date(&p.before_enqueued_at, Code::INVALID_TASK_BEFORE_ENQUEUED_AT, "beforeEnqueuedAt")?,
        after_enqueued_at: date(&p.after_enqueued_at, Code::INVALID_TASK_AFTER_ENQUEUED_AT, "afterEnqueuedAt")?,
        before_started_at: date(&p.before_started_at, Code::INVALID_TASK_BEFORE_STARTED_AT, "beforeStartedAt")?,
        after_started_at: date(&p.after_started_at, Code::INVALID_TASK_AFTER_STARTED_AT, "afterStartedAt")?,
        before_finished_at: date(&p.before_finished_at, Code::INVALID_TASK_BEFORE_FINISHED_AT, "beforeFinishedAt")?,
        after_finished_at: date(&p.after_finished_at, Code::INVALID_TASK_AFTER_FINISHED_AT, "afterFinishedAt")?,
        authorized_indexes: restriction(access),
    })
}

/// The index patterns a restricted key (or tenant token) limits task views to.
fn restriction(access: &Access) -> Option<Vec<String>> {
    match access {
        Access::Full => None,
        _ if access.all_indexes() => None,
        Access::Key { key, .. } => Some(key.indexes.clone()),
    }
}

/// One page of batches: the tasks that started, each shown as its own batch.
pub async fn list_batches(app: &AppState, p: TaskParams, access: &Access) -> AppResult<Value> {
    let mut f = filter(&p, access)?;
    f.statuses = Some(f.statuses.unwrap_or(BATCHED.to_vec()).into_iter().filter(|s| BATCHED.contains(s)).collect());
    page(app, f, &p, crate::write::tasks::batch_view).await
}

pub async fn list_tasks(app: &AppState, p: TaskParams, access: &Access) -> AppResult<Value> {
    page(app, filter(&p, access)?, &p, |t| Some(view(t))).await
}

/// Meilisearch's paged list shape over the task log, each task rendered by `render`.
async fn page(app: &AppState, f: TaskFilter, p: &TaskParams, render: fn(&Task) -> Option<Value>) -> AppResult<Value> {
    let limit = uint_param(p.limit.as_deref(), "limit", Code::INVALID_TASK_LIMIT)?.unwrap_or(20);
    let from = uint_param(p.from.as_deref(), "from", Code::INVALID_TASK_FROM)?.map(|f| f as u64);
    let reverse = bool_param(p.reverse.as_deref(), "reverse", Code::INVALID_TASK_REVERSE)?.unwrap_or(false);
    let page = app.cluster.tasks(f, from, limit, reverse).await?;
    Ok(json!({
        "results": page.tasks.iter().filter_map(render).collect::<Vec<_>>(),
        "total": page.total,
        "limit": limit,
        "from": page.tasks.first().map(|t| t.uid),
        "next": page.next,
    }))
}

pub async fn list(
    State(app): State<Arc<AppState>>,
    access: Access,
    Query(p): Query<TaskParams>,
) -> AppResult<Response> {
    Ok(json_ok(list_tasks(&app, p, &access).await?))
}

pub async fn list_batches_route(
    State(app): State<Arc<AppState>>,
    access: Access,
    Query(p): Query<TaskParams>,
) -> AppResult<Response> {
    Ok(json_ok(list_batches(&app, p, &access).await?))
}

pub async fn get_batch(
    State(app): State<Arc<AppState>>,
    access: Access,
    Path(uid): Path<String>,
) -> AppResult<Response> {
    let not_found = || AppError::new(Code::BATCH_NOT_FOUND, format!("Batch `{uid}` not found."));
    let task = one(&app, &uid, "batchUid", Code::INVALID_BATCH_UIDS, &access).await?.ok_or_else(not_found)?;
    Ok(json_ok(crate::write::tasks::batch_view(&task).ok_or_else(not_found)?))
}

pub async fn get(State(app): State<Arc<AppState>>, access: Access, Path(uid): Path<String>) -> AppResult<Response> {
    let not_found = || AppError::new(Code::TASK_NOT_FOUND, format!("Task `{uid}` not found."));
    let task = one(&app, &uid, "taskUid", Code::INVALID_TASK_UIDS, &access).await?.ok_or_else(not_found)?;
    Ok(json_ok(view(&task)))
}

/// The task behind a `/tasks/{uid}` or `/batches/{uid}` path (a batch uid is its task's uid); a
/// restricted key does not see other indexes' tasks.
async fn one(app: &AppState, uid: &str, param: &str, code: Code, access: &Access) -> AppResult<Option<Task>> {
    let n: u64 = uid.parse().map_err(|_| {
        AppError::new(
            code,
            format!("Invalid value in parameter `{param}`: could not parse `{uid}` as a positive integer"),
        )
    })?;
    let visible = TaskFilter { authorized_indexes: restriction(access), ..TaskFilter::default() };
    Ok(app.cluster.task(n).await?.filter(|t| visible.matches(t)))
}

fn has_filter(p: &TaskParams) -> bool {
    [
        &p.uids,
        &p.batch_uids,
        &p.statuses,
        &p.types,
        &p.index_uids,
        &p.canceled_by,
        &p.before_enqueued_at,
        &p.after_enqueued_at,
        &p.before_started_at,
        &p.after_started_at,
        &p.before_finished_at,
        &p.after_finished_at,
    ]
    .iter()
    .any(|v| v.is_some())
}

/// The uids matching a cancel/delete filter (all of them, not one page).
async fn matching(app: &AppState, p: &TaskParams, access: &Access) -> AppResult<Vec<u64>> {
    let page = app.cluster.tasks(filter(p, access)?, None, usize::MAX, false).await?;
    Ok(page.tasks.iter().map(|t| t.uid).collect())
}

async fn filtered_task(
    app: &AppState,
    access: &Access,
    p: TaskParams,
    query: String,
    kind: TaskKind,
    missing_code: Code,
    run: impl FnOnce(Vec<u64>, u64) -> Command,
) -> AppResult<Response> {
    if let Some(name) = [("limit", &p.limit), ("from", &p.from), ("reverse", &p.reverse)]
        .into_iter()
        .find_map(|(name, v)| v.is_some().then_some(name))
    {
        return Err(AppError::new(
            Code::BAD_REQUEST,
            format!("Unknown parameter `{name}`: expected one of `uids`, `batchUids`, `canceledBy`, `types`, `statuses`, `indexUids`, `afterEnqueuedAt`, `beforeEnqueuedAt`, `afterStartedAt`, `beforeStartedAt`, `afterFinishedAt`, `beforeFinishedAt`"),
        ));
    }
    if !has_filter(&p) {
        return Err(AppError::new(
            missing_code,
            format!("Query parameters to filter the tasks to {} are missing. Available query parameters are: `uids`, `indexUids`, `statuses`, `types`, `canceledBy`, `beforeEnqueuedAt`, `afterEnqueuedAt`, `beforeStartedAt`, `afterStartedAt`, `beforeFinishedAt`, `afterFinishedAt`.", if kind == TaskKind::TaskCancelation { "cancel" } else { "delete" }),
        ));
    }
    let uids = matching(app, &p, access).await?;
    let done_key = if kind == TaskKind::TaskCancelation { "canceledTasks" } else { "deletedTasks" };
    let original_filter = format!("?{query}");
    // Finished below by the gateway itself (`FinishTask`) once the tasks are canceled or deleted;
    // registered `processing` meanwhile, not finished as a task without node tasks would be.
    let new = NewTask {
        index_uid: None,
        kind,
        details: json!({"matchedTasks": uids.len(), done_key: null, "originalFilter": original_filter}),
        node_tasks: vec![],
        finished: Some((TaskStatus::Processing, None)),
        shares: vec![],
    };
    let (uid, _) = app.tasks.register(new).await?;
    let before = app
        .cluster
        .tasks(TaskFilter { uids: Some(uids.clone()), ..TaskFilter::default() }, None, usize::MAX, false)
        .await?;
    let unfinished = before.tasks.iter().filter(|t| !t.status.is_finished()).count();
    let finished = before.tasks.len() - unfinished;
    app.cluster.propose(run(uids.clone(), uid)).await?;
    if kind == TaskKind::TaskCancelation {
        crate::write::node_tasks::cancel_on_nodes(&app.nodes, &app.map(), &before.tasks).await;
    } else {
        crate::write::node_tasks::delete_on_nodes(&app.nodes, &app.map(), &before.tasks).await;
    }
    // Cancelation acts on unfinished tasks, deletion on finished ones, as in Meilisearch.
    let done = if kind == TaskKind::TaskCancelation { unfinished } else { finished };
    let details = json!({"matchedTasks": uids.len(), done_key: done, "originalFilter": original_filter});
    let finish = Command::FinishTask {
        uid,
        status: TaskStatus::Succeeded,
        error: None,
        details: Some(details),
        at: now_millis(),
    };
    app.cluster.propose(finish).await?;
    let task = app.cluster.task(uid).await?.ok_or_else(|| AppError::internal("task vanished"))?;
    // 200, not 202: Meilisearch keeps 200 here until 2.0 (its `cancel_tasks`/`delete_tasks`).
    Ok((axum::http::StatusCode::OK, axum::Json(summarized(&task))).into_response())
}

pub async fn cancel(
    State(app): State<Arc<AppState>>,
    access: Access,
    uri: axum::http::Uri,
    Query(p): Query<TaskParams>,
) -> AppResult<Response> {
    let q = uri.query().unwrap_or("").to_string();
    filtered_task(&app, &access, p, q, TaskKind::TaskCancelation, Code::MISSING_TASK_FILTERS, |uids, by| {
        Command::CancelTasks { uids, canceled_by: by, at: now_millis() }
    })
    .await
}

pub async fn delete(
    State(app): State<Arc<AppState>>,
    access: Access,
    uri: axum::http::Uri,
    Query(p): Query<TaskParams>,
) -> AppResult<Response> {
    let q = uri.query().unwrap_or("").to_string();
    filtered_task(&app, &access, p, q, TaskKind::TaskDeletion, Code::MISSING_TASK_FILTERS, |uids, _| {
        Command::DeleteTasks { uids }
    })
    .await
}
