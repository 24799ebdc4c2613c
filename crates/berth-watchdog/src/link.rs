//! The agent's end of the fencing watchdog: spawns it when needed, tells it
//! each lease deadline and every failover container before it starts, and
//! waits for each to be acknowledged. If the watchdog died, the next message
//! spawns a new one and replays the deadline and the guarded containers
//! first. A message that was not acknowledged is an error: the caller then
//! neither extends its lease nor starts the container (fencing fails
//! closed).

use crate::socket_path;
use crate::state::{Ack, Msg};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a freshly spawned watchdog gets to bind its socket.
const SPAWN_WAIT: Duration = Duration::from_secs(2);
/// How long a write and its acknowledgement may take.
const ACK_WAIT: Duration = Duration::from_millis(500);

struct Conn {
    out: UnixStream,
    acks: BufReader<UnixStream>,
}

impl Conn {
    fn open(s: UnixStream) -> Result<Conn, String> {
        let _ = s.set_write_timeout(Some(ACK_WAIT));
        let _ = s.set_read_timeout(Some(ACK_WAIT));
        let acks = s.try_clone().map_err(|e| e.to_string())?;
        Ok(Conn {
            out: s,
            acks: BufReader::new(acks),
        })
    }

    /// Sends one message and waits for its answer. `Err(Ok(why))`: the
    /// watchdog refused it; `Err(Err(why))`: the connection failed.
    fn ask(&mut self, msg: &Msg) -> Result<(), Result<String, String>> {
        let mut line = serde_json::to_string(msg).map_err(|e| Err(e.to_string()))?;
        line.push('\n');
        self.out
            .write_all(line.as_bytes())
            .map_err(|e| Err(format!("writing to the watchdog: {e}")))?;
        let mut answer = String::new();
        match self.acks.read_line(&mut answer) {
            Ok(0) => return Err(Err("the watchdog closed the connection".into())),
            Ok(_) => {}
            Err(e) => return Err(Err(format!("no answer from the watchdog: {e}"))),
        }
        let ack: Ack = serde_json::from_str(&answer)
            .map_err(|e| Err(format!("bad answer from the watchdog: {e}")))?;
        if ack.ok {
            Ok(())
        } else {
            Err(Ok(ack.error.unwrap_or_else(|| "refused".into())))
        }
    }
}

#[derive(Default)]
struct Link {
    conn: Option<Conn>,
    kill_at: Option<Duration>,
    guarded: BTreeSet<String>,
    /// The last failure, until a message is acknowledged again.
    failure: Option<String>,
}

pub struct WatchdogLink {
    home: PathBuf,
    /// The command that runs the watchdog; `None` disables it (tests of
    /// the library, which have no berth binary to spawn).
    command: Option<Vec<OsString>>,
    link: Mutex<Link>,
}

/// Runs blocking socket work without stalling the runtime's other tasks.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

impl WatchdogLink {
    pub fn new(home: PathBuf, command: Option<Vec<OsString>>) -> WatchdogLink {
        WatchdogLink {
            home,
            command,
            link: Mutex::new(Link::default()),
        }
    }

    /// Guarded containers must be dead by `kill_at` (boot clock) unless the
    /// lease is renewed. Called *before* the agent's own lease is extended,
    /// which it may be only on `Ok`.
    pub fn lease(&self, kill_at: Duration) -> Result<(), String> {
        let mut l = self.lock();
        let at = l.kill_at.map_or(kill_at, |k| k.max(kill_at));
        l.kill_at = Some(at);
        self.send(
            &mut l,
            &Msg::Lease {
                kill_at_ns: at.as_nanos() as u64,
            },
        )
    }

    /// A failover container is about to start: it may start only on `Ok`.
    pub fn guard(&self, id: &str) -> Result<(), String> {
        // The watchdog refuses anything else; kept, it would spoil replays.
        if !crate::state::valid_id(id) {
            return Err(format!(
                "refused container id {id:?}: not a full container id"
            ));
        }
        let mut l = self.lock();
        l.guarded.insert(id.to_string());
        self.send(&mut l, &Msg::Guard { id: id.to_string() })
    }

    /// A running failover container (found by a restarted agent, say):
    /// guarded unless it already is.
    pub fn adopt(&self, id: &str) -> Result<(), String> {
        if self.lock().guarded.contains(id) {
            return Ok(());
        }
        self.guard(id)
    }

    /// Why the watchdog is unavailable, if its last message failed.
    pub fn problem(&self) -> Option<String> {
        self.lock().failure.clone()
    }

