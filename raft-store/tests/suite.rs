//! openraft's own storage test suite, against the RocksDB store and the in-memory twin.

use miroir_raft_store::openraft::testing::log::{StoreBuilder, Suite};
use miroir_raft_store::openraft::StorageError;
use miroir_raft_store::{open_memory, open_rocks, MemLogStore, RocksLogStore, StateMachine, TypeConfig};

struct Rocks;

impl StoreBuilder<TypeConfig, RocksLogStore, StateMachine, tempfile::TempDir> for Rocks {
    async fn build(&self) -> Result<(tempfile::TempDir, RocksLogStore, StateMachine), StorageError<TypeConfig>> {
        let dir = tempfile::tempdir().expect("temp dir");
        let (log, sm) = open_rocks(dir.path()).expect("open rocks");
        Ok((dir, log, sm))
    }
}

struct Memory;

impl StoreBuilder<TypeConfig, MemLogStore, StateMachine> for Memory {
    async fn build(&self) -> Result<((), MemLogStore, StateMachine), StorageError<TypeConfig>> {
        let (log, sm) = open_memory();
        Ok(((), log, sm))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rocksdb_store_passes_openraft_suite() -> Result<(), StorageError<TypeConfig>> {
    Suite::test_all(Rocks).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_passes_openraft_suite() -> Result<(), StorageError<TypeConfig>> {
    Suite::test_all(Memory).await
}
