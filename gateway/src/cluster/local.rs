//! A single-process `Cluster`: applies commands to an in-memory state with the kernel's `apply`.
//! It has no Raft and no durability; it exists so the gateway can be driven in-process by tests
//! against the exact same state transitions the coordinator commits.

use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use miroir::task::{Task, TaskFilter, TaskPage};
use miroir::{apply, changes_routing, ClusterState, Command, Response, RoutingMap};
use tokio::sync::broadcast;

use crate::cluster::{Cluster, ClusterError, Lease};
use crate::write::tasks::now_millis;

pub struct LocalCluster {
    state: Mutex<(ClusterState, u64)>,
    maps: broadcast::Sender<Arc<RoutingMap>>,
}

impl LocalCluster {
    pub fn new() -> Arc<Self> {
        Arc::new(Self { state: Mutex::new((ClusterState::default(), 0)), maps: broadcast::channel(1024).0 })
    }

    pub fn read<R>(&self, f: impl FnOnce(&ClusterState) -> R) -> R {
        f(&self.state.lock().expect("not poisoned").0)
    }

    /// Applies a command as the next log entry.
    pub fn apply(&self, cmd: Command) -> Result<(Response, u64), ClusterError> {
        let mut guard = self.state.lock().expect("not poisoned");
        let (state, index) = &mut *guard;
        *index += 1;
        let response = apply(state, &cmd, *index)?;
        if changes_routing(&cmd) {
            let _ = self.maps.send(Arc::new(state.routing_map()));
        }
        Ok((response, *index))
    }
}

impl LocalCluster {
    fn lease(&self, cmd: Command) -> Result<Lease, ClusterError> {
        match self.apply(cmd)? {
            (Response::Lease { expires_at, map_version }, log_index) => {
                Ok(Lease { expires_at, log_index, map_version })
            }
            (other, _) => Err(ClusterError::Unavailable(format!("lease command answered {other:?}"))),
        }
    }
}

impl Cluster for LocalCluster {
    fn propose(&self, cmd: Command) -> BoxFuture<'_, Result<(Response, u64), ClusterError>> {
        let result = self.apply(cmd);
        async move { result }.boxed()
    }

    fn watch(&self, from_version: u64) -> BoxStream<'static, Result<Arc<RoutingMap>, ClusterError>> {
        let rx = self.maps.subscribe();
        let current = Arc::new(self.read(ClusterState::routing_map));
        let first = futures::stream::iter((current.version >= from_version).then(|| Ok(current.clone())));
        let rest = futures::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(map) => return Some((Ok(map), rx)),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        first.chain(rest).boxed()
    }

    /// Stamped by this process's clock: here the gateway and the "leader" are one process.
    fn register(&self, gateway: &str, address: &str, lease_ms: u64) -> BoxFuture<'_, Result<Lease, ClusterError>> {
        let cmd = Command::RegisterGateway { id: gateway.into(), address: address.into(), at: now_millis(), lease_ms };
        let result = self.lease(cmd);
        async move { result }.boxed()
    }

    fn heartbeat(
        &self,
        gateway: &str,
        lease_ms: u64,
        acked: Option<u64>,
    ) -> BoxFuture<'_, Result<Lease, ClusterError>> {
        let cmd = Command::GatewayHeartbeat { id: gateway.into(), at: now_millis(), lease_ms, acked_version: acked };
        let result = self.lease(cmd);
        async move { result }.boxed()
    }

    fn task(&self, uid: u64) -> BoxFuture<'_, Result<Option<Task>, ClusterError>> {
        let task = self.read(|s| s.tasks.get(uid).cloned());
        async move { Ok(task) }.boxed()
    }

    fn state(&self) -> BoxFuture<'_, Result<ClusterState, ClusterError>> {
        let state = self.read(ClusterState::clone);
        async move { Ok(state) }.boxed()
    }

    fn tasks(
        &self,
        filter: TaskFilter,
        from: Option<u64>,
        limit: usize,
        reverse: bool,
    ) -> BoxFuture<'_, Result<TaskPage, ClusterError>> {
        let page = self.read(|s| s.tasks.query(&filter, from, limit, reverse));
        async move { Ok(page) }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn leases_register_renew_and_refuse_unknown_gateways() {
        let c = LocalCluster::new();
        let unknown = c.heartbeat("gw", 1_000, None).await;
        assert_eq!(unknown, Err(ClusterError::Rejected(miroir::CommandError::GatewayNotFound("gw".into()))));
        let before = now_millis();
        let reg = c.register("gw", "127.0.0.1:1", 1_000).await.unwrap();
        assert!(reg.expires_at >= before + 1_000 && reg.expires_at <= now_millis() + 1_000);
        let ack = c.heartbeat("gw", 5_000, Some(reg.log_index)).await.unwrap();
        assert!(ack.expires_at >= reg.expires_at + 4_000);
        c.read(|s| {
            let g = &s.gateways["gw"];
            assert_eq!((g.lease_expires_at, g.acked_version), (ack.expires_at, reg.log_index));
        });
    }
}
