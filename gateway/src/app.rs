//! Gateway state and router. The router is built by a function so tests can drive it in-process.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use miroir::RoutingMap;
use miroir_node_client::NodeClient;
use tokio::sync::watch;

use crate::cluster::Cluster;
use crate::error::{AppError, AppResult, Code};
use crate::write::fence::{Fence, WriteGuard};
use crate::write::tasks::GroupCommit;

pub struct AppState {
    map: ArcSwap<RoutingMap>,
    version_tx: watch::Sender<u64>,
    pub cluster: Arc<dyn Cluster>,
    pub nodes: NodeClient,
    pub tasks: GroupCommit,
    /// The lease writes are fenced by, and the writes in flight (`write::fence`).
    pub fence: Fence,
    /// The key clients must present (see `auth`); unset = open, as Meilisearch without a key.
    master_key: std::sync::OnceLock<String>,
    /// API key values derived for one map version (HMAC per key, not per request).
    key_values: std::sync::Mutex<Option<(u64, KeyValues)>>,
    /// Milliseconds one scatter-gather read may take, all retries included.
    read_deadline_ms: AtomicU64,
    /// Reads in flight and latency per node, for the choice of copies (`load`).
    pub load: crate::read::load::NodeLoad,
}

/// Each key's uid and value bytes.
pub type KeyValues = Arc<Vec<(String, [u8; 32])>>;

impl AppState {
    pub fn new(cluster: Arc<dyn Cluster>, nodes: NodeClient) -> Arc<Self> {
        let (version_tx, _) = watch::channel(0);
        Arc::new(Self {
            map: ArcSwap::from_pointee(RoutingMap::default()),
            version_tx,
            tasks: GroupCommit::start(cluster.clone()),
            cluster,
            nodes,
            fence: Fence::default(),
            master_key: std::sync::OnceLock::new(),
            key_values: std::sync::Mutex::new(None),
            read_deadline_ms: AtomicU64::new(10_000),
            load: Default::default(),
        })
    }

    /// What the read path uses of this state.
    pub fn reads(&self) -> crate::read::Reads<'_> {
        crate::read::Reads { nodes: &self.nodes, load: &self.load }
    }

    /// From now on clients must authenticate with `key` (set once, at start).
    pub fn require_master_key(&self, key: String) {
        let _ = self.master_key.set(key);
    }

    pub fn master_key(&self) -> Option<&str> {
        self.master_key.get().map(String::as_str)
    }

    /// The value of every key in `map`, derived once per map version.
    pub fn key_values(&self, map: &RoutingMap, master: &str) -> KeyValues {
        let mut cache = self.key_values.lock().expect("not poisoned");
        if let Some((version, values)) = cache.as_ref() {
            if *version == map.version {
                return values.clone();
            }
        }
        let values: KeyValues = Arc::new(
            map.api_keys.keys().map(|uid| (uid.clone(), crate::http::auth::token::key_bytes(master, uid))).collect(),
        );
        *cache = Some((map.version, values.clone()));
        values
    }

    /// The map requests route by; never blocks.
    pub fn map(&self) -> Arc<RoutingMap> {
        self.map.load_full()
    }

    /// Installs a newer map atomically; an older one (a replayed watch event) is ignored.
    pub fn install(&self, map: Arc<RoutingMap>) {
        let version = map.version;
        if version < self.map.load().version {
            return;
        }
        self.map.store(map);
        self.version_tx.send_replace(version);
        metrics::gauge!(crate::metrics::MAP_VERSION).set(version as f64);
    }

    /// Each newly installed map version, as it is installed.
    pub fn installed_versions(&self) -> watch::Receiver<u64> {
        self.version_tx.subscribe()
    }

    /// Waits until the installed map is at least `version` (a change this gateway just committed).
    pub async fn wait_for_version(&self, version: u64) -> AppResult<Arc<RoutingMap>> {
        self.wait_until(|m| m.version >= version).await
    }

    /// Waits until the installed map satisfies `pred` (a change another gateway committed).
    pub async fn wait_until(&self, pred: impl Fn(&RoutingMap) -> bool) -> AppResult<Arc<RoutingMap>> {
        let mut rx = self.version_tx.subscribe();
        let wait = async {
            loop {
                let map = self.map();
                if pred(&map) {
                    return Some(map);
                }
                rx.changed().await.ok()?;
            }
        };
        match tokio::time::timeout(Duration::from_secs(10), wait).await {
            Ok(Some(map)) => Ok(map),
            _ => Err(AppError::new(Code::MIROIR_UNAVAILABLE, "The gateway did not receive the committed map in time.")),
        }
    }

    /// Accept writes until `deadline` (the lease's end, less a margin), once the installed map is
    /// at least `map_version` (the cluster's when the lease was granted).
    pub fn extend_lease(&self, deadline: Instant, map_version: u64) {
        self.fence.extend(deadline, map_version);
    }

    /// How long one scatter-gather read may take, retries included (default 10 s).
    pub fn read_deadline(&self) -> Duration {
        Duration::from_millis(self.read_deadline_ms.load(Ordering::Relaxed))
    }

    pub fn set_read_deadline(&self, deadline: Duration) {
        self.read_deadline_ms.store(deadline.as_millis() as u64, Ordering::Relaxed);
    }

    /// For a gateway without a coordinator lease (in-process tests): never fenced.
    pub fn disable_fencing(&self) {
        self.fence.disable();
    }

    /// Refuses writes while fenced: an old map could send them to owners that no longer own.
    /// Inside a write (`request_scope`), also refuses once the lease the write began under lapsed.
    pub fn check_writable(&self) -> AppResult<()> {
        let held = WriteGuard::current().is_none_or(|w| w.held());
        if held && self.fence.check(self.map().version).is_ok() {
            Ok(())
        } else {
            metrics::counter!(crate::metrics::WRITES_FENCED).increment(1);
            Err(AppError::writes_fenced())
        }
    }

    /// The map version this gateway may acknowledge to the coordinators: the installed one, or
    /// an older one while writes that began with it are in flight.
    pub fn ackable_version(&self) -> u64 {
        self.fence.ackable(|| self.map().version)
    }
}

