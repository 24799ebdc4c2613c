//! The Raft log as versions before the write-ahead log kept it, in a redb
//! file, moved into a write-ahead log once: the vote, the last purged and
//! committed log ids and every entry, written to a temporary directory,
//! synced, renamed into place, and only then is the old file removed. A
//! crash before the rename migrates again; after it, the old file is
//! just removed.

use crate::codec::io;
use crate::wal::Wal;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::Path;

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_meta");

/// Moves the redb log at `old` (if any) into the write-ahead log at `dir`.
pub(crate) fn redb_log(old: &Database, old_path: &Path, dir: &Path) -> std::io::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    let tmp = dir.with_extension("wal.tmp");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    let read = old.begin_read().map_err(io)?;
    let text = |v: &[u8]| String::from_utf8(v.to_vec()).map_err(io);
    let (vote, committed, purged) = match read.open_table(META) {
        Ok(meta) => {
            let get = |k: &str| -> std::io::Result<Option<Vec<u8>>> {
                Ok(meta.get(k).map_err(io)?.map(|v| v.value().to_vec()))
            };
            (get("vote")?, get("committed")?, get("last_purged")?)
        }
        Err(redb::TableError::TableDoesNotExist(_)) => (None, None, None),
        Err(e) => return Err(io(e)),
    };
    let mut entries = Vec::new();
    match read.open_table(LOG) {
        Ok(log) => {
            for item in log.iter().map_err(io)? {
                let (k, v) = item.map_err(io)?;
                entries.push((k.value(), v.value().to_vec()));
            }
        }
        Err(redb::TableError::TableDoesNotExist(_)) => {}
        Err(e) => return Err(io(e)),
    }
    {
        let (mut wal, _) = Wal::open(&tmp)?;
        if let Some(v) = vote {
            wal.save_vote(text(&v)?)?;
        }
        if let Some(p) = purged {
            let index = serde_json::from_slice::<serde_json::Value>(&p)
                .ok()
                .and_then(|v| v.get("index")?.as_u64())
                .ok_or_else(|| io("a last purged log id without its index"))?;
            wal.purge_upto(index, text(&p)?)?;
        }
        wal.append(&entries, committed.as_deref())?;
    }
    std::fs::rename(&tmp, dir)?;
    if let Some(parent) = dir.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    tracing::info!(
        "moved the raft log from {} ({} entries) into {}",
        old_path.display(),
        entries.len(),
        dir.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::encode;
    use crate::types::{Request, TypeConfig};
    use openraft::entry::RaftEntry;
    use openraft::storage::RaftLogStorage;
    use openraft::type_config::alias::{EntryOf, LogIdOf, VoteOf};
    use openraft::RaftLogReader;

    type C = TypeConfig;

    fn log_id(term: u64, index: u64) -> LogIdOf<C> {
        openraft::testing::log_id::<C>(term, 1, index)
    }

    #[tokio::test]
    async fn a_redb_log_of_an_older_version_moves_over_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("raft-local.redb");
        let vote = VoteOf::<C>::new(3, 1);
        let entries: Vec<EntryOf<C>> = (5..=7)
            .map(|i| {
                EntryOf::<C>::new_normal(
                    log_id(3, i),
                    Request::Put {
                        key: format!("k{i}"),
                        value: "v".into(),
                    },
                )
            })
            .collect();
        {
            let db = Database::create(&path).expect("create");
            let txn = db.begin_write().expect("txn");
            {
                let mut log = txn.open_table(LOG).expect("log");
                for e in &entries {
                    log.insert(e.log_id.index, encode(e).expect("encode").as_slice())
                        .expect("insert");
                }
                let mut meta = txn.open_table(META).expect("meta");
                meta.insert("vote", encode(&vote).expect("vote").as_slice())
                    .expect("vote");
                meta.insert(
                    "last_purged",
                    encode(&log_id(2, 4)).expect("purged").as_slice(),
                )
                .expect("purged");
                meta.insert(
                    "committed",
                    encode(&Some(log_id(3, 6))).expect("c").as_slice(),
                )
                .expect("committed");
            }
            txn.commit().expect("commit");
        }
        let (mut log, _sm) = crate::open(&path).expect("open");
        assert!(!path.exists());
        assert_eq!(log.read_vote().await.expect("vote"), Some(vote));
        assert_eq!(
            log.read_committed().await.expect("committed"),
            Some(log_id(3, 6))
        );
        let state = log.get_log_state().await.expect("state");
        assert_eq!(state.last_purged_log_id, Some(log_id(2, 4)));
        assert_eq!(state.last_log_id, Some(log_id(3, 7)));
        let got = log.try_get_log_entries(0..100).await.expect("entries");
        assert_eq!(got, entries);
    }
}
