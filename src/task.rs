//! The Miroir task log: one cluster-wide task per client write, folded from node tasks.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{IndexUid, Millis, NodeId, TaskUid};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TaskStatus {
    Enqueued,
    Processing,
    Succeeded,
    Failed,
    Canceled,
}

impl TaskStatus {
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Canceled)
    }
}

/// One node's share of a Miroir task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeTask {
    pub node: NodeId,
    /// The task uid the node itself assigned.
    pub uid: u64,
    pub status: TaskStatus,
    pub error: Option<Value>,
    pub started_at: Option<Millis>,
    pub finished_at: Option<Millis>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub uid: TaskUid,
    pub index_uid: Option<IndexUid>,
    /// Meilisearch's task type, e.g. `documentAdditionOrUpdate`.
    pub kind: String,
    pub status: TaskStatus,
    pub details: Value,
    pub error: Option<Value>,
    pub canceled_by: Option<TaskUid>,
    pub enqueued_at: Millis,
    pub started_at: Option<Millis>,
    pub finished_at: Option<Millis>,
    pub node_tasks: Vec<NodeTask>,
    /// Finished and already sent to the webhooks.
    #[serde(default)]
    pub notified: bool,
}

/// What a gateway registers; `apply` assigns the uid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewTask {
    pub index_uid: Option<IndexUid>,
    pub kind: String,
    pub details: Value,
    /// `(node, node task uid)` for every node the write was enqueued on.
    pub node_tasks: Vec<(NodeId, u64)>,
    /// `Some` for work already finished when registered (coordinator-only changes).
    pub finished: Option<(TaskStatus, Option<Value>)>,
}

/// A node task's state as the task tracker observed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeTaskReport {
    pub task: TaskUid,
    pub node: NodeId,
    /// A write may enqueue several tasks on one node (index creation, then its settings).
    pub node_task: u64,
    pub status: TaskStatus,
    pub error: Option<Value>,
    pub started_at: Option<Millis>,
    pub finished_at: Option<Millis>,
}

/// Filters of `GET /tasks` (and task cancel/delete), already validated. Dates are Unix millis;
/// `before` bounds are exclusive and `after` bounds exclusive, as in Meilisearch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskFilter {
    pub uids: Option<Vec<TaskUid>>,
    pub statuses: Option<Vec<TaskStatus>>,
    pub types: Option<Vec<String>>,
    pub index_uids: Option<Vec<IndexUid>>,
    pub canceled_by: Option<Vec<TaskUid>>,
    pub before_enqueued_at: Option<Millis>,
    pub after_enqueued_at: Option<Millis>,
    pub before_started_at: Option<Millis>,
    pub after_started_at: Option<Millis>,
    pub before_finished_at: Option<Millis>,
    pub after_finished_at: Option<Millis>,
    /// Index patterns of a restricted API key: only tasks of an index they match are visible (so
    /// no index-less task), as Meilisearch hides other indexes' tasks from such keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorized_indexes: Option<Vec<String>>,
}

impl TaskFilter {
    pub fn matches(&self, t: &Task) -> bool {
        fn any<T: PartialEq>(set: &Option<Vec<T>>, v: &T) -> bool {
            set.as_ref().is_none_or(|s| s.contains(v))
        }
        fn before(bound: Option<Millis>, v: Option<Millis>) -> bool {
            bound.is_none_or(|b| v.is_some_and(|v| v < b))
        }
        fn after(bound: Option<Millis>, v: Option<Millis>) -> bool {
            bound.is_none_or(|b| v.is_some_and(|v| v > b))
        }
        any(&self.uids, &t.uid)
            && any(&self.statuses, &t.status)
            && any(&self.types, &t.kind)
            && self.index_uids.as_ref().is_none_or(|s| t.index_uid.as_ref().is_some_and(|i| s.contains(i)))
            && self.canceled_by.as_ref().is_none_or(|s| t.canceled_by.is_some_and(|c| s.contains(&c)))
            && before(self.before_enqueued_at, Some(t.enqueued_at))
            && after(self.after_enqueued_at, Some(t.enqueued_at))
            && before(self.before_started_at, t.started_at)
            && after(self.after_started_at, t.started_at)
            && before(self.before_finished_at, t.finished_at)
            && after(self.after_finished_at, t.finished_at)
            && self.authorized_indexes.as_ref().is_none_or(|patterns| {
                t.index_uid.as_ref().is_some_and(|i| patterns.iter().any(|p| crate::keys::pattern_matches(p, i)))
            })
    }
}

