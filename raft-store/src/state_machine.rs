//! The state machine: the kernel's `apply` over an in-memory `ClusterState`, with snapshots kept in
//! a [`SnapshotStore`] and every routing-map change broadcast to subscribers (the Watch API).

use std::io;
use std::sync::{Arc, Mutex, RwLock};

use futures::{Stream, StreamExt};
use miroir::{ClusterState, Response, RoutingMap};
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend};
use tokio::sync::{broadcast, watch};

use crate::codec::{decode_snapshot, encode_snapshot, from_json, to_json};
use crate::snapshot_store::SnapshotStore;
use crate::{LogId, Snapshot, SnapshotData, SnapshotMeta, StoredMembership, TypeConfig};

/// How many map changes a slow subscriber may fall behind before it is told it lagged (it then
/// re-reads the whole map).
const CHANGES_CAPACITY: usize = 4096;

/// One applied change of the routing map. `prev_version` is the map version just before it, so a
/// follower of the stream can tell a gap from a continuation.
#[derive(Clone, Debug)]
pub struct MapChange {
    pub prev_version: u64,
    pub version: u64,
    pub map: Arc<RoutingMap>,
}

struct Applied {
    state: ClusterState,
    last_applied: Option<LogId>,
    membership: StoredMembership,
}

struct Shared {
    applied: RwLock<Applied>,
    changes: broadcast::Sender<MapChange>,
    applied_index: watch::Sender<u64>,
    current: Mutex<Option<(SnapshotMeta, Arc<SnapshotData>)>>,
    store: Arc<dyn SnapshotStore>,
}

/// Read access to the applied state, for the coordinator's services (cheap to clone).
#[derive(Clone)]
pub struct StateHandle(Arc<Shared>);

impl StateHandle {
    /// Runs `f` on the state as of the last applied entry.
    pub fn read<T>(&self, f: impl FnOnce(&ClusterState) -> T) -> T {
        f(&self.0.applied.read().unwrap_or_else(|p| p.into_inner()).state)
    }

    /// Runs `f` on the state, and answers with it the index of the last entry that state includes
    /// (0 before any), both read under one lock: reading them one after the other could pair a
    /// state with an index it does not (or no longer) stands for.
    pub fn read_at<T>(&self, f: impl FnOnce(&ClusterState) -> T) -> (T, u64) {
        let a = self.0.applied.read().unwrap_or_else(|p| p.into_inner());
        (f(&a.state), a.last_applied.as_ref().map_or(0, |l| l.index))
    }

    /// Every map change applied from now on, in log order.
    pub fn subscribe(&self) -> broadcast::Receiver<MapChange> {
        self.0.changes.subscribe()
    }

    /// The last applied index, to wait for a read index.
    pub fn applied_watch(&self) -> watch::Receiver<u64> {
        self.0.applied_index.subscribe()
    }
}

/// openraft's state machine for Miroir.
pub struct StateMachine {
    shared: Arc<Shared>,
}

impl StateMachine {
    /// A state machine restored from the latest snapshot in `store`, or empty.
    pub fn open(store: Arc<dyn SnapshotStore>) -> io::Result<Self> {
        let mut applied =
            Applied { state: ClusterState::default(), last_applied: None, membership: StoredMembership::default() };
        let mut current = None;
        if let Some(bytes) = store.load()? {
            let (meta, data) = decode_snapshot(&bytes)?;
            applied.state = from_json(&data)?;
            applied.last_applied = meta.last_log_id;
            applied.membership = meta.last_membership.clone();
            current = Some((meta, Arc::new(data)));
        }
        let index = applied.last_applied.as_ref().map_or(0, |l| l.index);
        let (changes, _) = broadcast::channel(CHANGES_CAPACITY);
        let (applied_index, _) = watch::channel(index);
        Ok(StateMachine {
            shared: Arc::new(Shared {
                applied: RwLock::new(applied),
                changes,
                applied_index,
                current: Mutex::new(current),
                store,
            }),
        })
    }

