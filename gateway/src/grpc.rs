//! The gateway's coordinator client over gRPC. Any peer serves any call (followers forward writes
//! to the leader); on a transport error or `Unavailable` the next address is tried.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use miroir::proto::cluster_service_client::ClusterServiceClient;
use miroir::proto::{propose_reply, ProposeRequest, TaskQueryRequest, WatchRequest};
use miroir::task::{Task, TaskFilter, TaskPage, TaskQuery};
use miroir::{Command, CommandError, Response, RoutingMap};
use tokio::sync::Mutex;
use tonic::transport::{Channel, Endpoint};

use crate::cluster::{Cluster, ClusterError};

/// How long one call may take before the next coordinator is tried.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

pub struct GrpcCluster {
    addrs: Vec<String>,
    /// The address that answered last: tried first next time.
    preferred: AtomicUsize,
    channels: Mutex<Vec<Option<Channel>>>,
}

fn unavailable(e: impl std::fmt::Display) -> ClusterError {
    ClusterError::Unavailable(e.to_string())
}

impl GrpcCluster {
    pub fn new(addrs: Vec<String>) -> Self {
        let n = addrs.len();
        Self { addrs, preferred: AtomicUsize::new(0), channels: Mutex::new(vec![None; n]) }
    }

    async fn client(&self, i: usize) -> Result<ClusterServiceClient<Channel>, ClusterError> {
        let mut channels = self.channels.lock().await;
        if let Some(ch) = &channels[i] {
            return Ok(ClusterServiceClient::new(ch.clone()));
        }
        let addr = &self.addrs[i];
        let uri = if addr.starts_with("http") { addr.clone() } else { format!("http://{addr}") };
        let endpoint = Endpoint::from_shared(uri).map_err(unavailable)?.connect_timeout(Duration::from_secs(2));
        // Lazy: connecting happens on first use, and a dead peer fails that call only.
        let ch = endpoint.connect_lazy();
        channels[i] = Some(ch.clone());
        Ok(ClusterServiceClient::new(ch).max_decoding_message_size(256 << 20))
    }

    /// Runs `call` against each coordinator in turn, starting with the one that answered last.
    async fn with_failover<T, F, Fut>(&self, call: F) -> Result<T, ClusterError>
    where
        F: Fn(ClusterServiceClient<Channel>) -> Fut,
        Fut: std::future::Future<Output = Result<T, tonic::Status>>,
    {
        let n = self.addrs.len();
        let start = self.preferred.load(Ordering::Relaxed);
        let mut last = None;
        for k in 0..n {
            let i = (start + k) % n;
            let client = self.client(i).await?;
            match tokio::time::timeout(CALL_TIMEOUT, call(client)).await {
                Ok(Ok(v)) => {
                    self.preferred.store(i, Ordering::Relaxed);
                    return Ok(v);
                }
                Ok(Err(status)) => last = Some(format!("{}: {}", self.addrs[i], status.message())),
                Err(_) => last = Some(format!("{}: timed out", self.addrs[i])),
            }
        }
        Err(ClusterError::Unavailable(last.unwrap_or_else(|| "no coordinator configured".into())))
    }
}

impl GrpcCluster {
    /// A linearizable read of the task log, answered by the leader without shipping the state.
    async fn query_tasks<T: serde::de::DeserializeOwned>(&self, q: TaskQuery) -> Result<T, ClusterError> {
        let query = serde_json::to_vec(&q).map_err(unavailable)?;
        let reply = self
            .with_failover(|mut c| {
                let query = query.clone();
                async move { c.query_tasks(TaskQueryRequest { query }).await }
            })
            .await?;
        serde_json::from_slice(&reply.into_inner().result).map_err(unavailable)
    }
}

impl Cluster for GrpcCluster {
    fn propose(&self, cmd: Command) -> BoxFuture<'_, Result<(Response, u64), ClusterError>> {
        async move {
            let command = serde_json::to_vec(&cmd).map_err(unavailable)?;
            let reply = self
                .with_failover(|mut c| {
                    let command = command.clone();
                    async move { c.propose(ProposeRequest { command }).await }
                })
                .await?
                .into_inner();
            match reply.outcome {
                Some(propose_reply::Outcome::Response(bytes)) => {
                    let response: Response = serde_json::from_slice(&bytes).map_err(unavailable)?;
                    Ok((response, reply.log_index))
                }
                Some(propose_reply::Outcome::Rejected(bytes)) => {
                    let e: CommandError = serde_json::from_slice(&bytes).map_err(unavailable)?;
                    Err(ClusterError::Rejected(e))
                }
                None => Err(unavailable("empty propose reply")),
            }
        }
        .boxed()
    }

    fn watch(&self, from_version: u64) -> BoxStream<'static, Result<Arc<RoutingMap>, ClusterError>> {
        let this = Self::new(self.addrs.clone());
        this.preferred.store(self.preferred.load(Ordering::Relaxed), Ordering::Relaxed);
        async move {
            let stream = this.with_failover(|mut c| async move { c.watch(WatchRequest { from_version }).await }).await;
            match stream {
                Ok(s) => s
                    .into_inner()
                    .map(|item| {
                        let update = item.map_err(|s| unavailable(s.message()))?;
                        let map: RoutingMap = serde_json::from_slice(&update.map).map_err(unavailable)?;
                        Ok(Arc::new(map))
                    })
                    .boxed(),
                Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
            }
        }
        .flatten_stream()
        .boxed()
    }

    fn task(&self, uid: u64) -> BoxFuture<'_, Result<Option<Task>, ClusterError>> {
        self.query_tasks(TaskQuery::One { uid }).boxed()
    }

    fn tasks(
        &self,
        filter: TaskFilter,
        from: Option<u64>,
        limit: usize,
        reverse: bool,
    ) -> BoxFuture<'_, Result<TaskPage, ClusterError>> {
        self.query_tasks(TaskQuery::Page { filter: Box::new(filter), from, limit, reverse }).boxed()
    }
}
