//! The Miroir task log: one cluster-wide task per client write, folded from node tasks.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{IndexUid, Millis, NodeId, TaskUid};

pub use miroir_meili::{TaskKind, TaskStatus};

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
    /// The node task's own details as the node reported them (counts of documents).
    #[serde(default)]
    pub details: Option<Value>,
    /// What this node task counts for in the Miroir task's document counts.
    #[serde(default)]
    pub share: Option<Share>,
}

/// A node task's part in the counts of its Miroir task: it was sent `sent` items (documents or
/// ids) and counts for `counted` of them, so that each item is counted on one copy only, however
/// many copies received it. A node's count is scaled by `counted / sent`: exact when the node
/// processed all or none of them, and when `counted` is 0 or `sent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Share {
    pub sent: u64,
    pub counted: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub uid: TaskUid,
    pub index_uid: Option<IndexUid>,
    /// Meilisearch's task type, e.g. `documentAdditionOrUpdate`.
    pub kind: TaskKind,
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
    /// A cancelation asked of the node tasks: the task shows `canceled` (by this task) once they
    /// all were, or finishes as they did if the cancelation came too late.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_requested_by: Option<TaskUid>,
}

/// What a gateway registers; `apply` assigns the uid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewTask {
    pub index_uid: Option<IndexUid>,
    pub kind: TaskKind,
    pub details: Value,
    /// `(node, node task uid)` for every node the write was enqueued on.
    pub node_tasks: Vec<(NodeId, u64)>,
    /// `Some` for work already finished when registered (coordinator-only changes, or a write
    /// Meilisearch would fail at processing, with its error). A task without node tasks and
    /// without this is registered succeeded: nothing is left to wait for.
    pub finished: Option<(TaskStatus, Option<Value>)>,
    /// `shares[i]` is the share of `node_tasks[i]` in the task's document counts; empty when the
    /// task counts nothing from nodes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shares: Vec<Share>,
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
    /// The node task's details (its document counts), once it finished.
    #[serde(default)]
    pub details: Option<Value>,
}

