//! Miroir tasks in Meilisearch's shapes, and group commit of task registrations.

use std::sync::Arc;

use miroir::command::{Command, Response};
use miroir::ids::{Millis, TaskUid};
use miroir::task::{NewTask, Task, TaskStatus};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use crate::cluster::{Cluster, ClusterError};

/// Most registrations one Raft entry carries.
const MAX_BATCH: usize = 512;

pub fn now_millis() -> Millis {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as Millis)
}

pub fn rfc3339(ms: Millis) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    t.format(&Rfc3339).unwrap_or_default()
}

fn status_str(s: TaskStatus) -> &'static str {
    match s {
        TaskStatus::Enqueued => "enqueued",
        TaskStatus::Processing => "processing",
        TaskStatus::Succeeded => "succeeded",
        TaskStatus::Failed => "failed",
        TaskStatus::Canceled => "canceled",
    }
}

/// ISO 8601 duration, as Meilisearch prints it (`PT0.123456S`).
fn duration(ms: Millis) -> String {
    format!("PT{}.{:03}S", ms / 1000, ms % 1000)
}

/// The answer to the write that registered `task` (HTTP 202): always `enqueued`, as Meilisearch
/// answers before it processes anything.
pub fn summarized(task: &Task) -> Value {
    json!({
        "taskUid": task.uid,
        "indexUid": task.index_uid,
        "status": "enqueued",
        "type": task.kind,
        "enqueuedAt": rfc3339(task.enqueued_at),
    })
}

/// `GET /tasks/{uid}`'s view of a task.
pub fn view(task: &Task) -> Value {
    json!({
        "uid": task.uid,
        "batchUid": task.started_at.map(|_| task.uid),
        "indexUid": task.index_uid,
        "status": status_str(task.status),
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
            "status": one(status_str(task.status)),
            "types": one(&task.kind),
            "indexUids": task.index_uid.as_deref().map_or(json!({}), one),
        },
        "duration": task.finished_at.map(|f| duration(f.saturating_sub(started))),
        "startedAt": rfc3339(started),
        "finishedAt": task.finished_at.map(rfc3339),
    }))
}

type Pending = (NewTask, oneshot::Sender<Result<(TaskUid, Millis), ClusterError>>);

/// Registers tasks with one Raft proposal for every registration that arrived while the previous
/// proposal was in flight, so a write waits for one commit, not one commit per concurrent write.
#[derive(Clone)]
pub struct GroupCommit {
    tx: mpsc::Sender<Pending>,
}

impl GroupCommit {
    pub fn start(cluster: Arc<dyn Cluster>) -> Self {
        let (tx, rx) = mpsc::channel::<Pending>(4 * MAX_BATCH);
        tokio::spawn(run(cluster, rx));
        Self { tx }
    }

    /// Registers one task; returns its uid and enqueue time once committed.
    pub async fn register(&self, task: NewTask) -> Result<(TaskUid, Millis), ClusterError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send((task, tx)).await.map_err(|_| ClusterError::Unavailable("gateway shutting down".into()))?;
        rx.await.map_err(|_| ClusterError::Unavailable("gateway shutting down".into()))?
    }
}

async fn run(cluster: Arc<dyn Cluster>, mut rx: mpsc::Receiver<Pending>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let at = now_millis();
        let (tasks, waiters): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        let result = cluster.propose(Command::RegisterTasks { tasks, at }).await;
        match result {
            Ok((Response::Tasks(uids), _)) if uids.len() == waiters.len() => {
                for (w, uid) in waiters.into_iter().zip(uids) {
                    let _ = w.send(Ok((uid, at)));
                }
            }
            Ok(other) => {
                let e = ClusterError::Unavailable(format!("unexpected answer to RegisterTasks: {other:?}"));
                waiters.into_iter().for_each(|w| drop(w.send(Err(e.clone()))));
            }
            Err(e) => waiters.into_iter().for_each(|w| drop(w.send(Err(e.clone())))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meilisearch_time_formats() {
        assert_eq!(rfc3339(1_714_557_600_123), "2024-05-01T10:00:00.123Z");
        assert_eq!(duration(1234), "PT1.234S");
    }
}
