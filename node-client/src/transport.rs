use bytes::Bytes;
use futures::future::BoxFuture;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// One request to one node. `path` includes the query string.
#[derive(Debug, Clone)]
pub struct NodeRequest {
    pub method: Method,
    pub path: String,
    pub body: Option<Bytes>,
    pub content_type: Option<&'static str>,
}

impl NodeRequest {
    pub fn get(path: impl Into<String>) -> Self {
        Self { method: Method::Get, path: path.into(), body: None, content_type: None }
    }

    pub fn json(method: Method, path: impl Into<String>, body: &impl serde::Serialize) -> Self {
        let body = serde_json::to_vec(body).expect("JSON values always serialise");
        Self { method, path: path.into(), body: Some(body.into()), content_type: Some("application/json") }
    }

    pub fn delete(path: impl Into<String>) -> Self {
        Self { method: Method::Delete, path: path.into(), body: None, content_type: None }
    }
}

#[derive(Debug, Clone)]
pub struct NodeResponse {
    pub status: u16,
    pub body: Bytes,
}

/// The node could not be reached, or did not answer in time: the request may or may not have
/// been processed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("node {url} unreachable: {reason}")]
pub struct TransportError {
    pub url: String,
    pub reason: String,
}

pub trait NodeTransport: Send + Sync + 'static {
    /// Sends `req` to the node at `base_url` (e.g. `http://127.0.0.1:7700`).
    fn send<'a>(&'a self, base_url: &'a str, req: NodeRequest) -> BoxFuture<'a, Result<NodeResponse, TransportError>>;
}
