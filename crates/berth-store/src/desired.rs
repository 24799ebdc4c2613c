//! Desired state, replicated through Raft.
//!
//! Every key of desired state (objects under `obj/<path>`, and the
//! cluster's own records: nodes, CA, tokens) is a JSON value in the Raft
//! state machine. Reads are local; writes go through the Raft log, so they
//! are durable on a quorum of managers before they return. A standalone
//! node is a one-member cluster on this same path; a node that joins a
//! cluster replaces its (empty) log with the cluster's ([`Desired::rejoin`]).
//!
//! Architecture invariant: writers change only their own fields (`Patch`),
//! so an action and an edit racing each other never undo one another.
//!
//! Architecture invariant: a node that is not the leader never writes its
//! own log; it forwards the request to the leader ([`Forward`]).

use crate::{ObjectRecord, StoreError};
use berth_raft::{Changes, Network, RaftNode, Request, Response, StateMachine, TlsSlot};
use openraft::async_runtime::WatchReceiver;
use openraft::{BasicNode, Config};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

pub const OBJ_PREFIX: &str = "obj/";
/// The node id of a standalone node (a cluster of one) and of the node
/// that runs `cluster init`.
pub const FIRST_ID: u64 = 1;
/// Raft's minimum election timeout. A node votes for a new leader only
/// after hearing nothing from the old one for at least this long, so every
/// quorum acknowledgement the old leader got is at least this much older
/// than the new leader's win (`design/failover.md`).
pub const ELECTION_QUIET: Duration = Duration::from_millis(300);
/// How long a read barrier may wait for a quorum to acknowledge the
/// leader: a loaded node answers late, and a barrier that gives up too
/// soon fails the heartbeats of every node, which then fence.
const READ_WAIT: Duration = Duration::from_millis(700);

/// How long a write may wait for a leader before it fails.
const WRITE_WAIT: Duration = Duration::from_secs(15);
/// How long a restarting cluster member waits to hear the committed state.
pub const RECOVERY_WAIT: Duration = Duration::from_secs(3);

/// The desired-state key of object `path`.
pub fn obj_key(path: &str) -> String {
    format!("{OBJ_PREFIX}{path}")
}

/// Why a proposal was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ProposeError {
    /// This node does not lead; the leader, as last heard, if known:
    /// `(id, node address)`.
    #[error("this node is not the Raft leader")]
    NotLeader(Option<(u64, String)>),
    #[error(transparent)]
    Failed(#[from] StoreError),
}

/// One Raft instance: its id, handle and state machine.
pub(crate) struct Inner {
    pub(crate) id: u64,
    /// The Raft storage's name (`raft-<generation>.redb`): the log is in
    /// `berth_raft::log_dir` of it, the state machine beside it.
    pub(crate) path: PathBuf,
    pub(crate) raft: RaftNode,
    pub(crate) sm: StateMachine,
    pub(crate) log_size: berth_raft::LogSize,
    relay: tokio::task::JoinHandle<()>,
    /// A storage error stopped the Raft core: it must be opened again.
    broken: std::sync::atomic::AtomicBool,
}

/// What a node knows of the Raft membership.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct Membership {
    pub voters: BTreeSet<u64>,
    /// Every member, voters and learners, with its address.
    pub nodes: BTreeMap<u64, String>,
}

pub struct Desired {
    inner: RwLock<Arc<Inner>>,
    tls: TlsSlot,
    changes: tokio::sync::broadcast::Sender<Changes>,
    health: crate::health::HealthCell,
    /// One recovery at a time.
    recovery: tokio::sync::Mutex<()>,
    /// Writes hold it shared; a restart of the core for compaction holds
    /// it alone, so no write in flight sees the core stop.
    gate: tokio::sync::RwLock<()>,
    /// Whether this node may stand for election (a locked manager may not).
    elect: std::sync::atomic::AtomicBool,
}

fn raft_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Db(format!("raft: {e}"))
}

