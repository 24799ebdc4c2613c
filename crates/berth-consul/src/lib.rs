//! berth's Consul-compatible HTTP API (`--consul-addr`, by default
//! `127.0.0.1:8500`), on every node.
//!
//! Reads come from this node's replica of desired state: by default once
//! a leader is known, with `?consistent` after a read barrier at the
//! leader, with `?stale` whatever the replica holds. Writes are typed
//! commands (`berth_cluster::KvWrite`) that the leader applies through
//! Raft; `berth_kv::apply` decides each one at its log index.
//!
//! Blocking queries (`?index=&wait=`) register the table keys their
//! result depends on ([`watch`]) and wake only when one of those changes.
//!
//! Architecture invariant: this crate never proposes to Raft; every write
//! goes through `Cluster::submit`.

mod acl;
mod agent;
mod agent_api;
mod catalog;
mod checks;
pub mod duration;
mod kv;
mod node_health;
pub mod params;
mod register;
mod render;
mod reply;
mod session;
pub mod store;
mod ttl;
mod txn;
pub mod watch;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, put};
use axum::Router;
use berth_cluster::{Cluster, KvWrite};
use berth_store::Desired;
use params::{Mode, ReadOpts};
use reply::{ApiError, Meta};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::time::Instant;
use watch::{Interest, Watches};

pub use session::decode_session;
pub use txn::decode_txn;

/// What the API needs to run.
#[derive(Clone, Debug)]
pub struct ConsulOptions {
    /// Where to serve the HTTP API; `None` serves none, but the node still
    /// keeps its catalog records, runs its checks and, as leader, the
    /// session timers and node health.
    pub addr: Option<SocketAddr>,
    /// `Config.Datacenter` in `/v1/agent/self`: the cluster's name.
    pub datacenter: String,
    /// Who is served without a token.
    pub anonymous: Anonymous,
}

/// Who the API serves without a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anonymous {
    /// Loopback clients (the default).
    Loopback,
    Nobody,
    Anyone,
}

pub(crate) struct Consul {
    pub cluster: Arc<Cluster>,
    pub watches: Watches,
    pub opts: ConsulOptions,
    pub timers: ttl::Timers,
    pub checks: checks::Runner,
}

pub(crate) type State = axum::extract::State<Arc<Consul>>;

/// Starts the node's catalog and session loops and, with an address,
/// binds the API and serves it. Fails only if the address cannot be bound.
pub async fn serve(
    opts: ConsulOptions,
    cluster: Arc<Cluster>,
) -> std::io::Result<Option<tokio::task::JoinHandle<()>>> {
    let listener = match opts.addr {
        Some(a) => Some(tokio::net::TcpListener::bind(a).await?),
        None => None,
    };
    let consul = Arc::new(Consul {
        watches: Watches::default(),
        timers: ttl::Timers::default(),
        checks: checks::Runner::default(),
        cluster: cluster.clone(),
        opts,
    });
    tokio::spawn(consul.watches.clone().relay(cluster.desired().clone()));
    tokio::spawn(ttl::run(consul.clone()));
    tokio::spawn(checks::run(consul.clone()));
    tokio::spawn(node_health::run(consul.clone()));
    let Some(listener) = listener else {
        return Ok(None);
    };
    let app = router(consul).into_make_service_with_connect_info::<SocketAddr>();
    Ok(Some(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("consul api: {e}");
        }
    })))
}

fn router(consul: Arc<Consul>) -> Router {
    Router::new()
        .route("/v1/kv/", get(kv::get).put(kv::put).delete(kv::delete))
        .route(
            "/v1/kv/{*key}",
            get(kv::get).put(kv::put).delete(kv::delete),
        )
        .route("/v1/txn", put(txn::txn))
        .route("/v1/session/create", put(session::create))
        .route("/v1/session/destroy/{id}", put(session::destroy))
        .route("/v1/session/renew/{id}", put(session::renew))
        .route("/v1/session/info/{id}", get(session::info))
        .route("/v1/session/list", get(session::list))
        .route("/v1/session/node/{node}", get(session::node))
        .route("/v1/status/leader", get(agent::leader))
        .route("/v1/status/peers", get(agent::peers))
        .route("/v1/agent/self", get(agent::agent_self))
        .route("/v1/agent/members", get(agent_api::members))
        .route("/v1/agent/services", get(agent_api::services))
        .route("/v1/agent/checks", get(agent_api::checks))
        .route(
            "/v1/agent/service/register",
            put(agent_api::service_register),
        )
        .route(
            "/v1/agent/service/deregister/{*id}",
            put(agent_api::service_deregister),
        )
        .route("/v1/agent/check/register", put(agent_api::check_register))
        .route(
            "/v1/agent/check/deregister/{*id}",
            put(agent_api::check_deregister),
        )
        .route("/v1/agent/check/update/{*id}", put(agent_api::check_update))
        .route("/v1/agent/check/{verb}/{*id}", put(agent_api::check_ttl))
        .route("/v1/catalog/register", put(agent_api::catalog_register))
        .route("/v1/catalog/deregister", put(agent_api::catalog_deregister))
        .route("/v1/catalog/services", get(catalog::services))
        .route("/v1/catalog/service/{name}", get(catalog::service))
        .route("/v1/catalog/nodes", get(catalog::nodes))
        .route("/v1/catalog/node/{name}", get(catalog::node))
        .route("/v1/health/service/{name}", get(catalog::health_service))
        .route("/v1/health/checks/{name}", get(catalog::health_checks))
        .route("/v1/health/state/{state}", get(catalog::health_state))
        .route("/v1/health/node/{name}", get(catalog::health_node))
        // Values up to 512 KiB and transactions of 128 of them: bodies
        // past Consul's limits are refused with its 413, by the handlers.
        .layer(DefaultBodyLimit::max(80 * 1024 * 1024))
        .layer(axum::middleware::from_fn_with_state(
            consul.clone(),
            acl::layer,
        ))
        .with_state(consul)
}

