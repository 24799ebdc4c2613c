//! Observed status of objects and their resources, as reported by the agent.
//!
//! These types are soft state: the agent rebuilds them from Docker at any
//! time, they are never part of the desired state.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Aggregated availability, in OpenSVC's vocabulary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Avail {
    #[serde(rename = "up")]
    Up,
    #[serde(rename = "down")]
    Down,
    #[serde(rename = "warn")]
    Warn,
    #[serde(rename = "n/a")]
    NotApplicable,
}

impl Avail {
    pub fn as_str(self) -> &'static str {
        match self {
            Avail::Up => "up",
            Avail::Down => "down",
            Avail::Warn => "warn",
            Avail::NotApplicable => "n/a",
        }
    }

    /// Combines resource availabilities into the object's: all up is up, all
    /// down is down, anything mixed or in warning is warn.
    pub fn aggregate<I: IntoIterator<Item = Avail>>(items: I) -> Avail {
        let mut acc = Avail::NotApplicable;
        for a in items {
            acc = match (acc, a) {
                (x, Avail::NotApplicable) => x,
                (Avail::NotApplicable, y) => y,
                (Avail::Warn, _) | (_, Avail::Warn) => Avail::Warn,
                (Avail::Up, Avail::Up) => Avail::Up,
                (Avail::Down, Avail::Down) => Avail::Down,
                _ => Avail::Warn,
            };
        }
        acc
    }
}

impl fmt::Display for Avail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the operator asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    #[default]
    Stopped,
    Started,
}

impl Target {
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Stopped => "stopped",
            Target::Started => "started",
        }
    }
}

/// Status of one resource (`container#0`, `volume#1`, ...).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResourceStatus {
    pub rid: String,
    pub rtype: String,
    pub label: String,
    pub avail: Avail,
    /// Set when the reconciler gave up on the resource (restart budget spent).
    #[serde(default)]
    pub failed: bool,
    /// Recent errors and notable facts, oldest first.
    #[serde(default)]
    pub log: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    #[serde(default)]
    pub restarts: u32,
    /// How the registrator puts the container in the catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceInfo>,
    /// Being stopped: out of the catalog first, so the ingress of every
    /// node sends it no new request while in-flight ones finish.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub draining: bool,
    /// The version of each `sec`/`cfg` value the container holds
    /// (`sec/<object>/<key>`), while it runs.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub values: std::collections::BTreeMap<String, u64>,
    /// The container's health, from its `check` or Docker's healthcheck.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<crate::health::InstanceHealth>,
    /// The running container was made from an older config: a `deploy`
    /// (or a start) makes it again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub config_changed: bool,
    /// The image the running container was made from, when it is not the
    /// config's reference: the digest a deploy pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// A container's catalog registration (`service_name`, `service_tags`,
/// `service_port`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceInfo {
    pub name: String,
    #[serde(default)]
    pub tags: Vec<String>,
    /// The container's port; `None`: its first published one.
    #[serde(default)]
    pub port: Option<u16>,
    /// `host[/path]` routes of the ingress (`ingress_hosts`).
    #[serde(default)]
    pub ingress_hosts: Vec<String>,
    /// The ingress's active check of each instance (`ingress_check`).
    #[serde(default)]
    pub ingress_check: Option<ActiveCheck>,
    /// How the ingress picks among the instances (`ingress_balance`).
    #[serde(default)]
    pub ingress_balance: Balance,
    /// PEM files of the certificate chain and key the ingress serves its
    /// hosts with over TLS (`ingress_tls_cert`, `ingress_tls_key`).
    #[serde(default)]
    pub ingress_tls: Option<(String, String)>,
    /// `mesh=true`: (port every node listens on, container port) pairs;
    /// the container's own publication is then an ephemeral host port.
    #[serde(default)]
    pub mesh: Vec<(u16, u16)>,
    /// The mesh sends these instances a PROXY protocol v2 header
    /// (`mesh_proxy_protocol`).
    #[serde(default)]
    pub mesh_proxy: bool,
}

