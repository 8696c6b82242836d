//! One coordinator peer: the Raft instance with its stores and network, the operations the cluster
//! API needs (propose with forwarding, linearizable read, membership), and the servers.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use miroir::proto::cluster_service_client::ClusterServiceClient;
use miroir::proto::{self as pb};
use miroir::{Command, Proposal};
use miroir_raft_store::openraft::async_runtime::WatchReceiver;
use miroir_raft_store::openraft::error::{ClientWriteError, LinearizableReadError, RaftError};
use miroir_raft_store::openraft::raft::ReadPolicy;
use miroir_raft_store::openraft::BasicNode;
use miroir_raft_store::runtime::proposal_id;
use miroir_raft_store::{NodeId, Raft, StateHandle};
use tonic::transport::Channel;

use crate::error::{Error, Result};

/// gRPC metadata key set on a request one peer forwards to the leader, so that a peer that is not
/// the leader any more answers "not leader" instead of forwarding again (no forwarding loops).
pub const FORWARDED: &str = "x-miroir-forwarded";
/// Message prefix of the Unavailable status a forwarded request gets from a peer that is not leader:
/// the forwarding peer knows nothing was proposed and may retry safely.
pub const NOT_LEADER: &str = "not the leader";

/// A shift of this peer's wall clock, for fault-injection tests (`--clock-offset-ms`); 0 otherwise.
static CLOCK_OFFSET_MS: AtomicI64 = AtomicI64::new(0);

pub fn set_clock_offset_ms(ms: i64) {
    CLOCK_OFFSET_MS.store(ms, Ordering::Relaxed);
}

