//! What the registrator needs to know about containers: their metadata,
//! addresses, ports and health, and the events of every container (not
//! only berth's).

use crate::client::Engine;
use crate::error::EngineError;
use bollard::query_parameters::{EventsOptionsBuilder, ListContainersOptionsBuilder};
use futures_util::{Stream, StreamExt};
use std::collections::HashMap;

/// A port of a container: the container's, and where the host publishes
/// it (when it does).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortFact {
    pub private: u16,
    pub proto: String,
    pub public: Option<u16>,
    /// The host address it is published on; empty or 0.0.0.0 for all.
    pub host_ip: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerFacts {
    pub id: String,
    pub name: String,
    pub image: String,
    pub labels: HashMap<String, String>,
    pub env: Vec<String>,
    /// The address on its first network, if any.
    pub ip: String,
    pub ports: Vec<PortFact>,
    /// Docker's healthcheck status (`starting`, `healthy`, `unhealthy`),
    /// when the container has a healthcheck.
    pub health: Option<String>,
    pub running: bool,
}

/// A container event of any container.
#[derive(Clone, Debug)]
pub struct ContainerEvent {
    pub id: String,
    pub action: String,
}

impl Engine {
    /// The ids of the running containers.
    pub async fn running_ids(&self) -> Result<Vec<String>, EngineError> {
        let opts = ListContainersOptionsBuilder::default().all(false).build();
        let list = self
            .docker()
            .list_containers(Some(opts))
            .await
            .map_err(|e| EngineError::docker("ps", e))?;
        Ok(list.into_iter().filter_map(|c| c.id).collect())
    }

    /// One container; `None` when it does not exist.
    pub async fn facts(&self, id: &str) -> Result<Option<ContainerFacts>, EngineError> {
        let r = match self.docker().inspect_container(id, None).await {
            Ok(r) => r,
            Err(e) => {
                let e = EngineError::docker("inspect", e);
                return if e.is_not_found() { Ok(None) } else { Err(e) };
            }
        };
        let cfg = r.config.unwrap_or_default();
        let st = r.state.unwrap_or_default();
        let net = r.network_settings.unwrap_or_default();
        let ip = net
            .networks
            .unwrap_or_default()
            .into_values()
            .filter_map(|n| n.ip_address)
            .find(|ip| !ip.is_empty())
            .unwrap_or_default();
        let mut ports = Vec::new();
        for (key, bindings) in net.ports.unwrap_or_default() {
            let (port, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
            let Ok(private) = port.parse::<u16>() else {
                continue;
            };
            let bound: Vec<_> = bindings.unwrap_or_default();
            if bound.is_empty() {
                ports.push(PortFact {
                    private,
                    proto: proto.to_string(),
                    public: None,
                    host_ip: String::new(),
                });
            }
            for b in bound {
                // One entry per address family is enough.
                if b.host_ip.as_deref().is_some_and(|h| h.contains(':')) {
                    continue;
                }
                ports.push(PortFact {
                    private,
                    proto: proto.to_string(),
                    public: b.host_port.and_then(|p| p.parse().ok()),
                    host_ip: b.host_ip.unwrap_or_default(),
                });
            }
        }
        ports.sort_by_key(|p| (p.private, p.proto.clone()));
        Ok(Some(ContainerFacts {
            id: r.id.unwrap_or_default(),
            name: r
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            image: cfg.image.unwrap_or_default(),
            labels: cfg.labels.unwrap_or_default(),
            env: cfg.env.unwrap_or_default(),
            ip,
            ports,
            health: st.health.and_then(|h| h.status).map(|s| s.to_string()),
            running: st.running.unwrap_or(false),
        }))
    }

    /// Events of every container. The stream ends when the engine goes
    /// away; callers reconnect.
    pub fn container_events(
        &self,
    ) -> impl Stream<Item = Result<ContainerEvent, EngineError>> + Send + 'static {
        let mut filters = HashMap::new();
        filters.insert("type".to_string(), vec!["container".to_string()]);
        let opts = EventsOptionsBuilder::default().filters(&filters).build();
        self.docker().events(Some(opts)).map(|r| {
            r.map(|m| ContainerEvent {
                id: m.actor.and_then(|a| a.id).unwrap_or_default(),
                action: m.action.unwrap_or_default(),
            })
            .map_err(|e| EngineError::docker("events", e))
        })
    }
}
