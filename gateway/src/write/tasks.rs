//! Miroir tasks in Meilisearch's shapes, and group commit of task registrations.

use std::sync::Arc;

use miroir::command::{Command, Response};
use miroir::ids::{Millis, TaskUid};
use miroir::task::{NewTask, Task};
pub use miroir::task_view::{batch_view, rfc3339, view};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use crate::cluster::{Cluster, ClusterError};

/// Most registrations one Raft entry carries.
const MAX_BATCH: usize = 512;

pub fn now_millis() -> Millis {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as Millis)
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
        assert_eq!(miroir::task_view::duration(1234), "PT1.234S");
    }
}
