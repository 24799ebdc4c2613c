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

mod agent;
pub mod duration;
mod kv;
pub mod params;
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

pub use txn::decode_txn;

/// What the API needs to run.
#[derive(Clone, Debug)]
pub struct ConsulOptions {
    pub addr: SocketAddr,
    /// `Config.Datacenter` in `/v1/agent/self`: the cluster's name.
    pub datacenter: String,
}

pub(crate) struct Consul {
    pub cluster: Arc<Cluster>,
    pub watches: Watches,
    pub opts: ConsulOptions,
    pub timers: ttl::Timers,
}

pub(crate) type State = axum::extract::State<Arc<Consul>>;

/// Binds the API and serves it; also starts the watch relay and the
/// session TTL timers. Fails only if the address cannot be bound.
pub async fn serve(
    opts: ConsulOptions,
    cluster: Arc<Cluster>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(opts.addr).await?;
    let consul = Arc::new(Consul {
        watches: Watches::default(),
        timers: ttl::Timers::default(),
        cluster: cluster.clone(),
        opts,
    });
    tokio::spawn(consul.watches.clone().relay(cluster.desired().clone()));
    tokio::spawn(ttl::run(consul.clone()));
    let app = router(consul);
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("consul api: {e}");
        }
    }))
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
        // Values up to 512 KiB and transactions of 128 of them: bodies
        // past Consul's limits are refused with its 413, by the handlers.
        .layer(DefaultBodyLimit::max(80 * 1024 * 1024))
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

    /// Who the API's clients are: anyone who reaches its address, as with
    /// Consul without ACLs.
    pub fn user(&self) -> berth_cluster::UserRef {
        berth_cluster::UserRef {
            user: "anonymous".into(),
            node: self.cluster.nodename().to_string(),
        }
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
