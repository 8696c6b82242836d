//! Every Meilisearch route the gateway serves, by area.

use miroir_meili::TaskKind;
use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use miroir::task::NewTask;
use serde_json::Value;

use crate::app::AppState;
use crate::error::{AppError, AppResult};
use crate::write::fanout::Outcome;

mod admin;
mod documents;
mod edit;
mod features;
mod fields;
mod indexes;
mod keys;
mod meta;
pub mod search;
mod search_rules;
mod settings;
mod swap;
mod tasks;
mod webhooks;

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/health", get(meta::health))
        .route("/version", get(meta::version))
        .route("/stats", get(meta::stats))
        .route("/_miroir/ready", get(meta::ready))
        .route("/_miroir/nodes", get(admin::list_nodes).post(admin::add_node))
        .route("/_miroir/nodes/{id}", axum::routing::delete(admin::remove_node))
        .route("/_miroir/nodes/{id}/drain", post(admin::drain_node))
        .route("/_miroir/groups", get(admin::list_groups).post(admin::add_group))
        .route("/_miroir/groups/{id}", axum::routing::delete(admin::remove_group))
        .route("/_miroir/groups/{id}/drain", post(admin::drain_group))
        .route("/_miroir/migrations", get(admin::migrations))
        .route("/_miroir/indexes/{uid}/verify", get(admin::verify))
        .route("/indexes", get(indexes::list).post(indexes::create))
        .route("/indexes/{uid}", get(indexes::get).patch(indexes::update).delete(indexes::delete))
        .route("/indexes/{uid}/stats", get(meta::index_stats_route))
        .route(
            "/indexes/{uid}/documents",
            get(documents::browse)
                .post(documents::add_or_replace)
                .put(documents::add_or_update)
                .delete(documents::clear),
        )
        .route("/indexes/{uid}/documents/fetch", post(documents::fetch))
        .route("/indexes/{uid}/documents/delete-batch", post(documents::delete_batch))
        .route("/indexes/{uid}/documents/delete", post(documents::delete_by_filter))
        .route("/indexes/{uid}/documents/{id}", get(documents::get_one).delete(documents::delete_one))
        .route(
            "/indexes/{uid}/settings",
            get(settings::get_all).patch(settings::update_all).delete(settings::reset_all),
        )
        .route(
            "/indexes/{uid}/settings/{setting}",
            get(settings::get_one).put(settings::put_one).patch(settings::patch_one).delete(settings::reset_one),
        )
        .route("/tasks", get(tasks::list).delete(tasks::delete))
        .route("/tasks/cancel", post(tasks::cancel))
        .route("/tasks/{uid}", get(tasks::get))
        .route("/experimental-features", get(features::get).patch(features::patch))
        .route("/webhooks", get(webhooks::list).post(webhooks::create))
        .route("/webhooks/{uuid}", get(webhooks::get).patch(webhooks::update).delete(webhooks::delete))
        .route("/dynamic-search-rules", post(search_rules::list).delete(search_rules::clear))
        .route(
            "/dynamic-search-rules/{uid}",
            get(search_rules::get).patch(search_rules::update).delete(search_rules::delete),
        )
        .route("/indexes/{uid}/compact", post(indexes::compact))
        .route("/indexes/{uid}/search", get(search::get::<false>).post(search::post::<false>))
        .route("/indexes/{uid}/facet-search", post(search::facet_search))
        .route("/indexes/{uid}/similar", get(search::get::<true>).post(search::post::<true>))
        .route("/indexes/{uid}/fields", post(fields::list))
        .route("/multi-search", post(search::multi))
        .route("/keys", get(keys::list).post(keys::create))
        .route("/keys/{key}", get(keys::get).patch(keys::update).delete(keys::delete))
        .route("/swap-indexes", post(swap::swap_indexes))
        // Before `/documents/{id}`, which would answer this POST with a 405.
        .route("/indexes/{uid}/documents/edit", post(edit::edit))
        .route("/batches", get(tasks::list_batches_route))
        .route("/batches/{uid}", get(tasks::get_batch))
}

/// Registers the Miroir task of a write that reached its nodes and answers 202 like Meilisearch,
/// with `X-Miroir-Degraded` naming shards left below RF.
async fn accepted(app: &AppState, mut task: NewTask, outcome: Outcome, degraded: Vec<u32>) -> AppResult<Response> {
    task.node_tasks = outcome.node_tasks;
    task.shares = outcome.shares;
    let (uid, at) = app.tasks.register(task.clone()).await?;
    let view = serde_json::json!({
        "taskUid": uid,
        "indexUid": task.index_uid,
        "status": "enqueued",
        "type": task.kind,
        "enqueuedAt": crate::write::tasks::rfc3339(at),
    });
    let mut shards: Vec<u32> = outcome.degraded.into_iter().chain(degraded).collect();
    shards.sort_unstable();
    shards.dedup();
    Ok((StatusCode::ACCEPTED, degraded_header(&shards), axum::Json(view)).into_response())
}

/// A write Meilisearch accepts (202) and then fails when it processes it (an unknown index, an
/// index that already exists, a conflicting primary key): the task is registered already failed
/// with Meilisearch's error object, and nothing reaches a node.
async fn failed(app: &AppState, mut task: NewTask, error: AppError) -> AppResult<Response> {
    app.check_writable()?;
    task.node_tasks = vec![];
    task.finished = Some((miroir::task::TaskStatus::Failed, Some(error.body())));
    accepted(app, task, Outcome::default(), vec![]).await
}

/// A task of `kind` on index `uid`, to be filled with its node tasks.
fn new_task(uid: &str, kind: TaskKind, details: Value) -> NewTask {
    NewTask { index_uid: Some(uid.into()), kind, details, node_tasks: vec![], finished: None, shares: vec![] }
}

/// `X-Miroir-Degraded: shards=…` naming `shards` (below RF after a write, unanswered in a read),
/// if there are any.
fn degraded_header(shards: &[u32]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if !shards.is_empty() {
        let list = shards.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        headers.insert("x-miroir-degraded", HeaderValue::from_str(&format!("shards={list}")).expect("ascii"));
    }
    headers
}

fn json_ok(v: Value) -> Response {
    axum::Json(v).into_response()
}
