//! `POST /indexes/{uid}/fields`: each node of a covering set lists the fields its shards brought
//! (a field's attributes come from the index's settings, the same on every node), the gateway
//! takes their union by name without Miroir's `_miroir_shard`, and pages it as one Meilisearch
//! would: name order, then `offset`/`limit`, `total` over the union.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use miroir::fields::{check_uid, parse, union, FieldsRefusal};
use miroir_node_client::{Method, NodeError, NodeRequest};
use serde_json::{json, Value};

use super::json_ok;
use crate::app::AppState;
use crate::error::{AppError, AppResult, Code};
use crate::extract::Json;
use crate::read::covering_set;
use crate::settings::SHARD_FIELD;

static ROUND_ROBIN: AtomicUsize = AtomicUsize::new(0);

/// Every field a node holds fits one answer: an index has at most 65,536 field ids.
const NODE_LIMIT: u64 = u32::MAX as u64;

pub async fn list(
    State(app): State<Arc<AppState>>,
    Path(uid): Path<String>,
    Json(body): Json<Value>,
) -> AppResult<Response> {
    // Meilisearch reads the body before it looks the index up; only its reserved uids are invalid.
    let refused = |r: FieldsRefusal| {
        AppError::new(Code { name: r.code, status: StatusCode::BAD_REQUEST, ..Code::BAD_REQUEST }, r.message)
    };
    let req = parse(&body).map_err(refused)?;
    check_uid(&uid).map_err(refused)?;
    let map = app.map();
    if !map.indexes.contains_key(&uid) {
        return Err(AppError::index_not_found(&uid));
    }
    let cover = covering_set(&map, &uid, ROUND_ROBIN.fetch_add(1, Ordering::Relaxed)).map_err(|missing| {
        AppError::new(
            Code::MIROIR_UNAVAILABLE,
            format!("No in-sync copy of shards {missing:?} of `{uid}` is available."),
        )
    })?;
    // The filter is the client's: nodes apply it (it depends only on names and settings); paging
    // is the gateway's, over the union.
    let node_body =
        json!({"offset": 0, "limit": NODE_LIMIT, "filter": body.get("filter").cloned().unwrap_or(Value::Null)});
    let calls = cover.keys().map(|node| {
        let url = map.nodes.get(node).map(|n| n.url.clone()).unwrap_or_default();
        let request = NodeRequest::json(Method::Post, format!("/indexes/{uid}/fields"), &node_body);
        let app = &app;
        async move { app.nodes.json(&url, request).await }
    });
    let mut answers = Vec::with_capacity(cover.len());
    for answer in futures::future::join_all(calls).await {
        answers.push(answer.map_err(|e| match e {
            NodeError::Status { status, body } if status < 500 => AppError::forwarded(status, body),
            e => AppError::new(Code::MIROIR_UNAVAILABLE, e.to_string()),
        })?);
    }
    Ok(json_ok(req.page(union(&answers, &[SHARD_FIELD]))))
}
