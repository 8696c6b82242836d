//! Starts one coordinator peer: stores, Raft, gRPC servers, bootstrap, controllers, metrics.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use miroir::proto::cluster_service_server::ClusterServiceServer;
use miroir::proto::raft_service_server::RaftServiceServer;
use miroir::proto::MAX_MESSAGE_BYTES;
use miroir_raft_store::openraft::error::{InitializeError, RaftError};
use miroir_raft_store::openraft::SnapshotPolicy;
use miroir_raft_store::{NodeId, Raft, StateHandle};

use crate::cluster_service::ClusterServer;
use crate::network::Network;
use crate::node::{initial_members, Coordinator};
use crate::raft_service::RaftServer;

/// What a peer needs besides its store; the CLI's `Config` maps onto it, the simulation builds it.
#[derive(Clone, Debug)]
pub struct PeerOptions {
    pub id: NodeId,
    pub listen: SocketAddr,
    pub peers: BTreeMap<NodeId, String>,
    pub heartbeat: Duration,
    pub election_min: Duration,
    pub election_max: Duration,
    pub proposal_timeout: Duration,
    /// A snapshot is built after this many log entries since the last one.
    pub snapshot_every: u64,
    /// Entries already in a snapshot kept in the log anyway, so that a peer only a little behind
    /// catches up by replication rather than by a whole snapshot.
    pub keep_logs: u64,
}

impl PeerOptions {
    /// The defaults of the CLI for what it does not set.
    pub const SNAPSHOT_EVERY: u64 = 5_000;
    pub const KEEP_LOGS: u64 = 1_000;
}

pub fn raft_config(o: &PeerOptions) -> anyhow::Result<miroir_raft_store::openraft::Config> {
    let c = miroir_raft_store::openraft::Config {
        cluster_name: "miroir".into(),
        heartbeat_interval: o.heartbeat.as_millis() as u64,
        election_timeout_min: o.election_min.as_millis() as u64,
        election_timeout_max: o.election_max.as_millis() as u64,
        // The state is small: snapshot often enough that a rejoining peer does not replay hours of log.
        snapshot_policy: SnapshotPolicy::LogsSinceLast(o.snapshot_every),
        max_in_snapshot_log_to_keep: o.keep_logs,
        ..Default::default()
    };
    Ok(c.validate()?)
}

pub struct Peer {
    pub coord: Coordinator,
    pub raft: Raft,
}

/// Builds Raft over the given stores and starts serving. Returns once the server is listening and
/// bootstrap was attempted; everything else runs in spawned tasks.
pub async fn start<LS>(
    o: PeerOptions,
    log_store: LS,
    state_machine: miroir_raft_store::StateMachine,
    state: StateHandle,
    controllers: Vec<crate::controller::TaskFactory>,
) -> anyhow::Result<Peer>
where
    LS: miroir_raft_store::openraft::storage::RaftLogStorage<miroir_raft_store::TypeConfig>,
{
    let config = Arc::new(raft_config(&o)?);
    let raft = Raft::new(o.id, config, Network, log_store, state_machine).await?;
    let coord = Coordinator::new(o.id, raft.clone(), state.clone(), o.proposal_timeout);

    let raft_svc = RaftServiceServer::new(RaftServer::new(raft.clone()));
    let cluster_svc =
        ClusterServiceServer::new(ClusterServer::new(coord.clone(), crate::watch::MapHistory::follow(&state)));
    // One limit for every Miroir client and server (see `MAX_MESSAGE_BYTES`).
    let (raft_svc, cluster_svc) = (
        raft_svc.max_decoding_message_size(MAX_MESSAGE_BYTES).max_encoding_message_size(MAX_MESSAGE_BYTES),
        cluster_svc.max_decoding_message_size(MAX_MESSAGE_BYTES).max_encoding_message_size(MAX_MESSAGE_BYTES),
    );
    let server = tonic::transport::Server::builder().add_service(raft_svc).add_service(cluster_svc);
    #[cfg(not(madsim))]
    {
        let listener = tokio::net::TcpListener::bind(o.listen).await?;
        let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        tokio::spawn(async move {
            if let Err(e) = server.serve_with_incoming(incoming).await {
                tracing::error!(error = %e, "gRPC server stopped");
            }
        });
    }
    #[cfg(madsim)]
    {
        let addr = o.listen;
        tokio::spawn(async move {
            if let Err(e) = server.serve(addr).await {
                tracing::error!(error = %e, "gRPC server stopped");
            }
        });
    }

    bootstrap(&raft, &o).await?;
    tokio::spawn(crate::metrics::follow_raft(raft.clone(), state));
    tokio::spawn(crate::controller::supervise(coord.clone(), controllers, Duration::from_secs(1)));
    Ok(Peer { coord, raft })
}

/// Only the lowest id of the initial list initialises, and only a fresh store: every peer gets the
/// same `--peers`, so no operator step is needed, and a restart never re-initialises.
async fn bootstrap(raft: &Raft, o: &PeerOptions) -> anyhow::Result<()> {
    if o.peers.keys().next() != Some(&o.id) || raft.is_initialized().await? {
        return Ok(());
    }
    match raft.initialize(initial_members(&o.peers)).await {
        Ok(()) => {
            tracing::info!(peers = ?o.peers, "initialised the cluster");
            Ok(())
        }
        Err(RaftError::APIError(InitializeError::NotAllowed(e))) => {
            tracing::info!(reason = %e, "cluster already initialised");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
