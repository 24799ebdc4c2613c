//! What `daemon status` reports beyond "running": every Docker daemon the
//! node uses, as reached just now; whether desired state can be written;
//! and the node's place in the cluster.

use crate::agent::Agent;
use berth_store::StoreHealth;
use std::sync::Arc;
use std::time::Duration;

/// How long one Docker daemon may take to answer a ping.
const PING_WAIT: Duration = Duration::from_secs(2);

/// One Docker daemon: `host` or the object owning it, its socket, and why
/// it did not answer.
#[derive(Clone, Debug)]
pub struct DockerHealth {
    pub daemon: String,
    pub socket: String,
    pub error: Option<String>,
}

#[derive(Clone, Debug)]
pub struct NodeHealth {
    pub docker: Vec<DockerHealth>,
    pub store: StoreHealth,
    /// `standalone`, `leader`, `manager` or `worker`.
    pub role: &'static str,
    pub leader: Option<String>,
    pub term: u64,
}

impl Agent {
    pub async fn health(self: &Arc<Self>) -> NodeHealth {
        let host = self.host_docker_socket().to_string();
        // A private daemon is expected to answer while its object is to
        // run here; a stopped object's daemon is stopped on purpose.
        let mut daemons = vec![("host".to_string(), host.clone())];
        for s in self.statuses() {
            if let Some(sock) = &s.docker_socket {
                if *sock != host && s.target == berth_model::status::Target::Started {
                    daemons.push((s.path.clone(), sock.clone()));
                }
            }
        }
        let pings = daemons.into_iter().map(|(daemon, socket)| {
            let agent = self.clone();
            let is_host = socket == host;
            async move {
                let error = if is_host {
                    agent.ping(&socket).await.err()
                } else if berth_engine::ping_socket(std::path::Path::new(&socket)).await {
                    None
                } else {
                    Some("no answer to /_ping".to_string())
                };
                DockerHealth {
                    daemon,
                    socket,
                    error,
                }
            }
        });
        let docker = futures_util::future::join_all(pings).await;
        let desired = self.cluster.desired();
        desired.probe().await;
        let view = self.cluster.view().await;
        let me = self.nodename();
        let role = if !self.cluster.is_clustered() {
            "standalone"
        } else if desired.is_leader() {
            "leader"
        } else if view.nodes.iter().any(|n| n.record.name == me && n.voter) {
            "manager"
        } else {
            "worker"
        };
        NodeHealth {
            docker,
            store: desired.health(),
            role,
            leader: view
                .leader
                .or_else(|| (!self.cluster.is_clustered()).then(|| me.to_string())),
            term: view.term,
        }
    }

    async fn ping(self: &Arc<Self>, socket: &str) -> Result<(), String> {
        let engine = self.engine(socket).await.map_err(|e| e.to_string())?;
        match tokio::time::timeout(PING_WAIT, engine.ping()).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no answer within {PING_WAIT:?}")),
        }
    }
}
