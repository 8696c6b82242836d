//! Server side of the cluster API. Thin: decodes, calls the Coordinator, encodes.

use miroir::proto::cluster_service_server::ClusterService;
use miroir::proto::*;
use miroir::Command;
use tonic::{Request, Response, Status};

use crate::error::Error;
use crate::node::{Coordinator, FORWARDED};
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

fn gateway_id(id: &str) -> Result<String, Status> {
    if id.is_empty() {
        return Err(Status::invalid_argument("gateway_id is empty"));
    }
    Ok(id.to_string())
}

impl ClusterServer {
    /// A lease renewal, acknowledging a map version when the gateway names one.
    async fn renew(
        &self,
        gateway: &str,
        lease_ms: u64,
        acked_version: Option<u64>,
        fwd: bool,
    ) -> Result<Response<LeaseReply>, Status> {
        let id = gateway_id(gateway)?;
        let cmd = |at| (Command::GatewayHeartbeat { id, at, lease_ms, acked_version }, lease_ms);
        Ok(Response::new(self.coord.lease(cmd, fwd).await?))
    }
}

#[tonic::async_trait]
impl ClusterService for ClusterServer {
    async fn propose(&self, req: Request<ProposeRequest>) -> Result<Response<ProposeReply>, Status> {
        let fwd = forwarded(&req);
        let cmd: Command = serde_json::from_slice(&req.into_inner().command)
            .map_err(|e| Status::invalid_argument(format!("undecodable command: {e}")))?;
        let p = self.coord.propose(cmd, fwd).await?;
        Ok(Response::new(ProposeReply { log_index: p.log_index, outcome: Some(p.outcome) }))
    }

    async fn get_state(&self, req: Request<GetStateRequest>) -> Result<Response<GetStateReply>, Status> {
        Ok(Response::new(self.coord.get_state(forwarded(&req)).await?))
    }

    type WatchStream = WatchStream;

    async fn watch(&self, req: Request<WatchRequest>) -> Result<Response<WatchStream>, Status> {
        Ok(Response::new(crate::watch::watch(self.coord.state(), &self.history, req.into_inner().from_version)))
    }

    async fn register(&self, req: Request<RegisterRequest>) -> Result<Response<LeaseReply>, Status> {
        let fwd = forwarded(&req);
        let r = req.into_inner();
        let id = gateway_id(&r.gateway_id)?;
        let reply = self
            .coord
            .lease(
                |at| (Command::RegisterGateway { id, address: r.address, at, lease_ms: r.lease_ms }, r.lease_ms),
                fwd,
            )
            .await?;
        Ok(Response::new(reply))
    }

    async fn heartbeat(&self, req: Request<HeartbeatRequest>) -> Result<Response<LeaseReply>, Status> {
        let fwd = forwarded(&req);
        let r = req.into_inner();
        self.renew(&r.gateway_id, r.lease_ms, None, fwd).await
    }

    async fn ack(&self, req: Request<AckRequest>) -> Result<Response<LeaseReply>, Status> {
        let fwd = forwarded(&req);
        let r = req.into_inner();
        self.renew(&r.gateway_id, r.lease_ms, Some(r.acked_version), fwd).await
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
