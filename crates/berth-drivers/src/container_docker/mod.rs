//! The docker container driver: turns a `[container#N]` section into the
//! container berth creates, and names it.

pub mod files;
pub mod keywords;

use berth_engine::{ContainerSpec, MountSpec, PortSpec};
use berth_model::health::{parse_check, CheckTarget, HealthTiming, OnUnhealthy};
use berth_model::rules::{parse_key_value, parse_mount as mount_parts, parse_port as port_parts};
use berth_model::{split_words, ObjectPath, Section};
use std::collections::HashMap;
use std::time::Duration;

pub const LABEL_PATH: &str = "berth.path";
pub const LABEL_RID: &str = "berth.rid";
pub const LABEL_ID: &str = "berth.id";
pub const LABEL_NODE: &str = "berth.node";
/// Fingerprint of the spec the container was created from, to spot drift.
pub const LABEL_SPEC: &str = "berth.spec";
/// On a container that resolves through the node's berth DNS.
pub const LABEL_DNS: &str = "berth.dns";

/// How the image gets onto the engine when it is not there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PullPolicy {
    Missing,
    Always,
    Never,
    Host,
}

/// A container resource, resolved and ready to hand to the engine.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerResource {
    pub rid: String,
    pub spec: ContainerSpec,
    pub pull_policy: PullPolicy,
    pub restart: u32,
    pub restart_delay: Duration,
    pub stop_timeout: Duration,
    /// Its catalog registration.
    pub service: berth_model::status::ServiceInfo,
    /// Resolve through the node's berth DNS (`dns_berth`): the agent sets
    /// the nameserver when it creates the container.
    pub dns_berth: bool,
    /// `secrets` and `configs`: files the agent delivers on a tmpfs.
    pub files: Vec<files::FileRef>,
    /// `secrets_environment` and `configs_environment`: variables the
    /// agent adds when it creates the container.
    pub env_values: Vec<files::EnvRef>,
    /// How a new version of its files reaches the running container.
    pub reload: files::Reload,
    /// The check berth runs itself (`check`), if any.
    pub check: Option<CheckTarget>,
    /// The timing of `check` and of Docker's `healthcheck`.
    pub health: HealthTiming,
    pub health_grace: Duration,
    pub on_unhealthy: OnUnhealthy,
}

/// `<ns>..<name>`, or `<name>` in the root namespace.
pub fn object_prefix(path: &ObjectPath) -> String {
    if path.namespace == "root" {
        path.name.clone()
    } else {
        format!("{}..{}", path.namespace, path.name)
    }
}

pub fn container_name(path: &ObjectPath, idx: u32) -> String {
    format!("{}.container.{idx}", object_prefix(path))
}

