//! Bodies of the catalog endpoints (`berth catalog ...`) and of the
//! ingress's route table (`berth ingress routes`): what the Consul API
//! and the ingress read, in berth's shape.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ServiceQuery {
    pub name: String,
    /// Only instances with this tag.
    #[serde(default)]
    pub tag: Option<String>,
}

/// One service, over all its instances.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSummary {
    pub name: String,
    /// The union of its instances' tags, sorted.
    pub tags: Vec<String>,
    pub instances: usize,
    /// Instances whose checks are all passing.
    pub passing: usize,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ServiceList {
    pub index: u64,
    pub services: Vec<ServiceSummary>,
}

/// One instance of a service.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceInstance {
    pub node: String,
    pub id: String,
    pub address: String,
    pub port: u16,
    pub tags: Vec<String>,
    /// passing, warning or critical: the worst of its checks.
    pub health: String,
    /// The berth object it belongs to, if it is one's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ServiceInstances {
    pub index: u64,
    pub instances: Vec<ServiceInstance>,
}

/// A backend of an ingress route.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteBackend {
    pub addr: String,
    pub node: String,
    pub health: String,
    /// Out of rotation: critical, or ejected after failures.
    pub in_rotation: bool,
    pub requests: u64,
    pub errors: u64,
    /// Requests and tunnels open to it now.
    #[serde(default)]
    pub inflight: u64,
}

/// One host route of the ingress.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// An exact host or `*.domain`.
    pub host: String,
    pub path: String,
    pub service: String,
    /// `roundrobin` or `leastconn`.
    #[serde(default)]
    pub balance: String,
    pub backends: Vec<RouteBackend>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RouteTable {
    /// Whether this node's ingress is listening (`--ingress-http`).
    pub listening: Option<String>,
    pub routes: Vec<Route>,
}
