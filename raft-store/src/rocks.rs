//! The RocksDB store: column families `log` (entries under big-endian indexes), `meta` (vote,
//! committed id, last purged id) and `sm` (the latest state-machine snapshot).

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use openraft::storage::{IOFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::OptionalSend;
use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, Direction, IteratorMode, Options, WriteBatch, WriteOptions, DB};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec::{from_json, invalid, to_json};
use crate::snapshot_store::SnapshotStore;
use crate::{Entry, LogId, StateMachine, TypeConfig, Vote};

const CF_LOG: &str = "log";
const CF_META: &str = "meta";
const CF_SM: &str = "sm";

const VOTE: &[u8] = b"vote";
const COMMITTED: &[u8] = b"committed";
const LAST_PURGED: &[u8] = b"last_purged";
const SNAPSHOT: &[u8] = b"snapshot";

/// Log keys are big-endian so RocksDB's byte order is index order.
fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn key_index(key: &[u8]) -> io::Result<u64> {
    let bytes: [u8; 8] = key.try_into().map_err(|_| invalid(format!("log key of {} bytes", key.len())))?;
    Ok(u64::from_be_bytes(bytes))
}

fn db_err(e: rocksdb::Error) -> io::Error {
    io::Error::other(e.to_string())
}

fn synced() -> WriteOptions {
    let mut o = WriteOptions::default();
    o.set_sync(true);
    o
}

/// Opens (or creates) the store in `dir`: the log store and the state machine restored from its
/// latest snapshot. Both share one RocksDB instance.
pub fn open_rocks(dir: impl AsRef<Path>) -> io::Result<(RocksLogStore, StateMachine)> {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    let cfs = [CF_LOG, CF_META, CF_SM].map(|n| ColumnFamilyDescriptor::new(n, Options::default()));
    let db = Arc::new(DB::open_cf_descriptors(&opts, dir, cfs).map_err(db_err)?);
    let sm = StateMachine::open(Arc::new(RocksSnapshots { db: db.clone() }))?;
    Ok((RocksLogStore { db }, sm))
}

struct RocksSnapshots {
    db: Arc<DB>,
}

impl SnapshotStore for RocksSnapshots {
    fn save(&self, bytes: &[u8]) -> io::Result<()> {
        let cf = self.db.cf_handle(CF_SM).expect("cf sm");
        self.db.put_cf_opt(cf, SNAPSHOT, bytes, &synced()).map_err(db_err)
    }

    fn load(&self) -> io::Result<Option<Vec<u8>>> {
        let cf = self.db.cf_handle(CF_SM).expect("cf sm");
        self.db.get_cf(cf, SNAPSHOT).map_err(db_err)
    }
}

#[derive(Clone)]
pub struct RocksLogStore {
    db: Arc<DB>,
}

impl RocksLogStore {
    fn cf(&self, name: &str) -> &ColumnFamily {
        self.db.cf_handle(name).expect("column families are created at open")
    }

    fn get_meta<T: DeserializeOwned>(&self, key: &[u8]) -> io::Result<Option<T>> {
        self.db.get_cf(self.cf(CF_META), key).map_err(db_err)?.map(|b| from_json(&b)).transpose()
    }

    fn put_meta<T: Serialize>(&self, key: &[u8], v: &T, opts: &WriteOptions) -> io::Result<()> {
        self.db.put_cf_opt(self.cf(CF_META), key, to_json(v)?, opts).map_err(db_err)
    }

    fn last_entry(&self) -> io::Result<Option<Entry>> {
        match self.db.iterator_cf(self.cf(CF_LOG), IteratorMode::End).next() {
            None => Ok(None),
            Some(r) => Ok(Some(from_json(&r.map_err(db_err)?.1)?)),
        }
    }
}

impl RaftLogReader<TypeConfig> for RocksLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let start = match range.start_bound() {
            Bound::Included(x) => *x,
            Bound::Excluded(x) => x.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let mut out = Vec::new();
        let from = index_key(start);
        for item in self.db.iterator_cf(self.cf(CF_LOG), IteratorMode::From(&from, Direction::Forward)) {
            let (key, value) = item.map_err(db_err)?;
            let index = key_index(&key)?;
            if !range.contains(&index) {
                break;
            }
            let entry: Entry = from_json(&value)?;
            if entry.log_id.index != index {
                return Err(invalid(format!("log key {index} holds entry {}", entry.log_id.index)));
            }
            out.push(entry);
        }
        Ok(out)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        self.get_meta(VOTE)
    }
}

impl RaftLogStorage<TypeConfig> for RocksLogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let last_purged_log_id: Option<LogId> = self.get_meta(LAST_PURGED)?;
        let last_log_id = self.last_entry()?.map(|e| e.log_id).or(last_purged_log_id);
        Ok(LogState { last_purged_log_id, last_log_id })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        // A vote is a promise: it must survive a crash before the reply leaves this peer.
        self.put_meta(VOTE, vote, &synced())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        // Not synced: losing it only means re-learning the commit index from the leader.
        self.put_meta(COMMITTED, &committed, &WriteOptions::default())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self.get_meta::<Option<LogId>>(COMMITTED)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<TypeConfig>) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = WriteBatch::default();
        for e in entries {
            batch.put_cf(self.cf(CF_LOG), index_key(e.log_id.index), to_json(&e)?);
        }
        // Written (readable) before returning, as openraft requires; reported durable only after
        // the WAL is synced, off the async workers.
        self.db.write(batch).map_err(db_err)?;
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || callback.io_completed(db.flush_wal(true).map_err(db_err)));
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let from = last_log_id.map_or(0, |l| l.index + 1);
        self.db.delete_range_cf(self.cf(CF_LOG), index_key(from), index_key(u64::MAX)).map_err(db_err)?;
        // The next append syncs the WAL, which also makes this deletion durable before any entry
        // that replaces the truncated ones is acknowledged.
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        // Record the purge point first: entries at or below it are ignored from then on, so a crash
        // between the two writes leaves nothing inconsistent.
        self.put_meta(LAST_PURGED, &log_id, &synced())?;
        self.db.delete_range_cf(self.cf(CF_LOG), index_key(0), index_key(log_id.index + 1)).map_err(db_err)?;
        Ok(())
    }
}
