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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::StreamExt;
    use miroir::{Command, Proposal};
    use miroir_raft_store::openraft::entry::RaftEntry;
    use miroir_raft_store::openraft::storage::RaftStateMachine;
    use miroir_raft_store::openraft::testing::log_id;
    use miroir_raft_store::{open_memory, Entry, StateMachine, TypeConfig};

    use super::*;

    /// Applies `AddGroup g{index}` at each index of `indexes` (each changes the map).
    async fn apply(sm: &mut StateMachine, indexes: std::ops::RangeInclusive<u64>) {
        let entries: Vec<_> = indexes
            .map(|i| {
                let p = Proposal::new(None, Command::AddGroup { id: format!("g{i}") });
                Ok((Entry::new_normal(log_id::<TypeConfig>(1, 1, i), p), None))
            })
            .collect();
        sm.apply(futures::stream::iter(entries)).await.unwrap();
    }

    async fn next(s: &mut WatchStream) -> MapUpdate {
        tokio::time::timeout(Duration::from_secs(5), s.next()).await.expect("an update").expect("open").unwrap()
    }

    /// Lets the history task record what was just applied.
    async fn settle() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    #[tokio::test]
    async fn a_resuming_subscriber_is_replayed_every_missed_version() {
        let (_log, mut sm) = open_memory();
        let state = sm.handle();
        let history = MapHistory::follow(&state);
        apply(&mut sm, 1..=5).await;
        settle().await;

        // It held version 2: it gets 3, 4, 5, each following the previous one, no full map.
        let mut s = watch(&state, &history, 2);
        for v in 3..=5 {
            let u = next(&mut s).await;
            assert_eq!((u.prev_version, u.version, u.full), (v - 1, v, false));
            let map: RoutingMap = serde_json::from_slice(&u.map).unwrap();
            assert_eq!(map.version, v);
        }
        // Then live changes, still continuous.
        apply(&mut sm, 6..=6).await;
        let u = next(&mut s).await;
        assert_eq!((u.prev_version, u.version, u.full), (5, 6, false));

        // Up to date: nothing is resent; a new change comes next.
        let mut s = watch(&state, &history, 6);
        apply(&mut sm, 7..=7).await;
        let u = next(&mut s).await;
        assert_eq!((u.prev_version, u.version, u.full), (6, 7, false));
    }

    #[tokio::test]
    async fn a_new_subscriber_gets_the_full_map_first() {
        let (_log, mut sm) = open_memory();
        let state = sm.handle();
        let history = MapHistory::follow(&state);
        apply(&mut sm, 1..=3).await;
        let mut s = watch(&state, &history, 0);
        let u = next(&mut s).await;
        assert_eq!((u.prev_version, u.version, u.full), (0, 3, true));
        let map: RoutingMap = serde_json::from_slice(&u.map).unwrap();
        assert_eq!(map.groups.len(), 3);
    }

    #[tokio::test]
    async fn beyond_the_history_a_resuming_subscriber_gets_one_full_map() {
        let (_log, mut sm) = open_memory();
        let state = sm.handle();
        let history = MapHistory::follow(&state);
        let last = HISTORY as u64 + 10;
        apply(&mut sm, 1..=last).await;
        settle().await;
        // Version 1 fell out of the history: the whole map at the current version, flagged full.
        let mut s = watch(&state, &history, 1);
        let u = next(&mut s).await;
        assert_eq!((u.prev_version, u.version, u.full), (1, last, true));
        // Inside the history it is replayed change by change.
        let from = last - 3;
        let mut s = watch(&state, &history, from);
        for v in from + 1..=last {
            let u = next(&mut s).await;
            assert_eq!((u.prev_version, u.version, u.full), (v - 1, v, false));
        }
    }

    #[tokio::test]
    async fn a_history_with_a_hole_is_not_replayed_across_it() {
        let (_log, mut sm) = open_memory();
        let state = sm.handle();
        let history = MapHistory::follow(&state);
        apply(&mut sm, 1..=3).await;
        settle().await;
        // A change that does not follow the last recorded one (as after a lag) breaks the chain.
        let hole = MapChange { prev_version: 10, version: 11, map: Arc::new(RoutingMap::default()) };
        history.changes.lock().unwrap().push_back(hole);
        assert!(history.since(1).is_some_and(|c| c.len() == 3), "the chain from 1 runs to the hole");
        apply(&mut sm, 4..=4).await;
        settle().await;
        // Version 4 follows 3, not 11: the history restarts at 4 and cannot serve older resumes.
        assert!(history.since(1).is_none());
        assert_eq!(history.since(3).map(|c| c.len()), Some(1));
    }
}
