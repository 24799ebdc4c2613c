//! The watchdog process itself.

use crate::clock::boottime;
use crate::state::{Ack, Msg, State};
use crate::{pid_path, procs, socket_path};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const TICK: Duration = Duration::from_millis(20);
const FORGET_EVERY: Duration = Duration::from_secs(10);

fn log(line: &str) {
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{now} watchdog: {line}");
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

/// One agent connection: every message is answered once applied, so the
/// agent extends its lease and starts a container only on a taken one.
fn serve(conn: UnixStream, state: Arc<Mutex<State>>) {
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
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
        if let Err(e) = &applied {
            log(&format!("refused a message: {e}"));
        }
        if out.write_all(Ack::from(applied).line().as_bytes()).is_err() {
            break;
        }
    }
    state
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .disconnected(boottime());
}
