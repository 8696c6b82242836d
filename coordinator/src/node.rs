//! One coordinator peer: the Raft instance with its stores and network, the operations the cluster
//! API needs (propose with forwarding, linearizable read, membership), and the servers.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use miroir::proto::cluster_service_client::ClusterServiceClient;
use miroir::proto::{self as pb};
use miroir::Command;
use miroir_raft_store::openraft::async_runtime::WatchReceiver;
use miroir_raft_store::openraft::error::{ClientWriteError, LinearizableReadError, RaftError};
use miroir_raft_store::openraft::raft::ReadPolicy;
use miroir_raft_store::openraft::BasicNode;
use miroir_raft_store::{NodeId, Raft, StateHandle};
use tonic::transport::Channel;

use crate::error::{Error, Result};

/// gRPC metadata key set on a request one peer forwards to the leader, so that a peer that is not
/// the leader any more answers "not leader" instead of forwarding again (no forwarding loops).
pub const FORWARDED: &str = "x-miroir-forwarded";
/// Message prefix of the Unavailable status a forwarded request gets from a peer that is not leader:
/// the forwarding peer knows nothing was proposed and may retry safely.
pub const NOT_LEADER: &str = "not the leader";

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// What a committed (or refused) proposal answers.
pub struct Proposed {
    pub log_index: u64,
    pub outcome: pb::propose_reply::Outcome,
}

#[derive(Clone)]
pub struct Coordinator {
    inner: Arc<Inner>,
}

struct Inner {
    id: NodeId,
    raft: Raft,
    state: StateHandle,
    timeout: Duration,
    clients: Mutex<HashMap<String, ClusterServiceClient<Channel>>>,
}

enum Route {
    Local,
    Leader(String),
    NoLeader,
}

impl Coordinator {
    pub fn new(id: NodeId, raft: Raft, state: StateHandle, timeout: Duration) -> Self {
        Coordinator { inner: Arc::new(Inner { id, raft, state, timeout, clients: Mutex::default() }) }
    }

    pub fn id(&self) -> NodeId {
        self.inner.id
    }
    pub fn raft(&self) -> &Raft {
        &self.inner.raft
    }
    pub fn state(&self) -> &StateHandle {
        &self.inner.state
    }
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    fn route(&self) -> Route {
        let m = self.inner.raft.metrics().borrow_watched().clone();
        match m.current_leader {
            Some(l) if l == self.inner.id => Route::Local,
            Some(l) => match m.membership_config.membership().get_node(&l) {
                Some(n) => Route::Leader(n.addr.clone()),
                None => Route::NoLeader,
            },
            None => Route::NoLeader,
        }
    }

    pub fn leader_client(&self, addr: &str) -> Result<ClusterServiceClient<Channel>> {
        let mut clients = self.inner.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients.get(addr) {
            return Ok(c.clone());
        }
        let c = ClusterServiceClient::new(crate::network::channel(addr).map_err(Error::internal)?);
        clients.insert(addr.to_string(), c.clone());
        Ok(c)
    }

