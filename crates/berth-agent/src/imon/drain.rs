//! Draining an instance before its container stops: the instance leaves
//! the catalog first (the registrator skips a draining resource), so the
//! ingress of every node sends it no new request, and the stop waits until
//! no ingress routes to it or has a request in flight to it, up to the
//! container's `stop_timeout`. Every way berth stops a container (stop,
//! move, failover, scale-down, node drain) comes through here; fencing
//! does not, as it must stop at once.

use super::Imon;
use berth_cluster::BackendUse;
use berth_drivers::container_docker::ContainerResource;
use berth_kv::catalog;
use berth_model::status::{mesh_ports, MESH_META};
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
        let addrs = self.registered_addrs(c);
        if addrs.is_empty() {
            return;
        }
        self.res.entry(c.rid.clone()).or_default().draining = true;
        self.refresh_status(rec, false).await;
        let list: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
        self.say(format!("{}: draining {}", c.rid, list.join(" ")));
        let deadline = Instant::now() + grace;
        let started = Instant::now();
        loop {
            let gone = self.registered_addrs(c).is_empty();
            let mut used = BackendUse::default();
            for a in &addrs {
                used.add(self.agent.cluster.backend_use(*a).await);
            }
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

    /// The addresses ingresses reach `c` at, as the registrator put it in
    /// the catalog (from the local replica): its service port, and the
    /// host port of each of its mesh ports. None when it is not
    /// registered.
    fn registered_addrs(&self, c: &ContainerResource) -> Vec<SocketAddr> {
        let node = self.agent.nodename();
        let id = format!("{node}:{}", c.spec.name);
        let desired = self.agent.cluster.desired();
        let Some(s) = catalog::services(desired.as_ref(), Some(&c.service.name))
            .ok()
            .and_then(|v| v.into_iter().find(|s| s.node == node && s.id == id))
        else {
            return Vec::new();
        };
        let ip = if s.address.is_empty() {
            self.agent.cluster.advertised_host()
        } else {
            s.address.clone()
        };
        let Ok(ip) = ip.parse() else {
            return Vec::new();
        };
        let mesh = s.meta.get(MESH_META).map(|m| mesh_ports(m));
        let ports = (s.port != 0)
            .then_some(s.port)
            .into_iter()
            .chain(mesh.into_iter().flatten().map(|(_, host_port)| host_port));
        let mut addrs: Vec<SocketAddr> = ports.map(|p| SocketAddr::new(ip, p)).collect();
        addrs.dedup();
        addrs
    }
}
