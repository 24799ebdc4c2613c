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

mod balance;
mod checks;
pub mod headers;
mod mesh;
mod observe;
mod proxy;
pub mod proxy_protocol;
mod table;
mod tls;

pub use table::{Backend, Route, Table, TlsFiles};

use balance::Balancer;
use berth_api_types::catalog as api;
use berth_model::cidr::Cidr;
use berth_store::Desired;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
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
        }
    }
}

/// How often a listener at its connection limit says so.
const FULL_WARN_EVERY: Duration = Duration::from_secs(60);

pub struct Ingress {
    opts: IngressOptions,
    table: Arc<RwLock<Arc<Table>>>,
    balancer: Balancer,
    client: Client<HttpConnector, proxy::OutBody>,
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
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    connector.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .build(connector);
    // Subscribed before the first build, so no change falls in between.
    let changes = desired.subscribe();
    let observer = observe::Observer::new(opts.access_log.clone())?;
    let ingress = Arc::new(Ingress {
        observer,
        certs: tls::Certs::default(),
        opts,
        table: Arc::new(RwLock::new(Arc::new(Table::build(desired.as_ref())?))),
        balancer: Balancer::default(),
        client,
        tasks: Default::default(),
    });
    let mut tasks = vec![
        tokio::spawn(follow(desired, changes, ingress.clone())),
        tokio::spawn(checks::supervise(ingress.clone())),
    ];
    if let Some(l) = http {
        tasks.push(tokio::spawn(accept(ingress.clone(), l, None)));
    }
    if let Some(ip) = ingress.opts.http.or(ingress.opts.https).map(|a| a.ip()) {
        tasks.push(tokio::spawn(mesh::supervise(ingress.clone(), ip)));
    }
    if let Some(l) = https {
        let acceptor = tokio_rustls::TlsAcceptor::from(tls::server_config(&ingress)?);
        tasks.push(tokio::spawn(accept(ingress.clone(), l, Some(acceptor))));
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

async fn accept(
    ingress: Arc<Ingress>,
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let permits = Arc::new(tokio::sync::Semaphore::new(ingress.opts.max_connections));
    let mut warned: Option<std::time::Instant> = None;
    loop {
        if permits.available_permits() == 0 && warned.is_none_or(|t| t.elapsed() > FULL_WARN_EVERY)
        {
            tracing::warn!(
                "ingress: {} connections open (--ingress-max-connections); new ones wait in the backlog",
                ingress.opts.max_connections
            );
            warned = Some(std::time::Instant::now());
        }
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = accept_next(&listener, "ingress").await;
        let ingress = ingress.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let Some((io, mut peer)) = ingress.clone().open(stream, peer).await else {
                return;
            };
            let Some(acceptor) = tls else {
                return ingress.serve_conn(io, peer).await;
            };
            match tokio::time::timeout(HANDSHAKE_WAIT, acceptor.accept(io)).await {
                Ok(Ok(io)) => {
                    peer.scheme = "https";
                    ingress.serve_conn(io, peer).await
                }
                Ok(Err(e)) => tracing::debug!("ingress: TLS handshake with {}: {e}", peer.client),
                Err(_) => tracing::debug!("ingress: TLS handshake with {} timed out", peer.client),
            }
        });
    }
}

/// The next connection, with Nagle off; a failed accept (out of file
/// descriptors and the like) waits rather than spins.
pub(crate) async fn accept_next(
    listener: &tokio::net::TcpListener,
    what: &str,
) -> (tokio::net::TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                return (stream, peer);
            }
            Err(e) => {
                tracing::warn!("{what}: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
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

/// How long a client has for its TLS handshake.
const HANDSHAKE_WAIT: Duration = Duration::from_secs(10);

impl Ingress {
    async fn serve_conn<I>(self: Arc<Self>, io: I, peer: Peer)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let max_header = self.opts.max_header;
        let svc = hyper::service::service_fn(move |req| self.clone().handle(req, peer));
        let mut b = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        b.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(30))
            .max_buf_size(max_header);
        let _ = b
            .serve_connection_with_upgrades(TokioIo::new(io), svc)
            .await;
    }
}

/// Who a request is from, as far as the ingress can tell.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Peer {
    pub client: SocketAddr,
    /// A trusted proxy that forwarded the request itself (no PROXY
    /// header): its forwarding headers are kept and extended.
    pub extend: bool,
    pub scheme: &'static str,
}

/// How long a trusted peer has to send its PROXY header.
const PROXY_HEADER_WAIT: Duration = Duration::from_secs(5);

impl Ingress {
    /// Reads a trusted peer's PROXY header; `None` when the connection is
    /// to be dropped (a bad or missing-in-time header).
    async fn open(
        self: Arc<Self>,
        mut stream: tokio::net::TcpStream,
        peer: SocketAddr,
    ) -> Option<(proxy_protocol::Prefixed<tokio::net::TcpStream>, Peer)> {
        let trusted = self
            .opts
            .trusted_proxies
            .iter()
            .any(|c| c.contains(peer.ip()));
        let mut who = Peer {
            client: peer,
            extend: false,
            scheme: "http",
        };
        if !trusted {
            return Some((proxy_protocol::Prefixed::new(Vec::new(), stream), who));
        }
        let read = tokio::time::timeout(PROXY_HEADER_WAIT, proxy_protocol::read(&mut stream));
        let (client, head) = match read.await {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                tracing::debug!("ingress: PROXY header from {peer}: {e}");
                return None;
            }
            Err(_) => return None,
        };
        match client {
            Some(c) => who.client = c,
            None => who.extend = true,
        }
        Some((proxy_protocol::Prefixed::new(head, stream), who))
    }
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
