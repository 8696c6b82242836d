//! Client side of the Raft transport: openraft's network v2 over tonic, one lazily connected
//! channel per peer, every RPC bounded by openraft's TTL, snapshots streamed in chunks.

use std::future::Future;
use std::time::Duration;

use miroir::proto::cluster_service_client::ClusterServiceClient;
use miroir::proto::raft_service_client::RaftServiceClient;
use miroir::proto::MAX_MESSAGE_BYTES;
use miroir::proto::{RaftPayload, SnapshotChunk};
use miroir_raft_store::openraft::error::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use miroir_raft_store::openraft::network::{RPCOption, RaftNetworkFactory};
use miroir_raft_store::openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use miroir_raft_store::openraft::{AnyError, BasicNode, OptionalSend, RaftNetworkV2};
use miroir_raft_store::{NodeId, SnapshotData, TypeConfig};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::transport::{Channel, Endpoint};

pub const SNAPSHOT_CHUNK: usize = 512 * 1024;

type Snapshot = miroir_raft_store::openraft::type_config::alias::SnapshotOf<TypeConfig, SnapshotData>;
type Vote = miroir_raft_store::openraft::type_config::alias::VoteOf<TypeConfig>;

/// Builds one connection per target peer; openraft asks for a new one after failures.
#[derive(Clone, Default)]
pub struct Network;

pub fn channel(addr: &str) -> Result<Channel, String> {
    let uri = if addr.contains("://") { addr.to_string() } else { format!("http://{addr}") };
    let ep = Endpoint::from_shared(uri).map_err(|e| format!("bad peer address `{addr}`: {e}"))?;
    #[cfg(not(madsim))]
    let ep = ep.connect_timeout(Duration::from_secs(1)).tcp_nodelay(true);
    Ok(ep.connect_lazy())
}

/// A cluster API client with Miroir's message size limit (a whole state can exceed tonic's 4 MiB).
pub fn cluster_client(ch: Channel) -> ClusterServiceClient<Channel> {
    ClusterServiceClient::new(ch)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

fn raft_client(ch: Channel) -> RaftServiceClient<Channel> {
    RaftServiceClient::new(ch).max_decoding_message_size(MAX_MESSAGE_BYTES).max_encoding_message_size(MAX_MESSAGE_BYTES)
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        PeerClient { target, client: channel(&node.addr).map(raft_client) }
    }
}

pub struct PeerClient {
    target: NodeId,
    client: Result<RaftServiceClient<Channel>, String>,
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, NetworkError<TypeConfig>> {
    serde_json::to_vec(v).map_err(|e| NetworkError::new(&e))
}

fn decode<T: DeserializeOwned>(b: &[u8]) -> Result<T, NetworkError<TypeConfig>> {
    serde_json::from_slice(b).map_err(|e| NetworkError::new(&e))
}

/// The server answers `Result<T, String>` so a remote Raft error arrives as text rather than as a
/// transport failure; openraft treats both as "retry later".
fn answer<T: DeserializeOwned>(payload: RaftPayload) -> Result<T, RPCError<TypeConfig>> {
    let r: Result<T, String> = decode(&payload.data)?;
    r.map_err(|m| RPCError::Network(NetworkError::new(&AnyError::error(m))))
}

fn status_err(s: tonic::Status) -> RPCError<TypeConfig> {
    if s.code() == tonic::Code::Unavailable {
        RPCError::Unreachable(Unreachable::new(&s))
    } else {
        RPCError::Network(NetworkError::new(&s))
    }
}

impl PeerClient {
    fn client(&self) -> Result<RaftServiceClient<Channel>, RPCError<TypeConfig>> {
        self.client.clone().map_err(|m| RPCError::Unreachable(Unreachable::new(&AnyError::error(m))))
    }

    async fn call<Req, Resp, F, Fut>(&self, req: &Req, ttl: Duration, f: F) -> Result<Resp, RPCError<TypeConfig>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        F: FnOnce(RaftServiceClient<Channel>, RaftPayload) -> Fut,
        Fut: Future<Output = Result<tonic::Response<RaftPayload>, tonic::Status>>,
    {
        let payload = RaftPayload { data: encode(req)? };
        let fut = f(self.client()?, payload);
        match tokio::time::timeout(ttl, fut).await {
            Ok(Ok(resp)) => answer(resp.into_inner()),
            Ok(Err(s)) => Err(status_err(s)),
            Err(_) => Err(RPCError::Unreachable(Unreachable::new(&AnyError::error(format!(
                "peer {} did not answer within {ttl:?}",
                self.target
            ))))),
        }
    }
}

impl RaftNetworkV2<TypeConfig> for PeerClient {
    type SnapshotData = SnapshotData;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call(&rpc, option.hard_ttl(), |mut c, p| async move { c.append_entries(p).await }).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call(&rpc, option.hard_ttl(), |mut c, p| async move { c.vote(p).await }).await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let mut client = self.client().map_err(|e| match e {
            RPCError::Unreachable(u) => StreamingError::Unreachable(u),
            other => StreamingError::Network(NetworkError::new(&other)),
        })?;
        let header = encode(&(&vote, &snapshot.meta))?;
        let data = snapshot_bytes(&snapshot.snapshot);
        let mut chunks: Vec<SnapshotChunk> =
            data.chunks(SNAPSHOT_CHUNK).map(|c| SnapshotChunk { header: Vec::new(), data: c.to_vec() }).collect();
        if chunks.is_empty() {
            chunks.push(SnapshotChunk::default());
        }
        chunks[0].header = header;
        let send = async move { client.install_snapshot(futures::stream::iter(chunks)).await };
        let ttl = option.hard_ttl().max(Duration::from_secs(10));
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            r = tokio::time::timeout(ttl, send) => match r {
                Ok(Ok(resp)) => answer(resp.into_inner()).map_err(|e| StreamingError::Network(NetworkError::new(&e))),
                Ok(Err(s)) => Err(StreamingError::Network(NetworkError::new(&s))),
                Err(_) => Err(StreamingError::Network(NetworkError::new(&AnyError::error("snapshot send timed out")))),
            },
        }
    }
}

fn snapshot_bytes(data: &SnapshotData) -> &[u8] {
    data.as_ref()
}
