//! The task queue's state: tasks as Meilisearch shows them, the summarized 202 answer, and the
//! `GET /tasks` filters and paging. Clock values come from the caller so this stays pure.

use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::devnode::error::{DevError, DevResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Enqueued,
    Processing,
    Succeeded,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Enqueued => "enqueued",
            Status::Processing => "processing",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Task {
    pub uid: u64,
    pub batch_uid: Option<u64>,
    pub index_uid: Option<String>,
    pub status: Status,
    pub kind: &'static str,
    pub details: Value,
    pub error: Option<DevError>,
    pub enqueued_at: OffsetDateTime,
    pub started_at: Option<OffsetDateTime>,
    pub finished_at: Option<OffsetDateTime>,
}

fn ts(t: OffsetDateTime) -> Value {
    Value::from(t.format(&Rfc3339).unwrap_or_default())
}

/// ISO-8601 duration as Meilisearch prints it (`PT0.001234S`).
fn iso_duration(d: time::Duration) -> String {
    let secs = d.as_seconds_f64().max(0.0);
    format!("PT{secs}S")
}

impl Task {
    pub fn summary(&self) -> Value {
        json!({
            "taskUid": self.uid,
            "indexUid": self.index_uid,
            "status": "enqueued",
            "type": self.kind,
            "enqueuedAt": ts(self.enqueued_at),
        })
    }

    pub fn view(&self) -> Value {
        let mut m = Map::new();
        m.insert("uid".into(), json!(self.uid));
        m.insert("batchUid".into(), json!(self.batch_uid));
        m.insert("indexUid".into(), json!(self.index_uid));
        m.insert("status".into(), json!(self.status.as_str()));
        m.insert("type".into(), json!(self.kind));
        m.insert("canceledBy".into(), Value::Null);
        m.insert("details".into(), self.details.clone());
        m.insert("error".into(), self.error.as_ref().map(DevError::to_json).unwrap_or(Value::Null));
        let duration = match (self.started_at, self.finished_at) {
            (Some(s), Some(f)) => Value::from(iso_duration(f - s)),
            _ => Value::Null,
        };
        m.insert("duration".into(), duration);
        m.insert("enqueuedAt".into(), ts(self.enqueued_at));
        m.insert("startedAt".into(), self.started_at.map(ts).unwrap_or(Value::Null));
        m.insert("finishedAt".into(), self.finished_at.map(ts).unwrap_or(Value::Null));
        Value::Object(m)
    }
}

type TaskFilter = Box<dyn Fn(&Task) -> bool>;

/// Query parameters of `GET /tasks`, already split from the query string.
pub fn list(tasks: &[Task], params: &[(String, String)]) -> DevResult<Value> {
    let mut limit = 20usize;
    let mut from: Option<u64> = None;
    let mut filters: Vec<TaskFilter> = Vec::new();
    for (k, v) in params {
        let items: Vec<String> = v.split(',').map(|s| s.trim().to_string()).collect();
        let any = items.iter().any(|s| s == "*");
        match k.as_str() {
            "limit" => {
                limit = v.parse().map_err(|_| {
                    DevError::new(
                        "invalid_task_limit",
                        format!("Invalid value in parameter `limit`: could not parse `{v}` as a positive integer"),
                    )
                })?
            }
            "from" => {
                from = Some(v.parse().map_err(|_| {
                    DevError::new(
                        "invalid_task_from",
                        format!("Invalid value in parameter `from`: could not parse `{v}` as a positive integer"),
                    )
                })?)
            }
            "reverse" => {}
            "statuses" => {
                for s in &items {
                    if !any && !["enqueued", "processing", "succeeded", "failed", "canceled"].contains(&s.as_str()) {
                        return Err(DevError::new("invalid_task_statuses", format!("Invalid value in parameter `statuses`: `{s}` is not a valid task status. Available statuses are `enqueued`, `processing`, `succeeded`, `failed`, `canceled`.")));
                    }
                }
                if !any {
                    filters.push(Box::new(move |t| items.iter().any(|s| s == t.status.as_str())));
                }
            }
            "types" => {
                for s in &items {
                    if !any && !KINDS.contains(&s.as_str()) {
                        return Err(DevError::new("invalid_task_types", format!("Invalid value in parameter `types`: `{s}` is not a valid task type. Available types are {}.", KINDS.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", "))));
                    }
                }
                if !any {
                    filters.push(Box::new(move |t| items.iter().any(|s| s == t.kind)));
                }
            }
            "indexUids" => {
                if !any {
                    filters.push(Box::new(move |t| t.index_uid.as_ref().is_some_and(|u| items.contains(u))));
                }
            }
            "uids" | "batchUids" => {
                let mut nums = Vec::new();
                for s in &items {
                    let code = if k == "uids" { "invalid_task_uids" } else { "invalid_task_batch_uids" };
                    nums.push(s.parse::<u64>().map_err(|_| {
                        DevError::new(
                            code,
                            format!("Invalid value in parameter `{k}`: could not parse `{s}` as a positive integer"),
                        )
                    })?);
                }
                if !any {
                    let batch = k == "batchUids";
                    filters.push(Box::new(move |t| {
                        let id = if batch { t.batch_uid } else { Some(t.uid) };
                        id.is_some_and(|id| nums.contains(&id))
                    }));
                }
            }
            other => {
                return Err(DevError::bad_request(format!("Unknown parameter `{other}`: expected one of `limit`, `from`, `reverse`, `batchUids`, `uids`, `canceledBy`, `types`, `statuses`, `indexUids`, `afterEnqueuedAt`, `beforeEnqueuedAt`, `afterStartedAt`, `beforeStartedAt`, `afterFinishedAt`, `beforeFinishedAt`")));
            }
        }
    }
    let matching: Vec<&Task> = tasks.iter().rev().filter(|t| filters.iter().all(|f| f(t))).collect();
    let total = matching.len();
    let page: Vec<&Task> = matching.into_iter().filter(|t| from.is_none_or(|f| t.uid <= f)).collect();
    let next = page.get(limit).map(|t| t.uid);
    let results: Vec<Value> = page.iter().take(limit).map(|t| t.view()).collect();
    let from_v = results.first().and_then(|t| t.get("uid").cloned()).unwrap_or(Value::Null);
    Ok(json!({"results": results, "total": total, "limit": limit, "from": from_v, "next": next}))
}

pub const KINDS: &[&str] = &[
    "documentAdditionOrUpdate",
    "documentEdition",
    "documentDeletion",
    "settingsUpdate",
    "indexCreation",
    "indexDeletion",
    "indexUpdate",
    "indexSwap",
    "taskCancelation",
    "taskDeletion",
    "dumpCreation",
    "snapshotCreation",
    "upgradeDatabase",
];
