//! Picking a backend: round robin over the instances in rotation, which
//! are those not critical and not ejected, or the one of them with the
//! fewest requests in flight from this node (`leastconn`). A backend that refuses a
//! connection, or resets before answering, is ejected for a while, as
//! Envoy's outlier detection does; when every one is ejected they are all
//! tried again rather than none.

use crate::table::{Backend, Route, Table};
use berth_kv::catalog::Health;
use berth_model::status::Balance;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

/// How long a failed backend stays out of rotation.
pub const EJECTION: Duration = Duration::from_secs(10);

/// What is known of one backend across route changes.
#[derive(Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub errors: AtomicU64,
    /// Requests and tunnels open to it now ([`InFlight`]).
    pub inflight: AtomicU64,
    /// Out of rotation until this [`since_epoch_ms`] reading; 0: not ejected.
    ejected_until: AtomicU64,
    /// Out of rotation by the ingress's active check.
    pub check_failing: AtomicBool,
    /// Its active check passed at least once. A checked backend takes no
    /// request before that, as with Envoy's active health checking: a
    /// container that just started may not listen yet.
    passed: AtomicBool,
}

impl Stats {
    /// Kept out of rotation by the ingress's own check: failing it, or
    /// not passed yet.
    pub fn held_by_check(&self, b: &Backend) -> bool {
        self.check_failing.load(Ordering::Relaxed)
            || (b.check.is_some() && !self.passed.load(Ordering::Relaxed))
    }

    pub fn passed_once(&self) {
        self.passed.store(true, Ordering::Relaxed);
    }

    pub fn ejected(&self) -> bool {
        let until = self.ejected_until.load(Ordering::Relaxed);
        if until == 0 {
            return false;
        }
        if since_epoch_ms() < until {
            return true;
        }
        // Over: back to the clock-free path, unless ejected again meanwhile.
        let _ = self
            .ejected_until
            .compare_exchange(until, 0, Ordering::Relaxed, Ordering::Relaxed);
        false
    }

    pub fn eject(&self) {
        let until = since_epoch_ms() + EJECTION.as_millis() as u64;
        self.ejected_until.store(until, Ordering::Relaxed);
    }
}

/// Milliseconds since the first call, at least 1: a lock-free clock for
/// ejections, which every request reads.
fn since_epoch_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let ms = EPOCH.get_or_init(Instant::now).elapsed().as_millis();
    u64::try_from(ms).unwrap_or(u64::MAX).max(1)
}

/// A backend [`Balancer::pick`] chose, and its stats.
pub struct Picked<'r> {
    pub backend: &'r Backend,
    pub stats: Arc<Stats>,
}

impl std::ops::Deref for Picked<'_> {
    type Target = Backend;

    fn deref(&self) -> &Backend {
        self.backend
    }
}

/// One request or tunnel to a backend, counted while it lives.
pub struct InFlight(Arc<Stats>);

impl InFlight {
    pub fn start(stats: Arc<Stats>) -> InFlight {
        stats.inflight.fetch_add(1, Ordering::Relaxed);
        InFlight(stats)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::Relaxed);
    }
}

fn cursor_key(r: &Route) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    (&r.host.host, &r.host.path).hash(&mut h);
    h.finish()
}

/// Read-mostly maps: a request takes read locks only, once every backend
/// and route was seen.
#[derive(Default)]
pub struct Balancer {
    stats: RwLock<HashMap<SocketAddr, Arc<Stats>>>,
    /// Round-robin positions, by a hash of the route's host and path.
    cursors: RwLock<HashMap<u64, Arc<AtomicUsize>>>,
}

impl Balancer {
    pub fn stats(&self, addr: SocketAddr) -> Arc<Stats> {
        crate::read_mostly(&self.stats, addr, Stats::default)
    }

