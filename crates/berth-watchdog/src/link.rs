//! The agent's end of the fencing watchdog (`crate::watchdog`): spawns it
//! when needed, tells it each lease renewal and every failover container
//! before it starts. If the watchdog died, the next message spawns a new
//! one and replays the deadline and the guarded containers first.

use crate::watchdog::socket_path;
use crate::watchdog::state::Msg;
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a freshly spawned watchdog gets to bind its socket.
const SPAWN_WAIT: Duration = Duration::from_secs(2);
const WRITE_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Default)]
struct Link {
    stream: Option<UnixStream>,
    kill_at: Option<Duration>,
    guarded: BTreeSet<String>,
    /// The last failure was reported; quiet until it works again.
    failing: bool,
}

pub struct WatchdogLink {
    home: PathBuf,
    /// The command that runs the watchdog; `None` disables it (tests of
    /// the library, which have no berth binary to spawn).
    command: Option<Vec<OsString>>,
    link: Mutex<Link>,
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
    /// lease is renewed. Called *before* the agent's own lease is extended.
    pub fn lease(&self, kill_at: Duration) -> Result<(), String> {
        let mut l = self.lock();
        if l.kill_at.is_some_and(|k| k >= kill_at) {
            return Ok(());
        }
        l.kill_at = Some(kill_at);
        self.send(
            &mut l,
            &Msg::Lease {
                kill_at_ns: kill_at.as_nanos() as u64,
            },
        )
    }

    /// A failover container is about to start: guarded before it runs.
    pub fn guard(&self, id: &str) -> Result<(), String> {
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

    /// The node left its cluster. A watchdog an earlier agent started is
    /// told too; none is started for this.
    pub fn disarm(&self) {
        let mut l = self.lock();
        l.kill_at = None;
        l.guarded.clear();
        if l.stream.is_none() {
            l.stream = UnixStream::connect(socket_path(&self.home)).ok();
        }
        if l.stream.is_some() {
            let _ = self.send(&mut l, &Msg::Disarm);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Link> {
        self.link.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn send(&self, l: &mut Link, msg: &Msg) -> Result<(), String> {
        if self.command.is_none() {
            return Ok(());
        }
        let line = encode(msg);
        if let Some(s) = l.stream.as_mut() {
            if s.write_all(line.as_bytes()).is_ok() {
                l.failing = false;
                return Ok(());
            }
            l.stream = None;
        }
        // A new watchdog (or a new connection): the whole state first,
        // then this message (already part of it for guards and leases).
        let result = crate::durable(|| self.connect()).and_then(|mut s| {
            let mut replay = String::new();
            if let Some(k) = l.kill_at {
                replay.push_str(&encode(&Msg::Lease {
                    kill_at_ns: k.as_nanos() as u64,
                }));
            }
            for id in &l.guarded {
                replay.push_str(&encode(&Msg::Guard { id: id.clone() }));
            }
            if matches!(msg, Msg::Disarm) {
                replay.push_str(&line);
            }
            s.write_all(replay.as_bytes())
                .map_err(|e| format!("writing to the watchdog: {e}"))?;
            Ok(s)
        });
        match result {
            Ok(s) => {
                l.stream = Some(s);
                l.failing = false;
                Ok(())
            }
            Err(e) => {
                if !l.failing {
                    tracing::error!("fencing watchdog unavailable: {e}");
                }
                l.failing = true;
                Err(e)
            }
        }
    }

    fn connect(&self) -> Result<UnixStream, String> {
        let sock = socket_path(&self.home);
        let open = |s: UnixStream| {
            let _ = s.set_write_timeout(Some(WRITE_TIMEOUT));
            s
        };
        if let Ok(s) = UnixStream::connect(&sock) {
            return Ok(open(s));
        }
        self.spawn()?;
        let deadline = Instant::now() + SPAWN_WAIT;
        loop {
            match UnixStream::connect(&sock) {
                Ok(s) => return Ok(open(s)),
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!("{}: {e}", sock.display()))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }

    fn spawn(&self) -> Result<(), String> {
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
        // Reaped by init once the agent exits; until then a thread waits.
        std::thread::spawn(move || {
            let mut child = child;
            let _ = child.wait();
        });
        Ok(())
    }
}

fn encode(msg: &Msg) -> String {
    let mut s = serde_json::to_string(msg).unwrap_or_default();
    s.push('\n');
    s
}
