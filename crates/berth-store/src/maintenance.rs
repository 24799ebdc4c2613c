//! Keeps the Raft files small: a snapshot (and the purge behind it) when
//! the log's file passes a size, whatever the entry count; and, when a file
//! is mostly free space after a purge or a large value came and went, a
//! restart of the Raft core on compacted files. redb reuses free pages but
//! never gives them back.

use crate::desired::Desired;
use openraft::async_runtime::WatchReceiver;
use std::path::Path;
use std::sync::Weak;
use std::time::{Duration, Instant};

/// How often the files are looked at.
const EVERY: Duration = Duration::from_secs(5);
/// A log file past this is snapshotted and purged, whatever its entries.
pub const SNAPSHOT_AT_BYTES: u64 = 8 << 20;
/// At most one compaction this often: each restarts the Raft core.
const COMPACT_EVERY: Duration = Duration::from_secs(20);

fn len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

pub(crate) async fn run(desired: Weak<Desired>) {
    let mut snapshotted: Option<Instant> = None;
    let mut compacted: Option<Instant> = None;
    // A purge since the last compaction left the log's file mostly free.
    let mut purged = false;
    let mut purged_at_compaction = None;
    loop {
        tokio::time::sleep(EVERY).await;
        let Some(d) = desired.upgrade() else {
            return;
        };
        let inner = d.current_inner();
        let log_len = len(&inner.path);
        let sm_file = berth_raft::state_machine_file(&inner.path);
        if log_len > SNAPSHOT_AT_BYTES && !purged {
            // Past the size, the log is purged behind a snapshot at once,
            // not 500 entries behind it: a lagging follower gets the
            // snapshot instead.
            let m = inner.raft.metrics().borrow_watched().clone();
            let snap = m.snapshot.map(|l| l.index);
            let behind = m.last_log_index.unwrap_or(0) > snap.unwrap_or(0);
            if snap.is_some() && m.purged.map(|l| l.index) < snap && snapshotted.is_some() {
                let _ = inner.raft.trigger().purge_log(snap.unwrap_or(0)).await;
                purged = true;
                continue;
            }
            if behind && snapshotted.is_none_or(|t| t.elapsed() > EVERY * 3) {
                snapshotted = Some(Instant::now());
                let _ = inner.raft.trigger().snapshot().await;
                continue;
            }
        }
        let purged_now = inner
            .raft
            .metrics()
            .borrow_watched()
            .purged
            .map(|l| l.index);
        purged |= purged_now > purged_at_compaction;
        let recent = compacted.is_some_and(|t| t.elapsed() < COMPACT_EVERY);
        let big = log_len > berth_raft::COMPACT_MIN_BYTES
            || len(&sm_file) > berth_raft::COMPACT_MIN_BYTES;
        // A leader with followers would lose its leadership to the restart.
        let alone = d.membership().voters.len() <= 1 || !d.is_leader();
        if recent || !big || !alone {
            continue;
        }
        let sm_sparse = inner.sm.sparse(&sm_file);
        if !sm_sparse
            && len(&sm_file) > berth_raft::COMPACT_MIN_BYTES
            && snapshotted.is_none_or(|t| t.elapsed() > EVERY * 3)
            && inner.sm.stale_snapshot()
        {
            snapshotted = Some(Instant::now());
            let _ = inner.raft.trigger().snapshot().await;
            continue;
        }
        let log_sparse = log_len > berth_raft::COMPACT_MIN_BYTES && purged;
        if !(sm_sparse || log_sparse) {
            continue;
        }
        compacted = Some(Instant::now());
        let _alone = d.exclusive().await;
        let inner = d.current_inner();
        let before = (len(&inner.path), len(&sm_file));
        match d.restart_core(inner, sm_sparse).await {
            Ok(()) => {
                purged = false;
                purged_at_compaction = purged_now;
                tracing::info!(
                    "raft files compacted: log {} -> {} bytes, state machine {} -> {} bytes",
                    before.0,
                    len(&d.current_inner().path),
                    before.1,
                    len(&sm_file)
                )
            }
            Err(e) => tracing::warn!("compacting the raft files: {e}"),
        }
    }
}

/// Rewrites the state machine's file compactly beside it, then renames it
/// over the old one: readers on the old handle finish on the old inode.
pub(crate) fn rewrite_state_machine(
    sm: &berth_raft::StateMachine,
    log_path: &Path,
) -> std::io::Result<()> {
    let file = berth_raft::state_machine_file(log_path);
    let tmp = file.with_extension("compact");
    sm.rewrite(&tmp)?;
    std::fs::rename(&tmp, &file)?;
    if let Some(dir) = file.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