    /// The backend's stats if it was ever used, without recording it.
    pub fn peek(&self, addr: SocketAddr) -> Option<Arc<Stats>> {
        self.stats
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&addr)
            .cloned()
    }

    fn cursor(&self, r: &Route) -> Arc<AtomicUsize> {
        crate::read_mostly(&self.cursors, cursor_key(r), AtomicUsize::default)
    }

    /// Drops what is kept of backends and routes no longer in `table`,
    /// except backends with requests or tunnels still open.
    pub fn forget_absent(&self, table: &Table) {
        let routes = table.routes();
        let addrs: HashSet<SocketAddr> = routes
            .iter()
            .flat_map(|r| &r.backends)
            .map(|b| b.addr)
            .collect();
        let keys: HashSet<u64> = routes.iter().map(|r| cursor_key(r)).collect();
        self.stats
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|a, s| addrs.contains(a) || s.inflight.load(Ordering::Relaxed) > 0);
        self.cursors
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|k, _| keys.contains(k));
    }

    /// Whether the backend takes new requests now.
    pub fn in_rotation(&self, b: &Backend) -> bool {
        let s = self.stats(b.addr);
        b.health != Health::Critical && !s.held_by_check(b) && !s.ejected()
    }

    fn bind(&self, r: &Route) -> Bound {
        Bound {
            cursor: self.cursor(r),
            stats: r.backends.iter().map(|b| self.stats(b.addr)).collect(),
        }
    }

    /// The next backend of `r`, skipping `tried`, with its stats; `None`
    /// when no instance is healthy.
    pub fn pick<'r>(&self, r: &'r Route, tried: &[SocketAddr]) -> Option<Picked<'r>> {
        let fresh;
        let bound = match r.ties.balance.get_or_init(|| self.bind(r)) {
            b if b.stats.len() == r.backends.len() => b,
            // Backends changed after the route was tied: not in a table,
            // whose routes do not change, but a route is plain data.
            _ => {
                fresh = self.bind(r);
                &fresh
            }
        };
        let candidate = |i: usize| {
            let b = &r.backends[i];
            b.health != Health::Critical
                && !tried.contains(&b.addr)
                && !bound.stats[i].held_by_check(b)
        };
        let (mut healthy, mut live) = (0, 0);
        for i in 0..r.backends.len() {
            if candidate(i) {
                healthy += 1;
                live += usize::from(!bound.stats[i].ejected());
            }
        }
        // Only some ejected: the others take the requests. All ejected:
        // all are tried rather than none.
        let live_only = live > 0 && live < healthy;
        let len = if live_only { live } else { healthy };
        if len == 0 {
            return None;
        }
        let start = bound.cursor.fetch_add(1, Ordering::Relaxed) % len;
        // Another thread may eject a backend between the count and the
        // choice: then any candidate left will do.
        let choose = |live_only: bool| {
            let eligible = || {
                (0..r.backends.len())
                    .filter(move |&i| candidate(i) && (!live_only || !bound.stats[i].ejected()))
            };
            match r.balance {
                Balance::RoundRobin => eligible().nth(start).or_else(|| eligible().next()),
                // The cursor breaks ties, so equal loads still take turns.
                Balance::LeastConn => eligible()
                    .enumerate()
                    .min_by_key(|&(k, i)| {
                        let load = bound.stats[i].inflight.load(Ordering::Relaxed);
                        (load, (k + len - start) % len)
                    })
                    .map(|(_, i)| i),
            }
        };
        let i = choose(live_only).or_else(|| choose(false))?;
        Some(Picked {
            backend: &r.backends[i],
            stats: bound.stats[i].clone(),
        })
    }
}

/// A route's backends' stats, in its order, and its round-robin cursor
/// (kept in the route's [`crate::table::Ties`]).
pub(crate) struct Bound {
    cursor: Arc<AtomicUsize>,
    stats: Vec<Arc<Stats>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_model::rules::parse_host_route;

    fn route(backends: &[(&str, Health)]) -> Route {
        Route {
            host: parse_host_route("a.test").expect("route"),
            service: "a".into(),
            balance: Balance::RoundRobin,
            tls: None,
            backends: backends
                .iter()
                .map(|(a, h)| Backend {
                    addr: a.parse().expect("addr"),
                    node: "n1".into(),
                    health: *h,
                    check: None,
                })
                .collect(),
            ties: Default::default(),
        }
    }

    #[test]
    fn a_checked_backend_takes_no_request_before_its_first_pass() {
        let b = Balancer::default();
        let mut r = route(&[
            ("10.0.0.1:80", Health::Passing),
            ("10.0.0.2:80", Health::Passing),
        ]);
        r.backends[1].check = Some(berth_model::status::ActiveCheck {
            path: "/health".into(),
            interval_ms: 1000,
            timeout_ms: 500,
            fall: 2,
            rise: 2,
        });
        for _ in 0..3 {
            assert_eq!(b.pick(&r, &[]).expect("pick").addr, r.backends[0].addr);
        }
        assert!(!b.in_rotation(&r.backends[1]));
        b.stats(r.backends[1].addr).passed_once();
        assert!(b.in_rotation(&r.backends[1]));
        let picks: std::collections::BTreeSet<SocketAddr> = (0..2)
            .map(|_| b.pick(&r, &[]).expect("pick").addr)
            .collect();
        assert_eq!(picks.len(), 2);
    }

