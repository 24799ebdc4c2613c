//! Client connections: accepted on the daemon's runtime, then served on a
//! worker thread (`workers.rs`): a trusted peer's PROXY header, the TLS
//! handshake, then HTTP/2 (ALPN `h2`, or h2c's preface) or HTTP/1.1 with
//! upgrades, parked whenever it idles (`park.rs`).

use crate::headers::Forwarding;
use crate::park::{self, Exchanges, Wait, Watched};
use crate::proxy_protocol::{self, Prefixed};
use crate::Ingress;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;

/// How often a listener at its connection limit says so.
const FULL_WARN_EVERY: Duration = Duration::from_secs(60);
/// How long a client has for its TLS handshake.
const HANDSHAKE_WAIT: Duration = Duration::from_secs(10);
/// How long a trusted peer has to send its PROXY header.
const PROXY_HEADER_WAIT: Duration = Duration::from_secs(5);
/// How long a request head may take, and a new connection its first one.
const HEAD_WAIT: Duration = Duration::from_secs(30);
/// What an HTTP/2 client without TLS sends first (RFC 9113, 3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Who a request is from, as far as the ingress can tell.
#[derive(Clone, Debug)]
pub(crate) struct Peer {
    pub client: SocketAddr,
    /// The forwarding headers its requests get. A trusted proxy that
    /// forwarded the request itself (no PROXY header) has its own kept
    /// and extended.
    pub forwarding: Arc<Forwarding>,
}

impl Peer {
    fn new(client: SocketAddr, extend: bool, scheme: &'static str) -> Peer {
        Peer {
            client,
            forwarding: Arc::new(Forwarding::new(client.ip(), scheme, extend)),
        }
    }
}

type Plain = Prefixed<TcpStream>;

impl Wait for Plain {
    async fn readable(&self) -> std::io::Result<()> {
        if self.buffered() {
            return Ok(());
        }
        self.get_ref().readable().await
    }
}

impl Wait for TlsStream<Plain> {
    async fn readable(&self) -> std::io::Result<()> {
        self.get_ref().0.readable().await
    }
}

/// A listener's connection limit (`--ingress-max-connections`): at it,
/// the listener stops accepting, as haproxy's `maxconn` does, and new
/// clients wait in the kernel's backlog rather than being closed.
pub(crate) struct Gate {
    permits: Arc<tokio::sync::Semaphore>,
    max: usize,
    what: String,
    warned: Option<std::time::Instant>,
}

impl Gate {
    pub fn new(max: usize, what: String) -> Gate {
        Gate {
            permits: Arc::new(tokio::sync::Semaphore::new(max)),
            max,
            what,
            warned: None,
        }
    }

    /// A place for the next connection, once one is free; it is given
    /// back when the permit is dropped.
    pub async fn admit(&mut self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        if self.permits.available_permits() == 0
            && self.warned.is_none_or(|t| t.elapsed() > FULL_WARN_EVERY)
        {
            tracing::warn!(
                "{}: {} connections open (--ingress-max-connections); new ones wait in the backlog",
                self.what,
                self.max
            );
            self.warned = Some(std::time::Instant::now());
        }
        self.permits.clone().acquire_owned().await.ok()
    }
}

pub(crate) async fn accept(
    ingress: Arc<Ingress>,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let mut gate = Gate::new(ingress.opts.max_connections, "ingress".into());
    loop {
        let Some(permit) = gate.admit().await else {
            return;
        };
        let (stream, peer) = accept_next(&listener, "ingress").await;
        // Served on a worker thread, registered with its runtime.
        let Ok(stream) = stream.into_std() else {
            continue;
        };
        let tls = tls.clone();
        let i = ingress.clone();
        ingress.workers.spawn(async move {
            let _permit = permit;
            let Ok(stream) = TcpStream::from_std(stream) else {
                return;
            };
            i.serve_client(stream, peer, tls).await;
        });
    }
}

