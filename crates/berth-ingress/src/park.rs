//! Parking idle HTTP/1 connections. hyper keeps a read and a write buffer
//! (8 KiB each) for as long as a connection lives, and about 35 KB went
//! to each idle keep-alive connection. A connection quiet for
//! [`PARK_AFTER`] with no exchange open is parked instead: its socket is
//! taken from under hyper, which sees a clean end and frees its buffers,
//! and the socket waits for the client's next bytes with nothing else
//! held; then a new hyper connection takes it up (`conn.rs`).
//!
//! A connection is never parked mid-exchange, after an upgrade, with
//! bytes of a request not yet parsed, or with an answer not yet written
//! out. One case is not seen: a pipelined request whose head arrived
//! only in part, with the rest more than a second late. Its connection
//! is closed, as a slow head would be.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// How long a connection stays quiet before it is parked.
pub const PARK_AFTER: Duration = Duration::from_secs(1);

/// What the connection's service tells its socket.
#[derive(Default)]
pub struct Exchanges {
    open: AtomicUsize,
    /// Bytes arrived since the last request began: part of a head may be
    /// in hyper's buffer.
    unparsed: AtomicBool,
    upgraded: AtomicBool,
}

/// An exchange counted open until dropped, with its answer's body.
pub struct Open(Arc<Exchanges>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Exchanges {
    /// A request's head was parsed.
    pub fn begin(self: &Arc<Self>) -> Open {
        self.open.fetch_add(1, Ordering::Relaxed);
        self.unparsed.store(false, Ordering::Relaxed);
        Open(self.clone())
    }

    /// The connection became a tunnel: it is the tunnel's now.
    pub fn upgraded(&self) {
        self.upgraded.store(true, Ordering::Relaxed);
    }

    fn may_park(&self) -> bool {
        self.open.load(Ordering::Relaxed) == 0
            && !self.unparsed.load(Ordering::Relaxed)
            && !self.upgraded.load(Ordering::Relaxed)
    }
}

/// Where a parked socket goes, for the connection's loop to take back.
pub type Slot<I> = Arc<Mutex<Option<I>>>;

pub fn take<I>(slot: &Slot<I>) -> Option<I> {
    slot.lock().unwrap_or_else(|e| e.into_inner()).take()
}

/// A socket waiting for its client, holding no buffer.
pub trait Wait {
    /// Until the client sent something, or closed.
    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send + '_;
}

/// The socket as hyper sees it: its own until parked, then at its end.
pub struct Watched<I> {
    io: Option<I>,
    slot: Slot<I>,
    exchanges: Arc<Exchanges>,
    last: Instant,
    timer: Option<Pin<Box<Sleep>>>,
    /// hyper holds bytes the socket did not take yet.
    write_blocked: bool,
}

impl<I> Watched<I> {
    pub fn new(io: I, slot: Slot<I>, exchanges: Arc<Exchanges>) -> Watched<I> {
        Watched {
            io: Some(io),
            slot,
            exchanges,
            last: Instant::now(),
            timer: None,
            write_blocked: false,
        }
    }

    /// Whether to park now; when not yet, the timer wakes the task then.
    fn park_due(&mut self, cx: &mut Context<'_>) -> bool {
        if self.write_blocked || !self.exchanges.may_park() {
            return false;
        }
        let due = self.last + PARK_AFTER;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        // Moved only when it fires early: a busy connection's requests
        // would otherwise re-arm it each time.
        while timer.as_mut().poll(cx).is_ready() {
            if timer.deadline() >= due {
                return true;
            }
            timer.as_mut().reset(due);
        }
        false
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the connection is parked")
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(io) = this.io.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let before = buf.filled().len();
        match Pin::new(io).poll_read(cx, buf) {
            Poll::Pending => {}
            ready => {
                if buf.filled().len() > before {
                    this.last = Instant::now();
                    if this.exchanges.open.load(Ordering::Relaxed) == 0 {
                        this.exchanges.unparsed.store(true, Ordering::Relaxed);
                    }
                }
                return ready;
            }
        }
        if !this.park_due(cx) {
            return Poll::Pending;
        }
        *this.slot.lock().unwrap_or_else(|e| e.into_inner()) = this.io.take();
        // An end of input on an idle connection: hyper closes it cleanly.
        Poll::Ready(Ok(()))
    }
}

impl<I: AsyncWrite + Unpin> Watched<I> {
    fn wrote(&mut self, r: Poll<io::Result<usize>>, len: usize) -> Poll<io::Result<usize>> {
        match &r {
            Poll::Pending => self.write_blocked = true,
            Poll::Ready(Ok(n)) => {
                self.last = Instant::now();
                if *n < len {
                    self.write_blocked = true;
                }
            }
            Poll::Ready(Err(_)) => {}
        }
        r
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(io) = this.io.as_mut() else {
            return Poll::Ready(Err(gone()));
        };
        let r = Pin::new(io).poll_write(cx, buf);
        this.wrote(r, buf.len())
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(io) = this.io.as_mut() else {
            return Poll::Ready(Err(gone()));
        };
        let len = bufs.iter().map(|b| b.len()).sum();
        let r = Pin::new(io).poll_write_vectored(cx, bufs);
        this.wrote(r, len)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.as_ref().is_some_and(|io| io.is_write_vectored())
    }

    /// hyper flushes once its own buffer went out: nothing is held then.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(io) = this.io.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let r = Pin::new(io).poll_flush(cx);
        this.write_blocked = !matches!(r, Poll::Ready(Ok(())));
        r
    }

    /// A parked socket is not hyper's to shut.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().io.as_mut() {
            Some(io) => Pin::new(io).poll_shutdown(cx),
            None => Poll::Ready(Ok(())),
        }
    }
}

/// How many client connections are open, and how many of them parked.
#[derive(Default)]
pub struct Census {
    open: AtomicUsize,
    parked: AtomicUsize,
}

/// Counts one connection in a state while it lives.
pub struct Counted<'a>(&'a AtomicUsize);

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Census {
    pub fn open(&self) -> Counted<'_> {
        self.open.fetch_add(1, Ordering::Relaxed);
        Counted(&self.open)
    }

    pub fn parked(&self) -> Counted<'_> {
        self.parked.fetch_add(1, Ordering::Relaxed);
        Counted(&self.parked)
    }

    /// Open connections, and those of them parked.
    pub fn get(&self) -> (usize, usize) {
        let parked = self.parked.load(Ordering::Relaxed);
        (self.open.load(Ordering::Relaxed).max(parked), parked)
    }
}
