//! Tasks in Meilisearch's JSON shapes (task views, batch views, dates and durations): pure
//! rendering, shared by the gateway (`/tasks`, `/batches`) and the coordinator (webhooks).

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::ids::Millis;
use crate::task::Task;

pub fn rfc3339(ms: Millis) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    t.format(&Rfc3339).unwrap_or_default()
}

/// ISO 8601 duration, as Meilisearch prints it (`PT0.123456S`).
pub fn duration(ms: Millis) -> String {
    format!("PT{}.{:03}S", ms / 1000, ms % 1000)
}

pub fn view(task: &Task) -> Value {
    json!({
        "uid": task.uid,
        "batchUid": task.started_at.map(|_| task.uid),
        "indexUid": task.index_uid,
        "status": task.status.as_str(),
        "type": task.kind,
        "canceledBy": task.canceled_by,
        "details": task.details,
        "error": task.error,
        "duration": match (task.started_at, task.finished_at) {
            (Some(s), Some(f)) => Value::from(duration(f.saturating_sub(s))),
            _ => Value::Null,
        },
        "enqueuedAt": rfc3339(task.enqueued_at),
        "startedAt": task.started_at.map(rfc3339),
        "finishedAt": task.finished_at.map(rfc3339),
    })
}

/// A Miroir task as the batch Meilisearch would show for it: Miroir runs one task per batch, and a
/// task has a batch once it started.
pub fn batch_view(task: &Task) -> Option<Value> {
    let started = task.started_at?;
    let one = |k: &str| Value::Object(std::iter::once((k.to_string(), Value::from(1))).collect());
    Some(json!({
        "uid": task.uid,
        "progress": null,
        "details": task.details,
        "stats": {
            "totalNbTasks": 1,
            "status": one(task.status.as_str()),
            "types": one(task.kind.as_str()),
            "indexUids": task.index_uid.as_deref().map_or(json!({}), one),
        },
        "duration": task.finished_at.map(|f| duration(f.saturating_sub(started))),
        "startedAt": rfc3339(started),
        "finishedAt": task.finished_at.map(rfc3339),
    }))
}
