//! The threads that serve the ingress's connections: a current-thread
//! runtime per core, as haproxy runs a thread per core. A connection is
//! handed to one of them when accepted and stays there with its backend
//! exchanges, whose pool of kept backend connections (`backends.rs`) is
//! that thread's own. A request and its backend's answer then wake tasks on
//! one thread only: on the daemon's shared runtime the two sides' tasks
//! were woken across threads, behind one pool lock, and half the proxy's
//! time went to futex waits and context switches.
//!
//! A worker gives its core away in two moments (`burst.rs`):
//! - Before it parks. The clients and backends it has just written to
//!   were often woken on its own core, behind it. Yielding lets them run
//!   at once, and their answers are then waiting when the park polls, so
//!   the worker does not sleep and need not be woken: under I1's load it
//!   went from 0.3 sleeps per request to under 0.01, for about 20% more
//!   requests per second and a third of the p99 at 50 connections. A
//!   CPU-bound neighbour would keep the core until the next tick instead;
//!   yields that long may take 2% of the time, and past that the worker
//!   parks without yielding.
//! - Once it has run [`YIELD_AFTER`] without sleeping: under load it would
//!   otherwise run until it ran out of work or until the next tick (4 ms
//!   at 250 Hz, with no forced preemption), while the other worker, the
//!   node's containers and the clients woken behind it waited.
//!
//! BENCHMARKS.md (I1) has the traces and the measurements.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// How long a worker runs without sleeping before it yields its core.
const YIELD_AFTER: std::time::Duration = std::time::Duration::from_millis(2);

pub struct Workers {
    handles: Vec<tokio::runtime::Handle>,
    next: AtomicUsize,
    stops: Mutex<Vec<tokio::sync::oneshot::Sender<()>>>,
}

impl Workers {
    /// `n` threads (at least one), each running its runtime until
    /// [`Workers::stop`] or until `Workers` is dropped.
    pub fn start(n: usize) -> std::io::Result<Workers> {
        let mut handles = Vec::new();
        let mut stops = Vec::new();
        for i in 0..n.max(1) {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .on_thread_park(crate::burst::parking)
                .on_thread_unpark(|| crate::burst::unparked(YIELD_AFTER))
                .build()?;
            handles.push(rt.handle().clone());
            rt.spawn(crate::backends::reap_idle());
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            stops.push(stop);
            std::thread::Builder::new()
                .name(format!("ingress-{i}"))
                .spawn(move || {
                    // Dropping the runtime ends every connection it serves.
                    let _ = rt.block_on(stopped);
                })?;
        }
        Ok(Workers {
            handles,
            next: AtomicUsize::new(0),
            stops: Mutex::new(stops),
        })
    }

    /// Runs `f` on the next thread, round robin.
    pub fn spawn<F>(&self, f: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        self.handles[i].spawn(f);
    }

    pub fn stop(&self) {
        self.stops
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .for_each(|s| {
                let _ = s.send(());
            });
    }
}

/// One thread per core unless told otherwise.
pub fn default_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
