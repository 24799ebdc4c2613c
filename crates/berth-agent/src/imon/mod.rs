//! imon: the instance monitor, one task per object.
//!
//! Design note (see also `design/imon.md`):
//! - Inputs: actions from the API, wake-ups from Docker events, and a periodic
//!   resync tick. Messages for one object are handled one at a time, so an
//!   action and a crash event never race; objects run in parallel, bounded by
//!   the agent's Docker permits.
//! - Level-triggered: every pass reads the desired state from the store and
//!   the real state from Docker, and acts on the difference. A fresh monitor
//!   (agent restart) therefore adopts running containers: a running container
//!   is never touched by a pass, only by an explicit stop or restart.
//! - Outputs: Docker calls, events, and the cached `ObjectStatus`.
//! - Frozen objects get status refreshes but no automatic action.

mod converge;
mod drain;
mod health;
mod refresh;
mod replace;
mod status;
mod warnings;

use crate::agent::Agent;
use crate::error::AgentError;
use berth_cluster::{ObjectOp, UserRef};
use berth_manager::duty::Duty;
use berth_model::status::{Avail, Target};
use berth_model::{ActionKind, ActionOutcome, ObjectPath};
use berth_store::ObjectRecord;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot, Notify};
use warnings::Warnings;

pub(crate) enum ImonMsg {
    /// An action, for a user: the commands it submits are that user's.
    Action(ActionKind, UserRef, oneshot::Sender<ActionOutcome>),
}

#[derive(Clone)]
pub(crate) struct ImonHandle {
    pub id: u64,
    tx: mpsc::Sender<ImonMsg>,
    notify: Arc<Notify>,
    /// Docker may have changed under the object: the next pass asks it.
    docker: Arc<AtomicBool>,
}

static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl ImonHandle {
    /// Desired state changed: a pass, which asks Docker again only about
    /// what it has no answer for (`status::Probed`).
    pub(crate) fn wake(&self) {
        self.notify.notify_one();
    }

    /// Docker reported a change (or may have, after a reconnect): a pass
    /// that asks Docker about every resource.
    pub(crate) fn wake_docker(&self) {
        self.docker.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }

    pub(crate) async fn send(&self, msg: ImonMsg) -> Result<(), AgentError> {
        self.tx
            .send(msg)
            .await
            .map_err(|_| AgentError::ShuttingDown)
    }
}

/// First wait before retrying a failed reconcile; it doubles up to the resync period.
const RETRY_FIRST: std::time::Duration = std::time::Duration::from_secs(2);

/// Soft state the monitor keeps about one resource between passes.
#[derive(Default)]
pub(crate) struct ResourceState {
    pub restarts: u32,
    pub failed: bool,
    /// When the next automatic restart is due, after `restart_delay`.
    pub restart_at: Option<tokio::time::Instant>,
    pub log: Warnings,
    /// Out of the catalog while a stop waits for in-flight requests.
    pub draining: bool,
    /// The version of each `sec`/`cfg` value the container holds.
    pub values: std::collections::BTreeMap<String, u64>,
    /// The prober of the running container's `check`.
    pub prober: Option<health::Prober>,
    /// Its health at the last status pass.
    pub health: Option<health::Seen>,
    /// When `on_unhealthy` is due to act, while it is unhealthy.
    pub health_due: Option<tokio::time::Instant>,
    /// When `on_unhealthy=failover` asked the orchestrator to move the
    /// service away from this node.
    pub move_asked: Option<tokio::time::Instant>,
    /// A twin left by an interrupted start-first replacement was looked
    /// for (`imon/replace.rs`).
    pub twin_checked: bool,
    /// The container this monitor started last (not one it adopted).
    pub started_here: Option<String>,
    /// The container was made from an older config ("config changed").
    pub stale: bool,
}

impl ResourceState {
    /// When a move was asked in the unhealthy spell that began at
    /// `since`, not in an earlier one.
    pub fn move_asked_since(&self, since: tokio::time::Instant) -> Option<tokio::time::Instant> {
        self.move_asked.filter(|t| *t >= since)
    }

