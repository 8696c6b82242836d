//! Client of the cluster API for miroirctl, tests and benchmarks: tries each coordinator address
//! in turn until one answers (any peer serves; followers forward to the leader).

use std::time::Duration;

use miroir::proto::cluster_service_client::ClusterServiceClient;
use miroir::proto::{self as pb, propose_reply::Outcome};
use miroir::{ClusterState, Command, CommandError, Response};
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
                Ok((a.as_ref().to_string(), ClusterServiceClient::new(ch)))
            })
            .collect::<Result<_>>()?;
        Ok(Client { peers, timeout: Duration::from_secs(15) })
    }

    pub fn with_timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Calls `f` on each peer until one answers something other than "unavailable".
    async fn any<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: Fn(ClusterServiceClient<Channel>) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        let mut errors = Vec::new();
        for (addr, c) in &self.peers {
            match tokio::time::timeout(self.timeout, f(c.clone())).await {
                Ok(Ok(r)) => return Ok(r.into_inner()),
                Ok(Err(s)) if s.code() != tonic::Code::Unavailable => return Err(s.into()),
                Ok(Err(s)) => errors.push(format!("{addr}: {}", s.message())),
                Err(_) => errors.push(format!("{addr}: no answer within {:?}", self.timeout)),
            }
        }
        Err(Error::unavailable(errors.join("; ")))
    }

    pub async fn propose(&self, cmd: &Command) -> Result<(Applied, u64)> {
        let command = serde_json::to_vec(cmd).map_err(Error::internal)?;
        let r = self
            .any(|mut c| {
                let command = command.clone();
                async move { c.propose(pb::ProposeRequest { command }).await }
            })
            .await?;
        let applied = match r.outcome {
            Some(Outcome::Response(b)) => Ok(serde_json::from_slice(&b).map_err(Error::internal)?),
            Some(Outcome::Rejected(b)) => Err(serde_json::from_slice(&b).map_err(Error::internal)?),
            None => return Err(Error::internal("reply without outcome")),
        };
        Ok((applied, r.log_index))
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
