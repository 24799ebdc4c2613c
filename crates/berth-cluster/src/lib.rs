//! The cluster: membership, the node listener and its typed commands,
//! heartbeats and the failover lease, and the leader's orchestrator.
//!
//! Design note:
//! - Every node runs the same agent. Managers are Raft voters; workers are
//!   Raft learners, so every node reads desired state locally and the
//!   instance monitors work the same everywhere. Secrets in desired state
//!   (the CA key, the join tokens) are sealed with a key only managers hold.
//! - Node-to-node traffic is JSON over HTTP/2 with mutual TLS on one TCP
//!   listener per node (`server`). Only the join endpoints accept a client
//!   without a certificate; Raft endpoints want a manager's.
//! - Every change to desired state is a typed [`Command`], authorized by
//!   the leader against the sender's certificate (`command`, `submit`).
//! - Observed state (heartbeats, instance reports) lives in the leader's
//!   memory only (`LeaderView`); a new leader starts from nothing and waits
//!   a full failover period before moving anything (`design/failover.md`).
//! - A standalone node has no identity file, no listener and no peers: it
//!   is a one-member Raft cluster and its own leader.
//! - The agent is reached through [`LocalNode`] only; this crate learns
//!   about instances from the status bus and publishes the node's fence
//!   there.

mod actions;
mod address;
mod admin;
mod audit;
mod autolock;
mod backend_use;
pub mod command;
mod deploy;
mod error;
mod heartbeat;
mod identity;
mod join;
mod ldap;
mod lease;
mod orchestrator;
pub mod rbac;
pub mod records;
mod renew;
mod rotation;
mod secrets;
mod server;
mod submit;
mod tokens;
mod users;
mod view;

pub use autolock::{AutolockOp, UNLOCK_PREFIX};
pub use backend_use::{BackendUse, IngressProbe};
pub use command::{
    check_kv_key, AuthOp, Command, ConfigText, KvWrite, ObjectOp, SecretOp, UserRef,
};
pub use deploy::DeployArgs;
pub use error::ClusterError;
pub use identity::Identity;
pub use ldap::{LdapSyncReport, LdapUserChange};
pub use records::ClusterRecord;
pub use secrets::KeyInfo;
pub use submit::CommandReply;
pub use users::IssuedToken;

use berth_bus::{EventBus, StatusBus};
use berth_manager::duty::Fence;
use berth_manager::liveness::Timing;
use berth_model::{ActionKind, ActionOutcome, ObjectPath, ObjectSettings};
use berth_raft::{RpcClient, TlsSlot};
use berth_store::{Desired, Home};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::ffi::OsString;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

/// How long one node-to-node request may take.
const RPC_TTL: Duration = Duration::from_secs(10);

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the cluster needs from the node it runs on: the agent implements it.
pub trait LocalNode: Send + Sync {
    /// What placement needs from an object's config; `None` when it does
    /// not resolve (the object is then left where it is).
    fn settings(&self, path: &ObjectPath, config: &str) -> Option<ObjectSettings>;

    /// The `sec`/`cfg` values (object, key) that `path`'s containers
    /// take when its config `config` is resolved on `node`.
    fn values_used(
        &self,
        path: &ObjectPath,
        config: &str,
        node: &str,
    ) -> Result<Vec<(ObjectPath, String)>, String>;

    /// The fingerprint of each container resource's spec (rid →
    /// fingerprint) when `path`'s config `config` is resolved here.
    fn spec_fingerprints(
        &self,
        path: &ObjectPath,
        config: &str,
    ) -> Result<std::collections::BTreeMap<String, String>, String>;

    /// Each container resource's image pinned to a digest on this node
    /// (rid → `repo@sha256:...` or an image id); a resource whose image
    /// cannot be found is left out, with why.
    fn image_digests(
        &self,
        path: &ObjectPath,
        config: &str,
    ) -> BoxFuture<'static, (std::collections::BTreeMap<String, String>, Vec<String>)>;

    /// Runs an action on this node's instance of `path`, for `by`.
    fn act(
        &self,
        path: ObjectPath,
        kind: ActionKind,
        by: UserRef,
    ) -> BoxFuture<'static, ActionOutcome>;
}

