//! The dev node's engine: indexes, documents, settings, search and the task queue, with no I/O
//! and no clock of its own (times are passed in), so a simulation can drive it directly.

pub mod browse;
pub mod edit;
pub mod evaluate;
pub mod facets;
pub mod features;
pub mod federated;
pub mod federated_facets;
pub mod fields;
pub mod filter;
pub mod payload;
pub mod pins;
pub mod search;
pub mod settings;
pub mod similar;
pub mod swap;
pub mod task_query;
pub mod tasks;
pub mod vectors;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use crate::error::{Code, DevResult, MeiliError};
use tasks::{Status, Task, TaskKind};

pub type Doc = Map<String, Value>;

#[derive(Debug, Clone)]
pub struct Index {
    pub uid: String,
    pub primary_key: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// Only what was set; the view is the defaults overlaid with it.
    pub settings_set: Value,
    /// Internal id → document. Internal ids follow first insertion and survive replacement, which
    /// is Meilisearch's tie-break order.
    pub docs: BTreeMap<u64, Doc>,
    pub ids: HashMap<String, u64>,
    /// Every field path a document brought, kept after its documents go (milli's fields ids map).
    pub fields: BTreeSet<String>,
    next_internal: u64,
}

impl Index {
    fn new(uid: &str, primary_key: Option<String>, now: OffsetDateTime) -> Index {
        Index {
            uid: uid.to_string(),
            primary_key,
            created_at: now,
            updated_at: now,
            settings_set: json!({}),
            docs: BTreeMap::new(),
            ids: HashMap::new(),
            fields: BTreeSet::new(),
            next_internal: 0,
        }
    }

    pub fn settings(&self) -> Value {
        let empty = Map::new();
        let mut full = miroir_meili::settings::merge_settings(
            &settings::defaults(),
            self.settings_set.as_object().unwrap_or(&empty),
        );
        // A set facet order map replaces the default one whole; reading it back adds `*: alpha`
        // unless the map has its own `*` (milli's `OrderByMap` deserializer).
        if let Some(order) = full.pointer_mut("/faceting/sortFacetValuesBy").and_then(Value::as_object_mut) {
            order.entry("*").or_insert_with(|| json!("alpha"));
        }
        full
    }

    pub fn view(&self) -> Value {
        json!({
            "uid": self.uid,
            "createdAt": fmt(self.created_at),
            "updatedAt": fmt(self.updated_at),
            "primaryKey": self.primary_key,
        })
    }

    pub fn stats(&self) -> Value {
        let mut dist: BTreeMap<String, u64> = BTreeMap::new();
        for d in self.docs.values() {
            for k in d.keys() {
                *dist.entry(k.clone()).or_default() += 1;
            }
        }
        let raw = self.raw_size();
        json!({
            "numberOfDocuments": self.docs.len(),
            "rawDocumentDbSize": raw,
            "avgDocumentSize": raw.checked_div(self.docs.len() as u64).unwrap_or(0),
            "isIndexing": false,
            "numberOfEmbeddings": 0,
            "numberOfEmbeddedDocuments": 0,
            "fieldDistribution": dist,
        })
    }

    /// The documents' size as JSON: what this in-memory node stores.
    pub fn raw_size(&self) -> u64 {
        self.docs.values().map(|d| serde_json::to_vec(d).map_or(0, |b| b.len() as u64)).sum()
    }

    pub fn get(&self, id: &str) -> Option<&Doc> {
        self.ids.get(id).and_then(|i| self.docs.get(i))
    }
}

