//! The Raft log, vote and committed log id.
//!
//! Appends return at once and are committed by a writer thread, as
//! openraft's `append` asks: the entries are readable from memory until
//! their fsynced redb commit lands, and openraft hears they are flushed only
//! then. So a leader sends entries to its followers while its own fsync is
//! in flight, and appends queued behind a commit share the next one.
//! Every other log write goes through the same thread, in order.
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
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::sync::{mpsc, Arc, Mutex};

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_meta");

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const LAST_PURGED: &str = "last_purged";

type C = TypeConfig;

/// Entries appended but not yet committed, by index.
type Pending = Arc<Mutex<BTreeMap<u64, EntryOf<C>>>>;

/// A log write for the writer thread.
enum Job {
    Append {
        rows: Vec<(u64, Vec<u8>)>,
        committed: Option<Vec<u8>>,
        callback: IOFlushed<C>,
    },
    /// Any other write, run after every job queued before it.
    Run(Write, tokio::sync::oneshot::Sender<io::Result<()>>),
}

type Write = Box<dyn FnOnce(&Database) -> io::Result<()> + Send>;

/// Cheap to clone: clones share the database, and serve as the log reader.
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Database>,
    /// The latest committed id openraft reported, not yet written.
    committed: Arc<Mutex<Option<Vec<u8>>>>,
    pending: Pending,
    writer: mpsc::Sender<Job>,
}

impl LogStore {
    pub(crate) fn new(db: Arc<Database>) -> io::Result<LogStore> {
        let txn = db.begin_write().map_err(io)?;
        txn.open_table(LOG).map_err(io)?;
        txn.open_table(META).map_err(io)?;
        txn.commit().map_err(io)?;
        let pending = Pending::default();
        let (writer, jobs) = mpsc::channel();
        // A weak handle: the file closes as soon as the last clone of this
        // store is dropped, so it can be opened again at once.
        let (thread_db, thread_pending) = (Arc::downgrade(&db), pending.clone());
        std::thread::Builder::new()
            .name("raft-log-writer".into())
            .spawn(move || write_jobs(&thread_db, &thread_pending, jobs))?;
        Ok(LogStore {
            db,
            committed: Arc::default(),
            pending,
            writer,
        })
    }