/// One page of tasks: newest first unless reversed, `next` is the `from` of the following page.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskPage {
    pub tasks: Vec<Task>,
    pub total: u64,
    pub next: Option<TaskUid>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskLog {
    pub tasks: BTreeMap<TaskUid, Task>,
    pub next_uid: TaskUid,
}

impl TaskLog {
    pub fn get(&self, uid: TaskUid) -> Option<&Task> {
        self.tasks.get(&uid)
    }

    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Meilisearch's `GET /tasks` paging: `from` is the first uid of the page (inclusive), newest
    /// first unless `reverse`; `total` counts every match.
    pub fn query(&self, filter: &TaskFilter, from: Option<TaskUid>, limit: usize, reverse: bool) -> TaskPage {
        let matching = self.tasks.values().filter(|t| filter.matches(t));
        let total = matching.clone().count() as u64;
        let mut page: Vec<&Task> = if reverse {
            matching.filter(|t| from.is_none_or(|f| t.uid >= f)).take(limit + 1).collect()
        } else {
            matching.rev().filter(|t| from.is_none_or(|f| t.uid <= f)).take(limit + 1).collect()
        };
        let next = (page.len() > limit).then(|| page.pop().expect("longer than limit").uid);
        TaskPage { tasks: page.into_iter().cloned().collect(), total, next }
    }

    pub(crate) fn register(&mut self, new: &NewTask, at: Millis) -> TaskUid {
        let uid = self.next_uid;
        self.next_uid += 1;
        let (status, error) = new.finished.clone().unwrap_or((TaskStatus::Enqueued, None));
        let done = status.is_finished();
        self.tasks.insert(
            uid,
            Task {
                uid,
                index_uid: new.index_uid.clone(),
                kind: new.kind.clone(),
                status,
                details: new.details.clone(),
                error,
                canceled_by: None,
                enqueued_at: at,
                started_at: done.then_some(at),
                finished_at: done.then_some(at),
                node_tasks: new
                    .node_tasks
                    .iter()
                    .map(|(node, uid)| NodeTask {
                        node: node.clone(),
                        uid: *uid,
                        status: TaskStatus::Enqueued,
                        error: None,
                        started_at: None,
                        finished_at: None,
                    })
                    .collect(),
                notified: false,
            },
        );
        uid
    }

    /// Applies a node report and refolds the task. Reports for tasks that were compacted or
    /// deleted, or for finished tasks, are ignored: the tracker may report late or twice.
    pub(crate) fn report(&mut self, r: &NodeTaskReport) {
        let Some(task) = self.tasks.get_mut(&r.task) else { return };
        if task.status.is_finished() {
            return;
        }
        let Some(nt) = task.node_tasks.iter_mut().find(|nt| nt.node == r.node && nt.uid == r.node_task) else { return };
        nt.status = r.status;
        nt.error.clone_from(&r.error);
        nt.started_at = r.started_at.or(nt.started_at);
        nt.finished_at = r.finished_at.or(nt.finished_at);
        fold(task);
    }

    pub(crate) fn cancel(&mut self, uids: &[TaskUid], by: TaskUid, at: Millis) {
        for uid in uids {
            if let Some(t) = self.tasks.get_mut(uid) {
                if !t.status.is_finished() {
                    t.status = TaskStatus::Canceled;
                    t.canceled_by = Some(by);
                    t.started_at = t.started_at.or(Some(at));
                    t.finished_at = Some(at);
                }
            }
        }
    }

    /// Deletes finished tasks among `uids`; unfinished ones stay, as in Meilisearch.
    pub(crate) fn delete(&mut self, uids: &[TaskUid]) {
        for uid in uids {
            if self.tasks.get(uid).is_some_and(|t| t.status.is_finished()) {
                self.tasks.remove(uid);
            }
        }
    }

