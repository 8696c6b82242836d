//! The in-memory twin of the RocksDB store, for simulations: same semantics, no disk. A
//! [`MemStore`] outlives the Raft that uses it, so a simulated peer can be "restarted" with the log,
//! vote and snapshot it had made durable.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{IOFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::OptionalSend;

use crate::snapshot_store::MemSnapshotStore;
use crate::{Entry, LogId, StateMachine, TypeConfig, Vote};

#[derive(Default)]
struct MemLog {
    entries: BTreeMap<u64, Entry>,
    vote: Option<Vote>,
    committed: Option<LogId>,
    last_purged: Option<LogId>,
}

/// A peer's durable memory: its log and its latest snapshot.
#[derive(Clone, Default)]
pub struct MemStore {
    log: Arc<Mutex<MemLog>>,
    snapshot: MemSnapshotStore,
}

impl MemStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A log store and a state machine over this memory, as a restarted peer would open them.
    pub fn open(&self) -> (MemLogStore, StateMachine) {
        let sm = StateMachine::open(Arc::new(self.snapshot.clone())).expect("in-memory snapshot is decodable");
        (MemLogStore { log: self.log.clone() }, sm)
    }
}

/// A fresh in-memory store.
pub fn open_memory() -> (MemLogStore, StateMachine) {
    MemStore::new().open()
}

#[derive(Clone)]
pub struct MemLogStore {
    log: Arc<Mutex<MemLog>>,
}

impl MemLogStore {
    fn lock(&self) -> MutexGuard<'_, MemLog> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl RaftLogReader<TypeConfig> for MemLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        Ok(self.lock().entries.range(range).map(|(_, e)| e.clone()).collect())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(self.lock().vote)
    }
}

impl RaftLogStorage<TypeConfig> for MemLogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let log = self.lock();
        let last_purged_log_id = log.last_purged;
        let last_log_id = log.entries.values().next_back().map(|e| e.log_id).or(last_purged_log_id);
        Ok(LogState { last_purged_log_id, last_log_id })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        self.lock().vote = Some(*vote);
        Ok(())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        self.lock().committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self.lock().committed)
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<TypeConfig>) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        {
            let mut log = self.lock();
            for e in entries {
                log.entries.insert(e.log_id.index, e);
            }
        }
        callback.io_completed(Ok(()));
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let from = last_log_id.map_or(0, |l| l.index + 1);
        self.lock().entries.split_off(&from);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        let mut log = self.lock();
        log.last_purged = Some(log_id);
        log.entries = log.entries.split_off(&(log_id.index + 1));
        Ok(())
    }
}
