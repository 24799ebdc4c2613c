//! The failover lease (`design/failover.md`): renewed by acknowledged
//! heartbeats, held by the fencing watchdog, and watched so that monitors
//! stop or start failover instances as it comes and goes.
//!
//! Fencing fails closed: the lease is extended only once the watchdog took
//! the new deadline. A node whose watchdog is gone and cannot be respawned
//! lets its lease run out (its failover instances stop, and none starts)
//! and says why; every heartbeat tries the watchdog again.

use crate::Cluster;
use berth_manager::duty::Fence;
use berth_manager::liveness::{Lease, Timing};
use berth_store::Home;
use berth_watchdog::{boottime, WatchdogLink};
use std::ffi::OsString;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CHECK: Duration = Duration::from_millis(100);

struct LeaseState {
    lease: Lease,
    /// Whether any heartbeat was acknowledged since the agent started.
    granted: bool,
    /// The replica must have applied this index for the lease to count.
    required_index: u64,
    /// Why the last renewal was not taken by the watchdog.
    unguarded: Option<String>,
}

pub(crate) struct LeaseKeeper {
    timing: Timing,
    started: Duration,
    state: Mutex<LeaseState>,
    pub(crate) watchdog: WatchdogLink,
}

impl LeaseKeeper {
    pub(crate) fn new(timing: Timing, home: &Home, watchdog: Option<Vec<OsString>>) -> Self {
        LeaseKeeper {
            timing,
            started: boottime(),
            state: Mutex::new(LeaseState {
                lease: Lease::new(timing),
                granted: false,
                required_index: 0,
                unguarded: None,
            }),
            watchdog: WatchdogLink::new(home.root.clone(), watchdog),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LeaseState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether failover instances may run here now, given the index the
    /// local replica has applied.
    pub(crate) fn fence(&self, clustered: bool, applied: u64) -> Fence {
        if !clustered {
            return Fence::Standalone;
        }
        let now = boottime();
        let st = self.lock();
        if st.lease.valid(now) {
            if applied >= st.required_index {
                Fence::Valid
            } else {
                Fence::CatchingUp
            }
        } else if let Some(why) = &st.unguarded {
            Fence::Unguarded { why: why.clone() }
        } else if !st.granted && now < self.started + self.timing.lease {
            Fence::Starting
        } else {
            Fence::Fenced
        }
    }

    /// A heartbeat sent at `sent` (boot clock) was acknowledged, granting
    /// `granted`; the shorter of that and the local lease applies.
    /// `applied` is the leader's applied index when it answered.
    ///
    /// The watchdog takes the new deadline first; only then is the lease
    /// extended, so it never holds an older one while the agent believes
    /// its lease runs.
    pub(crate) fn renew(&self, sent: Duration, granted: Duration, applied: u64) {
        let shorten = self.timing.lease.saturating_sub(granted);
        let from = sent.saturating_sub(shorten);
        let kill_at = from + self.timing.lease + self.timing.stop_grace * 3 / 4;
        let taken = self.watchdog.lease(kill_at);
        let mut st = self.lock();
        match taken {
            Ok(()) => {
                st.unguarded = None;
                st.lease.renewed(from);
                st.granted = true;
                st.required_index = st.required_index.max(applied);
            }
            Err(why) => st.unguarded = Some(why),
        }
    }

    /// Why this node cannot run failover instances, for its heartbeat.
    pub(crate) fn problem(&self) -> Option<String> {
        self.lock()
            .unguarded
            .as_ref()
            .map(|w| format!("fencing watchdog unavailable: {w}"))
    }
}

/// Publishes every change of the node's fence on the status bus (monitors
/// act on it) and in the event log.
pub(crate) async fn watch(cluster: Arc<Cluster>) {
    loop {
        tokio::time::sleep(CHECK).await;
        let now = cluster.fence();
        let before = cluster.status.publish_fence(now.clone());
        if before == now {
            continue;
        }
        let line = match (&before, &now) {
            (_, Fence::Fenced | Fence::Unguarded { .. }) => now
                .problem()
                .map(|p| format!("{p}: stopping failover instances here")),
            (
                Fence::Fenced | Fence::Starting | Fence::Unguarded { .. },
                Fence::Valid | Fence::CatchingUp,
            ) => Some("failover lease granted".to_string()),
            _ => None,
        };
        if let Some(line) = line {
            cluster.emit(line);
        }
    }
}