    /// Runs `write` on the writer thread, after every queued append.
    async fn run(
        &self,
        write: impl FnOnce(&Database) -> io::Result<()> + Send + 'static,
    ) -> io::Result<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.writer
            .send(Job::Run(Box::new(write), tx))
            .map_err(|_| io::Error::other("the raft log writer has stopped"))?;
        rx.await
            .map_err(|_| io::Error::other("the raft log writer has stopped"))?
    }

    fn meta_get<T: DeserializeOwned>(&self, key: &str) -> io::Result<Option<T>> {
        let txn = self.db.begin_read().map_err(io)?;
        let table = txn.open_table(META).map_err(io)?;
        match table.get(key).map_err(io)? {
            Some(v) => Ok(Some(decode(v.value())?)),
            None => Ok(None),
        }
    }

    async fn meta_put<T: Serialize>(&self, key: &'static str, value: &T) -> io::Result<()> {
        let bytes = encode(value)?;
        self.run(move |db| {
            let txn = db.begin_write().map_err(io)?;
            txn.open_table(META)
                .map_err(io)?
                .insert(key, bytes.as_slice())
                .map_err(io)?;
            txn.commit().map_err(io)
        })
        .await
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The writer thread: commits queued appends together, one fsync for all
/// of them, then reports each flushed; runs other writes in queue order.
/// Ends when every [`LogStore`] clone is gone.
fn write_jobs(
    db: &std::sync::Weak<Database>,
    pending: &Mutex<BTreeMap<u64, EntryOf<C>>>,
    jobs: mpsc::Receiver<Job>,
) {
    let mut next = None;
    loop {
        let job = match next.take() {
            Some(job) => job,
            None => match jobs.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        let Some(db) = db.upgrade() else {
            return;
        };
        let db = &*db;
        match job {
            Job::Run(write, reply) => {
                let _ = reply.send(write(db));
            }
            Job::Append {
                rows,
                committed,
                callback,
            } => {
                let mut batch = vec![(rows, committed, callback)];
                while let Ok(job) = jobs.try_recv() {
                    match job {
                        Job::Append {
                            rows,
                            committed,
                            callback,
                        } => batch.push((rows, committed, callback)),
                        other => {
                            next = Some(other);
                            break;
                        }
                    }
                }
                let result = commit_appends(db, &batch);
                if result.is_ok() {
                    let mut pending = lock(pending);
                    for (rows, _, _) in &batch {
                        for (index, _) in rows {
                            pending.remove(index);
                        }
                    }
                }
                for (_, _, callback) in batch {
                    let report = match &result {
                        Ok(()) => Ok(()),
                        Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
                    };
                    callback.io_completed(report);
                }
            }
        }
    }
}

type AppendBatch = [(Vec<(u64, Vec<u8>)>, Option<Vec<u8>>, IOFlushed<C>)];

/// One durable (fsynced) redb commit of every append in `batch`.
fn commit_appends(db: &Database, batch: &AppendBatch) -> io::Result<()> {
    let txn = db.begin_write().map_err(io)?;
    {
        let mut table = txn.open_table(LOG).map_err(io)?;
        for (rows, _, _) in batch {
            for (index, bytes) in rows {
                table.insert(*index, bytes.as_slice()).map_err(io)?;
            }
        }
        if let Some(c) = batch.iter().rev().find_map(|(_, c, _)| c.as_ref()) {
            txn.open_table(META)
                .map_err(io)?
                .insert(COMMITTED, c.as_slice())
                .map_err(io)?;
        }
    }
    txn.commit().map_err(io)
}

impl RaftLogReader<C> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<EntryOf<C>>, io::Error> {
        // Pending entries first: one committed in between is then in redb.
        let pending: Vec<(u64, EntryOf<C>)> = lock(&self.pending)
            .range(range.clone())
            .map(|(i, e)| (*i, e.clone()))
            .collect();
        let txn = self.db.begin_read().map_err(io)?;
        let table = txn.open_table(LOG).map_err(io)?;
        let mut out = BTreeMap::new();
        for item in table.range(range).map_err(io)? {
            let (k, v) = item.map_err(io)?;
            out.insert(k.value(), decode(v.value())?);
        }
        out.extend(pending);
        Ok(out.into_values().collect())
    }

    async fn read_vote(&mut self) -> Result<Option<VoteOf<C>>, io::Error> {
        self.meta_get(VOTE)
    }
}

impl RaftLogStorage<C> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<C>, io::Error> {
        let last_purged: Option<LogIdOf<C>> = self.meta_get(LAST_PURGED)?;
        let last_pending = lock(&self.pending)
            .last_key_value()
            .map(|(_, e)| e.log_id());
        let txn = self.db.begin_read().map_err(io)?;
        let table = txn.open_table(LOG).map_err(io)?;
        let last = match (last_pending, table.last().map_err(io)?) {
            (Some(id), _) => Some(id),
            (None, Some((_, v))) => Some(decode::<EntryOf<C>>(v.value())?.log_id()),
            (None, None) => last_purged,
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
        self.meta_put(VOTE, vote).await
    }

    async fn save_committed(&mut self, committed: Option<LogIdOf<C>>) -> Result<(), io::Error> {
        let bytes = encode(&committed)?;
        *lock(&self.committed) = Some(bytes);
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogIdOf<C>>, io::Error> {
        let pending = lock(&self.committed).clone();
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
        let committed = lock(&self.committed).clone();
        let mut rows = Vec::new();
        let mut readable = Vec::new();
        for e in entries {
            rows.push((e.index(), encode(&e)?));
            readable.push((e.index(), e));
        }
        lock(&self.pending).extend(readable);
        // openraft hears the entries are flushed only after the writer's
        // fsynced commit.
        self.writer
            .send(Job::Append {
                rows,
                committed,
                callback,
            })
            .map_err(|_| io::Error::other("the raft log writer has stopped"))
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogIdOf<C>>) -> Result<(), io::Error> {
        let from = last_log_id.map(|l| l.index + 1).unwrap_or(0);
        let pending = self.pending.clone();
        self.run(move |db| {
            let txn = db.begin_write().map_err(io)?;
            txn.open_table(LOG)
                .map_err(io)?
                .retain_in(from.., |_, _| false)
                .map_err(io)?;
            txn.commit().map_err(io)?;
            // Appends queued earlier are committed by now; none is pending.
            lock(&pending).split_off(&from);
            Ok(())
        })
        .await
    }

    async fn purge(&mut self, log_id: LogIdOf<C>) -> Result<(), io::Error> {
        let bytes = encode(&log_id)?;
        let upto = log_id.index;
        self.run(move |db| {
            let txn = db.begin_write().map_err(io)?;
            txn.open_table(META)
                .map_err(io)?
                .insert(LAST_PURGED, bytes.as_slice())
                .map_err(io)?;
            txn.open_table(LOG)
                .map_err(io)?
                .retain_in(..=upto, |_, _| false)
                .map_err(io)?;
            txn.commit().map_err(io)
        })
        .await
    }
}