impl Consul {
    pub fn desired(&self) -> &Arc<Desired> {
        self.cluster.desired()
    }

    fn meta(&self, index: u64) -> Meta {
        let d = self.desired();
        Meta {
            index,
            known_leader: d.leader().is_some(),
            last_contact_ms: 0,
        }
    }

    /// Refuses a read the mode cannot answer here, and runs the read
    /// barrier of `?consistent`.
    async fn ready(&self, mode: Mode) -> Result<(), ApiError> {
        match mode {
            Mode::Stale => Ok(()),
            Mode::Default if self.desired().leader().is_some() => Ok(()),
            Mode::Default => Err(ApiError::internal("No cluster leader")),
            Mode::Consistent => self
                .cluster
                .read_barrier()
                .await
                .map_err(|e| ApiError::internal(format!("No cluster leader: {e}"))),
        }
    }

    /// Runs `read` as a blocking query: at once without an index, else
    /// when its result's index passes the client's, or when the wait
    /// (plus up to a sixteenth of jitter) is over.
    pub async fn block<T>(
        &self,
        opts: &ReadOpts,
        interest: Interest,
        mut read: impl FnMut(&Desired) -> Result<(T, u64), ApiError>,
    ) -> Result<(T, Meta), ApiError> {
        self.ready(opts.mode).await?;
        let deadline = Instant::now() + opts.wait + jitter(opts.wait / 16);
        loop {
            let woken = opts.index.map(|_| self.watches.register(&interest));
            let (v, index) = read(self.desired())?;
            let (Some(want), Some(woken)) = (opts.index, woken) else {
                return Ok((v, self.meta(index)));
            };
            if index > want || Instant::now() >= deadline {
                return Ok((v, self.meta(index)));
            }
            if tokio::time::timeout_at(deadline, woken).await.is_err() {
                let (v, index) = read(self.desired())?;
                return Ok((v, self.meta(index)));
            }
        }
    }

    /// Who the request being served comes from: its token's holder, or
    /// `anonymous` (Consul without ACLs).
    pub fn user(&self) -> berth_cluster::UserRef {
        acl::caller(self.cluster.nodename())
    }

    /// Applies a KV write through the leader.
    pub async fn submit(&self, write: KvWrite) -> Result<berth_kv::Outcome, ApiError> {
        let reply = self
            .cluster
            .submit(berth_cluster::Command::Kv {
                by: self.user(),
                write,
            })
            .await
            .map_err(no_leader)?;
        reply
            .kv
            .ok_or_else(|| ApiError::internal("the leader returned no KV outcome"))
    }
}

/// Consul's answer when no leader can take a write.
pub(crate) fn no_leader(e: berth_cluster::ClusterError) -> ApiError {
    match e {
        berth_cluster::ClusterError::NoLeader(_) => ApiError::internal("No cluster leader"),
        e => e.into(),
    }
}

/// This node's wall clock, ms since the epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A random duration up to `max`.
fn jitter(max: std::time::Duration) -> std::time::Duration {
    let r = uuid::Uuid::new_v4().as_u128() as u64;
    let ns = max.as_nanos() as u64;
    if ns == 0 {
        return max;
    }
    std::time::Duration::from_nanos(r % ns)
}

/// The state machine as `berth_kv`'s reads see it: this replica.
pub(crate) struct Replica<'a>(pub &'a Desired);

impl berth_kv::Read for Replica<'_> {
    fn get(&self, key: &str) -> std::io::Result<Option<String>> {
        self.0.get_raw(key).map_err(std::io::Error::other)
    }

    fn scan(&self, prefix: &str) -> std::io::Result<Vec<(String, String)>> {
        self.0.scan_raw(prefix).map_err(std::io::Error::other)
    }
}

/// A replica as a table that is never written: read-only transactions.
impl berth_kv::Table for Replica<'_> {
    fn put(&mut self, _: &str, _: &str) -> std::io::Result<()> {
        Err(std::io::Error::other("read-only"))
    }

    fn delete(&mut self, _: &str) -> std::io::Result<()> {
        Err(std::io::Error::other("read-only"))
    }
}
