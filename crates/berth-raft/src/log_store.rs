//! The Raft log, vote and committed log id, in the write-ahead log of
//! `wal.rs`.
//!
//! Appends return at once and are written by a writer thread, as
//! openraft's `append` asks: the entries are readable from memory until
//! their fdatasync lands, and openraft hears they are flushed only then.
//! So a leader sends entries to its followers while its own sync is in
//! flight, and appends queued behind a sync share the next one. Every
//! other log write goes through the same thread, in order.
//!
//! The committed log id is kept in memory and written with the next log
//! append, not on its own: a persisted committed id only lets a restart
//! re-apply entries sooner, any older value is still true, and the state
//! machine's applied id is durable anyway.

use crate::codec::{decode, encode, io};
use crate::types::TypeConfig;
use crate::wal::{Reader, Wal};
use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::type_config::alias::{EntryOf, LogIdOf, VoteOf};
use openraft::{OptionalSend, RaftLogReader};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::path::Path;
use std::sync::{mpsc, Arc, Mutex};

type C = TypeConfig;

/// Entries appended but not yet synced, by index.
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

type Write = Box<dyn FnOnce(&mut Wal) -> io::Result<()> + Send>;

/// Cheap to clone: clones share the log, and serve as the log reader.
#[derive(Clone)]
pub struct LogStore {
    reader: Reader,
    /// The latest committed id openraft reported, not yet written.
    committed: Arc<Mutex<Option<Vec<u8>>>>,
    pending: Pending,
    writer: mpsc::Sender<Job>,
}

impl LogStore {
    /// Opens the log in the directory `dir`.
    pub(crate) fn open(dir: &Path) -> io::Result<LogStore> {
        let (wal, reader) = Wal::open(dir)?;
        let pending = Pending::default();
        let (writer, jobs) = mpsc::channel();
        let thread_pending = pending.clone();
        std::thread::Builder::new()
            .name("raft-log-writer".into())
            .spawn(move || write_jobs(wal, &thread_pending, jobs))?;
        Ok(LogStore {
            reader,
            committed: Arc::default(),
            pending,
            writer,
        })
    }

    /// Runs `write` on the writer thread, after every queued append.
    async fn run(
        &self,
        write: impl FnOnce(&mut Wal) -> io::Result<()> + Send + 'static,
    ) -> io::Result<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.writer
            .send(Job::Run(Box::new(write), tx))
            .map_err(|_| io::Error::other("the raft log writer has stopped"))?;
        rx.await
            .map_err(|_| io::Error::other("the raft log writer has stopped"))?
    }

    /// How big the log is, for whoever watches it; holds nothing open.
    pub fn size(&self) -> LogSize {
        LogSize(self.reader.clone())
    }
}

/// A look at the log's size that keeps no writer alive.
#[derive(Clone)]
pub struct LogSize(Reader);

impl LogSize {
    /// The bytes the live entries take in the log's files.
    pub fn bytes(&self) -> u64 {
        self.0.bytes()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The writer thread: writes queued appends together, one sync for all
/// of them, then reports each flushed; runs other writes in queue order.
/// Ends when every [`LogStore`] clone is gone.
fn write_jobs(mut wal: Wal, pending: &Mutex<BTreeMap<u64, EntryOf<C>>>, jobs: mpsc::Receiver<Job>) {
    let mut next = None;
    loop {
        let job = match next.take() {
            Some(job) => job,
            None => match jobs.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        match job {
            Job::Run(write, reply) => {
                let _ = reply.send(write(&mut wal));
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
                let rows: Vec<(u64, Vec<u8>)> =
                    batch.iter_mut().flat_map(|(r, _, _)| r.drain(..)).collect();
                let committed = batch.iter().rev().find_map(|(_, c, _)| c.as_deref());
                let result = wal.append(&rows, committed);
                if result.is_ok() {
                    let mut pending = lock(pending);
                    for (index, _) in &rows {
                        pending.remove(index);
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

impl RaftLogReader<C> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<EntryOf<C>>, io::Error> {
        // Pending entries first: one synced in between is then in the log.
        let pending: Vec<(u64, EntryOf<C>)> = lock(&self.pending)
            .range(range.clone())
            .map(|(i, e)| (*i, e.clone()))
            .collect();
        let mut out = BTreeMap::new();
        for (i, bytes) in self.reader.read(range)? {
            out.insert(i, decode::<EntryOf<C>>(&bytes)?);
        }
        out.extend(pending);
        Ok(out.into_values().collect())
    }

    async fn read_vote(&mut self) -> Result<Option<VoteOf<C>>, io::Error> {
        self.reader.vote().map(|v| decode(v.as_bytes())).transpose()
    }
}

impl RaftLogStorage<C> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<C>, io::Error> {
        let last_purged: Option<LogIdOf<C>> = self
            .reader
            .last_purged()
            .map(|v| decode(v.as_bytes()))
            .transpose()?;
        let last_pending = lock(&self.pending)
            .last_key_value()
            .map(|(_, e)| e.log_id());
        let last_written = match self.reader.last() {
            Some(i) => match self.reader.read(i..=i)?.pop() {
                Some((_, bytes)) => Some(decode::<EntryOf<C>>(&bytes)?.log_id()),
                None => None,
            },
            None => None,
        };
        Ok(LogState {
            last_log_id: last_pending.or(last_written).or(last_purged),
            last_purged_log_id: last_purged,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &VoteOf<C>) -> Result<(), io::Error> {
        let text = String::from_utf8(encode(vote)?).map_err(io)?;
        self.run(move |wal| wal.save_vote(text)).await
    }

    async fn save_committed(&mut self, committed: Option<LogIdOf<C>>) -> Result<(), io::Error> {
        let bytes = encode(&committed)?;
        *lock(&self.committed) = Some(bytes);
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogIdOf<C>>, io::Error> {
        let latest = lock(&self.committed)
            .clone()
            .or_else(|| self.reader.committed());
        match latest {
            Some(bytes) => Ok(decode::<Option<LogIdOf<C>>>(&bytes)?),
            None => Ok(None),
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
        // fdatasync.
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
        self.run(move |wal| {
            wal.truncate_from(from)?;
            // Appends queued earlier are written by now; none is pending.
            lock(&pending).split_off(&from);
            Ok(())
        })
        .await
    }

    async fn purge(&mut self, log_id: LogIdOf<C>) -> Result<(), io::Error> {
        let text = String::from_utf8(encode(&log_id)?).map_err(io)?;
        let upto = log_id.index;
        self.run(move |wal| wal.purge_upto(upto, text)).await
    }
}
