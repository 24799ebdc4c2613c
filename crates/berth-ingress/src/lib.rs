//! berth's ingress: an HTTP proxy in every node's daemon
//! (`--ingress-http`, `--ingress-https`, off unless given), on hyper 1 and
//! hyper-util, serving HTTP/1.1 and h2c, and h2 over TLS (`tls.rs`).
//! Routes come from the catalog: a service's `ingress_hosts` (registered
//! as service meta) and registrator tags `dns=<host>`, exact hosts or
//! `*.domain`, with a path prefix. Requests go round robin (or to the
//! least busy) to the instances that are not critical and not ejected, on
//! any node, and that pass the ingress's own active check where the
//! service sets one (`checks.rs`); the client's address is set in
//! `X-Forwarded-For` and `Forwarded`, from a trusted proxy's PROXY header
//! where there is one (`proxy_protocol.rs`).
//!
//! A route change is a new table read by the next request: no reload, and
//! no open connection or tunnel is touched.
//!
//! Architecture invariant: the ingress only reads the local replica, as
//! DNS does; it never writes to the store.

mod backends;
mod balance;
mod body;
mod burst;
mod checks;
mod conn;
pub mod headers;
mod mesh;
mod observe;
mod park;
mod proxy;
pub mod proxy_protocol;
mod table;
mod tls;
mod workers;

pub use table::{Backend, Route, Table, TlsFiles};

use balance::Balancer;
use berth_api_types::catalog as api;
use berth_model::cidr::Cidr;
use berth_store::Desired;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct IngressOptions {
    pub http: Option<SocketAddr>,
    /// TLS, with certificates picked by SNI from the routes.
    pub https: Option<SocketAddr>,
    /// Request bodies over this are refused with 413.
    pub max_body: u64,
    /// The request head's limit; over it, 431.
    pub max_header: usize,
    /// Connections at once. At the limit the listener stops accepting, as
    /// haproxy's maxconn does: new clients wait in the kernel's backlog
    /// rather than being closed.
    pub max_connections: usize,
    /// For a backend's answer to start.
    pub backend_timeout: Duration,
    /// Peers whose PROXY protocol header (v1 or v2) is read, and whose
    /// forwarding headers are kept and extended.
    pub trusted_proxies: Vec<Cidr>,
    /// Where the access log goes (`-`: standard output); none by default.
    pub access_log: Option<std::path::PathBuf>,
    /// Threads serving connections; 0: one per core.
    pub threads: usize,
    /// How long a keep-alive connection may wait for its next request.
    pub idle_timeout: Duration,
}

impl IngressOptions {
    pub fn on(http: Option<SocketAddr>, https: Option<SocketAddr>) -> IngressOptions {
        IngressOptions {
            http,
            https,
            max_body: 64 << 20,
            max_header: 64 << 10,
            max_connections: 10_000,
            backend_timeout: Duration::from_secs(60),
            trusted_proxies: Vec::new(),
            access_log: None,
            threads: 0,
            idle_timeout: Duration::from_secs(60),
        }
    }
}

pub struct Ingress {
    opts: IngressOptions,
    table: Arc<RwLock<Arc<Table>>>,
    balancer: Balancer,
    workers: workers::Workers,
    census: park::Census,
    observer: observe::Observer,
    certs: tls::Certs,
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// Binds `opts.http` and `opts.https` and serves until [`Ingress::shutdown`].
pub async fn serve(opts: IngressOptions, desired: Arc<Desired>) -> std::io::Result<Arc<Ingress>> {
    let http = match opts.http {
        Some(a) => Some(tokio::net::TcpListener::bind(a).await?),
        None => None,
    };
    let https = match opts.https {
        Some(a) => Some(tokio::net::TcpListener::bind(a).await?),
        None => None,
    };
    let threads = match opts.threads {
        0 => workers::default_count(),
        n => n,
    };
    // Subscribed before the first build, so no change falls in between.
    let changes = desired.subscribe();
    let observer = observe::Observer::new(opts.access_log.clone())?;
    let ingress = Arc::new(Ingress {
        observer,
        certs: tls::Certs::default(),
        opts,
        table: Arc::new(RwLock::new(Arc::new(Table::build(desired.as_ref())?))),
        balancer: Balancer::default(),
        workers: workers::Workers::start(threads)?,
        census: park::Census::default(),
        tasks: Default::default(),
    });
    let mut tasks = vec![
        tokio::spawn(follow(desired, changes, ingress.clone())),
        tokio::spawn(checks::supervise(ingress.clone())),
    ];
    if let Some(l) = http {
        tasks.push(tokio::spawn(conn::accept(ingress.clone(), l, None)));
    }
    if let Some(ip) = ingress.opts.http.or(ingress.opts.https).map(|a| a.ip()) {
        tasks.push(tokio::spawn(mesh::supervise(ingress.clone(), ip)));
    }
    if let Some(l) = https {
        let acceptor = tokio_rustls::TlsAcceptor::from(tls::server_config(&ingress)?);
        tasks.push(tokio::spawn(conn::accept(
            ingress.clone(),
            l,
            Some(acceptor),
        )));
    }
    ingress.lock_tasks().extend(tasks);
    Ok(ingress)
}

impl std::fmt::Debug for Ingress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ingress")
    }
}