pub fn fmt(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// A write waiting in the queue.
#[derive(Debug, Clone)]
pub enum Op {
    CreateIndex {
        primary_key: Option<String>,
    },
    UpdateIndex {
        primary_key: Option<String>,
        /// A rename (`uid` in the body): the old and the new uid.
        rename: Option<(String, String)>,
    },
    /// `POST /swap-indexes`: a task of no index.
    Swap(Vec<swap::Swap>),
    /// `POST /tasks/cancel`: the tasks matched when it was enqueued, and the query string.
    CancelTasks(Vec<u64>, String),
    /// `DELETE /tasks`, likewise.
    DeleteTasks(Vec<u64>, String),
    DeleteIndex,
    AddDocuments {
        docs: Vec<Doc>,
        primary_key: Option<String>,
        replace: bool,
    },
    DeleteIds(Vec<Value>),
    DeleteFilter(Value),
    /// `POST /documents/edit`, checked when enqueued.
    EditDocuments(edit::Edition),
    Clear,
    Settings(Map<String, Value>),
    /// Nothing to reclaim in memory: the task only reports the index's (unchanged) size.
    Compact,
    /// `PATCH /dynamic-search-rules/{uid}`: a task of Meilisearch's hidden rules index.
    DsrUpdate(String, Box<miroir_meili::search_rules::RuleUpdate>),
    /// `DELETE /dynamic-search-rules/{uid}`.
    DsrDelete(String),
    /// `DELETE /dynamic-search-rules`.
    DsrClear,
}

impl Op {
    fn kind(&self) -> TaskKind {
        match self {
            Op::CreateIndex { .. } => TaskKind::IndexCreation,
            Op::UpdateIndex { .. } => TaskKind::IndexUpdate,
            Op::Swap(_) => TaskKind::IndexSwap,
            Op::CancelTasks(..) => TaskKind::TaskCancelation,
            Op::DeleteTasks(..) => TaskKind::TaskDeletion,
            Op::DeleteIndex => TaskKind::IndexDeletion,
            Op::AddDocuments { .. } => TaskKind::DocumentAdditionOrUpdate,
            Op::DeleteIds(_) | Op::DeleteFilter(_) | Op::Clear => TaskKind::DocumentDeletion,
            Op::EditDocuments(_) => TaskKind::DocumentEdition,
            Op::Settings(_) => TaskKind::SettingsUpdate,
            Op::Compact => TaskKind::IndexCompaction,
            Op::DsrUpdate(..) | Op::DsrDelete(_) => TaskKind::DsrUpdate,
            Op::DsrClear => TaskKind::DsrClear,
        }
    }

    /// Details as shown while the task waits: counts that are only known after processing are null.
    fn details(&self) -> Value {
        match self {
            Op::CreateIndex { primary_key } | Op::UpdateIndex { primary_key, rename: None } => {
                json!({"primaryKey": primary_key})
            }
            Op::UpdateIndex { primary_key, rename: Some((old, new)) } => {
                json!({"primaryKey": primary_key, "oldIndexUid": old, "newIndexUid": new})
            }
            Op::Swap(swaps) => swap::details(swaps),
            Op::CancelTasks(m, f) => json!({"matchedTasks": m.len(), "canceledTasks": null, "originalFilter": f}),
            Op::DeleteTasks(m, f) => json!({"matchedTasks": m.len(), "deletedTasks": null, "originalFilter": f}),
            Op::DeleteIndex => json!({"deletedDocuments": null}),
            Op::AddDocuments { docs, .. } => json!({"receivedDocuments": docs.len(), "indexedDocuments": null}),
            Op::DeleteIds(ids) => json!({"providedIds": ids.len(), "deletedDocuments": null, "originalFilter": null}),
            Op::DeleteFilter(f) => json!({"providedIds": 0, "deletedDocuments": null, "originalFilter": f.to_string()}),
            Op::Clear => json!({"deletedDocuments": null}),
            Op::EditDocuments(e) => edit::details(e),
            Op::Settings(p) => miroir_meili::settings::task_details(p),
            Op::Compact => json!({"preCompactionSize": null, "postCompactionSize": null}),
            Op::DsrUpdate(_, u) => json!({"rule": u.view(), "updatedRules": 1}),
            Op::DsrDelete(_) => json!({"updatedRules": 1}),
            Op::DsrClear => json!({"deletedDocuments": null}),
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct Engine {
    pub indexes: BTreeMap<String, Index>,
    /// Experimental features switched on or off (`PATCH /experimental-features`); absent = off.
    pub features: BTreeMap<String, bool>,
    /// Dynamic search rules (`/dynamic-search-rules`), applied by searches while the
    /// `dynamicSearchRules` feature is on.
    pub search_rules: miroir_meili::search_rules::SearchRules,
    pub tasks: Vec<Task>,
    /// Tasks deleted by `DELETE /tasks` (the queue stays indexed by uid).
    pub deleted: std::collections::BTreeSet<u64>,
    /// Test hook (`/_devnode/faults` `paused`): only task cancelations and deletions are processed.
    pub paused: bool,
    pending: Vec<(u64, String, Op)>,
    next_batch: u64,
}

pub fn check_index_uid(uid: &str) -> DevResult<()> {
    if uid.is_empty() || uid.len() > 400 || !uid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(MeiliError::new(Code::INVALID_INDEX_UID, format!("`{uid}` is not a valid index uid. Index uid can be an integer or a string containing only alphanumeric characters, hyphens (-) and underscores (_), and can not be more than 400 bytes.")));
    }
    Ok(())
}

impl Engine {
    pub fn index(&self, uid: &str) -> DevResult<&Index> {
        self.indexes.get(uid).ok_or_else(|| MeiliError::index_not_found(uid))
    }

    /// Puts a write in the queue and returns its summarized view (the 202 body).
    pub fn enqueue(&mut self, index_uid: &str, op: Op, now: OffsetDateTime) -> Value {
        self.enqueue_with_metadata(index_uid, op, None, now)
    }

    /// `customMetadata` is kept on the task and shown by both task views when given.
    pub fn enqueue_with_metadata(
        &mut self,
        index_uid: &str,
        op: Op,
        custom_metadata: Option<String>,
        now: OffsetDateTime,
    ) -> Value {
        let uid = self.tasks.len() as u64;
        let task = Task {
            custom_metadata,
            canceled_by: None,
            uid,
            batch_uid: None,
            index_uid: Some(index_uid.to_string()),
            status: Status::Enqueued,
            kind: op.kind(),
            details: op.details(),
            error: None,
            enqueued_at: now,
            started_at: None,
            finished_at: None,
        };
        let summary = task.summary();
        self.tasks.push(task);
        self.pending.push((uid, index_uid.to_string(), op));
        summary
    }

    /// Enqueues a task of no index (an index swap).
    pub fn enqueue_global(&mut self, op: Op, now: OffsetDateTime) -> Value {
        let summary = self.enqueue("", op, now);
        let uid = self.tasks.len() - 1;
        self.tasks[uid].index_uid = None;
        let mut summary = summary;
        summary["indexUid"] = Value::Null;
        summary
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Marks the oldest waiting task as processing; returns its uid.
    /// Task cancelations go first, then deletions, then the rest in order, as Meilisearch's
    /// scheduler picks them.
    pub fn start_next(&mut self, now: OffsetDateTime) -> Option<u64> {
        let pos = |f: fn(&Op) -> bool| self.pending.iter().position(|(_, _, op)| f(op));
        let at = pos(|op| matches!(op, Op::CancelTasks(..)))
            .or_else(|| pos(|op| matches!(op, Op::DeleteTasks(..))))
            .or_else(|| (!self.paused && !self.pending.is_empty()).then_some(0))?;
        let entry = self.pending.remove(at);
        self.pending.insert(0, entry);
        let uid = self.pending[0].0;
        let batch = self.next_batch;
        self.next_batch += 1;
        let t = &mut self.tasks[uid as usize];
        t.status = Status::Processing;
        t.started_at = Some(now);
        t.batch_uid = Some(batch);
        Some(uid)
    }

    /// Applies the task started by `start_next`.
    pub fn finish_next(&mut self, now: OffsetDateTime) {
        if self.pending.is_empty() {
            return;
        }
        let (uid, index_uid, op) = self.pending.remove(0);
        let mut details = self.tasks[uid as usize].details.clone();
        // Meilisearch's `Details::to_failed`: a failed deletion deleted 0 documents.
        let deletion = matches!(op, Op::DeleteIndex | Op::DeleteIds(_) | Op::DeleteFilter(_) | Op::Clear);
        let result = match op {
            Op::Swap(swaps) => self.apply_swaps(&swaps, uid, now),
            Op::DsrUpdate(rule, update) => {
                self.search_rules.put(&rule, &update, fmt(now));
                Ok(())
            }
            Op::DsrDelete(rule) => {
                self.search_rules.delete(&rule);
                Ok(())
            }
            Op::DsrClear => {
                details["deletedDocuments"] = json!(self.search_rules.clear());
                Ok(())
            }
            Op::CancelTasks(matched, _) => {
                details["canceledTasks"] = json!(self.cancel(&matched, uid, now));
                Ok(())
            }
            Op::DeleteTasks(matched, _) => {
                details["deletedTasks"] = json!(self.delete(&matched));
                Ok(())
            }
            op => self.apply(&index_uid, op, &mut details, now),
        };
        let t = &mut self.tasks[uid as usize];
        t.finished_at = Some(now);
        t.details = details;
        match result {
            Ok(()) => t.status = Status::Succeeded,
            Err(e) => {
                t.status = Status::Failed;
                t.error = Some(e);
                if deletion && t.details.get("deletedDocuments").is_some_and(Value::is_null) {
                    t.details["deletedDocuments"] = json!(0);
                }
            }
        }
    }

    /// The tasks `GET /tasks` shows: all but the deleted ones.
    pub fn visible_tasks(&self) -> Vec<Task> {
        self.tasks.iter().filter(|t| !self.deleted.contains(&t.uid)).cloned().collect()
    }

    /// Cancels the matched tasks still waiting; returns how many.
    fn cancel(&mut self, matched: &[u64], by: u64, now: OffsetDateTime) -> usize {
        let doomed: Vec<u64> = self
            .pending
            .iter()
            .map(|(u, ..)| *u)
            .filter(|u| matched.contains(u) && *u != by && self.tasks[*u as usize].status == Status::Enqueued)
            .collect();
        self.pending.retain(|(u, ..)| !doomed.contains(u));
        let batch = self.tasks[by as usize].batch_uid;
        for u in &doomed {
            let t = &mut self.tasks[*u as usize];
            t.status = Status::Canceled;
            t.canceled_by = Some(by);
            t.batch_uid = batch;
            t.started_at = Some(now);
            t.finished_at = Some(now);
            // `Details::to_failed`: what was not done is zero.
            if let Some(d) = t.details.as_object_mut() {
                for k in ["indexedDocuments", "deletedDocuments", "editedDocuments", "deletedTasks", "canceledTasks"] {
                    if d.get(k).is_some_and(Value::is_null) {
                        d.insert(k.into(), json!(0));
                    }
                }
            }
        }
        doomed.len()
    }

    /// Deletes the matched finished tasks; returns how many.
    fn delete(&mut self, matched: &[u64]) -> usize {
        let done: Vec<u64> = matched
            .iter()
            .copied()
            .filter(|u| !self.deleted.contains(u))
            .filter(|u| {
                self.tasks
                    .get(*u as usize)
                    .is_some_and(|t| matches!(t.status, Status::Succeeded | Status::Failed | Status::Canceled))
            })
            .collect();
        self.deleted.extend(&done);
        done.len()
    }

    /// Processes everything queued at once (for pure, clockless use).
    pub fn process_all(&mut self, now: OffsetDateTime) {
        while self.start_next(now).is_some() {
            self.finish_next(now);
        }
    }

    fn apply(&mut self, uid: &str, op: Op, details: &mut Value, now: OffsetDateTime) -> DevResult<()> {
        match op {
            Op::CreateIndex { primary_key } => {
                if self.indexes.contains_key(uid) {
                    return Err(MeiliError::new(Code::INDEX_ALREADY_EXISTS, format!("Index `{uid}` already exists.")));
                }
                self.indexes.insert(uid.to_string(), Index::new(uid, primary_key, now));
                Ok(())
            }
            Op::Swap(_)
            | Op::CancelTasks(..)
            | Op::DeleteTasks(..)
            | Op::DsrUpdate(..)
            | Op::DsrDelete(_)
            | Op::DsrClear => {
                unreachable!("queue-level operations are applied by finish_next")
            }
            Op::UpdateIndex { primary_key, rename } => {
                // A rename first, as Meilisearch does, then the primary key on the renamed index.
                let uid = match rename.map(|(_, new)| new) {
                    Some(new) if new != uid => {
                        self.index(uid)?;
                        if self.indexes.contains_key(&new) {
                            return Err(MeiliError::new(
                                Code::INDEX_ALREADY_EXISTS,
                                format!("Index `{new}` already exists."),
                            ));
                        }
                        let task = self
                            .tasks
                            .iter()
                            .rev()
                            .find(|t| t.status == tasks::Status::Processing)
                            .map_or(0, |t| t.uid);
                        self.swap_names(uid, &new, task);
                        new
                    }
                    _ => uid.to_string(),
                };
                let uid = uid.as_str();
                let idx = self.indexes.get_mut(uid).ok_or_else(|| MeiliError::index_not_found(uid))?;
                if primary_key.is_some() && primary_key != idx.primary_key {
                    if !idx.docs.is_empty() {
                        return Err(MeiliError::new(
                            Code::INDEX_PRIMARY_KEY_ALREADY_EXISTS,
                            format!(
                                "Index `{uid}`: Index already has a primary key: `{}`.",
                                idx.primary_key.clone().unwrap_or_default()
                            ),
                        ));
                    }
                    idx.primary_key = primary_key;
                }
                idx.updated_at = now;
                Ok(())
            }
            Op::DeleteIndex => {
                let idx = self.indexes.remove(uid).ok_or_else(|| MeiliError::index_not_found(uid))?;
                details["deletedDocuments"] = json!(idx.docs.len());
                Ok(())
            }
            Op::AddDocuments { docs, primary_key, replace } => {
                details["indexedDocuments"] = json!(0);
                let idx = self.indexes.entry(uid.to_string()).or_insert_with(|| Index::new(uid, None, now));
                let pk = resolve_primary_key(idx, primary_key, &docs)?;
                // The whole batch is checked before any document lands, like one Meilisearch task.
                let mut ids = Vec::with_capacity(docs.len());
                for d in &docs {
                    let v = filter::lookup(d, &pk).ok_or_else(|| {
                        MeiliError::new(
                            Code::MISSING_DOCUMENT_ID,
                            format!("Document doesn't have a `{pk}` attribute: `{}`.", Value::Object(d.clone())),
                        )
                    })?;
                    ids.push(payload::document_id(v).ok_or_else(|| payload::invalid_id(v))?);
                }
                vectors::check_user_provided(idx, uid, &docs, &ids, replace)?;
                idx.primary_key = Some(pk);
                let n = docs.len();
                for (id, mut d) in ids.into_iter().zip(docs) {
                    vectors::normalize(&mut d);
                    fields::record(&mut idx.fields, &d);
                    match idx.ids.get(&id) {
                        Some(internal) => {
                            let slot = idx.docs.entry(*internal).or_default();
                            if replace {
                                *slot = d;
                            } else {
                                for (k, v) in d {
                                    slot.insert(k, v);
                                }
                            }
                        }
                        None => {
                            let internal = idx.next_internal;
                            idx.next_internal += 1;
                            idx.ids.insert(id, internal);
                            idx.docs.insert(internal, d);
                        }
                    }
                }
                idx.updated_at = now;
                details["indexedDocuments"] = json!(n);
                Ok(())
            }
            Op::DeleteIds(ids) => {
                let idx = self.indexes.get_mut(uid).ok_or_else(|| MeiliError::index_not_found(uid))?;
                let mut deleted = 0;
                for v in ids {
                    let key = match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    if let Some(internal) = idx.ids.remove(&key) {
                        idx.docs.remove(&internal);
                        deleted += 1;
                    }
                }
                idx.updated_at = now;
                details["deletedDocuments"] = json!(deleted);
                Ok(())
            }
            Op::DeleteFilter(f) => {
                let idx = self.indexes.get_mut(uid).ok_or_else(|| MeiliError::index_not_found(uid))?;
                let view = settings::View::from_full(&idx.settings());
                let filter = search::checked_filter(&f, &view, Code::INVALID_DOCUMENT_FILTER)?;
                let doomed: Vec<u64> = idx
                    .docs
                    .iter()
                    .filter(|(_, d)| filter.as_ref().is_none_or(|f| f.matches(d)))
                    .map(|(i, _)| *i)
                    .collect();
                idx.ids.retain(|_, i| !doomed.contains(i));
                for i in &doomed {
                    idx.docs.remove(i);
                }
                idx.updated_at = now;
                details["deletedDocuments"] = json!(doomed.len());
                Ok(())
            }
            Op::EditDocuments(e) => {
                // `Details::to_failed`: a failed edition edited 0 documents, its deletions stay null.
                details["editedDocuments"] = json!(0);
                let idx = self.indexes.get_mut(uid).ok_or_else(|| MeiliError::index_not_found(uid))?;
                edit::apply(idx, &e, details)?;
                idx.updated_at = now;
                Ok(())
            }
            Op::Clear => {
                let idx = self.indexes.get_mut(uid).ok_or_else(|| MeiliError::index_not_found(uid))?;
                details["deletedDocuments"] = json!(idx.docs.len());
                idx.docs.clear();
                idx.ids.clear();
                idx.updated_at = now;
                Ok(())
            }
            Op::Settings(patch) => {
                let idx = self.indexes.entry(uid.to_string()).or_insert_with(|| Index::new(uid, None, now));
                let patch = settings::prepare(patch, &idx.settings());
                idx.settings_set = miroir_meili::settings::merge_settings(&idx.settings_set, &patch);
                idx.updated_at = now;
                Ok(())
            }
            Op::Compact => {
                self.indexes.get(uid).ok_or_else(|| MeiliError::index_not_found(uid))?;
                details["preCompactionSize"] = json!("0 B");
                details["postCompactionSize"] = json!("0 B");
                Ok(())
            }
        }
    }
}

/// Meilisearch's rule: the declared key, else the request's, else the one attribute of the first
/// document whose name ends in `id` (case-insensitive).
fn resolve_primary_key(idx: &Index, requested: Option<String>, docs: &[Doc]) -> DevResult<String> {
    if let Some(pk) = &idx.primary_key {
        if let Some(r) = requested {
            if &r != pk {
                return Err(MeiliError::new(
                    Code::INDEX_PRIMARY_KEY_ALREADY_EXISTS,
                    format!("Index `{}`: Index already has a primary key: `{pk}`.", idx.uid),
                ));
            }
        }
        return Ok(pk.clone());
    }
    if let Some(r) = requested {
        return Ok(r);
    }
    let first = docs.first().cloned().unwrap_or_default();
    let candidates: Vec<&String> = first.keys().filter(|k| k.to_lowercase().ends_with("id")).collect();
    match candidates.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(MeiliError::new(Code::INDEX_PRIMARY_KEY_NO_CANDIDATE_FOUND, format!("Index `{}`: The primary key inference failed as the engine did not find any field ending with `id` in its name. Please specify the primary key manually using the `primaryKey` query parameter.", idx.uid))),
        many => Err(MeiliError::new(Code::INDEX_PRIMARY_KEY_MULTIPLE_CANDIDATES_FOUND, format!("Index `{}`: The primary key inference failed as the engine found {} fields ending with `id` in their names: '{}' and '{}'. Please specify the primary key manually using the `primaryKey` query parameter.", idx.uid, many.len(), many[0], many[1]))),
    }
}
