//! Client of the cluster API for miroirctl, tests and benchmarks: tries each coordinator address
//! in turn until one answers (any peer serves; followers forward to the leader).

use std::time::{Duration, Instant};

use miroir::proto::cluster_service_client::ClusterServiceClient;
use miroir::proto::{self as pb, propose_reply::Outcome};
use miroir::{ClusterState, Command, CommandError, Response};
use miroir_raft_store::runtime::proposal_id;
use tonic::transport::Channel;

use crate::error::{Error, Result};

#[derive(Clone)]
pub struct Client {
    peers: Vec<(String, ClusterServiceClient<Channel>)>,
    timeout: Duration,
}

/// A proposal's definite answer: committed and applied, or refused by `apply`.
pub type Applied = std::result::Result<Response, CommandError>;

impl Client {
    pub fn new<S: AsRef<str>>(addrs: &[S]) -> Result<Self> {
        if addrs.is_empty() {
            return Err(Error::invalid("no coordinator address"));
        }
        let peers = addrs
            .iter()
            .map(|a| {
                let ch = crate::network::channel(a.as_ref()).map_err(Error::invalid)?;
                Ok((a.as_ref().to_string(), crate::network::cluster_client(ch)))
            })
            .collect::<Result<_>>()?;
        Ok(Client { peers, timeout: Duration::from_secs(15) })
    }

    pub fn with_timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Calls `f` on each peer until one answers something other than "unavailable", for at most
    /// `miroir::proposal::RETRY_WINDOW_SECS` in all: a retried proposal must reach the log while the
    /// original is still remembered there.
    async fn any<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: Fn(ClusterServiceClient<Channel>) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        let deadline = Instant::now() + Duration::from_secs(miroir::proposal::RETRY_WINDOW_SECS);
        let mut errors = Vec::new();
        for (addr, c) in &self.peers {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                errors.push(format!("{addr}: not tried, retry window over"));
                continue;
            }
            let t = self.timeout.min(left);
            match tokio::time::timeout(t, f(c.clone())).await {
                Ok(Ok(r)) => return Ok(r.into_inner()),
                Ok(Err(s)) if s.code() != tonic::Code::Unavailable => return Err(s.into()),
                Ok(Err(s)) => errors.push(format!("{addr}: {}", s.message())),
                Err(_) => errors.push(format!("{addr}: no answer within {t:?}")),
            }
        }
        Err(Error::unavailable(errors.join("; ")))
    }

    /// Commits `cmd` under a fresh proposal id, kept across every retry of this call.
    pub async fn propose(&self, cmd: &Command) -> Result<(Applied, u64)> {
        self.propose_with_id(&proposal_id(), cmd).await
    }

    /// Commits `cmd` as proposal `id`: proposing the same id again (to any peer) answers the first
    /// answer and changes nothing.
    pub async fn propose_with_id(&self, id: &str, cmd: &Command) -> Result<(Applied, u64)> {
        let command = serde_json::to_vec(cmd).map_err(Error::internal)?;
        let r = self
            .any(|mut c| {
                let req = pb::ProposeRequest { command: command.clone(), proposal_id: id.to_string() };
                async move { c.propose(req).await }
            })
            .await?;
        let applied = match r.outcome {
            Some(Outcome::Response(b)) => Ok(serde_json::from_slice(&b).map_err(Error::internal)?),
            Some(Outcome::Rejected(b)) => Err(serde_json::from_slice(&b).map_err(Error::internal)?),
            None => return Err(Error::internal("reply without outcome")),
        };
        Ok((applied, r.log_index))
    }

    /// Registers gateway `id` with a lease of `lease_ms` (stamped by the leader's clock).
    pub async fn register_gateway(&self, id: &str, address: &str, lease_ms: u64) -> Result<pb::LeaseReply> {
        let pid = proposal_id();
        self.any(|mut c| {
            let req = pb::RegisterRequest {
                gateway_id: id.to_string(),
                address: address.to_string(),
                lease_ms,
                proposal_id: pid.clone(),
            };
            async move { c.register(req).await }
        })
        .await
    }

    /// Renews the lease of gateway `id`, acknowledging map version `acked` when given.
    pub async fn heartbeat_gateway(&self, id: &str, lease_ms: u64, acked: Option<u64>) -> Result<pb::LeaseReply> {
        let pid = proposal_id();
        self.any(|mut c| {
            let (gateway_id, proposal_id) = (id.to_string(), pid.clone());
            async move {
                match acked {
                    Some(acked_version) => {
                        c.ack(pb::AckRequest { gateway_id, lease_ms, acked_version, proposal_id }).await
                    }
                    None => c.heartbeat(pb::HeartbeatRequest { gateway_id, lease_ms, proposal_id }).await,
                }
            }
        })
        .await
    }

    pub async fn get_state(&self) -> Result<(ClusterState, u64)> {
        let r = self.any(|mut c| async move { c.get_state(pb::GetStateRequest {}).await }).await?;
        Ok((serde_json::from_slice(&r.state).map_err(Error::internal)?, r.applied_index))
    }

    /// Each configured peer's own applied state bytes (None = did not answer), for convergence checks.
    pub async fn local_states(&self) -> Vec<(String, Option<pb::GetStateReply>)> {
        let mut out = Vec::new();
        for (addr, c) in &self.peers {
            let mut c = c.clone();
            let r = tokio::time::timeout(Duration::from_secs(2), c.local_state(pb::LocalStateRequest {})).await;
            out.push((addr.clone(), r.ok().and_then(|r| r.ok()).map(|r| r.into_inner())));
        }
        out
    }

    pub async fn status(&self) -> Result<pb::StatusReply> {
        self.any(|mut c| async move { c.status(pb::StatusRequest {}).await }).await
    }

    /// Status of every configured address (None = did not answer).
    pub async fn status_all(&self) -> Vec<(String, Option<pb::StatusReply>)> {
        let mut out = Vec::new();
        for (addr, c) in &self.peers {
            let mut c = c.clone();
            let r = tokio::time::timeout(Duration::from_secs(2), c.status(pb::StatusRequest {})).await;
            out.push((addr.clone(), r.ok().and_then(|r| r.ok()).map(|r| r.into_inner())));
        }
        out
    }

    pub async fn add_peer(&self, id: u64, addr: &str) -> Result<pb::MembershipReply> {
        let addr = addr.to_string();
        self.any(|mut c| {
            let addr = addr.clone();
            async move { c.add_peer(pb::AddPeerRequest { id, addr }).await }
        })
        .await
    }

    pub async fn remove_peer(&self, id: u64) -> Result<pb::MembershipReply> {
        self.any(|mut c| async move { c.remove_peer(pb::RemovePeerRequest { id }).await }).await
    }

    /// Opens a watch on the first peer that accepts it.
    pub async fn watch(&self, from_version: u64) -> Result<tonic::Streaming<pb::MapUpdate>> {
        self.any(|mut c| async move { c.watch(pb::WatchRequest { from_version }).await }).await
    }
}
