//! Which registrations a container makes: registrator's rules for
//! containers with `SERVICE_*` metadata, berth's keywords for its own.

use berth_engine::{ContainerFacts, PortFact};
use berth_kv::catalog::{Check, CheckDef, Health, Service, Source};
use berth_model::health::{HealthSource, HealthState, InstanceHealth};
use berth_model::status::ServiceInfo;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// One service with its checks. A `docker` check's status is Docker's
/// healthcheck state; the others' are the check runner's.
pub type Registration = (Service, Vec<Check>);

const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Labels win over environment variables.
struct Meta<'a> {
    labels: &'a HashMap<String, String>,
    env: HashMap<&'a str, &'a str>,
}

impl<'a> Meta<'a> {
    fn of(f: &'a ContainerFacts) -> Meta<'a> {
        Meta {
            labels: &f.labels,
            env: f.env.iter().filter_map(|e| e.split_once('=')).collect(),
        }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.labels
            .get(key)
            .map(String::as_str)
            .or_else(|| self.env.get(key).copied())
    }

    /// `SERVICE_<port>_<what>`, else `SERVICE_<what>`.
    fn for_port(&self, port: u16, what: &str) -> Option<&str> {
        self.get(&format!("SERVICE_{port}_{what}"))
            .or_else(|| self.get(&format!("SERVICE_{what}")))
    }

    fn any(&self) -> bool {
        self.labels.keys().any(|k| k.starts_with("SERVICE_"))
            || self.env.keys().any(|k| k.starts_with("SERVICE_"))
    }
}

/// `registry:5000/library/redis:6` → `redis`.
pub fn image_base(image: &str) -> String {
    let no_digest = image.split('@').next().unwrap_or(image);
    let last = no_digest.rsplit('/').next().unwrap_or(no_digest);
    last.split(':').next().unwrap_or(last).to_string()
}

fn duration(s: Option<&str>) -> Option<Duration> {
    let s = s?.trim();
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3_600_000)
    } else {
        return None;
    };
    num.parse::<u64>()
        .ok()
        .map(|n| Duration::from_millis(n * scale))
}

fn docker_health(f: &ContainerFacts, node: &str, id: &str) -> Option<Check> {
    let status = match f.health.as_deref()? {
        "healthy" => Health::Passing,
        _ => Health::Critical,
    };
    Some(Check {
        critical_since_ms: (status == Health::Critical).then(now_ms),
        node: node.to_string(),
        id: format!("service:{id}:docker"),
        name: "Docker healthcheck".into(),
        status,
        output: format!("docker: {}", f.health.as_deref().unwrap_or_default()),
        ..Default::default()
    })
}

/// The check of a container berth runs: its instance's health, from its
/// `check` or Docker's healthcheck, as the agent's monitor last saw it.
/// The id ends in `:health`; the registrator keeps its status current.
fn instance_health(h: &InstanceHealth, node: &str, id: &str) -> Check {
    let status = match h.state {
        HealthState::Healthy => Health::Passing,
        HealthState::Starting | HealthState::Unhealthy => Health::Critical,
    };
    let name = match h.source {
        HealthSource::Docker => "Docker healthcheck",
        HealthSource::Berth => "berth check",
    };
    Check {
        critical_since_ms: (status == Health::Critical).then(now_ms),
        node: node.to_string(),
        id: format!("service:{id}:health"),
        name: name.into(),
        status,
        output: format!("{}: {}", h.state.as_str(), h.output),
        ..Default::default()
    }
}

/// Where a port is reached from outside the container.
fn reach(p: &PortFact, f: &ContainerFacts, node_addr: &str, internal: bool) -> (String, u16) {
    match p.public {
        Some(public) if !internal => {
            let host = if p.host_ip.is_empty() || p.host_ip == "0.0.0.0" {
                node_addr.to_string()
            } else {
                p.host_ip.clone()
            };
            (host, public)
        }
        _ => (f.ip.clone(), p.private),
    }
}

