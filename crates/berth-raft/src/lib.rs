//! Raft storage for berth's replicated desired state.
//!
//! [`LogStore`] keeps the Raft log, vote and committed id in a
//! write-ahead log of segment files (`wal.rs`); [`StateMachine`] applies
//! committed entries to a key/value table of desired state and builds and
//! installs snapshots, in a redb file. A log append is acknowledged to
//! openraft only once it is synced; an apply is durable with the next
//! snapshot, and re-applied from the log after a crash.
//!
//! Architecture invariant: only desired state goes through here; observed
//! status never does.

mod codec;
mod log_store;
mod migrate;
mod network;
mod rpc;
mod server;
mod state_machine;
mod types;
mod wal;

pub use log_store::{LogSize, LogStore};
pub use network::{Network, Peer, TlsSlot};
pub use rpc::{CallError, RpcClient};
pub use server::{accept, handle_rpc, handshake, serve, RaftNode, MAX_BODY};
pub use state_machine::{Changes, StateMachine};
pub use types::{Request, Response, TypeConfig};

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How long `open` waits for a file a shut-down instance still holds.
const REOPEN_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The state machine's file beside the Raft storage named `path`
/// (`raft-<generation>.redb`, the name the log's own file had before the
/// write-ahead log).
pub fn state_machine_file(path: &Path) -> PathBuf {
    path.with_extension("sm.redb")
}

/// The log's directory for the Raft storage named `path`.
pub fn log_dir(path: &Path) -> PathBuf {
    path.with_extension("wal")
}

/// Removes the Raft storage named `path`: the log's directory, the state
/// machine's file, and a log file of an older version.
pub fn remove(path: &Path) {
    let _ = std::fs::remove_dir_all(log_dir(path));
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(state_machine_file(path));
}

/// Opens (or creates) the Raft storage named `path` and returns both
/// halves: the log in [`log_dir`], the state machine in
/// [`state_machine_file`]. A redb log file an older version left at
/// `path` (and the state machine before that) is moved over first.
pub fn open(path: &Path) -> std::io::Result<(LogStore, StateMachine)> {
    let sm_db = open_db(&state_machine_file(path))?;
    if path.exists() {
        let old = open_db(path)?;
        state_machine::move_from_log_file(&old, &sm_db)?;
        migrate::redb_log(&old, path, &log_dir(path))?;
        drop(old);
        std::fs::remove_file(path)?;
    }
    Ok((LogStore::open(&log_dir(path))?, StateMachine::new(sm_db)?))
}

/// Opens the log half again, after an I/O error stopped the Raft core.
/// The state machine's file stays open, so reads go on meanwhile.
pub fn reopen_log(path: &Path) -> std::io::Result<LogStore> {
    LogStore::open(&log_dir(path))
}

/// Opens the state machine's half again (see [`reopen_log`]).
pub fn reopen_state_machine(path: &Path) -> std::io::Result<StateMachine> {
    StateMachine::new(open_db(&state_machine_file(path))?)
}

/// State machine files smaller than this are never worth compacting.
pub const COMPACT_MIN_BYTES: u64 = 4 << 20;

/// Whether `db` (the file at `path`) is mostly free space: at least
/// [`COMPACT_MIN_BYTES`] long, less than half of it in use.
pub(crate) fn sparse(db: &redb::Database, path: &Path) -> std::io::Result<bool> {
    let len = std::fs::metadata(path)?.len();
    if len < COMPACT_MIN_BYTES {
        return Ok(false);
    }
    let txn = db.begin_write().map_err(codec::io)?;
    let stats = txn.stats().map_err(codec::io)?;
    txn.abort().map_err(codec::io)?;
    let used = stats.allocated_pages() * stats.page_size() as u64;
    Ok(used * 2 < len)
}

/// Compacts a file that is mostly free space (a large value set then
/// removed, a log since purged): redb reuses free pages but never gives
/// them back.
fn compact_if_sparse(db: &mut redb::Database, path: &Path) {
    if !sparse(db, path).unwrap_or(false) {
        return;
    }
    let before = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    match db.compact() {
        Ok(_) => {
            let after = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            tracing::info!("compacted {}: {before} -> {after} bytes", path.display());
        }
        Err(e) => tracing::warn!("compacting {}: {e}", path.display()),
    }
}

fn open_db(p: &Path) -> std::io::Result<Arc<redb::Database>> {
    {
        // An instance of this process that just shut down may still hold
        // the file for a moment: its last tasks drop their handles after
        // `shutdown` returns. Another process never does (the daemon's
        // lock), so waiting briefly is safe.
        let deadline = std::time::Instant::now() + REOPEN_WAIT;
        loop {
            // A small page cache: desired state is small, and RSS matters on every node.
            match redb::Database::builder().set_cache_size(4 << 20).create(p) {
                Err(redb::DatabaseError::DatabaseAlreadyOpen)
                    if std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Ok(mut db) => {
                    compact_if_sparse(&mut db, p);
                    return Ok(Arc::new(db));
                }
                Err(e) => return Err(codec::io(e)),
            }
        }
    }
}