    /// The node left its cluster. A watchdog an earlier agent started is
    /// told too; none is started for this.
    pub fn disarm(&self) {
        let mut l = self.lock();
        l.kill_at = None;
        l.guarded.clear();
        l.failure = None;
        if l.conn.is_none() {
            l.conn = UnixStream::connect(socket_path(&self.home))
                .ok()
                .and_then(|s| Conn::open(s).ok());
        }
        if let Some(c) = l.conn.as_mut() {
            let _ = blocking(|| c.ask(&Msg::Disarm));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Link> {
        self.link.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn send(&self, l: &mut Link, msg: &Msg) -> Result<(), String> {
        if self.command.is_none() {
            return Ok(());
        }
        let result = blocking(|| self.deliver(l, msg));
        match &result {
            Ok(()) => {
                if l.failure.take().is_some() {
                    tracing::info!("fencing watchdog available again");
                }
            }
            Err(e) => {
                if l.failure.is_none() {
                    tracing::error!("fencing watchdog unavailable: {e}");
                }
                l.failure = Some(e.clone());
            }
        }
        result
    }

    fn deliver(&self, l: &mut Link, msg: &Msg) -> Result<(), String> {
        if let Some(c) = l.conn.as_mut() {
            match c.ask(msg) {
                Ok(()) => return Ok(()),
                Err(Ok(refused)) => return Err(refused),
                Err(Err(_)) => l.conn = None,
            }
        }
        // A new watchdog (or a new connection): the whole state first; for
        // a lease or a guard that is the message itself.
        let mut c = self.connect()?;
        if let Some(k) = l.kill_at {
            let lease = Msg::Lease {
                kill_at_ns: k.as_nanos() as u64,
            };
            c.ask(&lease).map_err(replay_failure)?;
        }
        for id in &l.guarded {
            c.ask(&Msg::Guard { id: id.clone() })
                .map_err(replay_failure)?;
        }
        l.conn = Some(c);
        Ok(())
    }

    fn connect(&self) -> Result<Conn, String> {
        let sock = socket_path(&self.home);
        if let Ok(s) = UnixStream::connect(&sock) {
            return Conn::open(s);
        }
        let mut child = self.spawn()?;
        let deadline = Instant::now() + SPAWN_WAIT;
        loop {
            if let Ok(s) = UnixStream::connect(&sock) {
                // Reaped by init once the agent exits; until then a thread waits.
                std::thread::spawn(move || {
                    let _ = child.wait();
                });
                return Conn::open(s);
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "the watchdog exited at start ({status}); see {}",
                    self.home.join("watchdog.log").display()
                ));
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{}: not bound within {SPAWN_WAIT:?}",
                    sock.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn spawn(&self) -> Result<Child, String> {
        let Some((exe, args)) = self.command.as_ref().and_then(|c| c.split_first()) else {
            return Err("no watchdog command".into());
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.home.join("watchdog.log"))
            .map_err(|e| format!("watchdog.log: {e}"))?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = std::process::Command::new(exe);
        cmd.args(args).stdin(Stdio::null()).stdout(log).stderr(err);
        // Its own session: a signal to the agent's process group (a Ctrl-C,
        // a service manager stopping the agent) must not take the watchdog
        // with it. SAFETY: setsid() is async-signal-safe and touches no
        // memory.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("spawning the watchdog: {e}"))?;
        tracing::info!("fencing watchdog started (pid {})", child.id());
        Ok(child)
    }
}

/// Either kind of failure of [`Conn::ask`] during a replay, as one message.
fn replay_failure(e: Result<String, String>) -> String {
    match e {
        Ok(refused) => format!("the watchdog refused the replay: {refused}"),
        Err(e) => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait_for(path: &std::path::Path) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !path.exists() {
            assert!(
                Instant::now() < deadline,
                "{} never appeared",
                path.display()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn nothing_is_taken_without_a_watchdog_that_answers() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_path_buf();
        // A "watchdog" that exits at once: fencing fails closed.
        let link = WatchdogLink::new(home.clone(), Some(vec!["/bin/false".into()]));
        let err = link.lease(Duration::from_secs(100)).unwrap_err();
        assert!(err.contains("exited at start"), "{err}");
        assert!(link.guard(&"a".repeat(64)).is_err());
        assert!(link.problem().is_some());
        // A real one appears: the next message connects, replays and is taken.
        let served = home.clone();
        std::thread::spawn(move || crate::run(&served));
        wait_for(&crate::socket_path(&home));
        link.lease(Duration::from_secs(200)).unwrap();
        assert_eq!(link.problem(), None);
        // An id the watchdog would refuse is refused here, and kept out
        // of what a reconnect replays.
        let refused = link.guard("not-a-container-id").unwrap_err();
        assert!(refused.contains("refused"), "{refused}");
        link.guard(&"b".repeat(64)).unwrap();
    }
}
