//! Server side of the cluster API. Thin: decodes, calls the Coordinator, encodes.

use miroir::proto::cluster_service_server::ClusterService;
use miroir::proto::*;
use miroir::{Command, Proposal};
use tonic::{Request, Response, Status};

use crate::error::Error;
use crate::node::{Coordinator, LeaseOp, LeaseRequest, FORWARDED};
use crate::watch::{MapHistory, WatchStream};

pub struct ClusterServer {
    coord: Coordinator,
    history: MapHistory,
}

impl ClusterServer {
    pub fn new(coord: Coordinator, history: MapHistory) -> Self {
        ClusterServer { coord, history }
    }
}

fn forwarded<T>(req: &Request<T>) -> bool {
    req.metadata().contains_key(FORWARDED)
}

/// The client's proposal id, if it sent one.
fn proposal_id(id: String) -> Result<Option<String>, Status> {
    if id.len() > miroir::proposal::MAX_PROPOSAL_ID {
        return Err(Status::invalid_argument(format!(
            "proposal_id is {} bytes, more than {}",
            id.len(),
            miroir::proposal::MAX_PROPOSAL_ID
        )));
    }
    Ok((!id.is_empty()).then_some(id))
}

impl ClusterServer {
    async fn lease(&self, id: String, gateway: String, lease_ms: u64, op: LeaseOp, fwd: bool) -> LeaseResult {
        let req = LeaseRequest { id: proposal_id(id)?, gateway, lease_ms, op };
        Ok(Response::new(self.coord.lease(req, fwd).await?))
    }
}

type LeaseResult = Result<Response<LeaseReply>, Status>;

#[tonic::async_trait]
impl ClusterService for ClusterServer {
    async fn propose(&self, req: Request<ProposeRequest>) -> Result<Response<ProposeReply>, Status> {
        let fwd = forwarded(&req);
        let r = req.into_inner();
        let cmd: Command = serde_json::from_slice(&r.command)
            .map_err(|e| Status::invalid_argument(format!("undecodable command: {e}")))?;
        let p = self.coord.propose_once(Proposal::new(proposal_id(r.proposal_id)?, cmd), fwd).await?;
        Ok(Response::new(ProposeReply { log_index: p.log_index, outcome: Some(p.outcome) }))
    }

    async fn get_state(&self, req: Request<GetStateRequest>) -> Result<Response<GetStateReply>, Status> {
        Ok(Response::new(self.coord.get_state(forwarded(&req)).await?))
    }

    type WatchStream = WatchStream;

    async fn watch(&self, req: Request<WatchRequest>) -> Result<Response<WatchStream>, Status> {
        Ok(Response::new(crate::watch::watch(self.coord.state(), &self.history, req.into_inner().from_version)))
    }

    async fn register(&self, req: Request<RegisterRequest>) -> LeaseResult {
        let fwd = forwarded(&req);
        let r = req.into_inner();
        self.lease(r.proposal_id, r.gateway_id, r.lease_ms, LeaseOp::Register { address: r.address }, fwd).await
    }

    async fn heartbeat(&self, req: Request<HeartbeatRequest>) -> LeaseResult {
        let fwd = forwarded(&req);
        let r = req.into_inner();
        self.lease(r.proposal_id, r.gateway_id, r.lease_ms, LeaseOp::Heartbeat { acked_version: None }, fwd).await
    }

    async fn ack(&self, req: Request<AckRequest>) -> LeaseResult {
        let fwd = forwarded(&req);
        let r = req.into_inner();
        let op = LeaseOp::Heartbeat { acked_version: Some(r.acked_version) };
        self.lease(r.proposal_id, r.gateway_id, r.lease_ms, op, fwd).await
    }

    async fn status(&self, _req: Request<StatusRequest>) -> Result<Response<StatusReply>, Status> {
        Ok(Response::new(self.coord.status()))
    }

    async fn query_tasks(&self, req: Request<TaskQueryRequest>) -> Result<Response<TaskQueryReply>, Status> {
        let fwd = forwarded(&req);
        Ok(Response::new(self.coord.query_tasks(req.into_inner().query, fwd).await?))
    }

    async fn local_state(&self, _req: Request<LocalStateRequest>) -> Result<Response<GetStateReply>, Status> {
        Ok(Response::new(self.coord.local_state()?))
    }

    async fn add_peer(&self, req: Request<AddPeerRequest>) -> Result<Response<MembershipReply>, Status> {
        let fwd = forwarded(&req);
        let r = req.into_inner();
        if r.id == 0 || r.addr.is_empty() {
            return Err(Error::invalid("peer id must be > 0 and addr non-empty").into());
        }
        Ok(Response::new(self.coord.add_peer(r.id, r.addr, fwd).await?))
    }

    async fn remove_peer(&self, req: Request<RemovePeerRequest>) -> Result<Response<MembershipReply>, Status> {
        let fwd = forwarded(&req);
        Ok(Response::new(self.coord.remove_peer(req.into_inner().id, fwd).await?))
    }
}
