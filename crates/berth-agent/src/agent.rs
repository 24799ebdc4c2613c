//! The agent: start-up, the registry of instance monitors, and the routing
//! of actions, desired-state changes and fence changes to them.

use crate::engines::Engines;
use crate::error::AgentError;
use crate::imon::{self, ImonHandle, ImonMsg};
use berth_bus::{EventBus, StatusBus, StatusChange, Update};
use berth_cluster::{Cluster, ClusterOptions, Command, ObjectOp, UserRef};
use berth_manager::duty::Fence;
use berth_manager::liveness::Timing;
use berth_model::status::ObjectStatus;
use berth_model::{ActionKind, ActionOutcome, ObjectPath, Registry};
use berth_store::{Home, ObjectRecord, Store};
use std::collections::HashMap;
use std::ffi::OsString;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, Semaphore};

/// How many status changes the bus holds for its slowest subscriber.
const STATUS_BUS: usize = 256;

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
    /// How long a warning whose condition is not seen to clear is shown.
    pub warn_ttl: Duration,
    /// The /16 private daemons' bridges take their /24 from.
    pub private_bridge_pool: berth_engine::BridgePool,
    /// Heartbeat, node-down and lease timing of the cluster.
    pub timing: Timing,
    /// The command that runs the fencing watchdog (`berth daemon watchdog
    /// --home H`); `None` runs none.
    pub watchdog: Option<Vec<OsString>>,
}

pub struct Agent {
    pub(crate) opts: AgentOptions,
    /// The event log and this node's own bookkeeping.
    pub(crate) store: Arc<Store>,
    pub(crate) cluster: Arc<Cluster>,
    pub(crate) events: EventBus,
    pub(crate) status: Arc<StatusBus>,
    pub(crate) registry: Registry,
    pub(crate) engines: Engines,
    imons: Mutex<HashMap<String, ImonHandle>>,
    /// One lock per object path: config file and desired config change
    /// together under it, and edits of different objects run in parallel.
    pub(crate) config_locks: ConfigLocks,
    pub(crate) docker_permits: Semaphore,
    /// The node's DNS server, for containers with `dns_berth`; set once
    /// it serves.
    pub(crate) container_dns: std::sync::OnceLock<Arc<dyn ContainerDns>>,
}

/// Where a container with `dns_berth` gets its nameserver: the node's DNS
/// server, asked to answer on the gateway of the container's bridge.
pub trait ContainerDns: Send + Sync {
    /// Serves DNS on `ip` port 53 (idempotent).
    fn serve_on(&self, ip: std::net::IpAddr) -> Result<(), String>;
}

impl Agent {
    /// Opens the store and desired state, starts the cluster loops, adopts
    /// what runs, and starts the monitors.
    pub async fn start(opts: AgentOptions) -> Result<Arc<Agent>, AgentError> {
        std::fs::create_dir_all(&opts.home.root)?;
        let store = Arc::new(Store::open(&opts.home.store())?);
        // After the store opened: its lock proves no other daemon runs here.
        opts.home.remove_stale_staging();
        let events = EventBus::start(store.clone());
        let status = Arc::new(StatusBus::new(STATUS_BUS, Fence::Standalone));
        let cluster = Cluster::open(
            ClusterOptions {
                home: opts.home.clone(),
                nodename: opts.nodename.clone(),
                timing: opts.timing,
                watchdog: opts.watchdog.clone(),
            },
            events.clone(),
            status.clone(),
        )
        .await?;
        let agent = Arc::new(Agent {
            registry: berth_drivers::registry(),
            engines: Engines::new(opts.host_docker_socket.clone()),
            store,
            cluster,
            events,
            status,
            imons: Mutex::new(HashMap::new()),
            config_locks: ConfigLocks::default(),
            docker_permits: Semaphore::new(opts.parallelism.max(1)),
            container_dns: std::sync::OnceLock::new(),
            opts,
        });
        agent.events.emit(None, None, "daemon started".into(), None);
        let local = Arc::new(crate::local_node::AgentNode(Arc::downgrade(&agent)));
        agent.cluster.start(local).await?;
        migrate_local_objects(&agent).await?;
        let (records, bad) = agent.cluster.desired().list_checked()?;
        for e in bad {
            agent.events.emit(
                None,
                None,
                format!("skipping an unreadable record: {e}"),
                None,
            );
        }
        let known: std::collections::BTreeSet<String> =
            records.iter().map(|r| r.path.clone()).collect();
        crate::privd::sweep(&agent.opts.home, |p| known.contains(&p.to_string())).await;
        for rec in records {
            if let Ok(path) = rec.path.parse::<ObjectPath>() {
                agent.imon(&path);
            }
        }
        tokio::spawn(crate::engines::host_event_loop(agent.clone()));
        tokio::spawn(follow_desired(agent.clone()));
        tokio::spawn(follow_fence(agent.clone()));
        Ok(agent)
    }

