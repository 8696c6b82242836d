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

use crate::cluster::{Cluster, ClusterError};

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

    fn task(&self, uid: u64) -> BoxFuture<'_, Result<Option<Task>, ClusterError>> {
        let task = self.read(|s| s.tasks.get(uid).cloned());
        async move { Ok(task) }.boxed()
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
