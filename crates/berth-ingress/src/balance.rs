//! Picking a backend: round robin over the instances in rotation, which
//! are those not critical and not ejected. A backend that refuses a
//! connection, or resets before answering, is ejected for a while, as
//! Envoy's outlier detection does; when every one is ejected they are all
//! tried again rather than none.

use crate::table::{Backend, Route};
use berth_kv::catalog::Health;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a failed backend stays out of rotation.
pub const EJECTION: Duration = Duration::from_secs(10);

/// What is known of one backend across route changes.
#[derive(Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub errors: AtomicU64,
    ejected_until: Mutex<Option<Instant>>,
    /// Out of rotation by the ingress's active check.
    pub check_failing: std::sync::atomic::AtomicBool,
}

impl Stats {
    /// Out of rotation for a failed active check or an ejection.
    pub fn down(&self) -> bool {
        self.check_failing.load(Ordering::Relaxed) || self.ejected()
    }

    pub fn ejected(&self) -> bool {
        let g = self.ejected_until.lock().unwrap_or_else(|e| e.into_inner());
        g.is_some_and(|t| Instant::now() < t)
    }

    pub fn eject(&self) {
        *self.ejected_until.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Instant::now() + EJECTION);
    }
}

#[derive(Default)]
pub struct Balancer {
    stats: Mutex<HashMap<SocketAddr, Arc<Stats>>>,
    cursors: Mutex<HashMap<(String, String), Arc<AtomicUsize>>>,
}

impl Balancer {
    pub fn stats(&self, addr: SocketAddr) -> Arc<Stats> {
        self.stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(addr)
            .or_default()
            .clone()
    }

    fn cursor(&self, r: &Route) -> Arc<AtomicUsize> {
        self.cursors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((r.host.host.clone(), r.host.path.clone()))
            .or_default()
            .clone()
    }

    /// Whether the backend takes new requests now.
    pub fn in_rotation(&self, b: &Backend) -> bool {
        b.health != Health::Critical && !self.stats(b.addr).down()
    }

    /// The next backend of `r`, skipping `tried`; `None` when no instance
    /// is healthy.
    pub fn pick(&self, r: &Route, tried: &[SocketAddr]) -> Option<Backend> {
        let healthy: Vec<&Backend> = r
            .backends
            .iter()
            .filter(|b| {
                b.health != Health::Critical
                    && !tried.contains(&b.addr)
                    && !self.stats(b.addr).check_failing.load(Ordering::Relaxed)
            })
            .collect();
        if healthy.is_empty() {
            return None;
        }
        let live: Vec<&Backend> = healthy
            .iter()
            .copied()
            .filter(|b| !self.stats(b.addr).ejected())
            .collect();
        let from = if live.is_empty() { &healthy } else { &live };
        let n = self.cursor(r).fetch_add(1, Ordering::Relaxed);
        Some(from[n % from.len()].clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_model::rules::parse_host_route;

    fn route(backends: &[(&str, Health)]) -> Route {
        Route {
            host: parse_host_route("a.test").expect("route"),
            service: "a".into(),
            backends: backends
                .iter()
                .map(|(a, h)| Backend {
                    addr: a.parse().expect("addr"),
                    node: "n1".into(),
                    health: *h,
                    check: None,
                })
                .collect(),
        }
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
}
