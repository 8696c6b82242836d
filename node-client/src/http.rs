use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;

use crate::transport::{Method, NodeRequest, NodeResponse, NodeTransport, TransportError};

/// Pooled HTTP/1.1 connections to every node, authenticated with the cluster's internal key.
#[derive(Clone)]
pub struct HttpTransport {
    client: reqwest::Client,
    api_key: Option<String>,
}

impl HttpTransport {
    pub fn new(api_key: Option<String>, timeout: Duration) -> Self {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(2))
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .build()
            .expect("a reqwest client with static settings builds");
        Self { client, api_key }
    }
}

impl NodeTransport for HttpTransport {
    fn send<'a>(&'a self, base_url: &'a str, req: NodeRequest) -> BoxFuture<'a, Result<NodeResponse, TransportError>> {
        async move {
            let method = match req.method {
                Method::Get => reqwest::Method::GET,
                Method::Post => reqwest::Method::POST,
                Method::Put => reqwest::Method::PUT,
                Method::Patch => reqwest::Method::PATCH,
                Method::Delete => reqwest::Method::DELETE,
            };
            let url = format!("{}{}", base_url.trim_end_matches('/'), req.path);
            let build = || {
                let mut builder = self.client.request(method.clone(), &url);
                if let Some(key) = &self.api_key {
                    builder = builder.bearer_auth(key);
                }
                if let Some(ct) = req.content_type {
                    builder = builder.header(reqwest::header::CONTENT_TYPE, ct);
                }
                if let Some(body) = &req.body {
                    builder = builder.body(body.clone());
                }
                builder
            };
            let err = |e: reqwest::Error| TransportError { url: url.clone(), reason: e.to_string() };
            let resp = match build().send().await {
                // A pooled connection the node closed (it restarted, or its idle timeout won the
                // race) fails before any answer. Every node call Miroir makes is idempotent
                // (documents are replaced or merged by id, settings are absolute, a repeated index
                // creation fails harmlessly), so one retry on a fresh connection is safe and spares
                // a healthy copy from being marked stale.
                Err(e) if e.is_request() && !e.is_timeout() && !e.is_connect() => build().send().await.map_err(err)?,
                r => r.map_err(err)?,
            };
            let status = resp.status().as_u16();
            let body = resp.bytes().await.map_err(err)?;
            Ok(NodeResponse { status, body })
        }
        .boxed()
    }
}
