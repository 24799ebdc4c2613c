//! openraft's own storage test suite against berth's redb log and state
//! machine.

use berth_raft::{LogStore, StateMachine, TypeConfig};
use openraft::testing::log::{StoreBuilder, Suite};
use openraft::type_config::TypeConfigExt;
use openraft::StorageError;

fn storage_error(e: &std::io::Error) -> StorageError<TypeConfig> {
    StorageError::read(TypeConfig::err_from_error(e))
}

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<TypeConfig>> {
        let dir = tempfile::tempdir().map_err(|e| storage_error(&e))?;
        let (log, sm) =
            berth_raft::open(&dir.path().join("raft.redb")).map_err(|e| storage_error(&e))?;
        Ok((dir, log, sm))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openraft_storage_suite_passes() -> Result<(), StorageError<TypeConfig>> {
    Suite::test_all(Builder).await
}
