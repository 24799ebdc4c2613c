//! The ingress's active checks: every node's ingress GETs the check path
//! of each instance whose service set `ingress_check`, and takes it out of
//! rotation after `fall` failures in a row, back after `rise` passes, as
//! haproxy's `check` does. Each node checks for itself, so an instance
//! that one node cannot reach leaves that node's rotation only.

use crate::Ingress;
use berth_model::status::ActiveCheck;
use hyper::header::{HeaderValue, HOST};
use hyper::{Request, Uri};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::{AbortHandle, JoinSet};

/// How often the set of checked backends follows the route table.
const RECONCILE: Duration = Duration::from_millis(500);

/// Runs until aborted; aborting it stops every check.
pub(crate) async fn supervise(ingress: Arc<Ingress>) {
    let mut tasks = JoinSet::new();
    let mut running: HashMap<(SocketAddr, ActiveCheck), AbortHandle> = HashMap::new();
    loop {
        let wanted = ingress.table().checked();
        running.retain(|key, h| {
            let keep = wanted.contains(key);
            if !keep {
                h.abort();
                ingress
                    .balancer
                    .stats(key.0)
                    .check_failing
                    .store(false, Ordering::Relaxed);
            }
            keep
        });
        for key in wanted {
            if let std::collections::hash_map::Entry::Vacant(slot) = running.entry(key) {
                let (addr, check) = slot.key().clone();
                slot.insert(tasks.spawn(check_loop(ingress.clone(), addr, check)));
            }
        }
        while tasks.try_join_next().is_some() {}
        tokio::time::sleep(RECONCILE).await;
    }
}

async fn check_loop(ingress: Arc<Ingress>, addr: SocketAddr, check: ActiveCheck) {
    let stats = ingress.balancer.stats(addr);
    let (mut passes, mut fails) = (0u32, 0u32);
    loop {
        if probe(addr, &check).await {
            passes += 1;
            fails = 0;
            stats.passed_once();
            if passes >= check.rise && stats.check_failing.swap(false, Ordering::Relaxed) {
                tracing::info!("ingress: {addr} passes its check {} again", check.path);
            }
        } else {
            fails += 1;
            passes = 0;
            if fails >= check.fall && !stats.check_failing.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "ingress: {addr} fails its check {}: out of rotation",
                    check.path
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(check.interval_ms)).await;
    }
}

/// One GET of the check path: an answer under 400 in time passes.
async fn probe(addr: SocketAddr, check: &ActiveCheck) -> bool {
    let (Ok(uri), Ok(host)) = (
        Uri::try_from(check.path.as_str()),
        HeaderValue::from_str(&addr.to_string()),
    ) else {
        return false;
    };
    let mut req = Request::new(crate::body::OutBody::Empty);
    *req.uri_mut() = uri;
    req.headers_mut().insert(HOST, host);
    let wait = Duration::from_millis(check.timeout_ms);
    // On a connection of its own, closed once the answer is in.
    match tokio::time::timeout(wait, crate::backends::send_once(addr, req)).await {
        Ok(Ok(resp)) => resp.status().as_u16() < 400,
        _ => false,
    }
}