/// Registrator's semantics, for a container that is not berth's.
pub fn registrator(
    f: &ContainerFacts,
    node: &str,
    node_addr: &str,
    internal: bool,
) -> Vec<Registration> {
    let m = Meta::of(f);
    if !m.any() || m.get("SERVICE_IGNORE").is_some() {
        return Vec::new();
    }
    let ports: Vec<&PortFact> = f
        .ports
        .iter()
        .filter(|p| internal || p.public.is_some())
        .collect();
    let group = ports.len() > 1;
    let base = image_base(&f.image);
    let mut out = Vec::new();
    for p in ports {
        if m.get(&format!("SERVICE_{}_IGNORE", p.private)).is_some() {
            continue;
        }
        let own_name = m.get(&format!("SERVICE_{}_NAME", p.private));
        let name = match (own_name, m.get("SERVICE_NAME")) {
            (Some(n), _) | (None, Some(n)) => n.to_string(),
            (None, None) if group => format!("{base}-{}", p.private),
            (None, None) => base.clone(),
        };
        let mut id = format!("{node}:{}:{}", f.name, p.private);
        if p.proto == "udp" {
            id.push_str(":udp");
        }
        if let Some(given) = m.for_port(p.private, "ID") {
            id = given.to_string();
        }
        let tags = m
            .for_port(p.private, "TAGS")
            .map(|t| {
                t.split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let (address, port) = reach(p, f, node_addr, internal);
        let interval =
            duration(m.for_port(p.private, "CHECK_INTERVAL")).unwrap_or(DEFAULT_INTERVAL);
        let timeout = duration(m.for_port(p.private, "CHECK_TIMEOUT")).unwrap_or_default();
        let mut def = CheckDef {
            interval_ms: interval.as_millis() as u64,
            timeout_ms: timeout.as_millis() as u64,
            ..Default::default()
        };
        if let Some(path) = m.for_port(p.private, "CHECK_HTTP") {
            def.http = format!("http://{address}:{port}{path}");
        } else if m.for_port(p.private, "CHECK_TCP").is_some() {
            def.tcp = format!("{address}:{port}");
        } else if let Some(ttl) = duration(m.for_port(p.private, "CHECK_TTL")) {
            def = CheckDef {
                ttl_ms: ttl.as_millis() as u64,
                ..Default::default()
            };
        } else {
            def = CheckDef::default();
        }
        let mut checks = Vec::new();
        if def != CheckDef::default() {
            checks.push(Check {
                node: node.to_string(),
                id: format!("service:{id}"),
                name: format!("Service '{name}' check"),
                status: Health::Critical,
                def,
                critical_since_ms: Some(now_ms()),
                ..Default::default()
            });
        }
        checks.extend(docker_health(f, node, &id));
        let service = Service {
            node: node.to_string(),
            id,
            name,
            tags,
            address,
            port,
            meta: BTreeMap::new(),
            source: Source::Registrator,
            create_index: 0,
            modify_index: 0,
        };
        out.push((service, checks));
    }
    out
}

/// The service meta key carrying `ingress_hosts`, space-separated.
pub const INGRESS_HOSTS_META: &str = "berth-ingress-hosts";
/// The service meta key carrying the ingress's active check.
pub const INGRESS_CHECK_META: &str = "berth-ingress-check";
/// Service meta: `leastconn` when the ingress balances by requests in
/// flight; absent for round robin.
pub const INGRESS_BALANCE_META: &str = "berth-ingress-balance";
/// Service meta: `<cert file>\n<key file>` the ingress serves the
/// service's hosts with over TLS. Paths only: the key never enters the
/// catalog.
pub const INGRESS_TLS_META: &str = "berth-ingress-tls";
pub use berth_model::status::MESH_META;
/// Service meta: `v2` when the mesh sends a PROXY header to the instance.
pub const MESH_PROXY_META: &str = "berth-mesh-proxy";

/// A container berth runs for `path`'s resource `rid`, with its health.
pub fn berth(
    f: &ContainerFacts,
    health: Option<&InstanceHealth>,
    svc: &ServiceInfo,
    path: &str,
    rid: &str,
    node: &str,
    node_addr: &str,
) -> Registration {
    let published = |p: &PortFact| p.public.is_some();
    let chosen = match svc.port {
        Some(want) => f
            .ports
            .iter()
            .find(|p| p.private == want && published(p))
            .map(|p| reach(p, f, node_addr, false))
            .unwrap_or_else(|| (f.ip.clone(), want)),
        None => f
            .ports
            .iter()
            .find(|p| published(p))
            .map(|p| reach(p, f, node_addr, false))
            .unwrap_or_else(|| (f.ip.clone(), 0)),
    };
    let id = format!("{node}:{}", f.name);
    let checks = health
        .map(|h| instance_health(h, node, &id))
        .into_iter()
        .collect();
    let mut meta = BTreeMap::from([
        (berth_kv::catalog::PATH_META.to_string(), path.to_string()),
        ("berth-rid".to_string(), rid.to_string()),
    ]);
    if !svc.ingress_hosts.is_empty() {
        meta.insert(INGRESS_HOSTS_META.to_string(), svc.ingress_hosts.join(" "));
    }
    if let Some(c) = &svc.ingress_check {
        meta.insert(INGRESS_CHECK_META.to_string(), c.encode());
    }
    let mesh: Vec<String> = svc
        .mesh
        .iter()
        .filter_map(|(public, private)| {
            let host = f
                .ports
                .iter()
                .find(|p| p.private == *private && p.proto == "tcp")?
                .public?;
            Some(format!("{public}={host}"))
        })
        .collect();
    if !mesh.is_empty() {
        meta.insert(MESH_META.to_string(), mesh.join(" "));
        if svc.mesh_proxy {
            meta.insert(MESH_PROXY_META.to_string(), "v2".to_string());
        }
    }
    if let Some((cert, key)) = &svc.ingress_tls {
        meta.insert(INGRESS_TLS_META.to_string(), format!("{cert}\n{key}"));
    }
    if svc.ingress_balance != berth_model::status::Balance::RoundRobin {
        meta.insert(
            INGRESS_BALANCE_META.to_string(),
            svc.ingress_balance.as_str().to_string(),
        );
    }
    let service = Service {
        node: node.to_string(),
        id,
        name: svc.name.clone(),
        tags: svc.tags.clone(),
        address: chosen.0,
        port: chosen.1,
        meta,
        source: Source::Berth,
        create_index: 0,
        modify_index: 0,
    };
    (service, checks)
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
