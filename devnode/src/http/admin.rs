//! Cluster-level routes of the dev node that act on several indexes or on the task queue:
//! `POST /swap-indexes`, `POST /tasks/cancel`, `DELETE /tasks`.

use axum::http::{HeaderMap, StatusCode};

use axum::extract::RawQuery;

use super::routes::{ct, ok, query, Body, Res, St};
use super::{json_body, now};
use crate::engine::Op;

pub(super) async fn swap_indexes(axum::extract::State(s): St, h: HeaderMap, Body(b): Body) -> Res {
    let body = json_body(ct(&h), &b)?;
    let swaps = miroir_meili::swap::parse(&body)?;
    let swaps = swaps.into_iter().map(|sw| (sw.indexes.0, sw.indexes.1, sw.rename)).collect();
    let summary = s.engine().enqueue_global(Op::Swap(swaps), now());
    s.work.notify_one();
    ok(StatusCode::ACCEPTED, summary)
}

/// Enqueues a task cancelation or deletion over the tasks the query matches now.
fn queue_op(s: &super::Shared, q: Option<String>, what: &str) -> Res {
    let params = query(&q);
    let mut e = s.engine();
    let visible = e.visible_tasks();
    let matched = crate::engine::task_query::matched_uids(&visible, &params, what)?;
    let filter = format!("?{}", q.unwrap_or_default());
    let op = if what == "cancel" { Op::CancelTasks(matched, filter) } else { Op::DeleteTasks(matched, filter) };
    let summary = e.enqueue_global(op, now());
    drop(e);
    s.work.notify_one();
    ok(StatusCode::OK, summary)
}

pub(super) async fn cancel_tasks(axum::extract::State(s): St, RawQuery(q): RawQuery) -> Res {
    queue_op(&s, q, "cancel")
}

pub(super) async fn delete_tasks(axum::extract::State(s): St, RawQuery(q): RawQuery) -> Res {
    queue_op(&s, q, "delete")
}
