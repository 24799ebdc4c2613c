//! The agent: shared state, start-up, and the routing of actions and Docker
//! events to the per-object instance monitors.

use crate::cluster::watchdog::WatchdogLink;
use crate::cluster::{Cluster, Identity};
use crate::error::AgentError;
use crate::events::EventBus;
use crate::home::Home;
use crate::imon::{self, ImonHandle, ImonMsg};
use berth_engine::{CallSink, Engine, EngineError};
use berth_model::status::ObjectStatus;
use berth_model::{ObjectPath, Registry};
use berth_store::{Desired, ObjectRecord, Store};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{oneshot, Semaphore};

#[derive(Clone, Debug)]
pub struct AgentOptions {
    pub home: Home,
    pub nodename: String,
    /// Socket of the host's dockerd.
    pub host_docker_socket: String,
    /// How many objects may run Docker operations at once.
    pub parallelism: usize,
    /// Period of the level-triggered safety-net reconcile.
    pub resync: Duration,
    /// Heartbeat, node-down and lease timing of the cluster.
    pub timing: berth_manager::liveness::Timing,
    /// The command that runs the fencing watchdog (`berth daemon watchdog
    /// --home H`); `None` runs none.
    pub watchdog: Option<Vec<std::ffi::OsString>>,
}

/// The Raft file generation of a standalone node (and of the node that
/// initialized its cluster from there): `local`, or what a node that left a
/// cluster started afresh with (`$BERTH_HOME/cluster/standalone`).
pub(crate) fn standalone_generation(home: &Home) -> String {
    std::fs::read_to_string(home.root.join("cluster").join("standalone"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .unwrap_or_else(|| "local".to_string())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    Start,
    Stop,
    Restart,
    Freeze,
    Thaw,
    Delete,
}

/// The result of an action on one object.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ActionOutcome {
    pub path: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What was done, OpenSVC-style: Docker commands and notable steps.
    pub lines: Vec<String>,
}

impl ActionOutcome {
    /// An action on `path` that could not even run.
    pub fn failed(path: &str, error: impl std::fmt::Display) -> ActionOutcome {
        ActionOutcome {
            path: path.to_string(),
            ok: false,
            error: Some(error.to_string()),
            lines: vec![],
        }
    }
}

pub struct Agent {
    pub opts: AgentOptions,
    /// The event log and this node's own bookkeeping.
    pub store: Arc<Store>,
    /// Desired state, replicated through Raft.
    pub desired: Arc<Desired>,
    pub events: EventBus,
    pub registry: Registry,
    engines: Mutex<HashMap<String, Engine>>,
    pub(crate) statuses: RwLock<HashMap<String, ObjectStatus>>,
    imons: Mutex<HashMap<String, ImonHandle>>,
    /// One lock per object path: config file and desired config change
    /// together under it, and edits of different objects run in parallel.
    pub(crate) config_locks: ConfigLocks,
    pub(crate) docker_permits: Semaphore,
    pub cluster: Cluster,
    /// Serializes init, join and leave.
    pub(crate) cluster_lock: tokio::sync::Mutex<()>,
}

impl Agent {
    /// Opens the store, adopts what runs, and starts the monitors.
    pub async fn start(opts: AgentOptions) -> Result<Arc<Agent>, AgentError> {
        std::fs::create_dir_all(&opts.home.root)?;
        let store = Arc::new(Store::open(&opts.home.store())?);
        // After the store opened: its lock proves no other daemon runs here.
        opts.home.remove_stale_staging();
        let identity = Identity::load(&opts.home)?;
        let cluster = Cluster::new(
            identity.clone(),
            opts.timing,
            WatchdogLink::new(opts.home.root.clone(), opts.watchdog.clone()),
        )?;
        let desired = Arc::new(match &identity {
            None => {
                Desired::open(
                    &opts.home.raft_file(&standalone_generation(&opts.home)),
                    berth_store::FIRST_ID,
                    true,
                    cluster.tls.clone(),
                )
                .await?
            }
            Some(id) => {
                Desired::open(
                    &opts.home.raft_file(&id.generation),
                    id.node_id,
                    false,
                    cluster.tls.clone(),
                )
                .await?
            }
        });
        migrate_local_objects(&store, &desired).await?;
        let events = EventBus::start(store.clone());
        let agent = Arc::new(Agent {
            registry: berth_drivers::registry(),
            store,
            desired,
            events,
            engines: Mutex::new(HashMap::new()),
            statuses: RwLock::new(HashMap::new()),
            imons: Mutex::new(HashMap::new()),
            config_locks: ConfigLocks::default(),
            docker_permits: Semaphore::new(opts.parallelism.max(1)),
            cluster,
            cluster_lock: tokio::sync::Mutex::new(()),
            opts,
        });
        agent.events.emit(None, None, "daemon started".into(), None);
        crate::cluster::start(&agent)?;
        if agent.cluster.identity().is_some() {
            // Before any monitor reads desired state: what a crash took from
            // the state machine comes back from the leader, which needs the
            // node listener just started.
            agent
                .desired
                .wait_recovered(berth_store::RECOVERY_WAIT)
                .await;
        }
        let (records, bad) = agent.desired.list_checked()?;
        for e in bad {
            agent.events.emit(
                None,
                None,
                format!("skipping an unreadable record: {e}"),
                None,
            );
        }
        for rec in records {
            if let Ok(path) = rec.path.parse::<ObjectPath>() {
                agent.imon(&path);
            }
        }
        tokio::spawn(host_event_loop(agent.clone()));
        tokio::spawn(follow_desired(agent.clone()));
        Ok(agent)
    }

    pub fn nodename(&self) -> &str {
        &self.opts.nodename
    }

    /// The monitor of `path`, started on first use.
    pub(crate) fn imon(self: &Arc<Self>, path: &ObjectPath) -> ImonHandle {
        let mut map = self.imons.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(path.to_string())
            .or_insert_with(|| imon::spawn(self.clone(), path.clone()))
            .clone()
    }

    /// Drops the registry entry of `path` if it still is monitor `id`: a
    /// new monitor for a re-created object must not be dropped by the old.
    pub(crate) fn forget_imon(&self, path: &str, id: u64) {
        let mut map = self.imons.lock().unwrap_or_else(|e| e.into_inner());
        if map.get(path).map(|h| h.id) != Some(id) {
            return;
        }
        map.remove(path);
        drop(map);
        self.statuses
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(path);
    }

    /// Wakes every monitor for a pass that asks Docker about everything
    /// (a reconnect may have missed events; the lease changed).
    pub(crate) fn wake_all(&self) {
        let map = self.imons.lock().unwrap_or_else(|e| e.into_inner());
        for h in map.values() {
            h.wake_docker();
        }
    }

    /// Docker reported a change to one object's containers.
    fn wake_docker(&self, path: &str) {
        let map = self.imons.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = map.get(path) {
            h.wake_docker();
        }
    }

    /// Runs an action on one object and waits for its outcome.
    /// Runs an action on one object and waits for its outcome. In a
    /// cluster, start, stop and restart run on the nodes the object is
    /// placed on (`local` keeps them on this node).
    pub async fn action(
        self: &Arc<Self>,
        path: &ObjectPath,
        kind: ActionKind,
        local: bool,
    ) -> Result<ActionOutcome, AgentError> {
        let fan_out = matches!(
            kind,
            ActionKind::Start | ActionKind::Stop | ActionKind::Restart
        );
        if local || !fan_out || !self.cluster.is_clustered() {
            return self.local_action(path, kind).await;
        }
        crate::cluster::placed_action(self, path, kind).await
    }

    /// Runs an action on this node's instance of one object.
    pub async fn local_action(
        self: &Arc<Self>,
        path: &ObjectPath,
        kind: ActionKind,
    ) -> Result<ActionOutcome, AgentError> {
        if self.desired.get(&path.to_string())?.is_none() {
            return Err(AgentError::NotFound(path.to_string()));
        }
        let (tx, rx) = oneshot::channel();
        self.imon(path).send(ImonMsg::Action(kind, tx)).await?;
        rx.await.map_err(|_| AgentError::ShuttingDown)
    }

    /// Cached status of every object, sorted by path.
    pub fn statuses(&self) -> Vec<ObjectStatus> {
        let map = self.statuses.read().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = map.values().cloned().collect();
        v.sort_by(|a, b| a.path.cmp(&b.path));
        v
    }

    pub fn status(&self, path: &str) -> Option<ObjectStatus> {
        self.statuses
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(path)
            .cloned()
    }

    /// Engine for `socket`, connected on first use; its event stream is
    /// watched so container deaths wake the owning monitor.
    pub(crate) async fn engine(self: &Arc<Self>, socket: &str) -> Result<Engine, EngineError> {
        if let Some(e) = self
            .engines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(socket)
        {
            return Ok(e.clone());
        }
        let engine = Engine::connect(socket, self.call_sink(None, None, None)).await?;
        let fresh = self
            .engines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(socket.to_string(), engine.clone())
            .is_none();
        if fresh && socket != self.opts.host_docker_socket {
            tokio::spawn(private_event_loop(self.clone(), engine.clone()));
        }
        Ok(engine)
    }

    pub(crate) fn drop_engine(&self, socket: &str) {
        self.engines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(socket);
    }

    /// A sink that turns Docker calls into events, attributed to an object,
    /// and optionally copies them into an action's transcript.
    pub(crate) fn call_sink(
        &self,
        object: Option<String>,
        rid: Option<String>,
        transcript: Option<Arc<Mutex<Vec<String>>>>,
    ) -> CallSink {
        let bus = self.events.clone();
        Arc::new(move |call| {
            let what = match &call.error {
                Some(e) => format!("docker call failed: {e}"),
                None => "docker call".to_string(),
            };
            if let Some(t) = &transcript {
                let prefix = rid.as_deref().map(|r| format!("{r}: ")).unwrap_or_default();
                let mut t = t.lock().unwrap_or_else(|e| e.into_inner());
                t.push(format!("{prefix}{}", call.command));
                if let Some(e) = &call.error {
                    t.push(format!("{prefix}error: {e}"));
                }
            }
            bus.emit(object.as_deref(), rid.as_deref(), what, Some(call.command));
        })
    }
}

/// Per-object locks, taken in path order so that edits of overlapping
/// selections cannot deadlock.
#[derive(Default)]
pub(crate) struct ConfigLocks {
    map: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl ConfigLocks {
    pub(crate) async fn lock(
        &self,
        paths: impl IntoIterator<Item = String>,
    ) -> Vec<tokio::sync::OwnedMutexGuard<()>> {
        let mut paths: Vec<String> = paths.into_iter().collect();
        paths.sort();
        paths.dedup();
        let locks: Vec<_> = {
            let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
            paths
                .into_iter()
                .map(|p| map.entry(p).or_default().clone())
                .collect()
        };
        let mut guards = Vec::with_capacity(locks.len());
        for l in locks {
            guards.push(l.lock_owned().await);
        }
        guards
    }

    pub(crate) async fn lock_one(&self, path: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = self
            .map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(path.to_string())
            .or_default()
            .clone();
        lock.lock_owned().await
    }
}

/// Wakes the monitors of objects whose desired state changed, wherever the
/// change was made; starts monitors for objects created elsewhere.
async fn follow_desired(agent: Arc<Agent>) {
    let mut rx = agent.desired.subscribe();
    loop {
        let changed = match rx.recv().await {
            Ok(c) => c,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => Arc::new(None),
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        let paths: Vec<String> = match changed.as_ref() {
            Some(keys) => keys
                .iter()
                .filter_map(|k| k.strip_prefix(berth_store::OBJ_PREFIX))
                .map(str::to_string)
                .collect(),
            None => match agent.desired.list() {
                Ok(all) => all.into_iter().map(|r| r.path).collect(),
                Err(_) => continue,
            },
        };
        if changed.is_none() {
            agent.wake_all();
        }
        for p in paths {
            if let Ok(path) = p.parse::<ObjectPath>() {
                agent.imon(&path).wake();
            }
        }
    }
}

/// Objects written by a berth that kept desired state in the local store
/// move into Raft once, in one entry; the local copies go after that.
async fn migrate_local_objects(store: &Store, desired: &Desired) -> Result<(), AgentError> {
    let local: Vec<ObjectRecord> = store.list()?;
    if local.is_empty() {
        return Ok(());
    }
    let mut reqs = Vec::new();
    for rec in &local {
        if desired.get(&rec.path)?.is_none() {
            reqs.push(berth_store::put_json(
                &format!("{}{}", berth_store::OBJ_PREFIX, rec.path),
                rec,
            )?);
        }
    }
    if !reqs.is_empty() {
        desired.write(berth_store::Request::Batch(reqs)).await?;
    }
    for rec in &local {
        crate::durable(|| store.delete(&rec.path))?;
    }
    Ok(())
}

/// Follows the host dockerd's events; reconnects with a backoff and wakes
/// every monitor after a reconnect, since events may have been missed.
async fn host_event_loop(agent: Arc<Agent>) {
    let socket = agent.opts.host_docker_socket.clone();
    let mut backoff = Duration::from_millis(200);
    let mut was_down = false;
    let mut first = true;
    loop {
        match agent.engine(&socket).await {
            Ok(engine) => {
                if was_down {
                    agent.events.emit(
                        None,
                        None,
                        format!("docker daemon at {socket} is back"),
                        None,
                    );
                }
                // Container events may have been missed while unsubscribed.
                if !first {
                    agent.wake_all();
                }
                first = false;
                was_down = false;
                backoff = Duration::from_millis(200);
                follow(&agent, &engine).await;
                agent.drop_engine(&socket);
            }
            Err(e) => {
                if !was_down {
                    agent.events.emit(None, None, e.to_string(), None);
                    agent.wake_all();
                }
                was_down = true;
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn private_event_loop(agent: Arc<Agent>, engine: Engine) {
    follow(&agent, &engine).await;
    agent.drop_engine(engine.socket());
    // The private dockerd went away: its object's status is stale now, and
    // if it died rather than being stopped, the monitor restarts it.
    let owner = std::path::Path::new(engine.socket())
        .strip_prefix(agent.opts.home.root.join("namespaces"))
        .ok()
        .and_then(|rel| {
            let mut parts = rel.iter().filter_map(|p| p.to_str());
            Some(format!("{}/{}", parts.next()?, parts.next()?))
        })
        .and_then(|p| p.parse::<ObjectPath>().ok());
    if let Some(path) = owner {
        // The stream ends as the process dies; give it a moment to be gone,
        // or the pass still sees a live pid and finds no socket.
        tokio::time::sleep(Duration::from_secs(1)).await;
        agent.wake_docker(&path.to_string());
    }
}

async fn follow(agent: &Arc<Agent>, engine: &Engine) {
    let mut stream = Box::pin(engine.events());
    while let Some(item) = stream.next().await {
        let Ok(ev) = item else { break };
        if !matches!(
            ev.action.as_str(),
            "die" | "start" | "stop" | "destroy" | "oom" | "kill"
        ) {
            continue;
        }
        if let Some(path) = ev.labels.get(berth_engine::LABEL_PATH) {
            agent.wake_docker(path);
        }
    }
}
