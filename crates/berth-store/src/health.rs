//! Whether desired state can be written: degraded from the first write
//! that failed for want of storage (a full disk, a read-only or failing
//! file system) until a write succeeds again.

use crate::StoreError;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The store as `daemon status` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum StoreHealth {
    Ok,
    /// Writes fail; reads are served. `error` names the file.
    Degraded {
        error: String,
        since: String,
    },
    /// The file system refuses writes (EROFS).
    ReadOnly {
        error: String,
        since: String,
    },
}

impl StoreHealth {
    pub fn as_str(&self) -> &'static str {
        match self {
            StoreHealth::Ok => "ok",
            StoreHealth::Degraded { .. } => "degraded",
            StoreHealth::ReadOnly { .. } => "read-only",
        }
    }
}

/// How soon after a failure the store is tried again.
const RETRY_EVERY: Duration = Duration::from_secs(1);

#[derive(Default)]
pub(crate) struct HealthCell {
    state: Mutex<Option<(StoreHealth, Instant)>>,
}

impl HealthCell {
    pub fn get(&self) -> StoreHealth {
        self.lock()
            .as_ref()
            .map(|(h, _)| h.clone())
            .unwrap_or(StoreHealth::Ok)
    }

    pub fn set_ok(&self) {
        let mut g = self.lock();
        if g.is_some() {
            tracing::info!("desired state is writable again");
        }
        *g = None;
    }

    /// Records a storage fault reported as `what` (openraft's text) on the
    /// log at `log_file`, and returns the error to give the writer.
    pub fn fault(&self, what: &str, log_file: &Path) -> StoreError {
        let error = describe(what, log_file);
        let mut g = self.lock();
        if g.is_none() {
            tracing::error!("desired state cannot be written: {error}");
        }
        // Keep the first failure's time.
        let since = match g.as_ref() {
            Some((
                StoreHealth::Degraded { since, .. } | StoreHealth::ReadOnly { since, .. },
                _,
            )) => since.clone(),
            _ => now_rfc3339(),
        };
        let health = if what.contains("os error 30") {
            StoreHealth::ReadOnly {
                error: error.clone(),
                since,
            }
        } else {
            StoreHealth::Degraded {
                error: error.clone(),
                since,
            }
        };
        *g = Some((health, Instant::now()));
        StoreError::Degraded(with_outcome(error, what))
    }

    /// Err while the last failure is under [`RETRY_EVERY`] old.
    pub fn may_retry(&self) -> Result<(), StoreError> {
        match &*self.lock() {
            Some((
                StoreHealth::Degraded { error, .. } | StoreHealth::ReadOnly { error, .. },
                at,
            )) if at.elapsed() < RETRY_EVERY => Err(StoreError::Degraded(error.clone())),
            _ => Ok(()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(StoreHealth, Instant)>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `raft log raft-local.wal: No space left on device (os error 28)`, from
/// openraft's `when Write Log(..): ..: I/O error: <cause>`: which file
/// follows from the subject, the state machine's for applies and
/// snapshots, the log's otherwise.
fn describe(what: &str, log_file: &Path) -> String {
    let sm = ["Apply(", "StateMachine", "Snapshot"]
        .iter()
        .any(|s| what.contains(s));
    let (role, file) = if sm {
        (
            "raft state machine",
            berth_raft::state_machine_file(log_file),
        )
    } else {
        ("raft log", berth_raft::log_dir(log_file))
    };
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let cause = what
        .rsplit_once("I/O error: ")
        .map(|(_, c)| c)
        .unwrap_or(what);
    format!("{role} {name}: {cause}")
}

/// A failed apply comes after the append: the writer's change may be in
/// the log already, and then takes effect when a new core replays it. The
/// writer must not be told it failed outright.
fn with_outcome(error: String, what: &str) -> String {
    if what.contains("Apply(") {
        format!("{error}; outcome unknown: the change may be in the Raft log, and is then applied once the store recovers")
    } else {
        error
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::{describe, HealthCell, StoreHealth};
    use crate::StoreError;
    use std::path::Path;

    #[test]
    fn names_the_file_and_the_cause() {
        let log = Path::new("/h/raft-local.redb");
        let w = "when Write Log(LogId { index: 5 }): std::io::error::Error: I/O error: No space left on device (os error 28)";
        assert_eq!(
            describe(w, log),
            "raft log raft-local.wal: No space left on device (os error 28)"
        );
        let a =
            "when Write Apply(LogId { index: 5 }): I/O error: Read-only file system (os error 30)";
        assert_eq!(
            describe(a, log),
            "raft state machine raft-local.sm.redb: Read-only file system (os error 30)"
        );
    }

    #[test]
    fn a_failed_apply_is_an_unknown_outcome_not_a_failure() {
        let log = Path::new("/h/raft-local.redb");
        let cell = HealthCell::default();
        let a = "when Write Apply(LogId { index: 5 }): I/O error: No space left on device (os error 28)";
        let StoreError::Degraded(told) = cell.fault(a, log) else {
            panic!("not degraded")
        };
        assert!(told.contains("outcome unknown"), "{told}");
        let StoreHealth::Degraded { error, .. } = cell.get() else {
            panic!("health not degraded")
        };
        assert!(!error.contains("outcome"), "{error}");
        let w =
            "when Write Log(LogId { index: 6 }): I/O error: No space left on device (os error 28)";
        let StoreError::Degraded(told) = cell.fault(w, log) else {
            panic!("not degraded")
        };
        assert!(!told.contains("outcome"), "{told}");
    }
}