/// Tracks every request that reaches index data (`write::fence`). A write runs to its end even if
/// the client disconnects, and counts until then against acknowledging a newer map. A read also
/// counts (so no copy it reads is cut over and cleaned under it), and is answered as complete only
/// if the gateway's map was known current, within its lease, from its start to its end; otherwise
/// it carries `X-Miroir-Degraded: map=stale` (or, with `X-Miroir-Missing-Shards: error`, is a 503).
async fn request_scope(State(app): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let write = may_write(req.method(), path);
    if !(write || path.starts_with("/indexes") || path == "/multi-search") {
        return next.run(req).await;
    }
    let current_at_start = app.fence.check(app.map().version).is_ok();
    let guard = app.fence.begin(|| app.map().version);
    if write {
        return Fence::scope(guard, next.run(req)).await;
    }
    let refuse_partial =
        matches!(crate::http::routes::search::policy(req.headers()), Ok(crate::read::scatter::MissingPolicy::Error));
    let mut response = next.run(req).await;
    let current = current_at_start && guard.held();
    drop(guard);
    if current || !response.status().is_success() {
        return response;
    }
    if refuse_partial {
        let e = AppError::new(Code::MIROIR_UNAVAILABLE, "The gateway's routing map may be stale; retry later.");
        return axum::response::IntoResponse::into_response(e);
    }
    response.headers_mut().insert("x-miroir-degraded", axum::http::HeaderValue::from_static("map=stale"));
    response
}

/// Searches and document fetches are POSTs that never write.
fn may_write(method: &Method, path: &str) -> bool {
    const READS: [&str; 5] = ["/search", "/facet-search", "/similar", "/documents/fetch", "/multi-search"];
    !(method == Method::GET || method == Method::HEAD || READS.iter().any(|r| path.ends_with(r)))
}

pub fn router(state: Arc<AppState>) -> Router {
    crate::metrics::handle();
    crate::http::routes::router()
        .route("/metrics", axum::routing::get(crate::metrics::render))
        .fallback(crate::http::unsupported::fallback)
        .layer(axum::middleware::from_fn_with_state(state.clone(), request_scope))
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::http::auth::check))
        .layer(axum::middleware::from_fn(crate::metrics::record))
        // Bodies are limited (and refused with Meilisearch's error) by our own extractors.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}