/// The ingress's choice of an instance for each request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Balance {
    #[default]
    RoundRobin,
    /// The instance with the fewest requests in flight from this node.
    LeastConn,
}

impl Balance {
    pub fn as_str(self) -> &'static str {
        match self {
            Balance::RoundRobin => "roundrobin",
            Balance::LeastConn => "leastconn",
        }
    }

    pub fn parse(s: &str) -> Option<Balance> {
        match s {
            "roundrobin" => Some(Balance::RoundRobin),
            "leastconn" => Some(Balance::LeastConn),
            _ => None,
        }
    }
}

/// An HTTP check the ingress runs on an instance to keep it in rotation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ActiveCheck {
    pub path: String,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub fall: u32,
    pub rise: u32,
}

impl ActiveCheck {
    /// `path interval_ms timeout_ms fall rise`, as service meta carries it.
    pub fn encode(&self) -> String {
        format!(
            "{} {} {} {} {}",
            self.path, self.interval_ms, self.timeout_ms, self.fall, self.rise
        )
    }

    pub fn decode(s: &str) -> Option<ActiveCheck> {
        let mut w = s.split_whitespace();
        let c = ActiveCheck {
            path: w.next()?.to_string(),
            interval_ms: w.next()?.parse().ok()?,
            timeout_ms: w.next()?.parse().ok()?,
            fall: w.next()?.parse().ok()?,
            rise: w.next()?.parse().ok()?,
        };
        (w.next().is_none() && c.path.starts_with('/') && c.interval_ms > 0).then_some(c)
    }
}

/// Service meta of a `mesh=true` instance: `public=hostport` words, the
/// port every node's mesh listens on and the host port the instance is
/// published on.
pub const MESH_META: &str = "berth-mesh";

/// The (mesh port, host port) pairs of a [`MESH_META`] value; words that
/// do not read are skipped.
pub fn mesh_ports(meta: &str) -> Vec<(u16, u16)> {
    meta.split_whitespace()
        .filter_map(|w| {
            let (public, host) = w.split_once('=')?;
            Some((public.parse().ok()?, host.parse().ok()?))
        })
        .filter(|(p, h)| *p != 0 && *h != 0)
        .collect()
}

/// Status of one object on this node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObjectStatus {
    pub path: String,
    pub node: String,
    pub avail: Avail,
    pub frozen: bool,
    pub target: Target,
    pub topology: crate::settings::Topology,
    pub orchestrate: crate::settings::Orchestrate,
    /// Errors about the object itself: invalid config on disk, private daemon failures.
    #[serde(default)]
    pub log: Vec<String>,
    pub resources: Vec<ResourceStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_socket: Option<String>,
    /// The nodes the object is placed on (cluster), empty before a start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub placement: Vec<String>,
    /// The config text this status was made against (`fnv1a64`), so a
    /// reader can tell a status made before a change from one after.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub config_hash: u64,
    /// Nodes it stayed unhealthy on (`on_unhealthy=failover`), with why:
    /// the orchestrator keeps it off them until `clear` there.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub unhealthy_on: std::collections::BTreeMap<String, String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[cfg(test)]
mod active_check_tests {
    use super::ActiveCheck;

    #[test]
    fn an_active_check_survives_its_meta_form() {
        let c = ActiveCheck {
            path: "/health".into(),
            interval_ms: 500,
            timeout_ms: 200,
            fall: 2,
            rise: 3,
        };
        assert_eq!(ActiveCheck::decode(&c.encode()), Some(c));
        for bad in [
            "",
            "health 1 1 1 1",
            "/h 0 1 1 1",
            "/h 1 1 1",
            "/h 1 1 1 1 x",
        ] {
            assert_eq!(ActiveCheck::decode(bad), None, "{bad:?}");
        }
    }
}