    /// Drops the oldest finished tasks until at most `retain` tasks remain (or none finished is left).
    pub(crate) fn compact(&mut self, retain: usize) {
        let mut excess = self.tasks.len().saturating_sub(retain);
        if excess == 0 {
            return;
        }
        let victims: Vec<TaskUid> =
            self.tasks.values().filter(|t| t.status.is_finished()).map(|t| t.uid).take(excess).collect();
        for uid in victims {
            self.tasks.remove(&uid);
            excess -= 1;
        }
        debug_assert!(excess == 0 || self.tasks.values().all(|t| !t.status.is_finished()));
    }
}

/// Miroir task status from its node tasks: failed if any owner failed (with that error),
/// succeeded when all did, canceled when all were canceled, processing once any started.
fn fold(task: &mut Task) {
    let nts = &task.node_tasks;
    if let Some(failed) = nts.iter().find(|n| n.status == TaskStatus::Failed) {
        task.error.clone_from(&failed.error);
    }
    let all = |s: TaskStatus| nts.iter().all(|n| n.status == s);
    let all_finished = nts.iter().all(|n| n.status.is_finished());
    task.status = if all_finished && task.error.is_some() {
        TaskStatus::Failed
    } else if all(TaskStatus::Succeeded) {
        TaskStatus::Succeeded
    } else if all(TaskStatus::Canceled) {
        TaskStatus::Canceled
    } else if all_finished {
        // A mix of succeeded and canceled: the write did land on some copies.
        TaskStatus::Succeeded
    } else if nts.iter().any(|n| n.status != TaskStatus::Enqueued) {
        TaskStatus::Processing
    } else {
        TaskStatus::Enqueued
    };
    // Node times come from node clocks and a node may start before the gateway registered the
    // task: clamp so enqueuedAt <= startedAt <= finishedAt always holds, as clients assume.
    if task.status != TaskStatus::Enqueued {
        let started = nts.iter().filter_map(|n| n.started_at).min().or(task.started_at);
        task.started_at = started.map(|s| s.max(task.enqueued_at));
    }
    if task.status.is_finished() {
        let floor = task.started_at.unwrap_or(task.enqueued_at);
        task.finished_at = nts.iter().filter_map(|n| n.finished_at).max().map(|f| f.max(floor));
        fill_details(task);
    }
}

/// Counts Meilisearch fills in when a task finishes and the cluster knows exactly: a document
/// addition that succeeded indexed every document it received (the gateway refuses a batch with any
/// invalid document before sending it), and a failed one indexed none.
fn fill_details(task: &mut Task) {
    let Some(details) = task.details.as_object_mut() else { return };
    if details.get("indexedDocuments").is_some_and(Value::is_null) {
        let indexed = match task.status {
            TaskStatus::Succeeded => details.get("receivedDocuments").cloned().unwrap_or(Value::Null),
            _ => Value::from(0),
        };
        details.insert("indexedDocuments".into(), indexed);
    }
}

/// A read of the task log served by the coordinator (`QueryTasks`), so a gateway asks for one task
/// or one page instead of the whole replicated state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum TaskQuery {
    One { uid: TaskUid },
    Page { filter: Box<TaskFilter>, from: Option<TaskUid>, limit: usize, reverse: bool },
}

