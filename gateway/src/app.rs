//! Gateway state and router. The router is built by a function so tests can drive it in-process.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use axum::extract::DefaultBodyLimit;
use axum::Router;
use miroir::RoutingMap;
use miroir_node_client::NodeClient;
use tokio::sync::watch;

use crate::cluster::Cluster;
use crate::error::{AppError, AppResult, Code};
use crate::write::tasks::GroupCommit;

pub struct AppState {
    map: ArcSwap<RoutingMap>,
    version_tx: watch::Sender<u64>,
    pub cluster: Arc<dyn Cluster>,
    pub nodes: NodeClient,
    pub tasks: GroupCommit,
    /// Writes are accepted only before this instant (nanoseconds after `started`): the end of
    /// the gateway's lease, less a margin. Checked on every write, so a stuck renewal fences
    /// writes by itself.
    lease_deadline: AtomicU64,
    /// Writes also wait until the installed map is at least this version: the cluster's version
    /// when the lease was last granted. A gateway whose lease lapsed was not waited for by the
    /// migration barriers meanwhile; renewing must not let it write by the map it held then.
    lease_map_version: AtomicU64,
    started: Instant,
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
            lease_deadline: AtomicU64::new(0),
            lease_map_version: AtomicU64::new(0),
            started: Instant::now(),
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
        // The version first: a write that sees the new deadline must also see its condition.
        self.lease_map_version.fetch_max(map_version, Ordering::SeqCst);
        let ns = deadline.saturating_duration_since(self.started).as_nanos() as u64;
        self.lease_deadline.fetch_max(ns, Ordering::SeqCst);
    }

    /// For a gateway without a coordinator lease (in-process tests): never fenced.
    /// How long one scatter-gather read may take, retries included (default 10 s).
    pub fn read_deadline(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.read_deadline_ms.load(std::sync::atomic::Ordering::Relaxed))
    }

    pub fn set_read_deadline(&self, deadline: std::time::Duration) {
        self.read_deadline_ms.store(deadline.as_millis() as u64, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn disable_fencing(&self) {
        self.lease_deadline.store(u64::MAX, Ordering::SeqCst);
    }

    /// Refuses writes while fenced: an old map could send them to owners that no longer own.
    pub fn check_writable(&self) -> AppResult<()> {
        let now = self.started.elapsed().as_nanos() as u64;
        let installed = self.map().version;
        if now < self.lease_deadline.load(Ordering::SeqCst)
            && installed > 0
            && installed >= self.lease_map_version.load(Ordering::SeqCst)
        {
            Ok(())
        } else {
            metrics::counter!(crate::metrics::WRITES_FENCED).increment(1);
            Err(AppError::new(
                Code::MIROIR_WRITES_FENCED,
                "This gateway is not in sync with the coordinator; writes are refused until it is.",
            ))
        }
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    crate::metrics::handle();
    crate::http::routes::router()
        .route("/metrics", axum::routing::get(crate::metrics::render))
        .fallback(crate::http::unsupported::fallback)
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::http::auth::check))
        .layer(axum::middleware::from_fn(crate::metrics::record))
        // Bodies are limited (and refused with Meilisearch's error) by our own extractors.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}
