//! The fencing watchdog: a small process, one per node (per berth home),
//! that kills the node's failover containers when the node's lease runs out
//! and the agent did not stop them: the agent crashed, hung, or was stopped
//! while its containers kept running (`design/failover.md`).
//!
//! Design note:
//! - The agent spawns it (`berth daemon watchdog`) in its own session, so
//!   it outlives the agent, and talks to it over `$BERTH_HOME/watchdog.sock`
//!   with one JSON line per message (`state::Msg`), each answered once
//!   applied (`state::Ack`): each lease renewal carries the instant
//!   (CLOCK_BOOTTIME, shared by every process) by which guarded containers
//!   must be dead, and every failover container is guarded *before* it
//!   starts. The agent extends its own lease, and starts a failover
//!   container, only once the watchdog acknowledged (`link`).
//! - The kill instant is `lease end + 3/4 stop_grace`: after the agent's own
//!   stop had its chance, before the managers may start the service
//!   elsewhere (`lease end + stop_grace`).
//! - It needs neither the agent nor dockerd: it SIGKILLs every process whose
//!   cgroup names the container (`procs`). dockerd sees the container die.
//! - One per home, by an flock held for its whole life.
//! - A restarted agent connects to the running watchdog, which keeps its
//!   deadline and guarded set until renewed; a watchdog with no agent and
//!   nothing left to protect exits.
//!
//! Architecture invariant: the watchdog never starts anything, and never
//! talks to Docker or the network.

pub mod clock;
pub mod link;
mod process;
pub mod procs;
pub mod state;

pub use clock::boottime;
pub use link::WatchdogLink;
pub use process::run;

use std::path::{Path, PathBuf};

pub fn socket_path(home: &Path) -> PathBuf {
    home.join("watchdog.sock")
}

pub fn pid_path(home: &Path) -> PathBuf {
    home.join("watchdog.pid")
}
