//! Health: the checks berth runs itself (`check=`), one prober task per
//! running container, and what the monitor does with an instance that
//! stays unhealthy (`on_unhealthy`). Design note: `design/health.md`.
//!
//! A prober probes the container's own address every `health_interval`,
//! feeds the result to the model's `Tracker` (Docker's rule: retries in a
//! row, the start period), and wakes the monitor when the state changes.
//! The monitor reads the state at each pass, so the status, the catalog
//! (through the registrator) and the ingress (through the catalog) all
//! see the one result. Docker's own healthcheck is read from `inspect`,
//! and its `health_status` events wake the monitor the same way.

use berth_cluster::command::ObjectOp;
use berth_drivers::container_docker::ContainerResource;
use berth_engine::Engine;
use berth_model::health::{
    CheckTarget, HealthSource, HealthState, HealthTiming, InstanceHealth, OnUnhealthy, Tracker,
};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;
use tokio::time::Instant;

/// Probes no more often than this, whatever `health_interval` says.
const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// What a check's output keeps.
const OUTPUT_MAX: usize = 512;

/// An instance's health as the monitor last saw it.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    pub state: HealthState,
    pub source: HealthSource,
    pub output: String,
    pub since: Instant,
    /// `since` on the wall clock, for the status.
    pub since_ms: u64,
}

impl Seen {
    pub fn report(&self) -> InstanceHealth {
        InstanceHealth {
            state: self.state,
            source: self.source,
            output: self.output.clone(),
            since_ms: self.since_ms,
        }
    }
}