    pub(crate) fn note(&mut self, line: String) {
        self.log.note(line);
    }
}

pub(crate) struct Imon {
    pub id: u64,
    pub agent: Arc<Agent>,
    pub path: ObjectPath,
    pub key: String,
    pub res: HashMap<String, ResourceState>,
    /// Object-level problems: invalid config on disk, private daemon errors.
    pub obj_log: Warnings,
    pub config_error: Option<String>,
    /// Transcript of the action in progress, if any.
    pub transcript: Option<Arc<Mutex<Vec<String>>>>,
    /// Stopping because the lease ran out: stop at once.
    pub fencing: bool,
    /// Whether the last pass found this node responsible for running it.
    pub duty_run: bool,
    /// Why the fence keeps the instance from running here, for the status.
    pub held: Option<String>,
    /// After a failed reconcile: when to try again (any pass consumes it),
    /// and the last wait, doubled on each failure in a row.
    pub retry_at: Option<tokio::time::Instant>,
    pub retry_wait: Option<std::time::Duration>,
    docker: Arc<AtomicBool>,
    /// What Docker said at the last probe, reused while nothing says it
    /// changed.
    pub probed: Option<status::Probed>,
    /// Whom the action in progress is for.
    acting: Option<UserRef>,
    /// Wakes this monitor for a pass (a prober's news).
    pub notify: Arc<Notify>,
}

pub(crate) fn spawn(agent: Arc<Agent>, path: ObjectPath) -> ImonHandle {
    let (tx, rx) = mpsc::channel(64);
    let notify = Arc::new(Notify::new());
    notify.notify_one();
    let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let docker = Arc::new(AtomicBool::new(true));
    let imon = Imon {
        id,
        key: path.to_string(),
        agent,
        path,
        res: HashMap::new(),
        obj_log: Warnings::default(),
        config_error: None,
        transcript: None,
        fencing: false,
        duty_run: false,
        held: None,
        retry_at: None,
        retry_wait: None,
        docker: docker.clone(),
        probed: None,
        acting: None,
        notify: notify.clone(),
    };
    tokio::spawn(imon.run(rx, notify.clone()));
    ImonHandle {
        id,
        tx,
        notify,
        docker,
    }
}

