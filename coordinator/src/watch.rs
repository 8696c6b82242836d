//! Watch: the routing map first, then every applied map change in version order.
//!
//! Served from any peer (followers apply the same log). The stream never goes backwards relative to
//! what the subscriber already holds (`from_version`): changes at or below it are skipped, which is
//! what makes a reconnect to another peer after a leader kill free of duplicates. A resuming
//! subscriber is replayed the changes it missed from a bounded in-memory history, so it sees every
//! version; when the history does not reach back far enough it gets one full map (`full = true`).
//! Each message names the version the subscriber had (`prev_version`) so it can check continuity.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use futures::Stream;
use miroir::proto::MapUpdate;
use miroir::RoutingMap;
use miroir_raft_store::{MapChange, StateHandle};
use tokio::sync::broadcast::error::RecvError;
use tonic::Status;

pub type WatchStream = Pin<Box<dyn Stream<Item = Result<MapUpdate, Status>> + Send + 'static>>;

/// How many recent map changes a peer keeps for resuming subscribers (each shares its map `Arc`
/// with the state machine's event, so this costs little).
const HISTORY: usize = 1024;

#[derive(Clone, Default)]
pub struct MapHistory {
    changes: Arc<Mutex<VecDeque<MapChange>>>,
}

impl MapHistory {
    /// Records every change this peer applies, from now on.
    pub fn follow(state: &StateHandle) -> Self {
        let history = MapHistory::default();
        let mut rx = state.subscribe();
        let h = history.clone();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(c) => {
                        let mut q = h.changes.lock().unwrap_or_else(|p| p.into_inner());
                        // A lag leaves a hole; a chain with a hole must not be replayed across it.
                        if q.back().is_some_and(|b| b.version != c.prev_version) {
                            q.clear();
                        }
                        q.push_back(c);
                        if q.len() > HISTORY {
                            q.pop_front();
                        }
                    }
                    Err(RecvError::Lagged(_)) => h.changes.lock().unwrap_or_else(|p| p.into_inner()).clear(),
                    Err(RecvError::Closed) => return,
                }
            }
        });
        history
    }

    /// The changes after `from`, if the history holds an unbroken chain starting at `from`.
    fn since(&self, from: u64) -> Option<Vec<MapChange>> {
        let q = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        let start = q.iter().position(|c| c.prev_version == from)?;
        Some(q.iter().skip(start).cloned().collect())
    }
}

fn update(have: u64, version: u64, map: &RoutingMap, full: bool) -> Result<MapUpdate, Status> {
    let map = serde_json::to_vec(map).map_err(|e| Status::internal(e.to_string()))?;
    Ok(MapUpdate { prev_version: have, version, map, full })
}

pub fn watch(state: &StateHandle, history: &MapHistory, from_version: u64) -> WatchStream {
    // Subscribe before reading the current map: a change applied in between is then both in the
    // snapshot and in the channel, and the version check drops the second copy.
    let mut changes = state.subscribe();
    let (current, version) = state.read(|s| (s.routing_map(), s.map_version));
    let replay = if from_version > 0 && version > from_version { history.since(from_version) } else { None };
    let state = state.clone();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<MapUpdate, Status>>(16);
    tokio::spawn(async move {
        let mut have = from_version;
        if let Some(replay) = replay {
            for c in replay {
                if tx.send(update(have, c.version, &c.map, false)).await.is_err() {
                    return;
                }
                have = c.version;
            }
        }
        if from_version == 0 || version > have {
            if tx.send(update(have, version, &current, true)).await.is_err() {
                return;
            }
            have = version;
        }
        drop(current);
        loop {
            let (msg, next) = match changes.recv().await {
                Ok(c) if c.version <= have => continue,
                Ok(c) => (update(have, c.version, &c.map, c.prev_version != have), c.version),
                Err(RecvError::Lagged(n)) => {
                    tracing::debug!(skipped = n, "watch subscriber lagged; resending the full map");
                    let (map, v) = state.read(|s| (s.routing_map(), s.map_version));
                    if v <= have {
                        continue;
                    }
                    (update(have, v, &map, true), v)
                }
                Err(RecvError::Closed) => return,
            };
            if tx.send(msg).await.is_err() {
                return;
            }
            crate::metrics::watch_sent();
            have = next;
        }
    });
    Box::pin(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}