/// The next connection, with Nagle off; a failed accept (out of file
/// descriptors and the like) waits rather than spins.
pub(crate) async fn accept_next(listener: &TcpListener, what: &str) -> (TcpStream, SocketAddr) {
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

impl Ingress {
    /// The task of one client connection. Every large stage is boxed, so
    /// the task, which keeps room for its largest state for as long as it
    /// lives, stays small while the connection is parked.
    async fn serve_client(
        self: Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) {
        let me = self.clone();
        let _open = me.census.open();
        // A connection that fails its handshake makes no request.
        let scheme = if tls.is_some() { "https" } else { "http" };
        let Some((mut io, peer)) = self.open(stream, peer, scheme).await else {
            return;
        };
        if let Some(acceptor) = tls {
            return Box::pin(self.serve_tls(io, peer, acceptor)).await;
        }
        match tokio::time::timeout(HEAD_WAIT, is_h2c(&mut io)).await {
            Ok(Ok(true)) => Box::pin(self.serve_h2(io, peer)).await,
            // Not boxed: the task's one allocation holds it.
            Ok(Ok(false)) => self.serve_h1(io, peer).await,
            _ => {}
        }
    }

    async fn serve_tls(
        self: Arc<Self>,
        io: Plain,
        peer: Peer,
        acceptor: tokio_rustls::TlsAcceptor,
    ) {
        match tokio::time::timeout(HANDSHAKE_WAIT, acceptor.accept(io)).await {
            Ok(Ok(io)) => {
                if io.get_ref().1.alpn_protocol() == Some(b"h2") {
                    self.serve_h2(io, peer).await
                } else {
                    self.serve_h1(io, peer).await
                }
            }
            Ok(Err(e)) => tracing::debug!("ingress: TLS handshake with {}: {e}", peer.client),
            Err(_) => tracing::debug!("ingress: TLS handshake with {} timed out", peer.client),
        }
    }

    async fn serve_h2<I>(self: Arc<Self>, io: I, peer: Peer)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let svc =
            hyper::service::service_fn(move |req| self.clone().handle(req, peer.clone(), None));
        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .serve_connection(TokioIo::new(io), svc)
            .await;
    }

    /// HTTP/1.1: a hyper connection at a time, the socket parked between
    /// them for as long as the client stays quiet, up to the idle timeout.
    async fn serve_h1<I>(self: Arc<Self>, io: I, peer: Peer)
    where
        I: Wait + AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let exchanges = Arc::new(Exchanges::default());
        let slot = park::Slot::default();
        let mut io = io;
        loop {
            let watched = Watched::new(io, slot.clone(), exchanges.clone());
            let (me, ex, peer) = (self.clone(), exchanges.clone(), peer.clone());
            let svc = hyper::service::service_fn(move |req| {
                me.clone().handle(req, peer.clone(), Some(ex.clone()))
            });
            // Boxed, so a parked connection's task is small: the task keeps
            // room for its largest state, and hyper's is kilobytes.
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_WAIT)
                .max_buf_size(self.opts.max_header)
                .serve_connection(TokioIo::new(watched), svc)
                .with_upgrades();
            let _ = Box::pin(served).await;
            let Some(parked) = park::take(&slot) else {
                return;
            };
            io = parked;
            let _parked = self.census.parked();
            match tokio::time::timeout(self.opts.idle_timeout, io.readable()).await {
                Ok(Ok(())) => {}
                // Quiet too long: dropped, so closed.
                _ => return,
            }
        }
    }

    /// The connection as served: a trusted peer's PROXY header read
    /// (boxed: it is rare, and its buffer would weigh on every task);
    /// `None` when the connection is to be dropped (a bad or late header).
    async fn open(
        &self,
        mut stream: TcpStream,
        peer: SocketAddr,
        scheme: &'static str,
    ) -> Option<(Plain, Peer)> {
        let trusted = self
            .opts
            .trusted_proxies
            .iter()
            .any(|c| c.contains(peer.ip()));
        if !trusted {
            return Some((
                Prefixed::new(Vec::new(), stream),
                Peer::new(peer, false, scheme),
            ));
        }
        let read = tokio::time::timeout(PROXY_HEADER_WAIT, proxy_protocol::read(&mut stream));
        let (client, head) = match Box::pin(read).await {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                tracing::debug!("ingress: PROXY header from {peer}: {e}");
                return None;
            }
            Err(_) => return None,
        };
        let who = match client {
            Some(c) => Peer::new(c, false, scheme),
            None => Peer::new(peer, true, scheme),
        };
        Some((Prefixed::new(head, stream), who))
    }
}

/// Whether the connection starts with HTTP/2's preface; what was read to
/// tell is put back.
async fn is_h2c(io: &mut Plain) -> std::io::Result<bool> {
    let mut got = [0u8; H2_PREFACE.len()];
    let mut n = 0;
    while n < got.len() {
        let k = io.read(&mut got[n..]).await?;
        if k == 0 {
            break;
        }
        n += k;
        if !H2_PREFACE.starts_with(&got[..n]) {
            break;
        }
    }
    io.unread(&got[..n]);
    Ok(&got[..n] == H2_PREFACE)
}
