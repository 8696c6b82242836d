//! Where the state machine keeps its latest snapshot: RocksDB's `sm` column family, or memory.

use std::io;
use std::sync::{Arc, Mutex};

/// Durable home of the latest snapshot. `save` returns only once the bytes are durable: openraft
/// purges the log a snapshot covers right after it is built.
pub trait SnapshotStore: Send + Sync + 'static {
    fn save(&self, bytes: &[u8]) -> io::Result<()>;
    fn load(&self) -> io::Result<Option<Vec<u8>>>;
}

/// The simulation's store: survives a simulated restart of the peer that holds a clone of it.
#[derive(Clone, Default)]
pub struct MemSnapshotStore(Arc<Mutex<Option<Vec<u8>>>>);

impl SnapshotStore for MemSnapshotStore {
    fn save(&self, bytes: &[u8]) -> io::Result<()> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(bytes.to_vec());
        Ok(())
    }

    fn load(&self) -> io::Result<Option<Vec<u8>>> {
        Ok(self.0.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }
}