impl Imon {
    async fn run(mut self, mut rx: mpsc::Receiver<ImonMsg>, notify: Arc<Notify>) {
        let resync = self.agent.opts.resync;
        // Spread the monitors' ticks so 1000 objects do not resync at once.
        let jitter = resync.mul_f64(fastrand_fraction(&self.key));
        let mut tick =
            tokio::time::interval_at(tokio::time::Instant::now() + resync + jitter, resync);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let restart_at = self.next_restart();
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(ImonMsg::Action(kind, by, reply)) => {
                        self.acting = Some(by);
                        let (outcome, gone) = self.act(kind).await;
                        self.acting = None;
                        let _ = reply.send(outcome);
                        if gone {
                            // Answer what was queued behind the delete.
                            rx.close();
                            while let Ok(ImonMsg::Action(_, _, reply)) = rx.try_recv() {
                                let _ = reply.send(ActionOutcome::failed(
                                    &self.key,
                                    format!("{}: no such object", self.key),
                                ));
                            }
                            return;
                        }
                    }
                    None => return,
                },
                _ = notify.notified() => {
                    if !self.pass().await {
                        return;
                    }
                }
                _ = tick.tick() => {
                    // The resync is the level-triggered safety net: it
                    // always asks Docker.
                    self.docker.store(true, Ordering::SeqCst);
                    if !self.pass().await {
                        return;
                    }
                }
                _ = sleep_until_some(restart_at) => {
                    self.docker.store(true, Ordering::SeqCst);
                    if !self.pass().await {
                        return;
                    }
                }
            }
        }
    }

    pub(crate) fn note_object(&mut self, line: String) {
        self.obj_log.note(line);
    }

    /// A pass that started at `t` succeeded: what was noted before is no
    /// longer true. A failed resource stays failed, until `clear` or a
    /// start, with what it noted: a pass leaves it alone, so its success
    /// says nothing of why it failed.
    fn conditions_cleared(&mut self, t: tokio::time::Instant) {
        self.obj_log.clear_before(t);
        for r in self.res.values_mut().filter(|r| !r.failed) {
            r.log.clear_before(t);
        }
    }

    pub(crate) fn say(&self, line: String) {
        if let Some(t) = &self.transcript {
            t.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(line.clone());
        }
        self.agent.events.emit(Some(&self.key), None, line, None);
    }

    /// One automatic pass. Returns false when the object no longer exists.
    async fn pass(&mut self) -> bool {
        self.retry_at = None;
        let began = tokio::time::Instant::now();
        let mut probe = self.docker.swap(false, Ordering::SeqCst);
        self.config_error = crate::objects::sync_file(&self.agent, &self.path).await;
        let rec = match self.agent.cluster.desired().get(&self.key) {
            Ok(Some(r)) => r,
            Ok(None) => {
                // Re-check under the object's lock: a create may be racing us.
                let agent = self.agent.clone();
                let _guard = agent.config_locks.lock_one(&self.key).await;
                if matches!(self.agent.cluster.desired().get(&self.key), Ok(None)) {
                    self.clean_up_deleted().await;
                    self.agent.forget_imon(&self.key, self.id);
                    return false;
                }
                // No status this time: Docker's news waits for the next.
                self.docker.fetch_or(probe, Ordering::SeqCst);
                return true;
            }
            Err(e) => {
                self.note_object(format!("store: {e}"));
                self.docker.fetch_or(probe, Ordering::SeqCst);
                return true;
            }
        };
        let agent = self.agent.clone();
        let _permit = agent.docker_permits.acquire().await;
        let duty = self.duty(&rec);
        self.held = match &duty {
            Duty::Hold { .. } | Duty::Stop { urgent: true, .. }
                if rec.target == Target::Started && !rec.frozen =>
            {
                self.agent
                    .cluster
                    .fence()
                    .problem()
                    .map(|p| format!("not running here: {p}"))
            }
            _ => None,
        };
        match duty {
            Duty::Run => {
                // A node that just became responsible (placed here, lease
                // regained) starts the instance now: a container it stopped
                // or left earlier is not a crash to back off from.
                let fresh = self.agent.cluster.is_clustered() && !self.duty_run;
                self.duty_run = true;
                if !rec.frozen && rec.target == Target::Started {
                    probe = true;
                    match self.converge_started(&rec, fresh).await {
                        Ok(()) => {
                            self.retry_wait = None;
                            self.conditions_cleared(began);
                        }
                        Err(e) => self.failed_reconcile(e),
                    }
                }
            }
            Duty::Hold { .. } => self.duty_run = false,
            Duty::Stop { why, urgent } => {
                self.duty_run = false;
                for r in self.res.values_mut() {
                    r.restart_at = None;
                }
                if self.runs_here() {
                    probe = true;
                    self.say(why);
                    self.fencing = urgent;
                    let r = self.converge_stopped(&rec, false).await;
                    self.fencing = false;
                    match r {
                        Ok(()) => self.conditions_cleared(began),
                        Err(e) => self.note_object(format!("stopping: {e}")),
                    }
                }
            }
        }
        self.refresh_status(&rec, probe).await;
        true
    }

    /// A reconcile failed: retry well before the next resync, backing off.
    fn failed_reconcile(&mut self, e: String) {
        let wait = self
            .retry_wait
            .map(|w| (w * 2).min(self.agent.opts.resync))
            .unwrap_or(RETRY_FIRST);
        self.retry_wait = Some(wait);
        self.retry_at = Some(tokio::time::Instant::now() + wait);
        self.duty_run = false;
        self.agent.events.emit(
            Some(&self.key),
            None,
            format!("reconcile failed (retry in {wait:?}): {e}"),
            None,
        );
        self.note_object(e);
    }

    /// Whether the object runs one instance at a time (fenced by the
    /// lease); an object whose config does not resolve counts as one.
    pub(crate) fn is_failover(&self, rec: &ObjectRecord) -> bool {
        self.agent
            .settings(&self.path, &rec.config)
            .map_or(true, |s| s.is_failover())
    }

    /// What this node must do with its instance, target and frozen aside.
    fn duty(&self, rec: &ObjectRecord) -> Duty {
        berth_manager::duty::duty(
            &rec.placement,
            self.agent.nodename(),
            self.is_failover(rec),
            &self.agent.cluster.fence(),
        )
    }

    /// An explicit start here is refused when the node may not run the
    /// instance now; the target stays started, so it starts once it may.
    fn may_start(&self, rec: &ObjectRecord) -> Result<(), String> {
        match self.duty(rec) {
            Duty::Run => Ok(()),
            Duty::Hold { why } | Duty::Stop { why, .. } => Err(format!(
                "not started on {}: {why}; it starts on its own once that clears",
                self.agent.nodename()
            )),
        }
    }

    /// Whether the last status saw the instance running here.
    fn runs_here(&self) -> bool {
        self.agent.status(&self.key).is_some_and(|s| {
            matches!(s.avail, Avail::Up | Avail::Warn)
                || s.resources
                    .iter()
                    .any(|r| matches!(r.avail, Avail::Up | Avail::Warn))
        })
    }

    /// The object was deleted (maybe on another node): remove this node's
    /// containers and config file.
    async fn clean_up_deleted(&mut self) {
        let Some(st) = self.agent.status(&self.key) else {
            crate::objects::forget_file(&self.agent, &self.path).await;
            return;
        };
        let engine_socket = st
            .docker_socket
            .clone()
            .unwrap_or_else(|| self.agent.opts.host_docker_socket.clone());
        if let Ok(engine) = self.agent.engine(&engine_socket).await {
            if let Ok(found) = engine.list_managed(Some(&self.key)).await {
                for c in found {
                    if c.state.running {
                        let _ = engine.stop(&c.id, Some(1)).await;
                    }
                    let _ = engine.remove(&c.id).await;
                }
            }
        }
        crate::objects::forget_file(&self.agent, &self.path).await;
    }

    /// Who the commands of this monitor act for: the user of the action in
    /// progress when it is this node's own user (an action another node
    /// sent was decided there and at the leader: this node carries it out
    /// as its root); the node's root otherwise.
    fn acting_user(&self) -> UserRef {
        match &self.acting {
            Some(by) if by.node == self.agent.nodename() => by.clone(),
            _ => self.agent.cluster.local_user(),
        }
    }

    /// Runs an explicit action. Returns the outcome and whether the object is gone.
    async fn act(&mut self, kind: ActionKind) -> (ActionOutcome, bool) {
        let transcript = Arc::new(Mutex::new(Vec::new()));
        self.transcript = Some(transcript.clone());
        let result = self.act_inner(kind).await;
        self.transcript = None;
        let lines = std::mem::take(&mut *transcript.lock().unwrap_or_else(|e| e.into_inner()));
        let gone = kind == ActionKind::Delete && result.is_ok();
        if !gone {
            if let Ok(Some(rec)) = self.agent.cluster.desired().get(&self.key) {
                self.refresh_status(&rec, true).await;
            }
        }
        // A start's events end with the state it reached.
        let started = matches!(kind, ActionKind::Start | ActionKind::Restart);
        if started && result.is_ok() {
            if let Some(st) = self.agent.status.instance(&self.key) {
                self.agent
                    .events
                    .emit(Some(&self.key), None, st.avail.as_str().to_string(), None);
            }
        }
        let outcome = ActionOutcome {
            path: self.key.clone(),
            ok: result.is_ok(),
            error: result.err(),
            lines,
        };
        (outcome, gone)
    }

    /// A start's clean slate: restart budgets and failed states.
    fn forget_failures(&mut self) {
        for r in self.res.values_mut() {
            r.restarts = 0;
            r.failed = false;
        }
    }

    /// Stops the containers (drained) and makes them again from `rec`.
    async fn recreate(&mut self, rec: &ObjectRecord) -> Result<(), String> {
        self.converge_stopped(rec, true).await?;
        self.res.clear();
        self.converge_started(rec, true).await
    }

    /// Sets target and frozen in one command, leaving the config as a
    /// concurrent `set` may have just written it; returns the record.
    async fn set_target(
        &self,
        target: Option<Target>,
        frozen: bool,
    ) -> Result<ObjectRecord, String> {
        self.agent
            .submit_as(
                &self.acting_user(),
                ObjectOp::SetTarget {
                    path: self.key.clone(),
                    target,
                    frozen,
                },
            )
            .await
            .map_err(|e| e.to_string())?;
        self.agent
            .cluster
            .desired()
            .get(&self.key)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{}: no such object", self.key))
    }

    async fn act_inner(&mut self, kind: ActionKind) -> Result<(), String> {
        let agent = self.agent.clone();
        let _permit = agent.docker_permits.acquire().await;
        // Explicit actions supersede pending automatic restarts.
        for r in self.res.values_mut() {
            r.restart_at = None;
        }
        match kind {
            ActionKind::Freeze | ActionKind::Thaw => {
                let rec = self.set_target(None, kind == ActionKind::Freeze).await?;
                self.say(if rec.frozen { "frozen" } else { "thawed" }.to_string());
                // Thawed, the object is reconciled now rather than at the next
                // tick, where this node may run it; elsewhere its own node's
                // pass starts it.
                if !rec.frozen && rec.target == Target::Started && self.may_start(&rec).is_ok() {
                    self.converge_started(&rec, false).await?;
                }
                Ok(())
            }
            ActionKind::Start => {
                let rec = self.set_target(Some(Target::Started), false).await?;
                self.say("target state set to started".into());
                self.forget_failures();
                self.may_start(&rec)?;
                self.converge_started(&rec, true).await
            }
            ActionKind::Replace => {
                let rec = self.set_target(Some(Target::Started), false).await?;
                self.may_start(&rec)?;
                // As a start: a deploy may be the fix of a failed instance.
                self.forget_failures();
                if self.is_failover(&rec) {
                    // Never two containers of a failover service.
                    self.say("a failover service is replaced stop-first".into());
                    return self.recreate(&rec).await;
                }
                self.replace_start_first(&rec).await?;
                self.converge_started(&rec, false).await
            }
            ActionKind::Stop => {
                let rec = self.set_target(Some(Target::Stopped), true).await?;
                self.say("target state set to stopped".into());
                self.converge_stopped(&rec, false).await
            }
            ActionKind::Restart => {
                self.say("restart: recreating containers from the current config".into());
                let rec = self.set_target(Some(Target::Started), false).await?;
                self.may_start(&rec)?;
                self.recreate(&rec).await
            }
            ActionKind::Refresh => self.refresh().await,
            ActionKind::Clear => {
                self.obj_log.clear();
                for r in self.res.values_mut() {
                    r.log.clear();
                    r.failed = false;
                    r.restarts = 0;
                    r.move_asked = None;
                }
                self.forget_unhealthy_mark().await?;
                self.say("warnings and failed states cleared".into());
                Ok(())
            }
            ActionKind::Delete => {
                let rec = self.set_target(Some(Target::Stopped), true).await?;
                self.converge_stopped(&rec, true).await?;
                let private = self.resolve(&rec).ok().and_then(|r| r.private);
                crate::privd::remove_runtime(&self.agent.opts.home, &self.path, private).await;
                crate::objects::remove_object(
                    &self.agent,
                    &self.path,
                    self.id,
                    &self.acting_user(),
                )
                .await
                .map_err(|e| e.to_string())?;
                self.say("deleted".into());
                Ok(())
            }
        }
    }

    /// The earliest pending automatic restart, if any.
    fn next_restart(&self) -> Option<tokio::time::Instant> {
        self.res
            .values()
            .flat_map(|r| [r.restart_at, r.health_due])
            .flatten()
            .chain(self.retry_at)
            .min()
    }
}

async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// A stable pseudo-random fraction in [0, 1) derived from the object key.
fn fastrand_fraction(key: &str) -> f64 {
    (berth_model::fnv1a64(key.as_bytes()) % 1000) as f64 / 1000.0
}