fn config(elect: bool) -> Result<Arc<Config>, StoreError> {
    let c = Config {
        cluster_name: "berth".into(),
        enable_elect: elect,
        // A locked manager does not come back as the leader it was either.
        enable_leader_restore: Some(elect),
        // Elections must finish well within a worker's lease (3 s), or
        // every failover service is fenced (`design/failover.md`).
        // A dead leader is replaced in about 0.5-1 s: failover of its own
        // services waits for that, so it counts against the 5 s goal.
        // openraft gives up on a heartbeat after one interval: 50 ms was
        // too short for nodes busy starting hundreds of containers on two
        // cores, whose leader then lost its quorum acknowledgements and
        // every node its lease.
        heartbeat_interval: 100,
        // A node cut off from the quorum must not come back with a raised
        // term: that deposes a healthy leader, and the election that
        // follows can outlast every node's failover lease. Pre-Vote keeps
        // its term where it was (the partition test's gap after a heal).
        enable_pre_vote: Some(true),
        election_timeout_min: ELECTION_QUIET.as_millis() as u64,
        election_timeout_max: 600,
        // openraft sizes several queues up front from these; its defaults
        // (64 Ki entries) cost tens of MB of RSS on every node.
        api_channel_size: Some(1024),
        api_batch_capacity: 256,
        notification_channel_size: Some(1024),
        state_machine_channel_size: Some(256),
        // The log is purged behind a snapshot every 1000 entries (and when
        // its file passes a size, `maintenance`), keeping 500 for
        // followers that lag a little; the files stay small.
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(1000),
        max_in_snapshot_log_to_keep: 500,
        purge_batch_size: 256,
        // Entries go to the followers as soon as the log has them, while
        // the leader's own sync runs, not after the loop's next turn.
        broadcast_submitted_on_append: Some(true),
        ..Default::default()
    }
    .validate()
    .map_err(raft_err)?;
    Ok(Arc::new(c))
}

impl Desired {
    /// Opens the Raft storage at `path` as node `id`. With `standalone`, a
    /// storage that was never initialized becomes a cluster of one and this
    /// waits until it leads; otherwise the node waits to be added by a
    /// leader. `tls` is how peers are dialled (empty on a standalone node).
    /// Without `elect`, the node never stands for election until
    /// [`Desired::set_elect`] allows it.
    pub async fn open(
        path: &Path,
        id: u64,
        standalone: bool,
        tls: TlsSlot,
        elect: bool,
    ) -> Result<Desired, StoreError> {
        let (changes, _) = tokio::sync::broadcast::channel(1024);
        let inner = open_inner(path, id, standalone, &tls, &changes, elect).await?;
        let d = Desired {
            inner: RwLock::new(Arc::new(inner)),
            tls,
            changes,
            health: Default::default(),
            recovery: Default::default(),
            gate: Default::default(),
            elect: std::sync::atomic::AtomicBool::new(elect),
        };
        // A cluster member recovers through its leader, which reaches it
        // only once the node listener runs: the agent waits then.
        if standalone {
            d.wait_leader().await?;
            d.wait_recovered(WRITE_WAIT).await;
        }
        Ok(d)
    }

    /// Waits (for `patience` at most) until the state machine holds again
    /// everything this node had applied before a restart. Applies are not
    /// fsynced on their own (the log is), so a crash can leave the state
    /// machine a few entries behind what the agent last acted on; acting on
    /// that older state would undo recent edits, for a moment, on the node.
    /// A member cut off from its managers goes on after `patience`, lagging
    /// as any follower may.
    pub async fn wait_recovered(&self, patience: Duration) {
        let raft = self.current().raft.clone();
        if !raft.is_initialized().await.unwrap_or(false) {
            return;
        }
        if raft.wait_for_recovery(Some(patience)).await.is_err() {
            tracing::warn!(
                "desired state not confirmed by a leader within {patience:?}; it may lag until one is heard"
            );
        }
    }

