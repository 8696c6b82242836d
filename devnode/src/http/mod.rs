//! The dev node's HTTP server (axum) over the engine: startable in-process with a handle for
//! fault injection, stop and restart, and as the `miroir-devnode` binary.

mod admin;
mod documents;
mod routes;
mod search_rules;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Notify;

use super::engine::Engine;
// Only the served node (not in a simulation) stops and restarts.
use super::error::{Code, MeiliError};
#[cfg(not(madsim))]
use std::sync::atomic::Ordering;
#[cfg(not(madsim))]
use tokio::sync::oneshot;

/// Fault injection state, shared by the in-process handle and the `/_devnode/faults` route.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// Added before every answer.
    pub delay: Duration,
    /// The next N requests fail with 500.
    pub fail_next: u64,
    /// Fraction of requests failing with 500, chosen by a deterministic sequence.
    pub fail_rate: f64,
}

pub(crate) struct Shared {
    pub engine: Mutex<Engine>,
    pub work: Notify,
    pub faults: Mutex<Faults>,
    pub master_key: Option<String>,
    /// Set over HTTP: the process stays up but answers 503 like an unreachable node would.
    pub stopped: AtomicBool,
    pub requests: AtomicU64,
}

impl Shared {
    pub fn engine(&self) -> MutexGuard<'_, Engine> {
        self.engine.lock().unwrap_or_else(|e| e.into_inner())
    }
    pub fn faults(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(crate) fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// Processes the queue in order, one task at a time, like Meilisearch's scheduler: a task is
/// visibly `processing` between its start and its end.
async fn worker(shared: Arc<Shared>) {
    loop {
        let started = shared.engine().start_next(now());
        match started {
            Some(_) => {
                tokio::task::yield_now().await;
                shared.engine().finish_next(now());
            }
            None => shared.work.notified().await,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct DevNodeConfig {
    /// `127.0.0.1:0` picks a free port.
    pub listen: Option<SocketAddr>,
    pub master_key: Option<String>,
}

#[cfg(not(madsim))]
struct Running {
    stop: oneshot::Sender<()>,
    server: tokio::task::JoinHandle<()>,
    worker: tokio::task::JoinHandle<()>,
}

#[cfg(not(madsim))]
/// A running dev node. Dropping it stops the server.
pub struct DevNode {
    addr: SocketAddr,
    config: DevNodeConfig,
    shared: Arc<Shared>,
    running: Option<Running>,
}

fn new_shared(master_key: Option<String>) -> Arc<Shared> {
    Arc::new(Shared {
        engine: Mutex::new(Engine::default()),
        work: Notify::new(),
        faults: Mutex::new(Faults::default()),
        master_key,
        stopped: AtomicBool::new(false),
        requests: AtomicU64::new(0),
    })
}

/// A dev node's state without a listener, which outlives whatever serves it: a simulation
/// restarts a node over the same `MemNode` (its data kept, as on disk) or over a new one (its disk
/// lost). Call its router as a `tower::Service`; spawn its task worker.
#[derive(Clone)]
pub struct MemNode(Arc<Shared>);

impl MemNode {
    pub fn new(master_key: Option<String>) -> Self {
        MemNode(new_shared(master_key))
    }

    pub fn router(&self) -> axum::Router {
        routes::router(self.0.clone())
    }

    /// Processes the node's task queue until dropped; a task interrupted half-way is processed
    /// again by the next worker, as Meilisearch does after a crash.
    pub fn worker(&self) -> impl std::future::Future<Output = ()> {
        worker(self.0.clone())
    }
}

/// The dev node with no listener: its router, to be called as a `tower::Service` (a simulation's
/// transport, an in-process test), and its task worker, which the caller spawns.
pub fn in_memory(master_key: Option<String>) -> (axum::Router, impl std::future::Future<Output = ()>) {
    let node = MemNode::new(master_key);
    (node.router(), node.worker())
}

#[cfg(not(madsim))]
async fn launch(addr: SocketAddr, shared: Arc<Shared>) -> std::io::Result<(SocketAddr, Running)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = routes::router(shared.clone());
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
    });
    let worker = tokio::spawn(worker(shared));
    Ok((bound, Running { stop: tx, server, worker }))
}

#[cfg(not(madsim))]
/// Starts a dev node in this process; returns once it accepts connections.
pub async fn start(config: DevNodeConfig) -> std::io::Result<DevNode> {
    let shared = new_shared(config.master_key.clone());
    let listen = config.listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let (addr, running) = launch(listen, shared.clone()).await?;
    Ok(DevNode { addr, config, shared, running: Some(running) })
}

#[cfg(not(madsim))]
impl DevNode {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn faults(&self) -> Faults {
        self.shared.faults().clone()
    }

    pub fn set_faults(&self, faults: Faults) {
        *self.shared.faults() = faults;
    }

    pub fn set_delay(&self, delay: Duration) {
        self.shared.faults().delay = delay;
    }

    pub fn fail_next(&self, n: u64) {
        self.shared.faults().fail_next = n;
    }

    pub fn set_fail_rate(&self, rate: f64) {
        self.shared.faults().fail_rate = rate.clamp(0.0, 1.0);
    }

    /// Holds the task queue (tasks stay enqueued; cancelations and deletions still run), or
    /// releases it.
    pub fn set_paused(&self, paused: bool) {
        self.shared.engine().paused = paused;
        self.shared.work.notify_one();
    }

    pub fn clear_faults(&self) {
        *self.shared.faults() = Faults::default();
        self.shared.stopped.store(false, Ordering::SeqCst);
    }

    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Closes the listener: connections are refused until `restart`.
    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            let _ = r.stop.send(());
            r.worker.abort();
            let _ = r.server.await;
        }
    }

    /// Starts again on the same address, keeping the indexes and tasks or starting empty.
    pub async fn restart(&mut self, keep_data: bool) -> std::io::Result<()> {
        self.stop().await;
        if !keep_data {
            self.shared = new_shared(self.config.master_key.clone());
        }
        // A task caught mid-processing by the stop is retried from the start, not lost.
        let (addr, running) = launch(self.addr, self.shared.clone()).await?;
        self.addr = addr;
        self.running = Some(running);
        Ok(())
    }

    /// Runs `f` on the engine (for white-box test assertions).
    pub fn with_engine<T>(&self, f: impl FnOnce(&Engine) -> T) -> T {
        f(&self.shared.engine())
    }

    /// Waits until every enqueued task has finished.
    pub async fn wait_idle(&self) {
        while self.shared.engine().has_pending() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

#[cfg(not(madsim))]
impl Drop for DevNode {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            let _ = r.stop.send(());
            r.worker.abort();
            r.server.abort();
        }
    }
}