impl TaskQuery {
    /// The answer as JSON: `Option<Task>` for `One`, `TaskPage` for `Page`.
    pub fn run(&self, log: &TaskLog) -> serde_json::Result<Vec<u8>> {
        match self {
            TaskQuery::One { uid } => serde_json::to_vec(&log.get(*uid)),
            TaskQuery::Page { filter, from, limit, reverse } => {
                serde_json::to_vec(&log.query(filter, *from, *limit, *reverse))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn log(n: u64) -> TaskLog {
        let mut log = TaskLog::default();
        for i in 0..n {
            let new = NewTask {
                index_uid: Some(if i % 2 == 0 { "even" } else { "odd" }.into()),
                kind: "documentAdditionOrUpdate".into(),
                details: json!({}),
                node_tasks: vec![],
                finished: (i % 3 == 0).then_some((TaskStatus::Succeeded, None)),
            };
            log.register(&new, 1000 + i);
        }
        log
    }

    #[test]
    fn pages_newest_first_with_next() {
        let log = log(10);
        let all = TaskFilter::default();
        let p = log.query(&all, None, 4, false);
        assert_eq!(p.tasks.iter().map(|t| t.uid).collect::<Vec<_>>(), [9, 8, 7, 6]);
        assert_eq!((p.total, p.next), (10, Some(5)));
        let p = log.query(&all, Some(5), 4, false);
        assert_eq!(p.tasks.iter().map(|t| t.uid).collect::<Vec<_>>(), [5, 4, 3, 2]);
        let p = log.query(&all, Some(1), 4, false);
        assert_eq!((p.tasks.len(), p.next), (2, None));
        let p = log.query(&all, None, 3, true);
        assert_eq!(p.tasks.iter().map(|t| t.uid).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(p.next, Some(3));
    }

    #[test]
    fn filters_combine() {
        let log = log(10);
        let f = TaskFilter {
            index_uids: Some(vec!["even".into()]),
            statuses: Some(vec![TaskStatus::Succeeded]),
            after_enqueued_at: Some(1000),
            ..TaskFilter::default()
        };
        let p = log.query(&f, None, 20, false);
        assert_eq!(p.tasks.iter().map(|t| t.uid).collect::<Vec<_>>(), [6]);
        assert_eq!(p.total, 1);
    }

    #[test]
    fn a_restricted_key_sees_only_its_indexes_tasks() {
        let mut log = log(4);
        let global = NewTask {
            index_uid: None,
            kind: "taskDeletion".into(),
            details: json!({}),
            node_tasks: vec![],
            finished: None,
        };
        log.register(&global, 2000);
        let f = TaskFilter { authorized_indexes: Some(vec!["ev*".into()]), ..TaskFilter::default() };
        let p = log.query(&f, None, 20, false);
        assert_eq!(p.tasks.iter().map(|t| t.uid).collect::<Vec<_>>(), [2, 0]);
        let all = TaskFilter { authorized_indexes: None, ..TaskFilter::default() };
        assert_eq!(log.query(&all, None, 20, false).total, 5, "an unrestricted key sees index-less tasks");
    }

    #[test]
    fn task_query_answers_one_task_or_one_page_as_json() {
        let log = log(5);
        let one: Option<Task> = serde_json::from_slice(&TaskQuery::One { uid: 3 }.run(&log).unwrap()).unwrap();
        assert_eq!(one.as_ref(), log.get(3));
        let none: Option<Task> = serde_json::from_slice(&TaskQuery::One { uid: 99 }.run(&log).unwrap()).unwrap();
        assert!(none.is_none());
        let q = TaskQuery::Page { filter: Box::default(), from: None, limit: 2, reverse: false };
        let q: TaskQuery = serde_json::from_slice(&serde_json::to_vec(&q).unwrap()).unwrap();
        let page: TaskPage = serde_json::from_slice(&q.run(&log).unwrap()).unwrap();
        assert_eq!(page, log.query(&TaskFilter::default(), None, 2, false));
    }

    fn addition(enqueued_at: Millis) -> Task {
        Task {
            uid: 1,
            index_uid: Some("i".into()),
            kind: "documentAdditionOrUpdate".into(),
            status: TaskStatus::Enqueued,
            details: json!({"receivedDocuments": 3, "indexedDocuments": null}),
            error: None,
            canceled_by: None,
            enqueued_at,
            started_at: None,
            finished_at: None,
            node_tasks: vec![
                NodeTask {
                    node: "a".into(),
                    uid: 7,
                    status: TaskStatus::Succeeded,
                    error: None,
                    started_at: Some(900),
                    finished_at: Some(950),
                },
                NodeTask {
                    node: "b".into(),
                    uid: 3,
                    status: TaskStatus::Succeeded,
                    error: None,
                    started_at: Some(1010),
                    finished_at: Some(1020),
                },
            ],
            notified: false,
        }
    }

    #[test]
    fn finished_task_times_are_ordered_and_counts_filled() {
        let mut t = addition(1000);
        fold(&mut t);
        assert_eq!(t.status, TaskStatus::Succeeded);
        assert_eq!((t.started_at, t.finished_at), (Some(1000), Some(1020)));
        assert_eq!(t.details["indexedDocuments"], 3);

        let mut t = addition(2000);
        t.node_tasks[1].status = TaskStatus::Failed;
        t.node_tasks[1].error = Some(json!({"code": "internal"}));
        fold(&mut t);
        assert_eq!(t.status, TaskStatus::Failed);
        assert_eq!((t.started_at, t.finished_at), (Some(2000), Some(2000)));
        assert_eq!(t.details["indexedDocuments"], 0);
    }
}
