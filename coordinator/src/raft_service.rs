//! Server side of the Raft transport: decodes openraft messages and hands them to the local Raft.

use futures::StreamExt;
use miroir::proto::raft_service_server::RaftService;
use miroir::proto::{RaftPayload, SnapshotChunk};
use miroir_raft_store::openraft::type_config::alias::SnapshotMetaOf;
use miroir_raft_store::{Raft, SnapshotData, TypeConfig};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::{Request, Response, Status, Streaming};

type Vote = miroir_raft_store::openraft::type_config::alias::VoteOf<TypeConfig>;

pub struct RaftServer {
    raft: Raft,
}

impl RaftServer {
    pub fn new(raft: Raft) -> Self {
        RaftServer { raft }
    }
}

fn decode<T: DeserializeOwned>(b: &[u8]) -> Result<T, Status> {
    serde_json::from_slice(b).map_err(|e| Status::invalid_argument(format!("undecodable raft message: {e}")))
}

/// Errors from the local Raft travel inside the payload (see network::answer).
fn reply<T: Serialize, E: std::fmt::Display>(r: Result<T, E>) -> Result<Response<RaftPayload>, Status> {
    let r = r.map_err(|e| e.to_string());
    let data = serde_json::to_vec(&r).map_err(|e| Status::internal(e.to_string()))?;
    Ok(Response::new(RaftPayload { data }))
}

#[tonic::async_trait]
impl RaftService for RaftServer {
    async fn append_entries(&self, req: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        let rpc = decode(&req.into_inner().data)?;
        reply(self.raft.append_entries(rpc).await)
    }

    async fn vote(&self, req: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        let rpc = decode(&req.into_inner().data)?;
        reply(self.raft.vote(rpc).await)
    }

    async fn install_snapshot(&self, req: Request<Streaming<SnapshotChunk>>) -> Result<Response<RaftPayload>, Status> {
        let mut stream = req.into_inner();
        let first = stream.next().await.ok_or_else(|| Status::invalid_argument("empty snapshot stream"))??;
        let (vote, meta): (Vote, SnapshotMetaOf<TypeConfig>) = decode(&first.header)?;
        let mut data = first.data;
        while let Some(chunk) = stream.next().await {
            data.extend_from_slice(&chunk?.data);
        }
        let snapshot = miroir_raft_store::openraft::Snapshot { meta, snapshot: SnapshotData::from(data) };
        reply(self.raft.install_full_snapshot(vote, snapshot).await)
    }

    async fn transfer_leader(&self, req: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        let rpc = decode(&req.into_inner().data)?;
        reply(self.raft.handle_transfer_leader(rpc).await)
    }
}