#[derive(Clone, Debug)]
pub struct ClusterOptions {
    pub home: Home,
    pub nodename: String,
    pub timing: Timing,
    /// The command that runs the fencing watchdog (`berth daemon watchdog
    /// --home H`); `None` runs none.
    pub watchdog: Option<Vec<OsString>>,
}

pub struct Cluster {
    pub(crate) opts: ClusterOptions,
    pub(crate) desired: Arc<Desired>,
    pub(crate) events: EventBus,
    pub(crate) status: Arc<StatusBus>,
    pub(crate) identity: RwLock<Option<Identity>>,
    /// Client TLS for peers; shared with the Raft network.
    pub(crate) tls: TlsSlot,
    pub(crate) view: Mutex<view::LeaderView>,
    pub(crate) lease: lease::LeaseKeeper,
    clients: Mutex<HashMap<String, Arc<RpcClient>>>,
    pub(crate) listener: server::Listener,
    pub(crate) last_renewal: Mutex<Option<Duration>>,
    pub(crate) local: OnceLock<Arc<dyn LocalNode>>,
    /// This node's ingress, when it runs one.
    pub(crate) ingress_probe: OnceLock<Arc<dyn IngressProbe>>,
    pub(crate) authorizer: Arc<rbac::Rbac>,
    pub(crate) login_limiter: users::LoginLimiter,
    /// The directory logins and the LDAP sync use, when configured.
    pub(crate) ldap: OnceLock<ldap::LdapState>,
    pub(crate) refusal_budget: audit::RefusalBudget,
    /// This cluster, for the tasks its `&self` methods spawn.
    pub(crate) me: OnceLock<std::sync::Weak<Cluster>>,
    /// Serializes init, join and leave.
    pub(crate) membership_lock: tokio::sync::Mutex<()>,
    /// One deploy of an object at a time, on this node.
    pub(crate) deploy_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Cluster {
    /// Loads this node's identity and opens desired state: the cluster's
    /// Raft log if the node is a member, a cluster of one otherwise.
    pub async fn open(
        opts: ClusterOptions,
        events: EventBus,
        status: Arc<StatusBus>,
    ) -> Result<Arc<Cluster>, ClusterError> {
        let identity = Identity::load(&opts.home)?;
        let tls = TlsSlot::default();
        if let Some(id) = &identity {
            *tls.write().unwrap_or_else(|e| e.into_inner()) =
                Some(berth_net::client_config(&id.net())?);
        }
        let desired = Arc::new(match &identity {
            None => {
                Desired::open(
                    &opts.home.raft_file(&opts.home.standalone_generation()),
                    berth_store::FIRST_ID,
                    true,
                    tls.clone(),
                    true,
                )
                .await?
            }
            Some(id) => {
                // A locked manager stands for no election until unlocked.
                Desired::open(
                    &opts.home.raft_file(&id.generation),
                    id.node_id,
                    false,
                    tls.clone(),
                    !id.is_locked(),
                )
                .await?
            }
        });
        desired.spawn_maintenance();
        let authorizer = Arc::new(rbac::Rbac::new(desired.clone()));
        let lease = lease::LeaseKeeper::new(opts.timing, &opts.home, opts.watchdog.clone());
        let cluster = Arc::new(Cluster {
            view: Mutex::new(view::LeaderView::new(opts.timing)),
            desired,
            events,
            status,
            identity: RwLock::new(identity),
            tls,
            lease,
            clients: Mutex::new(HashMap::new()),
            listener: server::Listener::default(),
            last_renewal: Mutex::new(None),
            local: OnceLock::new(),
            ingress_probe: OnceLock::new(),
            authorizer,
            login_limiter: Default::default(),
            ldap: OnceLock::new(),
            refusal_budget: Default::default(),
            me: OnceLock::new(),
            membership_lock: tokio::sync::Mutex::new(()),
            deploy_locks: Mutex::default(),
            opts,
        });
        let _ = cluster.me.set(Arc::downgrade(&cluster));
        Ok(cluster)
    }

    /// Starts the cluster loops: the node listener (when a member), the
    /// heartbeat sender, the lease watcher and the orchestrator; then, on
    /// a member, waits until the replica holds again what a crash took
    /// from it (which needs the listener). Called once, before the
    /// monitors read desired state.
    pub async fn start(self: &Arc<Self>, local: Arc<dyn LocalNode>) -> Result<(), ClusterError> {
        if self.local.set(local).is_err() {
            return Err(ClusterError::Conflict(
                "the cluster is already started".into(),
            ));
        }
        let locked = self.identity().is_some_and(|id| id.is_locked());
        match self.identity() {
            Some(id) if !locked => server::listen(self, &id)?,
            Some(_) => self.emit(
                "this manager is locked (autolock): it serves no secret, signs nothing and takes no part in Raft until `berth cluster unlock`".into(),
            ),
            None => {}
        }
        tokio::spawn(autolock::run(self.clone()));
        tokio::spawn(heartbeat::run(self.clone()));
        tokio::spawn(lease::watch(self.clone()));
        tokio::spawn(orchestrator::run(self.clone()));
        tokio::spawn(rotation::run(self.clone()));
        tokio::spawn(deploy::resume(self.clone()));
        if self.is_clustered() && !locked {
            self.desired
                .wait_recovered(berth_store::RECOVERY_WAIT)
                .await;
        }
        Ok(())
    }

    pub fn desired(&self) -> &Arc<Desired> {
        &self.desired
    }

    pub fn nodename(&self) -> &str {
        &self.opts.nodename
    }

    pub fn identity(&self) -> Option<Identity> {
        self.identity
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The host part of the address peers reach this node at; loopback on
    /// a standalone node. Services registered without an address of
    /// their own are reached here.
    pub fn advertised_host(&self) -> String {
        self.identity()
            .map(|i| {
                i.advertise
                    .rsplit_once(':')
                    .map_or(i.advertise.clone(), |(h, _)| h.to_string())
            })
            .unwrap_or_else(|| "127.0.0.1".into())
    }

    pub fn is_clustered(&self) -> bool {
        self.identity
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Whether failover instances may run on this node now.
    pub fn fence(&self) -> Fence {
        self.lease
            .fence(self.is_clustered(), self.desired.applied_index())
    }

    /// A failover container is about to start: guarded by the watchdog
    /// first. It may start only on `Ok`.
    pub fn guard(&self, container_id: &str) -> Result<(), String> {
        self.lease.watchdog.guard(container_id)
    }

    /// A running failover container found by this agent (after a
    /// restart): guarded unless it already is.
    pub fn adopt(&self, container_id: &str) -> Result<(), String> {
        self.lease.watchdog.adopt(container_id)
    }

    pub(crate) fn local(&self) -> Result<&Arc<dyn LocalNode>, ClusterError> {
        self.local.get().ok_or(ClusterError::ShuttingDown)
    }

    /// The user commands of this node's API act for: root on this node
    /// (the API socket is root's only). The security issue authenticates
    /// users and passes theirs instead.
    pub fn local_user(&self) -> UserRef {
        UserRef::root_on(self.nodename())
    }

    /// One JSON request to the node listening at `addr`.
    pub(crate) async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        addr: &str,
        path: &str,
        req: &Req,
    ) -> Result<Resp, ClusterError> {
        self.call_within(addr, path, req, RPC_TTL).await
    }

    /// [`Cluster::call`] with its own time limit, for requests that wait
    /// on Docker (an action's stop timeout alone can exceed `RPC_TTL`). A
    /// dead peer is still noticed within seconds: dialling is bounded, and
    /// the connection's HTTP/2 keep-alive fails a silent one.
    pub(crate) async fn call_within<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        addr: &str,
        path: &str,
        req: &Req,
        ttl: Duration,
    ) -> Result<Resp, ClusterError> {
        let client = self
            .clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(addr.to_string())
            .or_insert_with(|| Arc::new(RpcClient::new(addr.to_string(), self.tls.clone())))
            .clone();
        client
            .call(path, req, ttl)
            .await
            .map_err(ClusterError::from_call)
    }

    pub(crate) fn forget_clients(&self) {
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// The leader's address, or a typed "no leader" to retry on.
    pub(crate) fn leader_addr(&self) -> Result<String, ClusterError> {
        self.desired
            .leader()
            .map(|(_, addr)| addr)
            .filter(|a| !a.is_empty())
            .ok_or(ClusterError::NoLeader(None))
    }

    pub(crate) fn emit(&self, what: String) {
        self.events.emit(None, None, what, None);
    }
}