impl ContainerResource {
    pub fn from_section(
        path: &ObjectPath,
        s: &Section,
        object_id: &str,
        nodename: &str,
    ) -> Result<ContainerResource, String> {
        let idx = s.index.unwrap_or(0);
        let field = |kw: &str| s.get_str(kw).filter(|v| !v.is_empty());
        let words = |kw: &str| -> Result<Option<Vec<String>>, String> {
            field(kw)
                .map(|v| split_words(v).map_err(|e| format!("{kw}: {e}")))
                .transpose()
        };
        let list = |kw: &str| s.get_list(kw);
        let mut labels = HashMap::new();
        for pair in list("labels")? {
            let (k, v) = parse_key_value(&pair).map_err(|e| format!("labels: {e}"))?;
            labels.insert(k.to_string(), v.to_string());
        }
        labels.insert(LABEL_PATH.into(), path.to_string());
        labels.insert(LABEL_RID.into(), s.name.clone());
        labels.insert(LABEL_ID.into(), object_id.to_string());
        labels.insert(LABEL_NODE.into(), nodename.to_string());
        let dns_berth = s
            .get_bool("dns_berth")
            .map_err(|e| format!("dns_berth: {e}"))?
            .unwrap_or(false);
        if dns_berth {
            labels.insert(LABEL_DNS.into(), "berth".into());
        }
        let env = list("environment")?;
        if let Some(e) = env.iter().find_map(|e| parse_key_value(e).err()) {
            return Err(format!("environment: {e}"));
        }
        let mut ports = list("ports")?
            .iter()
            .map(|p| parse_port(p))
            .collect::<Result<Vec<_>, _>>()?;
        let mesh_on = s
            .get_bool("mesh")
            .map_err(|e| format!("mesh: {e}"))?
            .unwrap_or(false);
        let mut mesh = Vec::new();
        if mesh_on {
            // The mesh listens on the asked port on every node; the
            // container takes an ephemeral one, so the two never collide.
            for p in ports.iter_mut().filter(|p| p.proto == "tcp") {
                if let Some(public) = p.host_port.take() {
                    mesh.push((public, p.container_port));
                    p.host_ip = None;
                }
            }
        }
        let mounts = list("volume_mounts")?
            .iter()
            .map(|m| parse_mount(m))
            .collect::<Result<Vec<_>, _>>()?;
        let dur = |kw: &str| -> Result<Duration, String> {
            s.get_duration(kw)
                .map(|d| d.unwrap_or_default())
                .map_err(|e| format!("{kw}: {e}"))
        };
        let stop_timeout = dur("stop_timeout")?;
        let health = HealthTiming {
            interval: dur("health_interval")?,
            timeout: dur("health_timeout")?,
            retries: s
                .get_int("health_retries")
                .map_err(|e| format!("health_retries: {e}"))?
                .map_or(3, |n| u32::try_from(n.clamp(1, 100)).unwrap_or(3)),
            start_period: dur("health_start_period")?,
        };
        let healthcheck = field("healthcheck").map(str::to_string);
        let (delivered, env_values) = files::deliveries(s)?;
        let reload = field("secrets_reload")
            .map(files::Reload::parse)
            .transpose()
            .map_err(|e| format!("secrets_reload: {e}"))?
            .unwrap_or_default();
        let mut spec = ContainerSpec {
            name: container_name(path, idx),
            image: field("image").ok_or("image: required")?.to_string(),
            command: words("command")?,
            entrypoint: words("entrypoint")?,
            env,
            labels,
            ports,
            mounts,
            network_mode: field("netns").map(str::to_string),
            hostname: field("hostname").map(str::to_string),
            read_only: s
                .get_bool("read_only")
                .map_err(|e| format!("read_only: {e}"))?
                .unwrap_or(false),
            user: field("user").map(str::to_string),
            privileged: s
                .get_bool("privileged")
                .map_err(|e| format!("privileged: {e}"))?
                .unwrap_or(false),
            healthcheck_timing: healthcheck.is_some().then_some(health),
            healthcheck,
            stop_timeout: Some(stop_timeout.as_secs() as i64),
            dns: Vec::new(),
        };
        let fingerprint = fingerprint(&spec);
        spec.labels.insert(LABEL_SPEC.into(), fingerprint);
        let pull_policy = match field("pull_policy").unwrap_or("missing") {
            "always" => PullPolicy::Always,
            "never" => PullPolicy::Never,
            "host" => PullPolicy::Host,
            _ => PullPolicy::Missing,
        };
        let restart = s
            .get_int("restart")
            .map_err(|e| format!("restart: {e}"))?
            .unwrap_or(0);
        let service_port = s
            .get_int("service_port")
            .map_err(|e| format!("service_port: {e}"))?
            .map(|p| u16::try_from(p).map_err(|_| format!("service_port: {p} is not a port")))
            .transpose()?;
        let service = berth_model::status::ServiceInfo {
            name: field("service_name")
                .map(str::to_string)
                .unwrap_or_else(|| format!("{}-{}", path.name, path.namespace)),
            tags: list("service_tags")?,
            port: service_port,
            ingress_hosts: list("ingress_hosts")?,
            ingress_check: active_check(s)?,
            ingress_balance: match s.get_str("ingress_balance") {
                None | Some("") => berth_model::status::Balance::RoundRobin,
                Some(b) => berth_model::status::Balance::parse(b).ok_or_else(|| {
                    format!("ingress_balance: {b} is not roundrobin or leastconn")
                })?,
            },
            ingress_tls: match (field("ingress_tls_cert"), field("ingress_tls_key")) {
                (Some(c), Some(k)) => Some((c.to_string(), k.to_string())),
                _ => None,
            },
            mesh,
            mesh_proxy: s
                .get_bool("mesh_proxy_protocol")
                .map_err(|e| format!("mesh_proxy_protocol: {e}"))?
                .unwrap_or(false),
        };
        Ok(ContainerResource {
            service,
            rid: s.name.clone(),
            spec,
            pull_policy,
            restart: u32::try_from(restart.max(0)).unwrap_or(u32::MAX),
            restart_delay: dur("restart_delay")?,
            stop_timeout,
            dns_berth,
            files: delivered,
            env_values,
            reload,
            check: field("check")
                .map(|c| parse_check(c).map_err(|e| format!("check: {e}")))
                .transpose()?,
            health,
            health_grace: dur("health_grace")?,
            on_unhealthy: match field("on_unhealthy") {
                None => OnUnhealthy::None,
                Some(w) => OnUnhealthy::parse(w).ok_or_else(|| {
                    format!("on_unhealthy: {w} is not one of none, restart, failover")
                })?,
            },
        })
    }

