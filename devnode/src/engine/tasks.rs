//! The task queue's state: tasks as Meilisearch shows them and the summarized 202 answer
//! (`GET /tasks` is in `task_query`). Clock values come from the caller so this stays pure.

use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::error::MeiliError;
pub use miroir_meili::{TaskKind, TaskStatus as Status};

#[derive(Debug, Clone)]
pub struct Task {
    pub uid: u64,
    pub batch_uid: Option<u64>,
    pub index_uid: Option<String>,
    pub status: Status,
    pub kind: TaskKind,
    pub details: Value,
    pub error: Option<MeiliError>,
    pub enqueued_at: OffsetDateTime,
    pub started_at: Option<OffsetDateTime>,
    pub finished_at: Option<OffsetDateTime>,
    pub custom_metadata: Option<String>,
    /// The task cancelation that canceled this one.
    pub canceled_by: Option<u64>,
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
        let v = json!({
            "taskUid": self.uid,
            "indexUid": self.index_uid,
            "status": "enqueued",
            "type": self.kind,
            "enqueuedAt": ts(self.enqueued_at),
        });
        self.with_metadata(v)
    }

    fn with_metadata(&self, mut v: Value) -> Value {
        if let (Some(m), Some(meta)) = (v.as_object_mut(), &self.custom_metadata) {
            m.insert("customMetadata".into(), json!(meta));
        }
        v
    }

    pub fn view(&self) -> Value {
        let mut m = Map::new();
        m.insert("uid".into(), json!(self.uid));
        m.insert("batchUid".into(), json!(self.batch_uid));
        m.insert("indexUid".into(), json!(self.index_uid));
        m.insert("status".into(), json!(self.status.as_str()));
        m.insert("type".into(), json!(self.kind));
        m.insert("canceledBy".into(), json!(self.canceled_by));
        m.insert("details".into(), self.details.clone());
        m.insert("error".into(), self.error.as_ref().map(MeiliError::to_json).unwrap_or(Value::Null));
        let duration = match (self.started_at, self.finished_at) {
            (Some(s), Some(f)) => Value::from(iso_duration(f - s)),
            _ => Value::Null,
        };
        m.insert("duration".into(), duration);
        m.insert("enqueuedAt".into(), ts(self.enqueued_at));
        m.insert("startedAt".into(), self.started_at.map(ts).unwrap_or(Value::Null));
        m.insert("finishedAt".into(), self.finished_at.map(ts).unwrap_or(Value::Null));
        self.with_metadata(Value::Object(m))
    }
}
