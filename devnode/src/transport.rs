//! Dev nodes behind a `NodeTransport` with no network: a request to a node's base URL goes straight
//! to that node's router, called as a `tower::Service`. A simulation reaches its nodes this way
//! (under `--cfg madsim` there is no HTTP stack to go through), and so can an in-process test.

use std::collections::BTreeMap;
use std::sync::Mutex;

use axum::body::Body;
use axum::Router;
use futures::future::BoxFuture;
use miroir_node_client::{NodeRequest, NodeResponse, NodeTransport, TransportError};
use tower::ServiceExt;

/// Dev node routers by base URL (`http://node-1`, say). A URL with no router is an unreachable node.
#[derive(Default)]
pub struct InMemoryNodes {
    nodes: Mutex<BTreeMap<String, Router>>,
}

impl InMemoryNodes {
    /// Puts `router` behind `url`, replacing what was there (a restarted node).
    pub fn add(&self, url: impl Into<String>, router: Router) {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner()).insert(url.into(), router);
    }

    /// Takes the node at `url` off the network: its requests fail as a refused connection would.
    pub fn remove(&self, url: &str) {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner()).remove(url);
    }
}

impl NodeTransport for InMemoryNodes {
    fn send<'a>(&'a self, base_url: &'a str, req: NodeRequest) -> BoxFuture<'a, Result<NodeResponse, TransportError>> {
        let router = self.nodes.lock().unwrap_or_else(|e| e.into_inner()).get(base_url).cloned();
        Box::pin(async move {
            let unreachable = |reason: String| TransportError { url: base_url.to_string(), reason };
            let router = router.ok_or_else(|| unreachable("no node at this address".into()))?;
            let mut request = axum::http::Request::builder().method(req.method.as_str()).uri(&req.path);
            if let Some(ct) = req.content_type {
                request = request.header("content-type", ct);
            }
            let request =
                request.body(Body::from(req.body.unwrap_or_default())).map_err(|e| unreachable(e.to_string()))?;
            let response = router.oneshot(request).await.unwrap_or_else(|never| match never {});
            let status = response.status().as_u16();
            let body =
                axum::body::to_bytes(response.into_body(), usize::MAX).await.map_err(|e| unreachable(e.to_string()))?;
            Ok(NodeResponse { status, body })
        })
    }
}