/// Filters of `GET /tasks` (and task cancel/delete), already validated. Dates are Unix millis;
/// `before` bounds are exclusive and `after` bounds exclusive, as in Meilisearch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskFilter {
    pub uids: Option<Vec<TaskUid>>,
    pub statuses: Option<Vec<TaskStatus>>,
    pub types: Option<Vec<TaskKind>>,
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
                t.index_uid.as_ref().is_some_and(|i| patterns.iter().any(|p| miroir_meili::keys::pattern_matches(p, i)))
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
            matching.filter(|t| from.is_none_or(|f| t.uid >= f)).take(limit.saturating_add(1)).collect()
        } else {
            matching.rev().filter(|t| from.is_none_or(|f| t.uid <= f)).take(limit.saturating_add(1)).collect()
        };
        let next = (page.len() > limit).then(|| page.pop().expect("longer than limit").uid);
        TaskPage { tasks: page.into_iter().cloned().collect(), total, next }
    }

    pub(crate) fn register(&mut self, new: &NewTask, at: Millis) -> TaskUid {
        let uid = self.next_uid;
        self.next_uid += 1;
        let nothing_to_wait_for = new.node_tasks.is_empty();
        let (status, error) = new.finished.clone().unwrap_or(if nothing_to_wait_for {
            (TaskStatus::Succeeded, None)
        } else {
            (TaskStatus::Enqueued, None)
        });
        let done = status.is_finished();
        let mut task = Task {
            uid,
            index_uid: new.index_uid.clone(),
            kind: new.kind,
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
                .enumerate()
                .map(|(i, (node, uid))| NodeTask {
                    node: node.clone(),
                    uid: *uid,
                    status: TaskStatus::Enqueued,
                    error: None,
                    started_at: None,
                    finished_at: None,
                    details: None,
                    share: new.shares.get(i).copied(),
                })
                .collect(),
            notified: false,
            cancel_requested_by: None,
        };
        if done {
            fill_details(&mut task);
        }
        self.tasks.insert(uid, task);
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
        if r.details.is_some() {
            nt.details.clone_from(&r.details);
        }
        fold(task);
    }

    /// Cancels unfinished tasks among `uids`. A task with node tasks is only marked: its nodes are
    /// asked to cancel them, and it ends as they do.
    pub(crate) fn cancel(&mut self, uids: &[TaskUid], by: TaskUid, at: Millis) {
        for uid in uids {
            if let Some(t) = self.tasks.get_mut(uid) {
                if !t.status.is_finished() && !t.node_tasks.is_empty() {
                    t.cancel_requested_by.get_or_insert(by);
                } else if !t.status.is_finished() {
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
        // A node lists Miroir's shard field among the attributes it filters on; the client's
        // index does not have it (a deletion by filter on an attribute that is not filterable).
        if let Some(m) = task.error.as_mut().and_then(|e| e.get_mut("message")) {
            if let Some(text) = m.as_str() {
                *m = Value::from(crate::edit::without_shard_field(text));
            }
        }
        let function = task.details.get("function").and_then(Value::as_str);
        if let (true, Some(error), Some(function)) =
            (task.kind == TaskKind::DocumentEdition, task.error.as_mut(), function)
        {
            crate::edit::unwrap_error(error, function);
        }
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
        // A mix of succeeded and canceled: the write did land on some copies, so the cancelation
        // was not effective; the copies that missed it are marked stale (`cancel::stale_diverged`).
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
    if task.status == TaskStatus::Canceled {
        task.canceled_by = task.canceled_by.or(task.cancel_requested_by);
    }
    if task.status.is_finished() {
        let floor = task.started_at.unwrap_or(task.enqueued_at);
        task.finished_at = nts.iter().filter_map(|n| n.finished_at).max().map(|f| f.max(floor));
        fill_details(task);
    }
}

/// The document counts Meilisearch fills in when a task finishes, derived from the node tasks:
/// each count is summed over the node tasks that count for it (see [`Share`]), so every document
/// is counted on one copy however many copies hold it. A failed task processed nothing (0), as on
/// one node; a count no node task can tell stays `null`.
fn fill_details(task: &mut Task) {
    const COUNTS: [&str; 3] = ["indexedDocuments", "editedDocuments", "deletedDocuments"];
    let status = task.status;
    // `Details::to_failed`: a failed edition edited 0 documents and leaves its deletions unknown.
    let edition = task.kind == TaskKind::DocumentEdition;
    let summed: Vec<(&str, Option<u64>)> = COUNTS.iter().map(|key| (*key, sum_count(&task.node_tasks, key))).collect();
    let Some(details) = task.details.as_object_mut() else { return };
    for (key, sum) in summed {
        if !details.get(key).is_some_and(Value::is_null) {
            continue;
        }
        let value = match (status, sum) {
            (TaskStatus::Failed, _) if edition && key == "deletedDocuments" => None,
            (TaskStatus::Failed, _) => Some(0),
            (_, Some(n)) => Some(n),
            (_, None) => None,
        };
        if let Some(n) = value {
            details.insert(key.into(), Value::from(n));
        }
    }
}

/// `key` summed over the node tasks' shares, if every node task that counts reported it. A task
/// with no node task at all counts 0: it touched no document.
fn sum_count(nts: &[NodeTask], key: &str) -> Option<u64> {
    if nts.is_empty() {
        return Some(0);
    }
    let counting: Vec<&NodeTask> = nts.iter().filter(|n| n.share.is_some_and(|s| s.counted > 0)).collect();
    if counting.is_empty() {
        return None;
    }
    counting.iter().try_fold(0u64, |acc, n| {
        let share = n.share.expect("filtered");
        let reported = n.details.as_ref()?.get(key)?.as_u64()?;
        let scaled = u128::from(reported) * u128::from(share.counted) / u128::from(share.sent.max(1));
        Some(acc + scaled as u64)
    })
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
                kind: TaskKind::DocumentAdditionOrUpdate,
                details: json!({}),
                node_tasks: vec![("n".into(), i)],
                finished: (i % 3 == 0).then_some((TaskStatus::Succeeded, None)),
                shares: vec![],
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

    /// Task cancelation and deletion ask for every match (`usize::MAX`): no overflow.
    #[test]
    fn an_unbounded_page_is_every_match() {
        let log = log(5);
        let p = log.query(&TaskFilter::default(), None, usize::MAX, false);
        assert_eq!((p.tasks.len(), p.total, p.next), (5, 5, None));
        let p = log.query(&TaskFilter::default(), None, usize::MAX, true);
        assert_eq!(p.tasks.len(), 5);
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
            kind: TaskKind::TaskDeletion,
            details: json!({}),
            node_tasks: vec![],
            finished: None,
            shares: vec![],
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
            kind: TaskKind::DocumentAdditionOrUpdate,
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
                    details: Some(json!({"receivedDocuments": 2, "indexedDocuments": 2})),
                    share: Some(Share { sent: 2, counted: 2 }),
                },
                NodeTask {
                    node: "b".into(),
                    uid: 3,
                    status: TaskStatus::Succeeded,
                    error: None,
                    started_at: Some(1010),
                    finished_at: Some(1020),
                    // Holds a copy of one of a's documents: only its own one counts.
                    details: Some(json!({"receivedDocuments": 2, "indexedDocuments": 2})),
                    share: Some(Share { sent: 2, counted: 1 }),
                },
            ],
            notified: false,
            cancel_requested_by: None,
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

        // A node's list of filterable attributes is shown without Miroir's shard field.
        let mut t = addition(2000);
        t.node_tasks[1].status = TaskStatus::Failed;
        t.node_tasks[1].error = Some(json!({"code": "invalid_document_filter", "message":
            "Attribute `x` is not filterable. Available filterable attribute patterns are: `genre, _miroir_shard`.\n1:2 x = 1"}));
        fold(&mut t);
        assert_eq!(
            t.error.unwrap()["message"],
            "Attribute `x` is not filterable. Available filterable attribute patterns are: `genre`.\n1:2 x = 1"
        );

        // Without a report of the count, the cluster does not make one up.
        let mut t = addition(1000);
        t.node_tasks[1].details = None;
        fold(&mut t);
        assert_eq!(t.details["indexedDocuments"], Value::Null);
    }

    #[test]
    fn deleted_documents_are_counted_once_per_copy_set() {
        let mut t = addition(1000);
        t.kind = TaskKind::DocumentDeletion;
        t.details = json!({"providedIds": 5, "deletedDocuments": null});
        // a counts the ids of its shards, b received copies of them and counts none.
        t.node_tasks[0].details = Some(json!({"providedIds": 3, "deletedDocuments": 3}));
        t.node_tasks[0].share = Some(Share { sent: 3, counted: 3 });
        t.node_tasks[1].details = Some(json!({"providedIds": 3, "deletedDocuments": 3}));
        t.node_tasks[1].share = Some(Share { sent: 3, counted: 0 });
        fold(&mut t);
        assert_eq!(t.details["deletedDocuments"], 3, "not 6: b holds copies of the same documents");
    }

    #[test]
    fn an_edition_counts_each_shard_once_and_a_failed_one_shows_what_meilisearch_shows() {
        let edition = || {
            let mut t = addition(1000);
            t.kind = TaskKind::DocumentEdition;
            t.details = json!({"editedDocuments": null, "deletedDocuments": null, "originalFilter": null, "context": null, "function": "1"});
            t.node_tasks[0].details = Some(json!({"editedDocuments": 4, "deletedDocuments": 4}));
            t.node_tasks[0].share = Some(Share { sent: 1, counted: 1 });
            t.node_tasks[1].details = Some(json!({"editedDocuments": 4, "deletedDocuments": 4}));
            t.node_tasks[1].share = Some(Share { sent: 1, counted: 0 });
            t
        };
        let mut t = edition();
        fold(&mut t);
        assert_eq!((t.details["editedDocuments"].clone(), t.details["deletedDocuments"].clone()), (json!(4), json!(4)));
        let mut t = edition();
        t.node_tasks[1].status = TaskStatus::Failed;
        t.node_tasks[1].error =
            Some(json!({"message": "boom (line 2, position 3)\nin call to function 'eval' (line 3, position 40)"}));
        fold(&mut t);
        assert_eq!(t.status, TaskStatus::Failed);
        assert_eq!(
            (t.details["editedDocuments"].clone(), t.details["deletedDocuments"].clone()),
            (json!(0), Value::Null)
        );
        assert_eq!(t.error.unwrap()["message"], "boom (line 1, position 3)");
    }

    #[test]
    fn a_task_with_nothing_to_wait_for_is_registered_finished() {
        let mut log = TaskLog::default();
        let new = |finished| NewTask {
            index_uid: Some("i".into()),
            kind: TaskKind::DocumentDeletion,
            details: json!({"providedIds": 2, "deletedDocuments": null}),
            node_tasks: vec![],
            finished,
            shares: vec![],
        };
        let uid = log.register(&new(None), 10);
        let t = log.get(uid).unwrap();
        assert_eq!((t.status, t.started_at, t.finished_at), (TaskStatus::Succeeded, Some(10), Some(10)));
        assert_eq!(t.details["deletedDocuments"], 0);
        let error = json!({"code": "index_not_found"});
        let uid = log.register(&new(Some((TaskStatus::Failed, Some(error.clone())))), 11);
        let t = log.get(uid).unwrap();
        assert_eq!((t.status, t.error.as_ref()), (TaskStatus::Failed, Some(&error)));
        assert_eq!(t.details["deletedDocuments"], 0);
    }
}