    pub fn handle(&self) -> StateHandle {
        StateHandle(self.shared.clone())
    }

    fn apply_one(
        &self,
        payload: EntryPayload<miroir::Proposal, crate::NodeId, openraft::BasicNode>,
        log_id: LogId,
    ) -> miroir::Applied {
        let mut a = self.shared.applied.write().unwrap_or_else(|p| p.into_inner());
        let index = log_id.index;
        a.last_applied = Some(log_id);
        let done = miroir::Applied { result: Ok(Response::Done), log_index: index };
        let (result, change) = match payload {
            EntryPayload::Blank => (done, None),
            EntryPayload::Membership(m) => {
                a.membership = StoredMembership::new(Some(log_id), m);
                (done, None)
            }
            EntryPayload::Normal(proposal) => {
                let prev_version = a.state.map_version;
                let result = miroir::apply_proposal(&mut a.state, &proposal, index);
                let change = (a.state.map_version != prev_version).then(|| MapChange {
                    prev_version,
                    version: a.state.map_version,
                    map: Arc::new(a.state.routing_map()),
                });
                (result, change)
            }
        };
        // Send while still holding the write lock: a reader that subscribes and then reads the
        // state sees either the change in the channel or in the state, never neither.
        if let Some(c) = change {
            let _ = self.shared.changes.send(c);
        }
        self.shared.applied_index.send_replace(index);
        result
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        let a = self.shared.applied.read().unwrap_or_else(|p| p.into_inner());
        Ok((a.last_applied, a.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            let result = self.apply_one(entry.payload, entry.log_id);
            if let Some(r) = responder {
                r.send(result);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder { shared: self.shared.clone() }
    }

    async fn install_snapshot(&mut self, meta: &SnapshotMeta, snapshot: SnapshotData) -> Result<(), io::Error> {
        let state: ClusterState = from_json(&snapshot)?;
        tracing::info!(last_log_id = ?meta.last_log_id, bytes = snapshot.len(), "installing a snapshot from the leader");
        self.shared.store.save(&encode_snapshot(meta, &snapshot)?)?;
        let mut a = self.shared.applied.write().unwrap_or_else(|p| p.into_inner());
        let prev_version = a.state.map_version;
        a.state = state;
        a.last_applied = meta.last_log_id;
        a.membership = meta.last_membership.clone();
        if a.state.map_version != prev_version {
            let map = Arc::new(a.state.routing_map());
            let _ = self.shared.changes.send(MapChange { prev_version, version: a.state.map_version, map });
        }
        self.shared.applied_index.send_replace(meta.last_log_id.as_ref().map_or(0, |l| l.index));
        drop(a);
        *self.shared.current.lock().unwrap_or_else(|p| p.into_inner()) = Some((meta.clone(), Arc::new(snapshot)));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        let current = self.shared.current.lock().unwrap_or_else(|p| p.into_inner());
        Ok(current.as_ref().map(|(meta, data)| Snapshot { meta: meta.clone(), snapshot: data.as_ref().clone() }))
    }
}

/// Serialises the state at the moment it is built; the state is small (the cluster's topology,
/// map and task log), so a copy under the read lock is cheaper than copy-on-write machinery.
pub struct SnapshotBuilder {
    shared: Arc<Shared>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = SnapshotData;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let (data, last_log_id, last_membership) = {
            let a = self.shared.applied.read().unwrap_or_else(|p| p.into_inner());
            (to_json(&a.state)?, a.last_applied, a.membership.clone())
        };
        let meta = SnapshotMeta { last_log_id, last_membership };
        self.shared.store.save(&encode_snapshot(&meta, &data)?)?;
        *self.shared.current.lock().unwrap_or_else(|p| p.into_inner()) = Some((meta.clone(), Arc::new(data.clone())));
        Ok(Snapshot { meta, snapshot: data })
    }
}
