//! The fencing watchdog: a small process, one per node (per berth home),
//! that kills the node's failover containers when the node's lease runs out
//! and the agent did not stop them: the agent crashed, hung, or was stopped
//! while its containers kept running (`design/failover.md`).
//!
//! Design note:
//! - The agent spawns it (`berth daemon watchdog`) in its own session, so
//!   it outlives the agent, and talks to it over `$BERTH_HOME/watchdog.sock`
//!   with one JSON line per message (`state::Msg`): each lease renewal
//!   carries the instant (CLOCK_BOOTTIME, shared by every process) by which
//!   guarded containers must be dead, and every failover container is
//!   guarded *before* it starts.
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

pub mod procs;
pub mod state;

use crate::cluster::clock::boottime;
use state::{Msg, State};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const TICK: Duration = Duration::from_millis(20);
const FORGET_EVERY: Duration = Duration::from_secs(10);

pub fn socket_path(home: &Path) -> PathBuf {
    home.join("watchdog.sock")
}

pub fn pid_path(home: &Path) -> PathBuf {
    home.join("watchdog.pid")
}

fn log(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{} watchdog: {line}", crate::now_rfc3339());
}

/// Runs the watchdog for `home` until nothing needs it. Returns at once if
/// another watchdog already serves this home.
pub fn run(home: &Path) -> std::io::Result<()> {
    let sock = socket_path(home);
    // One watchdog per home, held for its whole life: the lock holder
    // alone binds, and at exit removes, the socket.
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(home.join("watchdog.lock"))?;
    // SAFETY: flock on a valid, open descriptor; no memory is involved.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Ok(());
    }
    let _ = std::fs::remove_file(&sock);
    let listener = UnixListener::bind(&sock)?;
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600))?;
    std::fs::write(pid_path(home), format!("{}\n", std::process::id()))?;
    log(&format!("serving {}", sock.display()));

    let state = Arc::new(Mutex::new(State::new(boottime())));
    let accepting = state.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let st = accepting.clone();
            std::thread::spawn(move || serve(conn, st));
        }
    });

    let proc_root = Path::new("/proc");
    let mut last_forget = boottime();
    loop {
        std::thread::sleep(TICK);
        let now = boottime();
        let (due, kill_at) = {
            let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
            (st.due(now), st.kill_at())
        };
        if !due.is_empty() {
            let ids: BTreeSet<String> = due.into_iter().collect();
            let n = procs::kill_all(proc_root, &ids);
            let late = kill_at.map(|k| now.saturating_sub(k)).unwrap_or_default();
            log(&format!(
                "lease ran out {late:?} ago with the agent silent: killed {n} processes of {} failover container(s): {}",
                ids.len(),
                ids.iter().map(|i| &i[..12]).collect::<Vec<_>>().join(" ")
            ));
        }
        if now.saturating_sub(last_forget) >= FORGET_EVERY {
            last_forget = now;
            let ids: BTreeSet<String> = {
                let st = state.lock().unwrap_or_else(|e| e.into_inner());
                st.guarded().map(str::to_string).collect()
            };
            let alive: BTreeSet<String> = procs::members(proc_root, &ids).into_values().collect();
            let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
            st.forget_dead(now, |id| alive.contains(id));
        }
        let exit = state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .may_exit(now);
        if exit {
            // Still under the lock: socket and pid file are ours.
            let _ = std::fs::remove_file(&sock);
            let _ = std::fs::remove_file(pid_path(home));
            log("no agent and nothing to protect: exiting");
            drop(lock);
            return Ok(());
        }
    }
}

fn serve(conn: UnixStream, state: Arc<Mutex<State>>) {
    state.lock().unwrap_or_else(|e| e.into_inner()).connected();
    for line in BufReader::new(conn).lines() {
        let Ok(line) = line else { break };
        let applied = serde_json::from_str::<Msg>(&line)
            .map_err(|e| e.to_string())
            .and_then(|m| {
                state
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .apply(m, boottime())
            });
        if let Err(e) = applied {
            log(&format!("ignored a message: {e}"));
        }
    }
    state
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .disconnected(boottime());
}