    fn may_elect(&self) -> bool {
        self.elect.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Lets this node stand for election, or not.
    pub fn set_elect(&self, on: bool) {
        self.elect.store(on, std::sync::atomic::Ordering::SeqCst);
        self.current().raft.runtime_config().elect(on);
    }

    /// A standalone node with no TLS: what tests and a fresh node use.
    pub async fn open_standalone(path: &Path) -> Result<Desired, StoreError> {
        Desired::open(path, FIRST_ID, true, TlsSlot::default(), true).await
    }

    /// Throws away this node's Raft state and opens a fresh one at `path`
    /// as node `id`: uninitialized, to be added to a cluster by its leader,
    /// or with `standalone` a new cluster of one.
    pub async fn rejoin(&self, path: &Path, id: u64, standalone: bool) -> Result<(), StoreError> {
        let old = self.current();
        let _ = old.raft.shutdown().await;
        old.relay.abort();
        let inner = open_inner(
            path,
            id,
            standalone,
            &self.tls,
            &self.changes,
            self.may_elect(),
        )
        .await?;
        *self.inner.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(inner);
        if standalone {
            self.wait_leader().await?;
        }
        let _ = self.changes.send(Arc::new(None));
        Ok(())
    }

    fn current(&self) -> Arc<Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The Raft handle, for the RPC endpoint and membership changes.
    pub fn raft(&self) -> RaftNode {
        self.current().raft.clone()
    }

    pub fn node_id(&self) -> u64 {
        self.current().id
    }

    /// Announces applied changes (see [`berth_raft::Changes`]).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Changes> {
        self.changes.subscribe()
    }

    /// Stops the Raft core, releasing the storage file.
    pub async fn shutdown(&self) {
        let _ = self.current().raft.shutdown().await;
    }

    /// The leader's id and address, as this node last heard.
    pub fn leader(&self) -> Option<(u64, String)> {
        let inner = self.current();
        let m = inner.raft.metrics().borrow_watched().clone();
        let id = m.current_leader?;
        let addr = m
            .membership_config
            .membership()
            .get_node(&id)
            .map(|n| n.addr.clone())
            .unwrap_or_default();
        Some((id, addr))
    }

    pub fn is_leader(&self) -> bool {
        let inner = self.current();
        let m = inner.raft.metrics().borrow_watched().clone();
        m.current_leader == Some(inner.id)
    }

    /// The index of the last log entry this replica applied.
    pub fn applied_index(&self) -> u64 {
        self.current()
            .raft
            .metrics()
            .borrow_watched()
            .last_applied
            .map(|l| l.index)
            .unwrap_or(0)
    }

    pub fn current_term(&self) -> u64 {
        self.current().raft.metrics().borrow_watched().current_term
    }

    pub fn membership(&self) -> Membership {
        let inner = self.current();
        let m = inner.raft.metrics().borrow_watched().clone();
        let mem = m.membership_config.membership();
        Membership {
            voters: mem.voter_ids().collect(),
            nodes: mem.nodes().map(|(id, n)| (*id, n.addr.clone())).collect(),
        }
    }

