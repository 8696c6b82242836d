//! Prometheus metrics of the gateway. Names are listed in docs/metrics.md.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

pub const REQUEST_SECONDS: &str = "miroir_gateway_request_duration_seconds";
pub const NODE_ERRORS: &str = "miroir_gateway_node_errors_total";
pub const DEGRADED: &str = "miroir_gateway_degraded_responses_total";
pub const FANOUT: &str = "miroir_gateway_fanout_width";
pub const MAP_VERSION: &str = "miroir_gateway_map_version";
pub const WRITES_FENCED: &str = "miroir_gateway_writes_fenced_total";

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder once; later calls (several gateways in one test process)
/// share it.
pub fn handle() -> Option<&'static PrometheusHandle> {
    // Installing the exporter (it starts an upkeep thread) hung the first simulation of a gateway
    // on madsim's runtime: a simulation records no metrics.
    if cfg!(madsim) {
        return None;
    }
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets(&[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
                .ok()?
                .install_recorder()
                .ok()
        })
        .as_ref()
}

/// The routing class of a route (docs/metrics.md), the label latency is reported under.
pub fn route_class(method: &str, route: &str) -> &'static str {
    let r = route;
    if r.ends_with("/search") || r.ends_with("/multi-search") || r.ends_with("/facet-search") || r.ends_with("/similar")
    {
        "scatter_gather"
    } else if r.contains("/documents") && method == "GET" || r.ends_with("/documents/fetch") {
        "read"
    } else if r.contains("/documents") {
        "document_write"
    } else if r.contains("/settings") && method != "GET" {
        "broadcast_write"
    } else if r.starts_with("/_miroir") || r == "/health" || r == "/metrics" {
        "admin"
    } else {
        "coordinator"
    }
}

pub async fn record(req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_owned();
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched".to_owned(), |p| p.as_str().to_owned());
    let start = Instant::now();
    let resp = next.run(req).await;
    let class = route_class(&method, &route);
    let status = resp.status().as_u16().to_string();
    metrics::histogram!(REQUEST_SECONDS, "class" => class, "method" => method, "status" => status)
        .record(start.elapsed().as_secs_f64());
    if resp.headers().contains_key("x-miroir-degraded") {
        metrics::counter!(DEGRADED, "class" => class).increment(1);
    }
    resp
}

pub async fn render() -> Response {
    match handle() {
        Some(h) => h.render().into_response(),
        None => (axum::http::StatusCode::SERVICE_UNAVAILABLE, "metrics recorder unavailable").into_response(),
    }
}