impl Ingress {
    fn table(&self) -> Arc<Table> {
        self.table.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn lock_tasks(&self) -> std::sync::MutexGuard<'_, Vec<tokio::task::JoinHandle<()>>> {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn shutdown(&self) {
        for t in self.lock_tasks().drain(..) {
            t.abort();
        }
        self.workers.stop();
    }

    /// Whether this ingress may still send `addr` a request, and how many
    /// it has open to it: what a draining stop waits on.
    pub fn backend_use(&self, addr: SocketAddr) -> (bool, u64) {
        let inflight = self
            .balancer
            .peek(addr)
            .map_or(0, |s| s.inflight.load(std::sync::atomic::Ordering::Relaxed));
        (self.table().routes_to(addr), inflight)
    }

    /// The ingress's Prometheus families, for the daemon's `/metrics`.
    pub fn write_metrics(&self, t: &mut berth_metrics::Text) {
        self.observer.write(t);
        let (open, parked) = self.census.get();
        t.family(
            "berth_ingress_connections",
            berth_metrics::Kind::Gauge,
            "Client connections open, by state: parked ones wait for their next request holding no buffer.",
        );
        let active = (open - parked) as f64;
        t.sample("berth_ingress_connections", &[("state", "active")], active);
        t.sample(
            "berth_ingress_connections",
            &[("state", "parked")],
            parked as f64,
        );
    }

    /// The routes as served now, with each backend's counters.
    pub fn report(&self) -> api::RouteTable {
        let listening: Vec<String> = [("http", self.opts.http), ("https", self.opts.https)]
            .into_iter()
            .filter_map(|(scheme, a)| Some(format!("{scheme}://{}", a?)))
            .collect();
        report(
            &self.table(),
            Some(&self.balancer),
            Some(listening.join(" ")),
        )
    }
}

/// The routes the catalog asks for, as `berth ingress routes` shows them
/// on a node whose ingress is off.
pub fn routes_of(desired: &Desired) -> std::io::Result<api::RouteTable> {
    Ok(report(&Table::build(desired)?, None, None))
}

fn report(t: &Table, b: Option<&Balancer>, listening: Option<String>) -> api::RouteTable {
    let routes = t
        .routes()
        .into_iter()
        .map(|r| api::Route {
            host: r.host.host.clone(),
            path: r.host.path.clone(),
            service: r.service.clone(),
            balance: r.balance.as_str().to_string(),
            backends: r
                .backends
                .iter()
                .map(|be| {
                    let stats = b.map(|b| b.stats(be.addr));
                    let count = |f: fn(&balance::Stats) -> u64| stats.as_deref().map_or(0, f);
                    api::RouteBackend {
                        addr: be.addr.to_string(),
                        node: be.node.clone(),
                        health: be.health.as_str().to_string(),
                        in_rotation: b
                            .map_or(be.health != berth_kv::catalog::Health::Critical, |b| {
                                b.in_rotation(be)
                            }),
                        requests: count(|s| s.requests.load(std::sync::atomic::Ordering::Relaxed)),
                        errors: count(|s| s.errors.load(std::sync::atomic::Ordering::Relaxed)),
                        inflight: count(|s| s.inflight.load(std::sync::atomic::Ordering::Relaxed)),
                    }
                })
                .collect(),
        })
        .collect();
    api::RouteTable { listening, routes }
}

/// The value under `key`, made on first use: a read lock once it exists.
pub(crate) fn read_mostly<K: std::hash::Hash + Eq, V>(
    map: &RwLock<std::collections::HashMap<K, Arc<V>>>,
    key: K,
    make: impl FnOnce() -> V,
) -> Arc<V> {
    if let Some(v) = map.read().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return v.clone();
    }
    map.write()
        .unwrap_or_else(|e| e.into_inner())
        .entry(key)
        .or_insert_with(|| Arc::new(make()))
        .clone()
}

/// Keeps the route table current with the replica until the process
/// ends, and forgets the counters of what left it.
async fn follow(
    desired: Arc<Desired>,
    mut rx: tokio::sync::broadcast::Receiver<berth_store::Changes>,
    ingress: Arc<Ingress>,
) {
    while berth_store::next_change(&mut rx, |k| k.starts_with("catalog/")).await {
        match Table::build(desired.as_ref()) {
            Ok(t) => {
                let t = Arc::new(t);
                *ingress.table.write().unwrap_or_else(|e| e.into_inner()) = t.clone();
                ingress.balancer.forget_absent(&t);
                ingress.observer.forget_absent(&t);
            }
            Err(e) => tracing::warn!("ingress routes: {e}"),
        }
    }
}