/// Parses a JSON request body the way Meilisearch's JSON extractor does.
pub(crate) fn json_body(ct: Option<&str>, body: &[u8]) -> Result<Value, MeiliError> {
    match ct.map(|c| c.split(';').next().unwrap_or("").trim().to_ascii_lowercase()) {
        None => Err(MeiliError::new(
            Code::MISSING_CONTENT_TYPE,
            "A Content-Type header is missing. Accepted values for the Content-Type header are: `application/json`",
        )),
        Some(m) if m != "application/json" => Err(MeiliError::new(
            Code::INVALID_CONTENT_TYPE,
            format!(
                "The Content-Type `{}` is invalid. Accepted values for the Content-Type header are: `application/json`",
                ct.unwrap_or_default()
            ),
        )),
        Some(_) if body.iter().all(u8::is_ascii_whitespace) => {
            Err(MeiliError::new(Code::MISSING_PAYLOAD, "A json payload is missing."))
        }
        // Meilisearch splits serde errors: broken JSON is `malformed_payload`, a well-formed
        // value of the wrong shape is `bad_request`.
        Some(_) => serde_json::from_slice(body).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => MeiliError::bad_request(format!("Json deserialize error: {e}")),
            _ => MeiliError::new(Code::MALFORMED_PAYLOAD, format!("The json payload provided is malformed. `{e}`.")),
        }),
    }
}
