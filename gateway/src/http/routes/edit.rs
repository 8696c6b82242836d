//! `POST /indexes/{uid}/documents/edit` (edit documents by function, behind the
//! `editDocumentsByFunction` feature): checked here before anything is written, then sent to every
//! copy of every shard of the index, one node task per shard copy, each running the client's
//! function wrapped so that the documents keep their shard (`documents::edit`).

use miroir_meili::TaskKind;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use miroir::ids::ShardId;
use miroir_node_client::{Method, NodeRequest};
use serde_json::{json, Value};

use super::documents::{broadcast, Split};
use super::new_task;
use crate::app::AppState;
use crate::error::{AppError, AppResult, Code};
use crate::http::extract::Json;
use crate::read::replicas::scoped_filter;
use crate::write::edit;

pub async fn edit(
    State(app): State<Arc<AppState>>,
    Path(uid): Path<String>,
    Json(body): Json<Value>,
) -> AppResult<Response> {
    // Meilisearch's order: the body, the feature, the index uid, then the request's contents.
    let (filter, context, function) = edit::parse_body(&body)?;
    let path = format!("/indexes/{uid}/documents/edit");
    crate::http::feature_gate::check(&app.map(), &axum::http::Method::POST, &path)?;
    if !miroir_meili::is_valid_index_uid(&uid) {
        return Err(AppError::invalid_index_uid(&uid));
    }
    let e = edit::check(&uid, filter, context, function)?;
    let wrapped = edit::wrap(&e.function)?;
    let details = json!({
        "editedDocuments": null,
        "deletedDocuments": null,
        "originalFilter": e.filter.as_ref().map(Value::to_string),
        "context": e.context,
        "function": e.function,
    });
    let task = new_task(&uid, TaskKind::DocumentEdition, details);
    let request = |shards: &[ShardId]| {
        let body = json!({
            "filter": scoped_filter(shards, e.filter.as_ref()),
            "context": e.context,
            "function": wrapped.for_shard(shards[0]),
        });
        NodeRequest::json(Method::Post, path.clone(), &body)
    };
    let string_filter = e.filter.as_ref().is_some_and(Value::is_string);
    broadcast(&app, &uid, request, task, Split::PerShard).await.map_err(|err| name_the_index(err, &uid, string_filter))
}

/// The nodes get the client's filter as one item of an array (after the shard condition), and
/// Meilisearch names the index in the syntax errors of a filter string only, not of an array's
/// items: a client's string gets its index named back.
fn name_the_index(mut err: AppError, uid: &str, string_filter: bool) -> AppError {
    let Some(forwarded) = err.forwarded.as_mut().filter(|_| string_filter) else { return err };
    let body = &mut forwarded.1;
    let Some(message) = body["message"].as_str().filter(|_| body["code"] == Code::INVALID_DOCUMENT_FILTER.name) else {
        return err;
    };
    if message.starts_with("Index `") {
        return err;
    }
    let named = format!("Index `{uid}`: {message}");
    body["message"] = Value::from(named.clone());
    err.message = named;
    err
}