/// This peer's wall clock, in ms since the Unix epoch.
pub fn now_ms() -> u64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    now.saturating_add_signed(CLOCK_OFFSET_MS.load(Ordering::Relaxed))
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
        let c = crate::network::cluster_client(crate::network::channel(addr).map_err(Error::internal)?);
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

    /// Commits `cmd` through Raft under a fresh proposal id (for the coordinator's own proposals).
    pub async fn propose(&self, cmd: Command, forwarded: bool) -> Result<Proposed> {
        self.propose_once(Proposal::new(Some(proposal_id()), cmd), forwarded).await
    }

    /// Commits a proposal through Raft. Concurrent callers are batched by openraft, not serialised
    /// here. Forwarding is retried after any failure, which is safe because the proposal keeps its
    /// id: a copy that reaches the log twice is applied once (see `miroir::proposal`).
    pub async fn propose_once(&self, mut p: Proposal, forwarded: bool) -> Result<Proposed> {
        let started = Instant::now();
        if p.id.is_none() {
            p.id = Some(proposal_id());
        }
        let command = serde_json::to_vec(&p.command).map_err(Error::internal)?;
        let proposal_id = p.id.clone().unwrap_or_default();
        let r = self
            .on_leader(
                "proposal",
                self.inner.timeout,
                forwarded,
                || self.write_local(p.clone()),
                |mut c| {
                    let req = pb::ProposeRequest { command: command.clone(), proposal_id: proposal_id.clone() };
                    let mut req = tonic::Request::new(req);
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

    /// On the leader: appends `p` and waits until it is applied.
    async fn write_local(&self, p: Proposal) -> Result<Option<Proposed>> {
        Ok(self
            .write_applied(p)
            .await?
            .map(|a| Proposed { log_index: a.log_index, outcome: crate::outcome(&a.result) }))
    }

    async fn write_applied(&self, p: Proposal) -> Result<Option<miroir::Applied>> {
        match self.inner.raft.client_write(p).await {
            Ok(resp) => Ok(Some(resp.data)),
            // Nothing was appended: safe to route again.
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => Err(Error::unavailable(NOT_LEADER)),
            Err(e) => Err(e.into()),
        }
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
                    let (result, applied) = self.inner.state.read_at(|s| q.run(&s.tasks));
                    let result = result.map_err(Error::internal)?;
                    Ok(Some(pb::TaskQueryReply { result, applied_index: applied.max(read) }))
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
                let (state, applied) = self.inner.state.read_at(serde_json::to_vec);
                let state = state.map_err(Error::internal)?;
                Ok(Some(pb::GetStateReply { state, applied_index: applied.max(read) }))
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
        let (state, applied_index) = self.inner.state.read_at(serde_json::to_vec);
        Ok(pb::GetStateReply { state: state.map_err(Error::internal)?, applied_index })
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
            snapshot_index: m.snapshot.map(|l| l.index).unwrap_or(0),
            purged_index: m.purged.map(|l| l.index).unwrap_or(0),
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

    /// Registers a gateway or renews its lease. The lease starts at a time read on the leader, in
    /// the leader-local path (a forwarding peer forwards the request, not a timestamp): the leader's
    /// controllers judge expiry by the same clock, so only the skew between coordinator peers
    /// matters, never a gateway's clock.
    pub async fn lease(&self, req: LeaseRequest, forwarded: bool) -> Result<pb::LeaseReply> {
        if req.gateway.is_empty() {
            return Err(Error::invalid("gateway_id is empty"));
        }
        if req.lease_ms == 0 {
            return Err(Error::invalid("lease_ms must be > 0"));
        }
        // One id for every retry of this request, so a retried renewal is committed once.
        let id = req.id.clone().unwrap_or_else(proposal_id);
        self.on_leader(
            "lease",
            self.inner.timeout,
            forwarded,
            || {
                let (req, id) = (req.clone(), id.clone());
                async move {
                    let cmd = req.command(now_ms());
                    let Some(a) = self.write_applied(Proposal::new(Some(id), cmd)).await? else { return Ok(None) };
                    match a.result {
                        Ok(miroir::Response::Lease { expires_at, map_version }) => Ok(Some(pb::LeaseReply {
                            lease_expires_at: expires_at,
                            log_index: a.log_index,
                            map_version,
                        })),
                        Ok(other) => Err(Error::internal(format!("lease command answered {other:?}"))),
                        Err(e @ miroir::CommandError::GatewayNotFound(_)) => Err(Error::NotFound(e.to_string())),
                        Err(e) => Err(Error::invalid(e)),
                    }
                }
            },
            |mut c| {
                let req = LeaseRequest { id: Some(id.clone()), ..req.clone() };
                async move {
                    let proposal_id = req.id.unwrap_or_default();
                    let r = match req.op {
                        LeaseOp::Register { address } => {
                            let mut r = tonic::Request::new(pb::RegisterRequest {
                                gateway_id: req.gateway,
                                address,
                                lease_ms: req.lease_ms,
                                proposal_id,
                            });
                            r.metadata_mut().insert(FORWARDED, "1".parse().expect("ascii"));
                            c.register(r).await?
                        }
                        LeaseOp::Heartbeat { acked_version: None } => {
                            let mut r = tonic::Request::new(pb::HeartbeatRequest {
                                gateway_id: req.gateway,
                                lease_ms: req.lease_ms,
                                proposal_id,
                            });
                            r.metadata_mut().insert(FORWARDED, "1".parse().expect("ascii"));
                            c.heartbeat(r).await?
                        }
                        LeaseOp::Heartbeat { acked_version: Some(acked_version) } => {
                            let mut r = tonic::Request::new(pb::AckRequest {
                                gateway_id: req.gateway,
                                lease_ms: req.lease_ms,
                                acked_version,
                                proposal_id,
                            });
                            r.metadata_mut().insert(FORWARDED, "1".parse().expect("ascii"));
                            c.ack(r).await?
                        }
                    };
                    Ok(r.into_inner())
                }
            },
        )
        .await
    }
}

/// A gateway lease call, as the cluster API receives it.
#[derive(Clone, Debug)]
pub struct LeaseRequest {
    /// The caller's proposal id, kept across its retries (one is drawn when it gives none).
    pub id: Option<String>,
    pub gateway: String,
    pub lease_ms: u64,
    pub op: LeaseOp,
}

#[derive(Clone, Debug)]
pub enum LeaseOp {
    Register {
        address: String,
    },
    /// A renewal, acknowledging an installed map version when given.
    Heartbeat {
        acked_version: Option<u64>,
    },
}

impl LeaseRequest {
    pub fn command(self, at: u64) -> Command {
        let (id, lease_ms) = (self.gateway, self.lease_ms);
        match self.op {
            LeaseOp::Register { address } => Command::RegisterGateway { id, address, at, lease_ms },
            LeaseOp::Heartbeat { acked_version } => Command::GatewayHeartbeat { id, at, lease_ms, acked_version },
        }
    }
}

fn is_connect_error(s: &tonic::Status) -> bool {
    // A refused connection never reached the leader. (Other failures are retried too, by the caller:
    // a proposal keeps its id across retries, so one that did reach the log is not applied twice.)
    let m = s.message().to_ascii_lowercase();
    m.contains("connect") || m.contains("refused") || m.contains("transport")
}

/// Initial membership from `--peers`.
pub fn initial_members(peers: &BTreeMap<u64, String>) -> BTreeMap<NodeId, BasicNode> {
    peers.iter().map(|(id, addr)| (*id, BasicNode { addr: addr.clone() })).collect()
}