    async fn wait_leader(&self) -> Result<(), StoreError> {
        let deadline = Instant::now() + WRITE_WAIT;
        while self.current().raft.current_leader().await.is_none() {
            if Instant::now() > deadline {
                return Err(StoreError::Db("raft: no leader elected".into()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Waits (for `patience` at most) until this replica applied `index`:
    /// a node told to act on a write made elsewhere must see it first.
    pub async fn catch_up(&self, index: u64, patience: Duration) {
        self.wait_applied(index, Instant::now() + patience).await
    }

    /// Waits (until `deadline` at most) for this replica to apply `index`.
    async fn wait_applied(&self, index: u64, deadline: Instant) {
        let mut rx = self.current().raft.metrics();
        loop {
            let applied = rx
                .borrow_watched()
                .last_applied
                .map(|l| l.index)
                .unwrap_or(0);
            if applied >= index {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || tokio::time::timeout(left, rx.changed()).await.is_err() {
                return;
            }
        }
    }

    /// Proposes `req` as the leader and waits until it is committed and
    /// applied here; returns what applying it returned and the index of its
    /// log entry. A node that does not lead says who does: only
    /// `berth-cluster` forwards, as a typed command the leader authorizes.
    pub async fn propose(&self, req: Request) -> Result<(Response, u64), ProposeError> {
        let _writing = self.gate.read().await;
        self.recover().await?;
        let inner = self.current();
        match inner.raft.client_write(req).await {
            Ok(r) => {
                self.health.set_ok();
                Ok((r.data, r.log_id.index))
            }
            Err(openraft::error::RaftError::Fatal(f))
                if !matches!(f, openraft::error::Fatal::Stopped)
                    || inner.broken.load(std::sync::atomic::Ordering::SeqCst) =>
            {
                inner
                    .broken
                    .store(true, std::sync::atomic::Ordering::SeqCst);
                let e = self.health.fault(&f.to_string(), &inner.path);
                Err(ProposeError::Failed(e))
            }
            Err(e) => match e.forward_to_leader() {
                Some(fwd) if fwd.leader_id != Some(inner.id) => Err(ProposeError::NotLeader(
                    fwd.leader_id
                        .zip(fwd.leader_node.as_ref().map(|n| n.addr.clone())),
                )),
                _ => Err(ProposeError::Failed(raft_err(e))),
            },
        }
    }

    /// The store's health: degraded from a write that failed for want of
    /// storage until a write succeeds again.
    pub fn health(&self) -> crate::StoreHealth {
        self.health.get()
    }

    /// After a storage error stopped the Raft core: opens the log again
    /// (and the state machine, if it stopped answering too) and starts a
    /// new core on them, at most once a second. Reads go on from the state
    /// machine meanwhile. A no-op while the core runs.
    async fn recover(&self) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering::SeqCst;
        if !self.current().broken.load(SeqCst) {
            return Ok(());
        }
        let _one = self.recovery.lock().await;
        let old = self.current();
        if !old.broken.load(SeqCst) {
            return Ok(());
        }
        self.health.may_retry()?;
        self.restart_core(old, false).await.map_err(|e| {
            self.health
                .fault(&format!("reopening: {e}"), &self.current().path)
        })
    }

    /// Stops the Raft core and starts a new one on the files opened again:
    /// the log, and the state machine when it stopped answering or, with
    /// `compact_sm`, rewritten to a compact new file first.
    pub(crate) async fn restart_core(
        &self,
        old: Arc<Inner>,
        compact_sm: bool,
    ) -> Result<(), StoreError> {
        let _ = old.raft.shutdown().await;
        old.relay.abort();
        let sm = match (old.sm.readable(), compact_sm) {
            (false, _) => None,
            (true, false) => Some(old.sm.clone()),
            (true, true) => match crate::maintenance::rewrite_state_machine(&old.sm, &old.path) {
                Ok(()) => None,
                Err(e) => {
                    tracing::warn!(
                        "compacting the state machine of {}: {e}",
                        old.path.display()
                    );
                    Some(old.sm.clone())
                }
            },
        };
        let inner = reopen_inner(
            &old.path,
            old.id,
            sm,
            &self.tls,
            &self.changes,
            self.may_elect(),
        )
        .await?;
        *self.inner.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(inner);
        let deadline = Instant::now() + Duration::from_secs(3);
        while self.current().raft.current_leader().await.is_none() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tracing::info!("raft storage {} opened again", old.path.display());
        Ok(())
    }

    /// Leaves the storage maintenance (snapshots by size, compaction) to a
    /// task of its own; it ends with the last handle on this store.
    pub fn spawn_maintenance(self: &Arc<Self>) {
        tokio::spawn(crate::maintenance::run(Arc::downgrade(self)));
    }

    pub(crate) fn current_inner(&self) -> Arc<Inner> {
        self.current()
    }

    /// For a restart of the core outside a write: no recovery and no
    /// write runs meanwhile.
    pub(crate) async fn exclusive(
        &self,
    ) -> (
        tokio::sync::RwLockWriteGuard<'_, ()>,
        tokio::sync::MutexGuard<'_, ()>,
    ) {
        let gate = self.gate.write().await;
        (gate, self.recovery.lock().await)
    }

    /// While degraded, checks whether writes work again with one small
    /// write, so the health shown is current even when nothing else
    /// writes.
    pub async fn probe(&self) {
        if matches!(self.health.get(), crate::StoreHealth::Ok) {
            return;
        }
        let req = Request::Put {
            key: PROBE_KEY.to_string(),
            value: serde_json::json!(berth_model_now_ms()).to_string(),
        };
        let _ = self.propose(req).await;
    }

    /// Whether this node's state machine has every entry the leader had
    /// committed when asked: true on a leader after a read barrier.
    pub async fn linearizable(&self) -> Result<(), StoreError> {
        self.current()
            .raft
            .ensure_linearizable(
                openraft::LinearizerOption::from(openraft::raft::ReadPolicy::ReadIndex)
                    .with_wait_timeout(READ_WAIT),
            )
            .await
            .map(|_| ())
            .map_err(raft_err)
    }

    /// A raw value of desired state.
    pub fn get_raw(&self, k: &str) -> Result<Option<String>, StoreError> {
        self.current()
            .sm
            .get(k)
            .map_err(|e| StoreError::Db(e.to_string()))
    }

    /// Every raw key and value under `prefix`, in key order.
    pub fn scan_raw(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.current()
            .sm
            .list(prefix)
            .map_err(|e| StoreError::Db(e.to_string()))
    }

    pub fn get_json<T: DeserializeOwned>(&self, k: &str) -> Result<Option<T>, StoreError> {
        match self.get_raw(k)? {
            Some(v) => Ok(Some(decode(k, &v)?)),
            None => Ok(None),
        }
    }

    /// Every value under `prefix` that decodes; the others are reported.
    pub fn list_json<T: DeserializeOwned>(
        &self,
        prefix: &str,
    ) -> Result<(Vec<T>, Vec<StoreError>), StoreError> {
        let mut ok = Vec::new();
        let mut bad = Vec::new();
        for (k, v) in self
            .current()
            .sm
            .list(prefix)
            .map_err(|e| StoreError::Db(e.to_string()))?
        {
            match decode(&k, &v) {
                Ok(r) => ok.push(r),
                Err(e) => bad.push(e),
            }
        }
        Ok((ok, bad))
    }

    pub fn get(&self, path: &str) -> Result<Option<ObjectRecord>, StoreError> {
        self.get_json(&obj_key(path))
    }

    pub fn list(&self) -> Result<Vec<ObjectRecord>, StoreError> {
        Ok(self.list_checked()?.0)
    }

    /// Every record; one that does not decode is skipped and reported.
    pub fn list_checked(&self) -> Result<(Vec<ObjectRecord>, Vec<StoreError>), StoreError> {
        self.list_json(OBJ_PREFIX)
    }
}

/// Puts any serializable value at `k`.
pub fn put_json<T: Serialize>(k: &str, v: &T) -> Result<Request, StoreError> {
    Ok(Request::Put {
        key: k.to_string(),
        value: serde_json::to_string(v)?,
    })
}

/// Sets the fields `patch` serializes (a typed patch whose unset fields are
/// skipped) of the JSON object at `k`, leaving its other fields alone.
pub fn patch_json<T: Serialize>(k: &str, patch: &T) -> Result<Request, StoreError> {
    match serde_json::to_value(patch)? {
        serde_json::Value::Object(fields) => Ok(Request::Patch {
            key: k.to_string(),
            fields,
        }),
        other => Err(StoreError::Db(format!(
            "a patch of {k} must be an object, not {other}"
        ))),
    }
}

/// Where [`Desired::probe`] writes.
pub const PROBE_KEY: &str = "store/probe";

fn berth_model_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

async fn open_inner(
    path: &Path,
    id: u64,
    standalone: bool,
    tls: &TlsSlot,
    changes: &tokio::sync::broadcast::Sender<Changes>,
    elect: bool,
) -> Result<Inner, StoreError> {
    let (log, sm) = berth_raft::open(path).map_err(|e| StoreError::Db(e.to_string()))?;
    let inner = start_inner(path, id, log, sm, tls, changes, elect).await?;
    if standalone && !inner.raft.is_initialized().await.map_err(raft_err)? {
        let members = BTreeMap::from([(
            id,
            BasicNode {
                addr: String::new(),
            },
        )]);
        inner.raft.initialize(members).await.map_err(raft_err)?;
    }
    Ok(inner)
}

/// Opens the log again, and the state machine unless `sm` is still good.
async fn reopen_inner(
    path: &Path,
    id: u64,
    sm: Option<StateMachine>,
    tls: &TlsSlot,
    changes: &tokio::sync::broadcast::Sender<Changes>,
    elect: bool,
) -> Result<Inner, StoreError> {
    let db = |e: std::io::Error| StoreError::Db(e.to_string());
    let log = berth_raft::reopen_log(path).map_err(db)?;
    let sm = match sm {
        Some(sm) => sm,
        None => berth_raft::reopen_state_machine(path).map_err(db)?,
    };
    start_inner(path, id, log, sm, tls, changes, elect).await
}

async fn start_inner(
    path: &Path,
    id: u64,
    log: berth_raft::LogStore,
    sm: StateMachine,
    tls: &TlsSlot,
    changes: &tokio::sync::broadcast::Sender<Changes>,
    elect: bool,
) -> Result<Inner, StoreError> {
    let log_size = log.size();
    let raft = RaftNode::new(
        id,
        config(elect)?,
        Network::with_slot(tls.clone()),
        log,
        sm.clone(),
    )
    .await
    .map_err(raft_err)?;
    let mut rx = sm.subscribe();
    let out = changes.clone();
    let relay = tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(c) => {
                    let _ = out.send(c);
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    let _ = out.send(Arc::new(None));
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    Ok(Inner {
        id,
        path: path.to_path_buf(),
        raft,
        sm,
        log_size,
        relay,
        broken: Default::default(),
    })
}

/// Where a node keeps its Raft storage: one file per cluster membership,
/// so a rejoin never has to reopen a file the old instance still holds.
pub fn raft_file(dir: &Path, generation: &str) -> PathBuf {
    dir.join(format!("raft-{generation}.redb"))
}

fn decode<T: DeserializeOwned>(k: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Decode {
        key: k.to_string(),
        source: e,
    })
}

/// The replica as the KV store's reads see it.
impl berth_kv::Read for Desired {
    fn get(&self, key: &str) -> std::io::Result<Option<String>> {
        self.get_raw(key).map_err(std::io::Error::other)
    }

    fn scan(&self, prefix: &str) -> std::io::Result<Vec<(String, String)>> {
        self.scan_raw(prefix).map_err(std::io::Error::other)
    }
}

/// Waits for an applied change that touches a key `wanted` accepts (or
/// for a lag, which may hide one), then takes what else came with it, so
/// a burst is one wake. False once the state machine is gone.
pub async fn next_change(
    rx: &mut tokio::sync::broadcast::Receiver<Changes>,
    wanted: impl Fn(&str) -> bool,
) -> bool {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match rx.recv().await {
            Ok(c) => match c.as_ref() {
                Some(keys) if !keys.iter().any(|k| wanted(k)) => continue,
                _ => break,
            },
            Err(RecvError::Lagged(_)) => break,
            Err(RecvError::Closed) => return false,
        }
    }
    while rx.try_recv().is_ok() {}
    true
}
