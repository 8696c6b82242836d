//! `/dynamic-search-rules` as Meilisearch 1.50 serves it: behind the `dynamicSearchRules` feature,
//! listed by POST, read synchronously, changed through `dsrUpdate` / `dsrClear` tasks of its
//! hidden rules index.

use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

use super::routes::{ct, ok, Body, Res, St};
use super::{json_body, now};
use crate::engine::Op;
use crate::error::{Code, DevResult, MeiliError};
use miroir_meili::search_rules::{check_uid, parse_list, parse_update, TASK_INDEX_UID};

/// Meilisearch's `check_dynamic_search_rules`, with the route's own wording.
fn gate(s: &super::Shared, action: &str) -> DevResult<()> {
    if s.engine().features.get("dynamicSearchRules").copied().unwrap_or(false) {
        return Ok(());
    }
    Err(MeiliError::new(
        Code::FEATURE_NOT_ENABLED,
        format!("{action} requires enabling the `dynamic search rules` experimental feature. See https://github.com/orgs/meilisearch/discussions/884"),
    ))
}

const USING: &str = "Using the `/dynamic-search-rules` routes";

fn enqueue(s: &super::Shared, op: Op) -> Res {
    let summary = s.engine().enqueue(TASK_INDEX_UID, op, now());
    s.work.notify_one();
    ok(StatusCode::ACCEPTED, summary)
}

pub(super) async fn list(axum::extract::State(s): St, h: HeaderMap, Body(b): Body) -> Res {
    gate(&s, "Calling the `POST /dynamic-search-rules` route")?;
    let req = parse_list(&json_body(ct(&h), &b)?)?;
    ok(StatusCode::OK, s.engine().search_rules.list(&req))
}

pub(super) async fn get(axum::extract::State(s): St, Path(uid): Path<String>) -> Res {
    gate(&s, "Calling the `GET /dynamic-search-rules/{:ruleUid}` route")?;
    check_uid(&uid)?;
    let e = s.engine();
    let rule = e.search_rules.get(&uid).ok_or_else(|| {
        MeiliError::new(Code::DYNAMIC_SEARCH_RULE_NOT_FOUND, format!("Dynamic search rule `{uid}` not found."))
    })?;
    ok(StatusCode::OK, serde_json::to_value(rule).unwrap_or(Value::Null))
}

pub(super) async fn update(axum::extract::State(s): St, Path(uid): Path<String>, h: HeaderMap, Body(b): Body) -> Res {
    gate(&s, USING)?;
    check_uid(&uid)?;
    let update = parse_update(&json_body(ct(&h), &b)?)?;
    enqueue(&s, Op::DsrUpdate(uid, Box::new(update)))
}

pub(super) async fn delete(axum::extract::State(s): St, Path(uid): Path<String>) -> Res {
    gate(&s, USING)?;
    check_uid(&uid)?;
    enqueue(&s, Op::DsrDelete(uid))
}

pub(super) async fn clear(axum::extract::State(s): St) -> Res {
    gate(&s, USING)?;
    enqueue(&s, Op::DsrClear)
}