    /// Runs `op` where the leader is: locally, or forwarded to it. Retries while there is no leader
    /// or the presumed leader says it is not one, until the proposal timeout: then "unavailable".
    async fn on_leader<T, L, LF, F, FF>(
        &self,
        what: &str,
        timeout: Duration,
        forwarded: bool,
        local: L,
        forward: F,
    ) -> Result<T>
    where
        L: Fn() -> LF,
        LF: std::future::Future<Output = Result<Option<T>>>,
        F: Fn(ClusterServiceClient<Channel>) -> FF,
        FF: std::future::Future<Output = std::result::Result<T, tonic::Status>>,
    {
        let deadline = Instant::now() + timeout;
        let mut last = String::from("no leader elected");
        loop {
            let attempt = async {
                match self.route() {
                    Route::Local => local().await,
                    Route::Leader(_) | Route::NoLeader if forwarded => Err(Error::unavailable(NOT_LEADER)),
                    Route::Leader(addr) => match forward(self.leader_client(&addr)?).await {
                        Ok(v) => Ok(Some(v)),
                        Err(s) if s.code() == tonic::Code::Unavailable && s.message().starts_with(NOT_LEADER) => {
                            Ok(None)
                        }
                        Err(s) if s.code() == tonic::Code::Unavailable && is_connect_error(&s) => Ok(None),
                        Err(s) => Err(s.into()),
                    },
                    Route::NoLeader => Ok(None),
                }
            };
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, attempt).await {
                Ok(Ok(Some(v))) => return Ok(v),
                Ok(Ok(None)) => {}
                Ok(Err(Error::Unavailable(m))) if !forwarded => last = m,
                Ok(Err(e)) => return Err(e),
                Err(_) => {}
            }
            if Instant::now() + Duration::from_millis(20) >= deadline {
                return Err(Error::unavailable(format!("no quorum: {what} not done within {timeout:?} ({last})")));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Commits `cmd` through Raft. Concurrent callers are batched by openraft, not serialised here.
    pub async fn propose(&self, cmd: Command, forwarded: bool) -> Result<Proposed> {
        let started = Instant::now();
        let bytes = serde_json::to_vec(&cmd).map_err(Error::internal)?;
        let r = self
            .on_leader(
                "proposal",
                self.inner.timeout,
                forwarded,
                || {
                    let cmd = cmd.clone();
                    async move {
                        match self.inner.raft.client_write(cmd).await {
                            Ok(resp) => {
                                Ok(Some(Proposed { log_index: resp.log_id.index, outcome: crate::outcome(&resp.data) }))
                            }
                            // Nothing was appended: safe to route again.
                            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {
                                Err(Error::unavailable(NOT_LEADER))
                            }
                            Err(e) => Err(e.into()),
                        }
                    }
                },
                |mut c| {
                    let mut req = tonic::Request::new(pb::ProposeRequest { command: bytes.clone() });
                    req.metadata_mut().insert(FORWARDED, "1".parse().expect("ascii"));
                    async move {
                        let r = c.propose(req).await?.into_inner();
                        let outcome = r.outcome.ok_or_else(|| tonic::Status::internal("reply without outcome"))?;
                        Ok(Proposed { log_index: r.log_index, outcome })
                    }
                },
            )
            .await;
        crate::metrics::proposal(started.elapsed(), r.is_ok());
        r
    }

    /// On the leader: a read index confirmed by a quorum, then waits until it is applied here.
    async fn read_barrier(&self) -> Result<u64> {
        let read = match self.inner.raft.ensure_linearizable(ReadPolicy::ReadIndex).await {
            Ok(r) => r.index(),
            Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(_))) => {
                return Err(Error::unavailable(NOT_LEADER))
            }
            Err(e) => return Err(Error::unavailable(e)),
        };
        let mut applied = self.inner.state.applied_watch();
        applied.wait_for(|a| *a >= read).await.map_err(Error::internal)?;
        Ok(read)
    }

    /// Linearizable read of one task or a page of tasks (see `miroir::task::TaskQuery`).
    pub async fn query_tasks(&self, query: Vec<u8>, forwarded: bool) -> Result<pb::TaskQueryReply> {
        let q: miroir::task::TaskQuery = serde_json::from_slice(&query).map_err(Error::invalid)?;
        self.on_leader(
            "task query",
            self.inner.timeout,
            forwarded,
            || {
                let q = q.clone();
                async move {
                    let read = self.read_barrier().await?;
                    let result = self.inner.state.read(|s| q.run(&s.tasks)).map_err(Error::internal)?;
                    Ok(Some(pb::TaskQueryReply { result, applied_index: self.inner.state.last_applied().max(read) }))
                }
            },
            |mut c| {
                let mut req = tonic::Request::new(pb::TaskQueryRequest { query: query.clone() });
                req.metadata_mut().insert(FORWARDED, "1".parse().expect("ascii"));
                async move { Ok(c.query_tasks(req).await?.into_inner()) }
            },
        )
        .await
    }

    /// Linearizable read: read index confirmed by a quorum on the leader, then applied locally.
    pub async fn get_state(&self, forwarded: bool) -> Result<pb::GetStateReply> {
        self.on_leader(
            "linearizable read",
            self.inner.timeout,
            forwarded,
            || async move {
                let read = self.read_barrier().await?;
                let state = self.inner.state.read(serde_json::to_vec).map_err(Error::internal)?;
                Ok(Some(pb::GetStateReply { state, applied_index: self.inner.state.last_applied().max(read) }))
            },
            |mut c| async move {
                let mut req = tonic::Request::new(pb::GetStateRequest {});
                req.metadata_mut().insert(FORWARDED, "1".parse().expect("ascii"));
                Ok(c.get_state(req).await?.into_inner())
            },
        )
        .await
    }

    pub fn local_state(&self) -> Result<pb::GetStateReply> {
        let applied_index = self.inner.state.last_applied();
        let state = self.inner.state.read(serde_json::to_vec).map_err(Error::internal)?;
        Ok(pb::GetStateReply { state, applied_index })
    }

    pub fn members(&self) -> Vec<pb::Peer> {
        let m = self.inner.raft.metrics().borrow_watched().clone();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        membership
            .nodes()
            .map(|(id, n)| pb::Peer { id: *id, addr: n.addr.clone(), voter: voters.contains(id) })
            .collect()
    }

