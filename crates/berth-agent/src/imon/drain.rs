//! Draining an instance before its container stops: the instance leaves
//! the catalog first (the registrator skips a draining resource), so the
//! ingress of every node sends it no new request, and the stop waits until
//! no ingress routes to it or has a request in flight to it, up to the
//! container's `stop_timeout`. Every way berth stops a container (stop,
//! move, failover, scale-down, node drain) comes through here; fencing
//! does not, as it must stop at once.

use super::Imon;
use berth_drivers::container_docker::ContainerResource;
use berth_kv::catalog;
use berth_store::ObjectRecord;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::Instant;

/// Between two looks at the cluster's use of the backend.
const POLL: Duration = Duration::from_millis(25);

impl Imon {
    /// Takes `c` out of the catalog and waits for the ingresses to let go
    /// of it; the caller stops it next, and then clears the mark.
    pub(crate) async fn drain(
        &mut self,
        rec: &ObjectRecord,
        c: &ContainerResource,
        grace: Duration,
    ) {
        let Some(addr) = self.registered_addr(c) else {
            return;
        };
        self.res.entry(c.rid.clone()).or_default().draining = true;
        self.refresh_status(rec, false).await;
        self.say(format!("{}: draining {addr}", c.rid));
        let deadline = Instant::now() + grace;
        let started = Instant::now();
        loop {
            let gone = self.registered_addr(c).is_none();
            let used = self.agent.cluster.backend_use(addr).await;
            if gone && used.idle() {
                self.say(format!(
                    "{}: drained in {} ms",
                    c.rid,
                    started.elapsed().as_millis()
                ));
                return;
            }
            if Instant::now() >= deadline {
                self.say(format!(
                    "{}: stop_timeout reached while draining ({} in flight)",
                    c.rid, used.inflight
                ));
                return;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Clears the draining mark, once the container stopped or the stop
    /// failed.
    pub(crate) fn undrain(&mut self, rid: &str) {
        if let Some(r) = self.res.get_mut(rid) {
            r.draining = false;
        }
    }

    /// The address the registrator put `c` in the catalog at, from the
    /// local replica; `None` when it is not registered or has no port.
    fn registered_addr(&self, c: &ContainerResource) -> Option<SocketAddr> {
        let node = self.agent.nodename();
        let id = format!("{node}:{}", c.spec.name);
        let desired = self.agent.cluster.desired();
        let s = catalog::services(desired.as_ref(), Some(&c.service.name))
            .ok()?
            .into_iter()
            .find(|s| s.node == node && s.id == id)?;
        if s.port == 0 {
            return None;
        }
        let ip = if s.address.is_empty() {
            self.agent.cluster.advertised_host()
        } else {
            s.address
        };
        Some(SocketAddr::new(ip.parse().ok()?, s.port))
    }
}
