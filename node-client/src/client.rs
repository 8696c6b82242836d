use std::sync::Arc;

use miroir::ids::Millis;
use miroir::task::TaskStatus;
use serde::Deserialize;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::transport::{NodeRequest, NodeResponse, NodeTransport, TransportError};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The node answered with an error; `body` is Meilisearch's error object.
    #[error("node answered {status}: {body}")]
    Status { status: u16, body: Value },
    #[error("unexpected answer from node: {0}")]
    Decode(String),
    /// The request was never sent (the node is untouched): the caller gave up first.
    #[error("request to node not sent: {0}")]
    NotSent(String),
}

impl NodeError {
    /// Worth trying another copy: the node is down, overloaded or broken, not the request.
    pub fn is_retryable(&self) -> bool {
        match self {
            NodeError::Transport(_) => true,
            NodeError::Status { status, .. } => *status >= 500,
            NodeError::Decode(_) | NodeError::NotSent(_) => false,
        }
    }
}

/// A node task as `GET /tasks` reports it, reduced to what Miroir folds.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeTaskView {
    pub uid: u64,
    pub status: TaskStatus,
    pub error: Option<Value>,
    pub started_at: Option<Millis>,
    pub finished_at: Option<Millis>,
    /// The task's details (document counts once it finished).
    pub details: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTask {
    uid: u64,
    status: TaskStatus,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    started_at: Option<String>,
    #[serde(default)]
    finished_at: Option<String>,
    #[serde(default)]
    details: Option<Value>,
}

#[derive(Deserialize)]
struct TaskPage {
    results: Vec<RawTask>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Enqueued {
    task_uid: u64,
}

fn millis(ts: Option<String>) -> Option<Millis> {
    let t = OffsetDateTime::parse(ts.as_deref()?, &Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Typed calls to Meilisearch nodes over any transport. Cheap to clone.
#[derive(Clone)]
pub struct NodeClient {
    transport: Arc<dyn NodeTransport>,
}

impl NodeClient {
    pub fn new(transport: Arc<dyn NodeTransport>) -> Self {
        Self { transport }
    }

    pub async fn send(&self, url: &str, req: NodeRequest) -> Result<NodeResponse, NodeError> {
        Ok(self.transport.send(url, req).await?)
    }

    /// Sends a request and decodes a JSON answer; a non-2xx status is an error carrying the
    /// node's error object.
    pub async fn json(&self, url: &str, req: NodeRequest) -> Result<Value, NodeError> {
        let resp = self.send(url, req).await?;
        let body: Value = if resp.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&resp.body).map_err(|e| NodeError::Decode(e.to_string()))?
        };
        if (200..300).contains(&resp.status) {
            Ok(body)
        } else {
            Err(NodeError::Status { status: resp.status, body })
        }
    }

    /// Sends a write and returns the node's task uid.
    pub async fn enqueue(&self, url: &str, req: NodeRequest) -> Result<u64, NodeError> {
        let body = self.json(url, req).await?;
        let e: Enqueued = serde_json::from_value(body).map_err(|e| NodeError::Decode(e.to_string()))?;
        Ok(e.task_uid)
    }

    /// The state of the given node tasks; unknown uids are absent from the answer.
    pub async fn tasks(&self, url: &str, uids: &[u64]) -> Result<Vec<NodeTaskView>, NodeError> {
        if uids.is_empty() {
            return Ok(vec![]);
        }
        let list = uids.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
        let body = self.json(url, NodeRequest::get(format!("/tasks?uids={list}&limit={}", uids.len()))).await?;
        let page: TaskPage = serde_json::from_value(body).map_err(|e| NodeError::Decode(e.to_string()))?;
        Ok(page
            .results
            .into_iter()
            .map(|t| NodeTaskView {
                uid: t.uid,
                status: t.status,
                error: t.error,
                started_at: millis(t.started_at),
                finished_at: millis(t.finished_at),
                details: t.details,
            })
            .collect())
    }

    pub async fn health(&self, url: &str) -> Result<(), NodeError> {
        self.json(url, NodeRequest::get("/health")).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_meilisearch_timestamps() {
        assert_eq!(millis(Some("1970-01-01T00:00:01.5Z".into())), Some(1500));
        assert_eq!(millis(Some("2024-05-01T10:00:00.123456789Z".into())), Some(1714557600123));
        assert_eq!(millis(None), None);
    }
}