    /// Hands the agent the node's DNS server once it serves, for containers
    /// with `dns_berth`. A second call is ignored.
    pub fn set_container_dns(&self, dns: Arc<dyn ContainerDns>) {
        let _ = self.container_dns.set(dns);
    }

    /// What this node's monitors observe, for the registrator.
    pub fn status_bus(&self) -> &Arc<StatusBus> {
        &self.status
    }

    /// The cluster this node belongs to (a cluster of one when standalone).
    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    pub fn nodename(&self) -> &str {
        &self.opts.nodename
    }

    pub fn home(&self) -> &Home {
        &self.opts.home
    }

    pub fn host_docker_socket(&self) -> &str {
        &self.opts.host_docker_socket
    }

    /// The user this node's API acts for (see `Cluster::local_user`).
    pub(crate) fn user(&self) -> UserRef {
        self.cluster.local_user()
    }

    /// Submits an object edit or action for this node's root (the
    /// monitors' own changes, hand edits of config files).
    pub(crate) async fn submit(&self, op: ObjectOp) -> Result<(), AgentError> {
        self.submit_as(&self.user(), op).await
    }

    /// Submits an object edit for `by`: the leader decides.
    pub(crate) async fn submit_as(&self, by: &UserRef, op: ObjectOp) -> Result<(), AgentError> {
        self.cluster
            .submit(Command::Object { by: by.clone(), op })
            .await?;
        Ok(())
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
        self.status.remove_instance(path);
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
    pub(crate) fn wake_docker(&self, path: &str) {
        let map = self.imons.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = map.get(path) {
            h.wake_docker();
        }
    }

    /// Runs an action on one object and waits for its outcome. In a
    /// cluster, start, stop and restart run on the nodes the object is
    /// placed on (`local` keeps them on this node).
    pub async fn action(
        self: &Arc<Self>,
        by: &UserRef,
        path: &ObjectPath,
        kind: ActionKind,
        local: bool,
    ) -> Result<ActionOutcome, AgentError> {
        self.cluster
            .authorize(by, &path.to_string(), rbac_action(kind))?;
        if local || !kind.runs_where_placed() || !self.cluster.is_clustered() {
            return self.local_action(by, path, kind).await;
        }
        Ok(self.cluster.placed_action(path, kind, by).await?)
    }

    /// Runs an action on this node's instance of one object.
    pub async fn local_action(
        self: &Arc<Self>,
        by: &UserRef,
        path: &ObjectPath,
        kind: ActionKind,
    ) -> Result<ActionOutcome, AgentError> {
        if self.cluster.desired().get(&path.to_string())?.is_none() {
            return Err(AgentError::NotFound(path.to_string()));
        }
        let (tx, rx) = oneshot::channel();
        self.imon(path)
            .send(ImonMsg::Action(kind, by.clone(), tx))
            .await?;
        rx.await.map_err(|_| AgentError::ShuttingDown)
    }

    /// Cached status of every object on this node, sorted by path.
    pub fn statuses(&self) -> Vec<Arc<ObjectStatus>> {
        self.status.instances()
    }

    pub fn status(&self, path: &str) -> Option<Arc<ObjectStatus>> {
        self.status.instance(path)
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
        let mut guards = Vec::with_capacity(paths.len());
        for p in paths {
            guards.push(self.lock_one(&p).await);
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
    let mut rx = agent.cluster.desired().subscribe();
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
            None => match agent.cluster.desired().list() {
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

/// Wakes every monitor when the node's fence changes: failover instances
/// stop when it is lost and start when it is granted again.
async fn follow_fence(agent: Arc<Agent>) {
    let mut sub = agent.status.subscribe();
    while let Some(update) = sub.recv().await {
        if matches!(
            update,
            Update::Change(StatusChange::Fence(_)) | Update::Lagged
        ) {
            agent.wake_all();
        }
    }
}

/// Objects written by a berth that kept desired state in the local store
/// move into Raft once, in one entry; the local copies go after that.
async fn migrate_local_objects(agent: &Agent) -> Result<(), AgentError> {
    let local: Vec<ObjectRecord> = agent.store.list()?;
    if local.is_empty() {
        return Ok(());
    }
    let desired = agent.cluster.desired();
    let mut fresh = Vec::new();
    for rec in &local {
        if desired.get(&rec.path)?.is_none() {
            fresh.push(rec.clone());
        }
    }
    if !fresh.is_empty() {
        agent.submit(ObjectOp::Create(fresh)).await?;
    }
    for rec in &local {
        crate::durable(|| agent.store.delete(&rec.path))?;
    }
    Ok(())
}

/// The right an action takes.
pub(crate) fn rbac_action(kind: ActionKind) -> berth_auth::Action {
    use berth_auth::Action;
    match kind {
        ActionKind::Start
        | ActionKind::Restart
        | ActionKind::Replace
        | ActionKind::Thaw
        | ActionKind::Refresh => Action::Start,
        ActionKind::Stop | ActionKind::Freeze | ActionKind::Clear => Action::Stop,
        ActionKind::Delete => Action::Delete,
    }
}
