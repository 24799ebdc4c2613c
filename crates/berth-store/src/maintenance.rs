//! Keeps the Raft files small: a snapshot (and the purge behind it) when
//! the log passes a size, whatever the entry count; and, when the state
//! machine's file is mostly free space after a large value came and went,
//! a restart of the Raft core on a compacted copy. redb reuses free pages
//! but never gives them back. (The log's segments are deleted by the
//! purge itself.)

use crate::desired::Desired;
use openraft::async_runtime::WatchReceiver;
use std::path::Path;
use std::sync::Weak;
use std::time::{Duration, Instant};

/// How often the files are looked at.
const EVERY: Duration = Duration::from_secs(5);
/// A log past this is snapshotted and purged, whatever its entries.
pub const SNAPSHOT_AT_BYTES: u64 = 8 << 20;
/// At most one compaction this often: each restarts the Raft core.
const COMPACT_EVERY: Duration = Duration::from_secs(20);

fn len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

pub(crate) async fn run(desired: Weak<Desired>) {
    let mut snapshotted: Option<Instant> = None;
    let mut compacted: Option<Instant> = None;
    loop {
        tokio::time::sleep(EVERY).await;
        let Some(d) = desired.upgrade() else {
            return;
        };
        let inner = d.current_inner();
        let sm_file = berth_raft::state_machine_file(&inner.path);
        if inner.log_size.bytes() > SNAPSHOT_AT_BYTES {
            // Past the size, the log is purged behind a snapshot at once,
            // not 500 entries behind it: a lagging follower gets the
            // snapshot instead.
            let m = inner.raft.metrics().borrow_watched().clone();
            let snap = m.snapshot.map(|l| l.index);
            let behind = m.last_log_index.unwrap_or(0) > snap.unwrap_or(0);
            if snap.is_some() && m.purged.map(|l| l.index) < snap && snapshotted.is_some() {
                let _ = inner.raft.trigger().purge_log(snap.unwrap_or(0)).await;
                continue;
            }
            if behind && snapshotted.is_none_or(|t| t.elapsed() > EVERY * 3) {
                snapshotted = Some(Instant::now());
                let _ = inner.raft.trigger().snapshot().await;
                continue;
            }
        }
        let recent = compacted.is_some_and(|t| t.elapsed() < COMPACT_EVERY);
        let big = len(&sm_file) > berth_raft::COMPACT_MIN_BYTES;
        // A leader with followers would lose its leadership to the restart.
        let alone = d.membership().voters.len() <= 1 || !d.is_leader();
        if recent || !big || !alone {
            continue;
        }
        if !inner.sm.sparse(&sm_file) {
            if snapshotted.is_none_or(|t| t.elapsed() > EVERY * 3) && inner.sm.stale_snapshot() {
                snapshotted = Some(Instant::now());
                let _ = inner.raft.trigger().snapshot().await;
            }
            continue;
        }
        compacted = Some(Instant::now());
        let _alone = d.exclusive().await;
        let inner = d.current_inner();
        let before = len(&sm_file);
        match d.restart_core(inner, true).await {
            Ok(()) => tracing::info!(
                "raft state machine compacted: {before} -> {} bytes",
                len(&sm_file)
            ),
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