    pub fn label(&self) -> String {
        format!("docker container {}@{}", self.spec.name, self.spec.image)
    }
}

/// The ingress's active check, when `ingress_check` names a path.
fn active_check(s: &Section) -> Result<Option<berth_model::status::ActiveCheck>, String> {
    let Some(path) = s.get_str("ingress_check").filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let ms = |kw: &str, dflt: u64| -> Result<u64, String> {
        Ok(s.get_duration(kw)
            .map_err(|e| format!("{kw}: {e}"))?
            .map_or(dflt, |d| d.as_millis() as u64)
            .max(1))
    };
    let count = |kw: &str| -> Result<u32, String> {
        Ok(s.get_int(kw)
            .map_err(|e| format!("{kw}: {e}"))?
            .unwrap_or(2)
            .clamp(1, 100) as u32)
    };
    Ok(Some(berth_model::status::ActiveCheck {
        path: path.to_string(),
        interval_ms: ms("ingress_check_interval", 2000)?,
        timeout_ms: ms("ingress_check_timeout", 1000)?,
        fall: count("ingress_check_fall")?,
        rise: count("ingress_check_rise")?,
    }))
}

/// Keywords that are valid one by one but not together, refused at write
/// time: `dns_berth` needs a bridge network for its nameserver.
pub fn conflicts(s: &Section) -> Option<String> {
    let set = |kw: &str| s.get_str(kw).is_some_and(|v| !v.is_empty());
    if set("ingress_tls_cert") != set("ingress_tls_key") {
        return Some(format!(
            "{}: ingress_tls_cert and ingress_tls_key go together: set both or neither",
            s.name
        ));
    }
    let dns_berth = s.get_bool("dns_berth").ok().flatten().unwrap_or(false);
    let netns = s.get_str("netns").unwrap_or("");
    let shared = netns == "host" || netns == "none" || netns.starts_with("container:");
    (dns_berth && shared).then(|| {
        format!(
            "{}: dns_berth=true needs a bridge network for its nameserver, and netns={netns} has none",
            s.name
        )
    })
}

/// A hash of the spec's debug form, minus labels berth adds per node.
fn fingerprint(spec: &ContainerSpec) -> String {
    let mut s = spec.clone();
    s.labels.remove(LABEL_NODE);
    let mut labels: Vec<_> = s.labels.iter().collect();
    labels.sort();
    let text = format!(
        "{:?}|{:?}",
        labels,
        ContainerSpec {
            labels: HashMap::new(),
            ..s.clone()
        }
    )
    // Fields added later are left out while unset, so a container made
    // before them keeps its fingerprint and is not "config changed".
    .replace(", healthcheck_timing: None", "");
    format!("{:016x}", berth_model::fnv1a64(text.as_bytes()))
}

fn parse_port(p: &str) -> Result<PortSpec, String> {
    let parts = port_parts(p).map_err(|e| format!("ports: {e}"))?;
    Ok(PortSpec {
        host_ip: parts.host_ip,
        host_port: parts.host_port,
        container_port: parts.container_port,
        proto: parts.proto.to_string(),
    })
}

fn parse_mount(m: &str) -> Result<MountSpec, String> {
    let (source, target, read_only) = mount_parts(m).map_err(|e| format!("volume_mounts: {e}"))?;
    Ok(MountSpec {
        source,
        target,
        read_only,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_forms() {
        let p = parse_port("127.0.0.1:8080:80/udp").expect("parse");
        assert_eq!(p.host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!((p.host_port, p.container_port), (Some(8080), 80));
        assert_eq!(p.proto, "udp");
        assert_eq!(parse_port("80").expect("parse").host_port, None);
        assert!(parse_port("x:80").is_err());
        assert!(parse_port("80/foo").is_err());
    }

    #[test]
    fn mount_forms() {
        assert!(parse_mount("data:/data:ro").expect("parse").read_only);
        assert!(parse_mount("data:rel").is_err());
        assert!(parse_mount("a:b:c:d").is_err());
    }

    #[test]
    fn names_drop_the_root_namespace() {
        let p: ObjectPath = "app1-prd/svc1".parse().expect("path");
        assert_eq!(container_name(&p, 0), "app1-prd..svc1.container.0");
        let r: ObjectPath = "svc1".parse().expect("path");
        assert_eq!(container_name(&r, 2), "svc1.container.2");
    }
}
