//! How the ingresses of the cluster use one backend address: whether any
//! still routes new requests to it, and how many requests are in flight.
//! A stop drains an instance by waiting for "unrouted and idle" on every
//! node (`design/ingress.md`, draining). Each node answers for its own
//! ingress through [`IngressProbe`], which the binary provides, so this
//! crate does not depend on the ingress.

use crate::{server, Cluster};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// One node's ingress's use of a backend, or the sum over the cluster.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendUse {
    /// New requests may still go to it.
    pub routed: bool,
    /// Requests and tunnels open to it now.
    pub inflight: u64,
}

impl BackendUse {
    pub fn idle(&self) -> bool {
        !self.routed && self.inflight == 0
    }

    pub fn add(&mut self, o: BackendUse) {
        self.routed |= o.routed;
        self.inflight += o.inflight;
    }
}

/// A node's ingress, as the node protocol asks it.
pub trait IngressProbe: Send + Sync {
    fn backend_use(&self, addr: SocketAddr) -> BackendUse;
}

/// A peer slower than this is taken as not using the backend: a node that
/// cannot answer in time is unlikely to be reaching the backend either.
const PEER_WAIT: Duration = Duration::from_secs(1);

impl Cluster {
    /// Hands the cluster this node's ingress; a second call is ignored.
    pub fn set_ingress_probe(&self, probe: Arc<dyn IngressProbe>) {
        let _ = self.ingress_probe.set(probe);
    }

    pub(crate) fn local_backend_use(&self, addr: SocketAddr) -> BackendUse {
        self.ingress_probe
            .get()
            .map(|p| p.backend_use(addr))
            .unwrap_or_default()
    }

    /// The use of `addr` summed over this node and every other node of the
    /// cluster, asked in parallel.
    pub async fn backend_use(&self, addr: SocketAddr) -> BackendUse {
        let mut total = self.local_backend_use(addr);
        let me = self.nodename().to_string();
        let peers: Vec<String> = self
            .node_records()
            .into_iter()
            .filter(|n| n.name != me)
            .map(|n| n.addr)
            .collect();
        let asks = peers.iter().map(|peer| async move {
            let r: Result<BackendUse, _> = self
                .call_within(peer, server::PATH_BACKEND_USE, &addr, PEER_WAIT)
                .await;
            r.map_err(|e| tracing::debug!("backend use of {addr} at {peer}: {e}"))
                .unwrap_or_default()
        });
        for u in futures_util::future::join_all(asks).await {
            total.add(u);
        }
        total
    }
}
