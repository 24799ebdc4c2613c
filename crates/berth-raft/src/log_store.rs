//! The Raft log, vote and committed log id.
//!
//! The committed log id is kept in memory and written with the next log
//! append, not in a transaction of its own: a persisted committed id only
//! lets a restart re-apply entries sooner, any older value is still true,
//! and the state machine's applied id is durable anyway.

use crate::codec::{decode, encode, io};
use crate::types::TypeConfig;
use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::type_config::alias::{EntryOf, LogIdOf, VoteOf};
use openraft::{OptionalSend, RaftLogReader};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::sync::Arc;

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_meta");

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const LAST_PURGED: &str = "last_purged";

type C = TypeConfig;

/// Cheap to clone: clones share the database, and serve as the log reader.
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Database>,
    /// The latest committed id openraft reported, not yet written.
    committed: Arc<std::sync::Mutex<Option<Vec<u8>>>>,
}

impl LogStore {
    pub(crate) fn new(db: Arc<Database>) -> io::Result<LogStore> {
        let txn = db.begin_write().map_err(io)?;
        txn.open_table(LOG).map_err(io)?;
        txn.open_table(META).map_err(io)?;
        txn.commit().map_err(io)?;
        Ok(LogStore {
            db,
            committed: Arc::default(),
        })
    }

    fn meta_get<T: DeserializeOwned>(&self, key: &str) -> io::Result<Option<T>> {
        let txn = self.db.begin_read().map_err(io)?;
        let table = txn.open_table(META).map_err(io)?;
        match table.get(key).map_err(io)? {
            Some(v) => Ok(Some(decode(v.value())?)),
            None => Ok(None),
        }
    }

    fn meta_put<T: Serialize>(&self, key: &str, value: &T) -> io::Result<()> {
        let bytes = encode(value)?;
        let txn = self.db.begin_write().map_err(io)?;
        txn.open_table(META)
            .map_err(io)?
            .insert(key, bytes.as_slice())
            .map_err(io)?;
        txn.commit().map_err(io)
    }
}

impl RaftLogReader<C> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<EntryOf<C>>, io::Error> {
        let txn = self.db.begin_read().map_err(io)?;
        let table = txn.open_table(LOG).map_err(io)?;
        let mut out = Vec::new();
        for item in table.range(range).map_err(io)? {
            let (_, v) = item.map_err(io)?;
            out.push(decode(v.value())?);
        }
        Ok(out)
    }

    async fn read_vote(&mut self) -> Result<Option<VoteOf<C>>, io::Error> {
        self.meta_get(VOTE)
    }
}

impl RaftLogStorage<C> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<C>, io::Error> {
        let last_purged: Option<LogIdOf<C>> = self.meta_get(LAST_PURGED)?;
        let txn = self.db.begin_read().map_err(io)?;
        let table = txn.open_table(LOG).map_err(io)?;
        let last = match table.last().map_err(io)? {
            Some((_, v)) => Some(decode::<EntryOf<C>>(v.value())?.log_id()),
            None => last_purged,
        };
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &VoteOf<C>) -> Result<(), io::Error> {
        self.meta_put(VOTE, vote)
    }

    async fn save_committed(&mut self, committed: Option<LogIdOf<C>>) -> Result<(), io::Error> {
        let bytes = encode(&committed)?;
        *self.committed.lock().unwrap_or_else(|e| e.into_inner()) = Some(bytes);
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogIdOf<C>>, io::Error> {
        let pending = self
            .committed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match pending {
            Some(bytes) => Ok(decode::<Option<LogIdOf<C>>>(&bytes)?),
            None => Ok(self.meta_get::<Option<LogIdOf<C>>>(COMMITTED)?.flatten()),
        }
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<C>) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = EntryOf<C>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let committed = self
            .committed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let txn = self.db.begin_write().map_err(io)?;
        {
            let mut table = txn.open_table(LOG).map_err(io)?;
            for e in entries {
                let bytes = encode(&e)?;
                table.insert(e.index(), bytes.as_slice()).map_err(io)?;
            }
            if let Some(c) = committed {
                txn.open_table(META)
                    .map_err(io)?
                    .insert(COMMITTED, c.as_slice())
                    .map_err(io)?;
            }
        }
        // The commit is durable (fsynced) before openraft hears it is flushed.
        let result = txn.commit().map_err(io);
        let report = match &result {
            Ok(()) => Ok(()),
            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
        };
        callback.io_completed(report);
        result
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogIdOf<C>>) -> Result<(), io::Error> {
        let from = last_log_id.map(|l| l.index + 1).unwrap_or(0);
        let txn = self.db.begin_write().map_err(io)?;
        txn.open_table(LOG)
            .map_err(io)?
            .retain_in(from.., |_, _| false)
            .map_err(io)?;
        txn.commit().map_err(io)
    }

    async fn purge(&mut self, log_id: LogIdOf<C>) -> Result<(), io::Error> {
        let bytes = encode(&log_id)?;
        let txn = self.db.begin_write().map_err(io)?;
        txn.open_table(META)
            .map_err(io)?
            .insert(LAST_PURGED, bytes.as_slice())
            .map_err(io)?;
        txn.open_table(LOG)
            .map_err(io)?
            .retain_in(..=log_id.index, |_, _| false)
            .map_err(io)?;
        txn.commit().map_err(io)
    }
}