    pub fn status(&self) -> pb::StatusReply {
        let m = self.inner.raft.metrics().borrow_watched().clone();
        let leader = m.current_leader.unwrap_or(0);
        let leader_addr =
            m.membership_config.membership().get_node(&leader).map(|n| n.addr.clone()).unwrap_or_default();
        pb::StatusReply {
            id: self.inner.id,
            leader,
            leader_addr,
            term: m.current_term,
            commit_index: m.local_committed.map(|l| l.index).unwrap_or(0),
            applied_index: m.last_applied.map(|l| l.index).unwrap_or(0),
            map_version: self.inner.state.read(|s| s.map_version),
            members: self.members(),
            state: format!("{:?}", m.state),
        }
    }

    /// Adds a voter: learner first (blocks until it caught up), then a joint-consensus change.
    pub async fn add_peer(&self, id: NodeId, addr: String, forwarded: bool) -> Result<pb::MembershipReply> {
        let addr2 = addr.clone();
        self.membership(
            "add peer",
            forwarded,
            move |raft| {
                let addr = addr.clone();
                async move {
                    raft.add_learner(id, BasicNode { addr }, true).await?;
                    let mut voters: BTreeSet<NodeId> = raft.voter_ids().collect();
                    voters.insert(id);
                    Ok(raft.change_membership(voters, false).await?.log_id.index)
                }
            },
            move |mut c| {
                let mut req = tonic::Request::new(pb::AddPeerRequest { id, addr: addr2.clone() });
                req.metadata_mut().insert(FORWARDED, "1".parse().expect("ascii"));
                async move { Ok(c.add_peer(req).await?.into_inner()) }
            },
        )
        .await
    }

    pub async fn remove_peer(&self, id: NodeId, forwarded: bool) -> Result<pb::MembershipReply> {
        self.membership(
            "remove peer",
            forwarded,
            move |raft| async move {
                let mut voters: BTreeSet<NodeId> = raft.voter_ids().collect();
                if !voters.remove(&id) {
                    return Err(Error::invalid(format!("peer {id} is not a voter")));
                }
                if voters.is_empty() {
                    return Err(Error::invalid("cannot remove the last voter"));
                }
                Ok(raft.change_membership(voters, false).await?.log_id.index)
            },
            move |mut c| {
                let mut req = tonic::Request::new(pb::RemovePeerRequest { id });
                req.metadata_mut().insert(FORWARDED, "1".parse().expect("ascii"));
                async move { Ok(c.remove_peer(req).await?.into_inner()) }
            },
        )
        .await
    }

    async fn membership<L, LF, F, FF>(
        &self,
        what: &str,
        forwarded: bool,
        local: L,
        forward: F,
    ) -> Result<pb::MembershipReply>
    where
        L: Fn(Raft) -> LF,
        LF: std::future::Future<Output = Result<u64>>,
        F: Fn(ClusterServiceClient<Channel>) -> FF,
        FF: std::future::Future<Output = std::result::Result<pb::MembershipReply, tonic::Status>>,
    {
        // A learner catching up may take longer than a proposal: membership gets a longer bound.
        self.on_leader(
            what,
            self.inner.timeout * 6,
            forwarded,
            || async {
                let index = match local(self.inner.raft.clone()).await {
                    Ok(i) => i,
                    Err(Error::Unavailable(m)) if m.contains("forward") => return Err(Error::unavailable(NOT_LEADER)),
                    Err(e) => return Err(e),
                };
                Ok(Some(pb::MembershipReply { log_index: index, members: self.members() }))
            },
            forward,
        )
        .await
    }

    /// Gateway lease commands carry this peer's clock: `apply` itself never reads one.
    pub async fn lease(&self, cmd_for: impl FnOnce(u64) -> (Command, u64), forwarded: bool) -> Result<pb::LeaseReply> {
        let at = now_ms();
        let (cmd, lease_ms) = cmd_for(at);
        let p = self.propose(cmd, forwarded).await?;
        match p.outcome {
            pb::propose_reply::Outcome::Response(_) => {
                Ok(pb::LeaseReply { lease_expires_at: at + lease_ms, log_index: p.log_index })
            }
            pb::propose_reply::Outcome::Rejected(e) => Err(Error::invalid(String::from_utf8_lossy(&e))),
        }
    }
}

fn is_connect_error(s: &tonic::Status) -> bool {
    // A refused connection never reached the leader, so nothing can have been proposed.
    let m = s.message().to_ascii_lowercase();
    m.contains("connect") || m.contains("refused") || m.contains("transport")
}

/// Initial membership from `--peers`.
pub fn initial_members(peers: &BTreeMap<u64, String>) -> BTreeMap<NodeId, BasicNode> {
    peers.iter().map(|(id, addr)| (*id, BasicNode { addr: addr.clone() })).collect()
}
