//! The gateway's coordinator client over gRPC. Any peer serves any call (followers forward writes
//! to the leader); on a transport error or `Unavailable` the next address is tried.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use miroir::proposal::RETRY_WINDOW_SECS;
use miroir::proto::cluster_service_client::ClusterServiceClient;
use miroir::proto::{
    propose_reply, AckRequest, GetStateRequest, HeartbeatRequest, LeaseReply, ProposeRequest, RegisterRequest,
    TaskQueryRequest, WatchRequest, MAX_MESSAGE_BYTES,
};
use miroir::task::{Task, TaskFilter, TaskPage, TaskQuery};
use miroir::{ClusterState, Command, CommandError, Response, RoutingMap};
use tokio::sync::Mutex;
use tonic::transport::{Channel, Endpoint};

use crate::cluster::{Cluster, ClusterError, Lease};

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
        let ch = match &channels[i] {
            Some(ch) => ch.clone(),
            None => {
                let addr = &self.addrs[i];
                let uri = if addr.starts_with("http") { addr.clone() } else { format!("http://{addr}") };
                let endpoint = Endpoint::from_shared(uri).map_err(unavailable)?.connect_timeout(Duration::from_secs(2));
                // Lazy: connecting happens on first use, and a dead peer fails that call only.
                let ch = endpoint.connect_lazy();
                channels[i] = Some(ch.clone());
                ch
            }
        };
        // Every client, new channel or cached: a state or task page may exceed tonic's 4 MiB default.
        Ok(ClusterServiceClient::new(ch)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES))
    }

    /// Runs `call` against each coordinator in turn, starting with the one that answered last, for
    /// at most `RETRY_WINDOW_SECS` in all (a retried proposal must reach the log while its first
    /// copy is still remembered there, see `miroir::proposal`).
    async fn with_failover<T, F, Fut>(&self, call: F) -> Result<T, ClusterError>
    where
        F: Fn(ClusterServiceClient<Channel>) -> Fut,
        Fut: std::future::Future<Output = Result<T, tonic::Status>>,
    {
        let n = self.addrs.len();
        let start = self.preferred.load(Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(RETRY_WINDOW_SECS);
        let mut last = None;
        for k in 0..n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let i = (start + k) % n;
            let client = self.client(i).await?;
            match tokio::time::timeout(CALL_TIMEOUT.min(left), call(client)).await {
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

    /// A lease call: NOT_FOUND (unknown gateway) and INVALID_ARGUMENT are answers, not outages.
    async fn lease<F, Fut>(&self, gateway: &str, call: F) -> Result<Lease, ClusterError>
    where
        F: Fn(ClusterServiceClient<Channel>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<LeaseReply>, tonic::Status>>,
    {
        let reply = self
            .with_failover(|c| {
                let call = call(c);
                async move {
                    match call.await {
                        Ok(r) => Ok(Ok(r.into_inner())),
                        Err(s) if matches!(s.code(), tonic::Code::NotFound | tonic::Code::InvalidArgument) => {
                            Ok(Err(s))
                        }
                        Err(s) => Err(s),
                    }
                }
            })
            .await?;
        match reply {
            Ok(r) => Ok(Lease { expires_at: r.lease_expires_at, log_index: r.log_index, map_version: r.map_version }),
            Err(s) if s.code() == tonic::Code::NotFound => {
                Err(ClusterError::Rejected(CommandError::GatewayNotFound(gateway.to_string())))
            }
            Err(s) => Err(ClusterError::Rejected(CommandError::InvalidArgument {
                what: "lease".into(),
                reason: s.message().to_string(),
            })),
        }
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
            // One id for every attempt: a proposal that reached the log before its reply was lost is
            // answered, not applied, when it arrives again.
            let proposal_id = uuid::Uuid::new_v4().to_string();
            let reply = self
                .with_failover(|mut c| {
                    let req = ProposeRequest { command: command.clone(), proposal_id: proposal_id.clone() };
                    async move { c.propose(req).await }
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

    fn register(&self, gateway: &str, address: &str, lease_ms: u64) -> BoxFuture<'_, Result<Lease, ClusterError>> {
        let (gateway, address) = (gateway.to_string(), address.to_string());
        let proposal_id = uuid::Uuid::new_v4().to_string();
        async move {
            self.lease(&gateway, |mut c| {
                let req = RegisterRequest {
                    gateway_id: gateway.clone(),
                    address: address.clone(),
                    lease_ms,
                    proposal_id: proposal_id.clone(),
                };
                async move { c.register(req).await }
            })
            .await
        }
        .boxed()
    }

    fn heartbeat(
        &self,
        gateway: &str,
        lease_ms: u64,
        acked: Option<u64>,
    ) -> BoxFuture<'_, Result<Lease, ClusterError>> {
        let gateway = gateway.to_string();
        let proposal_id = uuid::Uuid::new_v4().to_string();
        async move {
            self.lease(&gateway, |mut c| {
                let (gateway_id, proposal_id) = (gateway.clone(), proposal_id.clone());
                async move {
                    match acked {
                        Some(acked_version) => {
                            c.ack(AckRequest { gateway_id, lease_ms, acked_version, proposal_id }).await
                        }
                        None => c.heartbeat(HeartbeatRequest { gateway_id, lease_ms, proposal_id }).await,
                    }
                }
            })
            .await
        }
        .boxed()
    }

    fn task(&self, uid: u64) -> BoxFuture<'_, Result<Option<Task>, ClusterError>> {
        self.query_tasks(TaskQuery::One { uid }).boxed()
    }

    fn state(&self) -> BoxFuture<'_, Result<ClusterState, ClusterError>> {
        async move {
            let reply = self.with_failover(|mut c| async move { c.get_state(GetStateRequest {}).await }).await?;
            serde_json::from_slice(&reply.into_inner().state).map_err(unavailable)
        }
        .boxed()
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
