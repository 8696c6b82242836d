//! `POST /indexes/{uid}/fields`: each node of a covering set lists the fields its shards brought
//! (a field's attributes come from the index's settings, the same on every node), the gateway
//! takes their union by name without Miroir's `_miroir_shard`, and pages it as one Meilisearch
//! would: name order, then `offset`/`limit`, `total` over the union. A failed node's shards are
//! retried on other copies (`scatter`); shards no copy answered for are named in
//! `X-Miroir-Degraded`, or refused with `X-Miroir-Missing-Shards: error`, as for search.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use miroir_meili::fields::{check_uid, parse, union};
use serde_json::{json, Value};

use super::search::{answer, policy};
use crate::app::AppState;
use crate::error::{AppError, AppResult, Code};
use crate::http::extract::Json;
use crate::read::scatter::scatter;
use crate::write::settings::SHARD_FIELD;

/// Every field a node holds fits one answer: an index has at most 65,536 field ids.
const NODE_LIMIT: u64 = u32::MAX as u64;

pub async fn list(
    State(app): State<Arc<AppState>>,
    Path(uid): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> AppResult<Response> {
    // Meilisearch reads the body before it looks the index up; only its reserved uids are invalid.
    let req = parse(&body).map_err(AppError::from)?;
    check_uid(&uid).map_err(AppError::from)?;
    let map = app.map();
    if !map.indexes.contains_key(&uid) {
        return Err(AppError::index_not_found(&uid));
    }
    let policy = policy(&headers)?;
    // The filter is the client's: nodes apply it (it depends only on names and settings); paging
    // is the gateway's, over the union.
    let filter = body.get("filter").cloned().unwrap_or(Value::Null);
    let build = |_: &[u32]| json!({"offset": 0, "limit": NODE_LIMIT, "filter": filter});
    let path = format!("/indexes/{uid}/fields");
    let gathered = scatter(app.reads(), &map, &uid, &path, build, app.read_deadline(), policy).await?;
    let mut answers = Vec::with_capacity(gathered.answers.len());
    for a in &gathered.answers {
        answers.push(serde_json::from_slice::<Value>(&a.body).map_err(|e| {
            AppError::new(Code::MIROIR_UNAVAILABLE, format!("Node `{}` answered an unreadable field list: {e}", a.node))
        })?);
    }
    let page = req.page(union(&answers, &[SHARD_FIELD]));
    Ok(answer(page, &gathered.missing))
}