    #[test]
    fn counters_of_backends_and_routes_that_left_the_table_are_forgotten() {
        let b = Balancer::default();
        let r = route(&[
            ("10.0.0.1:80", Health::Passing),
            ("10.0.0.2:80", Health::Passing),
        ]);
        let gone: SocketAddr = "10.0.0.9:80".parse().unwrap();
        let busy: SocketAddr = "10.0.0.8:80".parse().unwrap();
        b.pick(&r, &[]).expect("pick");
        b.stats(gone).requests.fetch_add(1, Ordering::Relaxed);
        let _open = InFlight::start(b.stats(busy));
        b.stats(r.backends[0].addr)
            .requests
            .fetch_add(5, Ordering::Relaxed);
        let table = crate::table::Table::from_routes([r.clone()]);
        b.forget_absent(&table);
        assert!(b.peek(gone).is_none());
        assert!(b.peek(busy).is_some(), "a backend in use is kept");
        let kept = b.peek(r.backends[0].addr).expect("kept");
        assert_eq!(kept.requests.load(Ordering::Relaxed), 5);
        assert_eq!(b.cursors.read().unwrap().len(), 1);
        b.forget_absent(&crate::table::Table::from_routes([]));
        assert!(b.cursors.read().unwrap().is_empty());
    }

    #[test]
    fn round_robin_skips_critical_ejected_and_tried_backends() {
        let b = Balancer::default();
        let r = route(&[
            ("10.0.0.1:80", Health::Passing),
            ("10.0.0.2:80", Health::Warning),
            ("10.0.0.3:80", Health::Critical),
        ]);
        let picks: Vec<String> = (0..4)
            .map(|_| b.pick(&r, &[]).expect("pick").addr.to_string())
            .collect();
        assert_eq!(
            picks,
            ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.1:80", "10.0.0.2:80"]
        );
        b.stats("10.0.0.1:80".parse().unwrap()).eject();
        for _ in 0..3 {
            assert_eq!(
                b.pick(&r, &[]).expect("pick").addr.to_string(),
                "10.0.0.2:80"
            );
        }
        let tried = ["10.0.0.2:80".parse().unwrap()];
        // Only an ejected one is left: it is tried rather than none.
        assert_eq!(
            b.pick(&r, &tried).expect("pick").addr.to_string(),
            "10.0.0.1:80"
        );
        let all = [
            "10.0.0.1:80".parse().unwrap(),
            "10.0.0.2:80".parse().unwrap(),
        ];
        assert!(b.pick(&r, &all).is_none());
        assert!(b
            .pick(&route(&[("10.0.0.3:80", Health::Critical)]), &[])
            .is_none());
    }

    #[test]
    fn least_connections_prefers_the_least_busy_and_takes_turns_on_ties() {
        let b = Balancer::default();
        let mut r = route(&[
            ("10.0.0.1:80", Health::Passing),
            ("10.0.0.2:80", Health::Passing),
            ("10.0.0.3:80", Health::Passing),
        ]);
        r.balance = Balance::LeastConn;
        let idle: std::collections::BTreeSet<String> = (0..3)
            .map(|_| b.pick(&r, &[]).expect("pick").addr.to_string())
            .collect();
        assert_eq!(idle.len(), 3, "equal loads take turns: {idle:?}");
        let busy1 = InFlight::start(b.stats("10.0.0.1:80".parse().unwrap()));
        let busy2 = InFlight::start(b.stats("10.0.0.2:80".parse().unwrap()));
        let _busy2b = InFlight::start(b.stats("10.0.0.2:80".parse().unwrap()));
        for _ in 0..3 {
            assert_eq!(
                b.pick(&r, &[]).expect("pick").addr.to_string(),
                "10.0.0.3:80"
            );
        }
        let _busy3 = InFlight::start(b.stats("10.0.0.3:80".parse().unwrap()));
        let _busy3b = InFlight::start(b.stats("10.0.0.3:80".parse().unwrap()));
        assert_eq!(
            b.pick(&r, &[]).expect("pick").addr.to_string(),
            "10.0.0.1:80"
        );
        drop(busy1);
        drop(busy2);
        // 0, 1 and 2 in flight: the first.
        assert_eq!(
            b.pick(&r, &[]).expect("pick").addr.to_string(),
            "10.0.0.1:80"
        );
        let _ = InFlight::start(b.stats("10.0.0.1:80".parse().unwrap()));
        let picks: std::collections::BTreeSet<String> = (0..6)
            .map(|_| b.pick(&r, &[]).expect("pick").addr.to_string())
            .collect();
        assert_eq!(
            picks.len(),
            1,
            "with 0/1/2 in flight only the idle one: {picks:?}"
        );
        assert_eq!(
            b.stats("10.0.0.1:80".parse().unwrap())
                .inflight
                .load(Ordering::Relaxed),
            0
        );
    }
}
