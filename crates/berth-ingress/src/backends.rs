//! Kept-alive HTTP/1 connections to backends, a pool per worker thread
//! (`workers.rs`). A request takes a ready connection to its backend, or
//! opens one, and the connection goes back to the pool when the answer's
//! body is done. hyper-util's pooled client did the same through a lock
//! and spawned a task per request to wait for the connection to come
//! back; here nothing of a request crosses to another task or thread.

use crate::body::OutBody;
use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Idle connections kept to one backend, per thread. Each holds hyper's
/// buffers while it waits; unbounded, a burst of clients left hundreds
/// of them open for a minute.
const IDLE_PER_BACKEND: usize = 128;
/// How long an unused connection is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_WAIT: Duration = Duration::from_secs(5);

type Sender = SendRequest<OutBody>;

struct Idle {
    sender: Sender,
    since: Instant,
}

thread_local! {
    static POOL: RefCell<HashMap<SocketAddr, Vec<Idle>, AddrHash>> = RefCell::default();
}

/// A fast hash for the pool's keys: backend addresses come from the
/// catalog, not from clients, and SipHash was a visible part of a
/// request's cost.
#[derive(Clone, Copy, Default)]
struct AddrHash;

struct AddrHasher(u64);

impl BuildHasher for AddrHash {
    type Hasher = AddrHasher;

    fn build_hasher(&self) -> AddrHasher {
        AddrHasher(0)
    }
}

impl Hasher for AddrHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        // FxHash's step.
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("connect: no answer within {0:?}")]
    ConnectTimeout(Duration),
    #[error(transparent)]
    Http(#[from] hyper::Error),
}

/// The connection an answer came on, back to its pool when the answer's
/// body is done; dropped before that, it is closed.
pub struct Lease {
    addr: SocketAddr,
    sender: Sender,
}

impl Lease {
    fn give_back(self) {
        // At thread exit the pool may be gone: the connection just closes.
        let _ = POOL.try_with(|p| {
            let mut pool = p.borrow_mut();
            let idle = pool.entry(self.addr).or_default();
            if idle.len() < IDLE_PER_BACKEND {
                idle.push(Idle {
                    sender: self.sender,
                    since: Instant::now(),
                });
            }
        });
    }
}

/// A ready kept connection to `addr`, the most recently used first.
/// Closed and expired ones are dropped; one not ready yet (its last
/// answer's end not seen by its connection task) stays.
fn checkout(addr: SocketAddr) -> Option<Sender> {
    POOL.try_with(|p| {
        let mut pool = p.borrow_mut();
        let idle = pool.get_mut(&addr)?;
        let now = Instant::now();
        let mut i = idle.len();
        while i > 0 {
            i -= 1;
            let c = &idle[i];
            if c.sender.is_closed() || now.duration_since(c.since) > IDLE_TIMEOUT {
                idle.swap_remove(i);
            } else if c.sender.is_ready() {
                return Some(idle.swap_remove(i).sender);
            }
        }
        None
    })
    .ok()
    .flatten()
}

/// Closes this thread's connections idle for too long, every half
/// timeout; runs on each worker thread.
pub async fn reap_idle() {
    let mut every = tokio::time::interval(IDLE_TIMEOUT / 2);
    loop {
        every.tick().await;
        let now = Instant::now();
        let _ = POOL.try_with(|p| {
            p.borrow_mut().retain(|_, idle| {
                idle.retain(|c| {
                    !c.sender.is_closed() && now.duration_since(c.since) <= IDLE_TIMEOUT
                });
                !idle.is_empty()
            })
        });
    }
}

async fn connect(addr: SocketAddr) -> Result<Sender, SendError> {
    let stream = tokio::time::timeout(CONNECT_WAIT, TcpStream::connect(addr))
        .await
        .map_err(|_| SendError::ConnectTimeout(CONNECT_WAIT))?
        .map_err(SendError::Connect)?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    Ok(sender)
}

/// Sends `req` (origin-form target, with a Host) to `addr` on a kept
/// connection or a new one. A request a kept connection could not take
/// (the backend closed it meanwhile) is sent once more on a new one.
pub async fn send(
    addr: SocketAddr,
    mut req: Request<OutBody>,
) -> Result<(Response<Incoming>, Lease), SendError> {
    let (mut sender, mut fresh) = match checkout(addr) {
        Some(s) => (s, false),
        None => (connect(addr).await?, true),
    };
    loop {
        match sender.try_send_request(req).await {
            Ok(resp) => return Ok((resp, Lease { addr, sender })),
            Err(mut e) => match e.take_message() {
                Some(unsent) if !fresh => {
                    req = unsent;
                    sender = connect(addr).await?;
                    fresh = true;
                }
                _ => return Err(e.into_error().into()),
            },
        }
    }
}

/// Sends `req` on a connection of its own, closed after the answer: the
/// active health checks, which should see a backend as a new client does.
pub async fn send_once(
    addr: SocketAddr,
    req: Request<OutBody>,
) -> Result<Response<Incoming>, SendError> {
    let mut sender = connect(addr).await?;
    Ok(sender.send_request(req).await?)
}

/// An answer's body that gives its connection back once it is done.
pub struct Returning {
    body: Incoming,
    lease: Option<Lease>,
}

impl Returning {
    pub fn new(body: Incoming, lease: Lease) -> Returning {
        if body.is_end_stream() {
            lease.give_back();
            return Returning { body, lease: None };
        }
        Returning {
            body,
            lease: Some(lease),
        }
    }

    fn done(&mut self) {
        if let Some(l) = self.lease.take() {
            l.give_back();
        }
    }
}

impl Body for Returning {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.done(),
            Poll::Ready(Some(Ok(_))) if self.body.is_end_stream() => self.done(),
            // A failed body leaves the connection unusable.
            Poll::Ready(Some(Err(_))) => self.lease = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use hyper::header::{HeaderValue, CONNECTION, HOST};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A backend answering "hello" to each request, counting the
    /// connections it accepted; with `close`, it asks to close each one.
    async fn backend(close: bool) -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let svc = hyper::service::service_fn(move |_req| async move {
                    let mut r = Response::new(http_body_util::Full::new(Bytes::from("hello")));
                    if close {
                        r.headers_mut()
                            .insert(CONNECTION, HeaderValue::from_static("close"));
                    }
                    Ok::<_, std::convert::Infallible>(r)
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(s), svc),
                );
            }
        });
        (addr, accepted)
    }

    async fn get(addr: SocketAddr) -> String {
        let mut req = Request::new(OutBody::Empty);
        req.headers_mut()
            .insert(HOST, HeaderValue::from_static("a.test"));
        let (resp, lease) = send(addr, req).await.expect("send");
        let body = Returning::new(resp.into_body(), lease);
        let bytes = body.collect().await.expect("body").to_bytes();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Whether the kept connection is ready again (its task ran).
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    /// The connections a backend accepted for 3 requests in a row.
    async fn connections_for_three(close: bool) -> usize {
        let (addr, accepted) = backend(close).await;
        for _ in 0..3 {
            assert_eq!(get(addr).await, "hello");
            settle().await;
        }
        accepted.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn a_kept_connection_serves_the_next_requests() {
        assert_eq!(connections_for_three(false).await, 1);
    }

    #[tokio::test]
    async fn a_connection_the_backend_closes_is_not_reused() {
        assert_eq!(connections_for_three(true).await, 3);
    }
}
