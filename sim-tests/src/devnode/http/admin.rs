//! Cluster-level routes of the dev node that act on several indexes or on the task queue:
//! `POST /swap-indexes`.

use axum::http::{HeaderMap, StatusCode};

use super::routes::{ct, ok, Body, Res, St};
use super::{json_body, now};
use crate::devnode::engine::Op;
use crate::devnode::error::DevError;

pub(super) async fn swap_indexes(axum::extract::State(s): St, h: HeaderMap, Body(b): Body) -> Res {
    let body = json_body(ct(&h), &b)?;
    let swaps = miroir::swap::parse(&body).map_err(|r| DevError::new(r.code, r.message))?;
    let swaps = swaps.into_iter().map(|sw| (sw.indexes.0, sw.indexes.1, sw.rename)).collect();
    let summary = s.engine().enqueue_global(Op::Swap(swaps), now());
    s.work.notify_one();
    ok(StatusCode::ACCEPTED, summary)
}