/// The prober of one container; dropping it stops the probes.
pub(crate) struct Prober {
    pub container_id: String,
    seen: Arc<Mutex<Option<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Prober {
    /// `started_here`: the monitor started the container, whose health is
    /// "starting" until its checks say otherwise, and whose first check
    /// waits an interval. One it adopted (an agent restart) is checked at
    /// once, and has no health until then: the catalog keeps what it had,
    /// so an agent restart takes no instance out of rotation.
    pub fn spawn(
        engine: Engine,
        container_id: String,
        target: CheckTarget,
        timing: HealthTiming,
        wake: Arc<Notify>,
        started_here: bool,
    ) -> Prober {
        let seen = Arc::new(Mutex::new(started_here.then(|| Seen {
            state: HealthState::Starting,
            source: HealthSource::Berth,
            output: String::new(),
            since: Instant::now(),
            since_ms: now_ms(),
        })));
        let first = if started_here {
            timing.interval.max(MIN_INTERVAL)
        } else {
            Duration::ZERO
        };
        let task = tokio::spawn(probe_loop(
            Probe {
                engine,
                id: container_id.clone(),
                target,
                timing,
            },
            first,
            seen.clone(),
            wake,
        ));
        Prober {
            container_id,
            seen,
            task,
        }
    }

    pub fn seen(&self) -> Option<Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// What a prober checks.
struct Probe {
    engine: Engine,
    id: String,
    target: CheckTarget,
    timing: HealthTiming,
}

async fn probe_loop(p: Probe, first: Duration, seen: Arc<Mutex<Option<Seen>>>, wake: Arc<Notify>) {
    let started = Instant::now();
    let mut tracker = Tracker::new(p.timing);
    let mut addr: Option<SocketAddr> = None;
    let every = p.timing.interval.max(MIN_INTERVAL);
    let mut tick = tokio::time::interval_at(Instant::now() + first, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if addr.is_none() {
            addr = address(&p.engine, &p.id, p.target.port()).await;
        }
        let (passed, output) = match addr {
            None => (false, "the container has no address to check".to_string()),
            Some(a) => match tokio::time::timeout(p.timing.timeout, probe(a, &p.target)).await {
                Ok(r) => r,
                Err(_) => (
                    false,
                    format!(
                        "{}: no answer within {:?}",
                        show(a, &p.target),
                        p.timing.timeout
                    ),
                ),
            },
        };
        if !passed {
            // The address is found again: a restart may have changed it.
            addr = None;
        }
        let changed = tracker.observe(passed, started.elapsed());
        let first_word = {
            let mut s = seen.lock().unwrap_or_else(|e| e.into_inner());
            let first_word = s.is_none();
            let entry = s.get_or_insert_with(|| Seen {
                state: tracker.state(),
                source: HealthSource::Berth,
                output: String::new(),
                since: Instant::now(),
                since_ms: now_ms(),
            });
            entry.output = output;
            if changed.is_some() && entry.state != tracker.state() {
                entry.state = tracker.state();
                entry.since = Instant::now();
                entry.since_ms = now_ms();
            }
            first_word
        };
        if first_word || changed.is_some() || tracker.state() == HealthState::Unhealthy {
            // While unhealthy the monitor looks at each run, so the grace
            // is measured to within an interval.
            wake.notify_one();
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The container's address on its network; the node's loopback when it
/// shares the host's network.
pub(super) async fn address(engine: &Engine, id: &str, port: u16) -> Option<SocketAddr> {
    let facts = engine.facts(id).await.ok().flatten()?;
    let ip = if facts.ip.is_empty() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        facts.ip.parse().ok()?
    };
    Some(SocketAddr::new(ip, port))
}

fn show(a: SocketAddr, target: &CheckTarget) -> String {
    match target {
        CheckTarget::Http { path, .. } => format!("GET http://{a}{path}"),
        CheckTarget::Tcp { .. } => format!("tcp {a}"),
    }
}

/// One run: whether it passed, and what it said.
pub(crate) async fn probe(a: SocketAddr, target: &CheckTarget) -> (bool, String) {
    let what = show(a, target);
    let mut s = match tokio::net::TcpStream::connect(a).await {
        Ok(s) => s,
        Err(e) => return (false, format!("{what}: {e}")),
    };
    let CheckTarget::Http { path, .. } = target else {
        return (true, format!("{what}: connected"));
    };
    let req = format!(
        "GET {path} HTTP/1.0\r\nHost: {a}\r\nUser-Agent: berth-health\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    if let Err(e) = s.write_all(req.as_bytes()).await {
        return (false, format!("{what}: {e}"));
    }
    let mut buf = vec![0u8; 1024];
    let mut got = 0;
    while got < buf.len() && !buf[..got].windows(2).any(|w| w == b"\r\n") {
        match s.read(&mut buf[got..]).await {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => return (false, format!("{what}: {e}")),
        }
    }
    let head = String::from_utf8_lossy(&buf[..got]);
    let line = head.lines().next().unwrap_or_default().trim();
    let code = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok());
    let mut out = match code {
        Some(_) => format!("{what}: {}", line.split_once(' ').map_or("", |(_, r)| r)),
        None => format!("{what}: no HTTP answer"),
    };
    out.truncate(OUTPUT_MAX);
    (code.is_some_and(|c| (200..400).contains(&c)), out)
}

/// Docker's healthcheck, as `inspect` reported it.
pub(crate) fn from_docker(
    word: &str,
    output: Option<&str>,
    previous: Option<&Seen>,
) -> Option<Seen> {
    let state = HealthState::from_docker(word)?;
    let mut output = output.unwrap_or_default().to_string();
    output.truncate(OUTPUT_MAX);
    let (since, since_ms) = previous
        .filter(|p| p.state == state && p.source == HealthSource::Docker)
        .map_or_else(|| (Instant::now(), now_ms()), |p| (p.since, p.since_ms));
    Some(Seen {
        state,
        source: HealthSource::Docker,
        output,
        since,
        since_ms,
    })
}

impl super::Imon {
    /// Keeps the container's health current at a status pass: a prober
    /// for a running container with `check`, Docker's word otherwise;
    /// nothing for a container that is not up.
    pub(crate) fn track_health(
        &mut self,
        c: &ContainerResource,
        engine: Option<&Engine>,
        up_id: Option<&str>,
        docker: Option<(&str, Option<&str>)>,
    ) -> Option<InstanceHealth> {
        let wake = self.notify.clone();
        let st = self.res.entry(c.rid.clone()).or_default();
        let Some(id) = up_id else {
            st.prober = None;
            st.health = None;
            st.health_due = None;
            return None;
        };
        st.health = match (&c.check, docker) {
            (Some(target), _) => {
                if st.prober.as_ref().is_none_or(|p| p.container_id != id) {
                    let here = st.started_here.as_deref() == Some(id);
                    st.prober = engine.map(|e| {
                        Prober::spawn(
                            e.clone(),
                            id.to_string(),
                            target.clone(),
                            c.health,
                            wake,
                            here,
                        )
                    });
                }
                st.prober.as_ref().and_then(Prober::seen)
            }
            (None, Some((word, output))) => {
                st.prober = None;
                from_docker(word, output, st.health.as_ref())
            }
            (None, None) => {
                st.prober = None;
                None
            }
        };
        // After a move was asked in this spell, the next look is one grace
        // after the asking (not at once, again and again).
        st.health_due = st
            .health
            .as_ref()
            .filter(|h| h.state == HealthState::Unhealthy)
            .filter(|_| c.on_unhealthy != OnUnhealthy::None && !st.failed)
            .map(|h| st.move_asked_since(h.since).unwrap_or(h.since) + c.health_grace);
        st.health.as_ref().map(Seen::report)
    }

    /// What `on_unhealthy` does now about the running container `id`, if
    /// anything. Says why in an event, and counts a restart against the
    /// budget (a spent budget marks the resource failed instead).
    /// `movable`: a failover service the orchestrator may move (a
    /// cluster, orchestrate=ha); it is asked to first, and the container
    /// restarts here only when no other node took it within the grace.
    pub(crate) fn unhealthy_action(
        &mut self,
        c: &ContainerResource,
        id: &str,
        movable: bool,
    ) -> Option<Unwell> {
        let failover = c.on_unhealthy == OnUnhealthy::Failover;
        let st = self.res.entry(c.rid.clone()).or_default();
        let h = st.health.clone()?;
        let ours = st.prober.as_ref().is_none_or(|p| p.container_id == id);
        if !ours
            || h.state != HealthState::Unhealthy
            || c.on_unhealthy == OnUnhealthy::None
            || st.failed
            || h.since.elapsed() < c.health_grace
        {
            return None;
        }
        let unwell = format!(
            "unhealthy for {:.1}s (grace {:?}): {}",
            h.since.elapsed().as_secs_f64(),
            c.health_grace,
            if h.output.is_empty() {
                "no output"
            } else {
                h.output.as_str()
            }
        );
        let asked = st.move_asked_since(h.since);
        if movable && failover {
            match asked {
                None => {
                    st.move_asked = Some(Instant::now());
                    let msg = format!("{unwell}; moving to another node");
                    st.note(msg.clone());
                    self.agent
                        .events
                        .emit(Some(&self.key), Some(&c.rid), msg, None);
                    return Some(Unwell::Move(unwell));
                }
                Some(t) if t.elapsed() < c.health_grace => return None,
                Some(_) => {}
            }
        }
        let how = match (failover, asked.is_some(), self.agent.cluster.is_clustered()) {
            (true, true, _) => "no other node took it: restarting here",
            (true, false, true) => {
                "restarting here (moving needs topology=failover and orchestrate=ha)"
            }
            _ => "restarting",
        };
        let (restart, msg) = if st.restarts >= c.restart {
            st.failed = true;
            st.health_due = None;
            (
                false,
                format!(
                    "{unwell}; restart budget of {} spent, resource failed",
                    c.restart
                ),
            )
        } else {
            st.restarts += 1;
            // The next container starts with a fresh health.
            st.prober = None;
            st.health = None;
            st.health_due = None;
            st.move_asked = None;
            (
                true,
                format!("{unwell}; {how} ({}/{})", st.restarts, c.restart),
            )
        };
        st.note(msg.clone());
        self.agent
            .events
            .emit(Some(&self.key), Some(&c.rid), msg, None);
        restart.then_some(Unwell::Restart)
    }

    /// Marks this node in desired state as one the service stayed
    /// unhealthy on: the orchestrator places it elsewhere.
    pub(crate) async fn mark_unhealthy(&mut self, rid: &str, why: String) {
        let op = ObjectOp::Unhealthy {
            path: self.key.clone(),
            node: self.agent.nodename().to_string(),
            why: Some(why),
        };
        if let Err(e) = self.agent.submit(op).await {
            self.res
                .entry(rid.to_string())
                .or_default()
                .note(format!("asking to move it to another node: {e}"));
        }
    }

    /// `clear`: this node is no longer one the service avoids.
    pub(crate) async fn forget_unhealthy_mark(&self) -> Result<(), String> {
        let marked = self
            .agent
            .cluster
            .desired()
            .get(&self.key)
            .map_err(|e| e.to_string())?
            .is_some_and(|r| r.unhealthy_on.contains_key(self.agent.nodename()));
        if !marked {
            return Ok(());
        }
        let op = ObjectOp::Unhealthy {
            path: self.key.clone(),
            node: self.agent.nodename().to_string(),
            why: None,
        };
        self.agent
            .submit_as(&self.acting_user(), op)
            .await
            .map_err(|e| e.to_string())
    }
}

/// What `on_unhealthy` does about an instance.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Unwell {
    /// Restart the container here.
    Restart,
    /// Ask the orchestrator to move the service (why).
    Move(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn serve_once(answer: &'static str) -> SocketAddr {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut b = [0u8; 512];
            let _ = s.read(&mut b).await;
            let _ = s.write_all(answer.as_bytes()).await;
        });
        a
    }

    #[tokio::test]
    async fn an_http_check_passes_on_2xx_and_3xx_only() {
        let http = |a: SocketAddr| CheckTarget::Http {
            port: a.port(),
            path: "/health".into(),
        };
        let a = serve_once("HTTP/1.1 204 No Content\r\n\r\n").await;
        let (ok, out) = probe(a, &http(a)).await;
        assert!(ok, "{out}");
        assert!(out.ends_with("204 No Content"), "{out}");
        let a = serve_once("HTTP/1.1 503 Service Unavailable\r\n\r\n").await;
        let (ok, out) = probe(a, &http(a)).await;
        assert!(!ok);
        assert!(out.contains("503"), "{out}");
        let a = serve_once("garbage").await;
        assert!(!probe(a, &http(a)).await.0);
    }

    #[tokio::test]
    async fn a_tcp_check_passes_when_the_port_accepts() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = l.local_addr().unwrap();
        assert!(probe(a, &CheckTarget::Tcp { port: a.port() }).await.0);
        drop(l);
        assert!(!probe(a, &CheckTarget::Tcp { port: a.port() }).await.0);
    }
}
