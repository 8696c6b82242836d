//! HTTP over madsim's simulated network, for the parts of Miroir that speak HTTP: Meilisearch nodes
//! (dev nodes), gateways and the clients of both.
//!
//! A request is one datagram and its answer another, both carried by madsim (its latency, its
//! clogged links and nodes, its killed processes). On top, [`Faults`] adds what madsim's network
//! does not model and what Miroir must survive: a link slower than a lease (the request arrives
//! late, if its sender still waits for it) and an answer lost after the receiver acted (the sender
//! cannot tell whether its write happened).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use futures::future::BoxFuture;
use madsim::net::Endpoint;
use madsim::rand::{thread_rng, Rng};
use miroir_node_client::{NodeRequest, NodeResponse, NodeTransport, TransportError};
use tower::ServiceExt;

/// The tag every request datagram carries; each answer carries a tag the sender drew.
const REQUEST: u64 = 0x4854_5450;

/// The faults the simulation's chaos sets and the network applies. Cheap to clone (shared).
#[derive(Clone, Default)]
pub struct Faults(Arc<Mutex<FaultState>>);

#[derive(Default)]
struct FaultState {
    /// Extra one-way delay of every request from one process to another.
    slow: BTreeMap<(IpAddr, IpAddr), Duration>,
    /// Share of answers dropped after the server handled the request.
    lose_answers: f64,
}

impl Faults {
    fn state(&self) -> std::sync::MutexGuard<'_, FaultState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Requests from `from` to `to` take `delay` longer until [`Faults::heal_link`].
    pub fn slow_link(&self, from: IpAddr, to: IpAddr, delay: Duration) {
        self.state().slow.insert((from, to), delay);
    }

    pub fn heal_link(&self, from: IpAddr, to: IpAddr) {
        self.state().slow.remove(&(from, to));
    }

    /// Drops this share of answers (0 to 1) after the request was handled.
    pub fn lose_answers(&self, share: f64) {
        self.state().lose_answers = share;
    }

    pub fn heal_all(&self) {
        let mut s = self.state();
        s.slow.clear();
        s.lose_answers = 0.0;
    }

    fn delay(&self, from: IpAddr, to: IpAddr) -> Duration {
        self.state().slow.get(&(from, to)).copied().unwrap_or_default()
    }

    fn answer_lost(&self) -> bool {
        let share = self.state().lose_answers;
        share > 0.0 && thread_rng().gen_bool(share)
    }
}

/// The `NodeTransport` of a simulated process at `ip`: what the gateway and the coordinators use to
/// reach nodes, and the clients to reach gateways.
pub struct SimHttp {
    ip: IpAddr,
    faults: Faults,
    timeout: Duration,
}

impl SimHttp {
    /// `timeout` is the production client's (the gateway's `--node-timeout`, say).
    pub fn new(ip: IpAddr, faults: Faults, timeout: Duration) -> Self {
        Self { ip, faults, timeout }
    }
}

/// `http://10.0.1.1:7700` → `10.0.1.1:7700`.
fn socket_addr(base_url: &str) -> Option<SocketAddr> {
    base_url.trim_start_matches("http://").trim_end_matches('/').parse().ok()
}

/// An HTTP answer with the headers a check may need (`X-Miroir-Degraded`).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: bytes::Bytes,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

impl SimHttp {
    /// Sends `req` to the process serving `base_url` and waits for its answer.
    pub async fn call(&self, base_url: &str, req: NodeRequest) -> Result<Answer, TransportError> {
        let fail = |reason: &str| TransportError { url: base_url.to_string(), reason: reason.to_string() };
        let addr = socket_addr(base_url).ok_or_else(|| fail("not an address"))?;
        let ep =
            Arc::new(Endpoint::bind((std::net::Ipv4Addr::UNSPECIFIED, 0)).await.map_err(|e| fail(&e.to_string()))?);
        let tag: u64 = thread_rng().gen();
        let delay = self.faults.delay(self.ip, addr.ip());
        // A slow link holds the request for `delay`. As with TCP, it is delivered only if the
        // sender is still waiting then: a sender that gave up closed its connection, and the
        // receiver drops what arrives on it afterwards. (A request that reached a receiver which
        // is paused is another matter: it is handled on resume, in arrival order.)
        let waiting = Arc::new(());
        let (sender, still_waiting) = (ep.clone(), Arc::downgrade(&waiting));
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if still_waiting.upgrade().is_some() {
                let _ = sender.send_to_raw(addr, REQUEST, Box::new((tag, req))).await;
            }
        });
        let answer = tokio::time::timeout(self.timeout, ep.recv_from_raw(tag)).await;
        drop(waiting);
        match answer {
            Ok(Ok((answer, _))) => Ok(*answer.downcast::<Answer>().expect("an HTTP answer")),
            Ok(Err(e)) => Err(fail(&e.to_string())),
            Err(_) => Err(fail("timed out")),
        }
    }
}

impl NodeTransport for SimHttp {
    fn send<'a>(&'a self, base_url: &'a str, req: NodeRequest) -> BoxFuture<'a, Result<NodeResponse, TransportError>> {
        Box::pin(async move {
            let answer = self.call(base_url, req).await?;
            Ok(NodeResponse { status: answer.status, body: answer.body })
        })
    }
}

/// Serves `router` at `addr` on the current simulated process until the process dies.
pub async fn serve(addr: SocketAddr, router: Router, faults: Faults) {
    let ep = Arc::new(Endpoint::bind(addr).await.expect("the address is free on this process"));
    loop {
        let Ok((request, from)) = ep.recv_from_raw(REQUEST).await else { continue };
        let (tag, req) = *request.downcast::<(u64, NodeRequest)>().expect("an HTTP request");
        let (ep, router, faults) = (ep.clone(), router.clone(), faults.clone());
        tokio::spawn(async move {
            let answer = handle(router, req).await;
            if !faults.answer_lost() {
                let _ = ep.send_to_raw(from, tag, Box::new(answer)).await;
            }
        });
    }
}

async fn handle(router: Router, req: NodeRequest) -> Answer {
    let mut request = axum::http::Request::builder().method(req.method.as_str()).uri(&req.path);
    if let Some(ct) = req.content_type {
        request = request.header("content-type", ct);
    }
    let request = request.body(Body::from(req.body.unwrap_or_default())).expect("a valid request");
    let response = router.oneshot(request).await.unwrap_or_else(|never| match never {});
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .filter(|(n, _)| n.as_str().starts_with("x-miroir"))
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap_or_default();
    Answer { status, headers, body }
}
