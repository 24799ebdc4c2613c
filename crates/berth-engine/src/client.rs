//! A thin, logged wrapper over one Docker Engine API endpoint.

use crate::calls::{CallSink, DockerCall};
use crate::error::EngineError;
use bollard::models::{
    ContainerCreateBody, ContainerSummaryStateEnum, HealthConfig, HostConfig, Mount, MountType,
    PortBinding, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, EventsOptionsBuilder,
    ImportImageOptionsBuilder, KillContainerOptionsBuilder, ListContainersOptionsBuilder,
    RemoveContainerOptionsBuilder, RenameContainerOptions, StopContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::{Stream, StreamExt, TryStreamExt};
use std::collections::HashMap;
use std::time::Duration;

/// Image pulls and copies may take long; other calls keep the client default.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(1800);

/// Label carrying the object path; its presence marks a container as berth's.
pub const LABEL_PATH: &str = "berth.path";

#[derive(Clone, Debug, Default, PartialEq)]
pub struct PortSpec {
    pub host_ip: Option<String>,
    pub host_port: Option<u16>,
    pub container_port: u16,
    pub proto: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MountSpec {
    /// A volume name, or an absolute host path for a bind mount.
    pub source: String,
    pub target: String,
    pub read_only: bool,
}

/// Everything berth sets on a container it creates.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub env: Vec<String>,
    pub labels: HashMap<String, String>,
    pub ports: Vec<PortSpec>,
    pub mounts: Vec<MountSpec>,
    pub network_mode: Option<String>,
    pub hostname: Option<String>,
    pub read_only: bool,
    pub user: Option<String>,
    pub privileged: bool,
    pub healthcheck: Option<String>,
    /// The healthcheck's timing; set only with `healthcheck`.
    pub healthcheck_timing: Option<berth_model::health::HealthTiming>,
    pub stop_timeout: Option<i64>,
    /// Nameservers for the container's resolv.conf; Docker's default
    /// when empty.
    pub dns: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ContainerState {
    pub running: bool,
    /// Docker's state word: created, running, exited, dead, ...
    pub status: String,
    pub exit_code: Option<i64>,
    pub started_at: Option<String>,
    pub error: Option<String>,
    /// Docker's healthcheck status (`starting`, `healthy`, `unhealthy`),
    /// and the output of its last run, when the container has one.
    pub health: Option<String>,
    pub health_output: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ManagedContainer {
    pub id: String,
    pub name: String,
    pub image: String,
    pub labels: HashMap<String, String>,
    pub state: ContainerState,
}

/// A container event from the engine's event stream.
#[derive(Clone, Debug)]
pub struct EngineEvent {
    pub container_id: String,
    pub action: String,
    pub labels: HashMap<String, String>,
}

#[derive(Clone)]
pub struct Engine {
    docker: Docker,
    socket: String,
    sink: CallSink,
}

impl Engine {
    /// Connects to the engine at `socket` and negotiates the API version.
    pub async fn connect(socket: &str, sink: CallSink) -> Result<Engine, EngineError> {
        let unreachable = |reason: String| EngineError::Unreachable {
            socket: socket.to_string(),
            reason,
        };
        let docker = Docker::connect_with_unix(socket, 60, bollard::API_DEFAULT_VERSION)
            .map_err(|e| unreachable(e.to_string()))?;
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(Engine {
            docker,
            socket: socket.to_string(),
            sink,
        })
    }

    /// The same connection, reporting its calls to another sink.
    pub fn with_sink(&self, sink: CallSink) -> Engine {
        Engine {
            docker: self.docker.clone(),
            socket: self.socket.clone(),
            sink,
        }
    }

    pub(crate) fn docker(&self) -> &Docker {
        &self.docker
    }

    pub fn socket(&self) -> &str {
        &self.socket
    }

    /// The `docker -H ...` prefix operators can paste to reach this engine.
    pub fn cli_prefix(&self) -> String {
        format!("docker -H unix://{}", self.socket)
    }

    pub async fn ping(&self) -> Result<(), EngineError> {
        self.docker
            .ping()
            .await
            .map(|_| ())
            .map_err(|e| EngineError::Unreachable {
                socket: self.socket.clone(),
                reason: e.to_string(),
            })
    }

    fn record<T>(&self, args: String, res: &Result<T, EngineError>) {
        (self.sink)(DockerCall {
            command: format!("{} {args}", self.cli_prefix()),
            error: res.as_ref().err().map(|e| e.to_string()),
        });
    }

    /// Containers carrying berth's path label, running or not; only those
    /// of `path` when given.
    pub async fn list_managed(
        &self,
        path: Option<&str>,
    ) -> Result<Vec<ManagedContainer>, EngineError> {
        let label = match path {
            Some(p) => format!("{LABEL_PATH}={p}"),
            None => LABEL_PATH.to_string(),
        };
        let mut filters = HashMap::new();
        filters.insert("label".to_string(), vec![label]);
        let opts = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let list = self
            .docker
            .list_containers(Some(opts))
            .await
            .map_err(|e| EngineError::docker("ps", e))?;
        Ok(list
            .into_iter()
            .map(|c| {
                let status = c
                    .state
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "unknown".into());
                ManagedContainer {
                    id: c.id.unwrap_or_default(),
                    name: c
                        .names
                        .and_then(|n| n.into_iter().next())
                        .map(|n| n.trim_start_matches('/').to_string())
                        .unwrap_or_default(),
                    image: c.image.unwrap_or_default(),
                    labels: c.labels.unwrap_or_default(),
                    state: ContainerState {
                        running: c.state == Some(ContainerSummaryStateEnum::RUNNING),
                        status,
                        exit_code: None,
                        started_at: None,
                        error: None,
                        health: None,
                        health_output: None,
                    },
                }
            })
            .collect())
    }

    /// Inspects a container; `None` when it does not exist.
    pub async fn inspect(&self, name: &str) -> Result<Option<ManagedContainer>, EngineError> {
        let r = match self.docker.inspect_container(name, None).await {
            Ok(r) => r,
            Err(e) => {
                let e = EngineError::docker("inspect", e);
                return if e.is_not_found() { Ok(None) } else { Err(e) };
            }
        };
        let st = r.state.unwrap_or_default();
        let cfg = r.config.unwrap_or_default();
        let health = st.health.unwrap_or_default();
        let health_output = health
            .log
            .and_then(|l| l.into_iter().last())
            .and_then(|l| l.output)
            .map(|o| o.trim().to_string());
        Ok(Some(ManagedContainer {
            id: r.id.unwrap_or_default(),
            name: r
                .name
                .map(|n| n.trim_start_matches('/').to_string())
                .unwrap_or_default(),
            image: cfg.image.unwrap_or_default(),
            labels: cfg.labels.unwrap_or_default(),
            state: ContainerState {
                running: st.running.unwrap_or(false),
                status: st
                    .status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "unknown".into()),
                exit_code: st.exit_code,
                started_at: st.started_at,
                error: st.error.filter(|e| !e.is_empty()),
                health: health
                    .status
                    .map(|s| s.to_string())
                    .filter(|s| !s.is_empty() && s != "none"),
                health_output,
            },
        }))
    }

    pub async fn create(&self, spec: &ContainerSpec) -> Result<String, EngineError> {
        self.create_with_secrets(spec, &[]).await
    }

    /// [`Engine::create`] with `VAR=value` variables whose values are
    /// secret: Docker gets them, the recorded command line shows
    /// `VAR=<secret>` (it goes to events and logs).
    pub async fn create_with_secrets(
        &self,
        spec: &ContainerSpec,
        secret_env: &[String],
    ) -> Result<String, EngineError> {
        let mut body = create_body(spec);
        if !secret_env.is_empty() {
            body.env
                .get_or_insert_with(Vec::new)
                .extend(secret_env.iter().cloned());
        }
        let opts = CreateContainerOptionsBuilder::default()
            .name(&spec.name)
            .build();
        let res = self
            .docker
            .create_container(Some(opts), body)
            .await
            .map(|r| r.id)
            .map_err(|e| EngineError::docker("create", e));
        let mut args = create_cli_args(spec);
        for e in secret_env {
            let var = e.split_once('=').map_or(e.as_str(), |(v, _)| v);
            args.push_str(&format!(" -e {var}=<secret>"));
        }
        self.record(args, &res);
        res
    }

    pub async fn start(&self, id: &str) -> Result<(), EngineError> {
        let res = self
            .docker
            .start_container(id, None)
            .await
            .map_err(|e| EngineError::docker("start", e));
        self.record(format!("start {id}"), &res);
        res
    }

    pub async fn stop(&self, id: &str, timeout: Option<i64>) -> Result<(), EngineError> {
        let mut b = StopContainerOptionsBuilder::default();
        if let Some(t) = timeout {
            b = b.t(i32::try_from(t).unwrap_or(i32::MAX));
        }
        // Docker answers a stop only once the container is down: allow the
        // grace period plus a margin, not the client's default timeout.
        let wait = Duration::from_secs(timeout.unwrap_or(60).max(0) as u64 + 60);
        let res = self
            .docker
            .clone()
            .with_timeout(wait)
            .stop_container(id, Some(b.build()))
            .await
            .map_err(|e| EngineError::docker("stop", e));
        let args = match timeout {
            Some(t) => format!("stop -t {t} {id}"),
            None => format!("stop {id}"),
        };
        self.record(args, &res);
        res
    }

    /// Sends `signal` (`SIGHUP`) to the container's main process.
    pub async fn kill(&self, id: &str, signal: &str) -> Result<(), EngineError> {
        let opts = KillContainerOptionsBuilder::default()
            .signal(signal)
            .build();
        let res = self
            .docker
            .kill_container(id, Some(opts))
            .await
            .map_err(|e| EngineError::docker("kill", e));
        self.record(format!("kill --signal {signal} {id}"), &res);
        res
    }

    /// Renames container `id` (running or not) to `name`.
    pub async fn rename(&self, id: &str, name: &str) -> Result<(), EngineError> {
        let opts = RenameContainerOptions {
            name: name.to_string(),
        };
        let res = self
            .docker
            .rename_container(id, opts)
            .await
            .map_err(|e| EngineError::docker("rename", e));
        self.record(format!("rename {id} {name}"), &res);
        res
    }

    pub async fn remove(&self, id: &str) -> Result<(), EngineError> {
        let opts = RemoveContainerOptionsBuilder::default().force(true).build();
        let res = self
            .docker
            .remove_container(id, Some(opts))
            .await
            .map_err(|e| EngineError::docker("rm", e));
        self.record(format!("rm -f {id}"), &res);
        res
    }

    /// What pins `image` here: its registry digest (`repo@sha256:...`)
    /// when it came from a registry, else its image id (`sha256:...`);
    /// `None` when it is not here.
    pub async fn image_digest(&self, image: &str) -> Result<Option<String>, EngineError> {
        let r = match self.docker.inspect_image(image).await {
            Ok(r) => r,
            Err(e) => {
                let e = EngineError::docker("image inspect", e);
                return if e.is_not_found() { Ok(None) } else { Err(e) };
            }
        };
        let (repo, _) = split_image(image);
        let from_registry = r
            .repo_digests
            .unwrap_or_default()
            .into_iter()
            .find(|d| d.split('@').next() == Some(repo));
        Ok(from_registry.or(r.id))
    }

    pub async fn image_present(&self, image: &str) -> Result<bool, EngineError> {
        exists("image inspect", self.docker.inspect_image(image).await)
    }

    /// Pulls `image` from its registry.
    pub async fn pull(&self, image: &str) -> Result<(), EngineError> {
        let (repo, tag) = split_image(image);
        let opts = CreateImageOptionsBuilder::default()
            .from_image(repo)
            .tag(tag)
            .build();
        let res = self
            .docker
            .clone()
            .with_timeout(TRANSFER_TIMEOUT)
            .create_image(Some(opts), None, None)
            .try_for_each(|info| async move {
                match info.error_detail.and_then(|d| d.message) {
                    Some(msg) => Err(bollard::errors::Error::DockerResponseServerError {
                        status_code: 500,
                        message: msg,
                    }),
                    None => Ok(()),
                }
            })
            .await
            .map_err(|e| EngineError::ImageUnavailable {
                image: image.to_string(),
                reason: EngineError::docker("pull", e).to_string(),
            });
        self.record(format!("pull {image}"), &res);
        res
    }

    /// Copies `image` from `from` into this engine (`docker save | docker load`).
    pub async fn copy_image_from(&self, from: &Engine, image: &str) -> Result<(), EngineError> {
        let tar = from
            .docker
            .clone()
            .with_timeout(TRANSFER_TIMEOUT)
            .export_image(image);
        let opts = ImportImageOptionsBuilder::default().quiet(true).build();
        let res = self
            .docker
            .clone()
            .with_timeout(TRANSFER_TIMEOUT)
            .import_image_stream(opts, tar, None)
            .try_for_each(|_| async { Ok(()) })
            .await
            .map_err(|e| EngineError::ImageUnavailable {
                image: image.to_string(),
                reason: EngineError::docker("load", e).to_string(),
            });
        self.record(format!("load < ({} save {image})", from.cli_prefix()), &res);
        res
    }

    /// The IPv4 gateway of a network (`bridge` for Docker's default), the
    /// address its containers reach this host on.
    pub async fn network_gateway(
        &self,
        network: &str,
    ) -> Result<Option<std::net::Ipv4Addr>, EngineError> {
        let n = match self.docker.inspect_network(network, None).await {
            Ok(n) => n,
            Err(e) => {
                let e = EngineError::docker("network inspect", e);
                return if e.is_not_found() { Ok(None) } else { Err(e) };
            }
        };
        let configs = n.ipam.and_then(|i| i.config).unwrap_or_default();
        if let Some(gw) = configs
            .iter()
            .filter_map(|c| c.gateway.as_deref()?.parse().ok())
            .next()
        {
            return Ok(Some(gw));
        }
        // dockerd leaves the default bridge's gateway out of its IPAM
        // config when docker0 got its address from `bip` (or existed
        // already): the bridge interface holds it.
        let bridge = n
            .options
            .as_ref()
            .and_then(|o| o.get("com.docker.network.bridge.name").cloned())
            .or_else(|| (n.name.as_deref() == Some("bridge")).then(|| "docker0".to_string()));
        Ok(bridge.and_then(|b| interface_ipv4(&b)).or_else(|| {
            configs
                .iter()
                .filter_map(|c| first_host(c.subnet.as_deref()?))
                .next()
        }))
    }

    pub async fn volume_exists(&self, name: &str) -> Result<bool, EngineError> {
        exists("volume inspect", self.docker.inspect_volume(name).await)
    }

    pub async fn create_volume(
        &self,
        name: &str,
        labels: HashMap<String, String>,
    ) -> Result<(), EngineError> {
        let req = VolumeCreateRequest {
            name: Some(name.to_string()),
            labels: Some(labels),
            ..Default::default()
        };
        let res = self
            .docker
            .create_volume(req)
            .await
            .map(|_| ())
            .map_err(|e| EngineError::docker("volume create", e));
        self.record(format!("volume create {name}"), &res);
        res
    }

    /// Container events of berth-managed containers. The stream ends when the
    /// engine goes away; callers reconnect.
    pub fn events(&self) -> impl Stream<Item = Result<EngineEvent, EngineError>> + Send + 'static {
        let mut filters = HashMap::new();
        filters.insert("type".to_string(), vec!["container".to_string()]);
        filters.insert("label".to_string(), vec![LABEL_PATH.to_string()]);
        let opts = EventsOptionsBuilder::default().filters(&filters).build();
        self.docker.events(Some(opts)).map(|r| {
            r.map(|m| {
                let actor = m.actor.unwrap_or_default();
                EngineEvent {
                    container_id: actor.id.unwrap_or_default(),
                    action: m.action.unwrap_or_default(),
                    labels: actor.attributes.unwrap_or_default(),
                }
            })
            .map_err(|e| EngineError::docker("events", e))
        })
    }
}

/// Maps an inspect result to "does it exist", a 404 being a plain `false`.
fn exists<T>(op: &str, r: Result<T, bollard::errors::Error>) -> Result<bool, EngineError> {
    match r {
        Ok(_) => Ok(true),
        Err(e) => {
            let e = EngineError::docker(op, e);
            if e.is_not_found() {
                Ok(false)
            } else {
                Err(e)
            }
        }
    }
}

/// Splits `repo[:tag]`, minding registry ports (`127.0.0.1:5000/x`) and digests.
pub fn split_image(image: &str) -> (&str, &str) {
    if image.contains('@') {
        return (image, "");
    }
    let last_slash = image.rfind('/').map(|i| i + 1).unwrap_or(0);
    match image[last_slash..].rfind(':') {
        Some(i) => (&image[..last_slash + i], &image[last_slash + i + 1..]),
        None => (image, "latest"),
    }
}

/// The IPv4 address of the host interface `name`, if it has one.
fn interface_ipv4(name: &str) -> Option<std::net::Ipv4Addr> {
    nix::ifaddrs::getifaddrs()
        .ok()?
        .filter(|a| a.interface_name == name)
        .find_map(|a| Some(a.address?.as_sockaddr_in()?.ip()))
}

/// Docker's default gateway of an IPv4 subnet: its first host address.
fn first_host(subnet: &str) -> Option<std::net::Ipv4Addr> {
    let (net, prefix) = subnet.split_once('/')?;
    let net: std::net::Ipv4Addr = net.parse().ok()?;
    let prefix: u32 = prefix.parse().ok().filter(|p| *p <= 30)?;
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    Some(std::net::Ipv4Addr::from((u32::from(net) & mask) + 1))
}

fn create_body(spec: &ContainerSpec) -> ContainerCreateBody {
    let mut port_bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    let mut exposed = Vec::new();
    for p in &spec.ports {
        let key = format!("{}/{}", p.container_port, p.proto);
        exposed.push(key.clone());
        port_bindings
            .entry(key)
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: p.host_ip.clone(),
                host_port: p.host_port.map(|h| h.to_string()),
            });
    }
    let mounts = spec
        .mounts
        .iter()
        .map(|m| Mount {
            target: Some(m.target.clone()),
            source: Some(m.source.clone()),
            typ: Some(if m.source.starts_with('/') {
                MountType::BIND
            } else {
                MountType::VOLUME
            }),
            read_only: Some(m.read_only),
            ..Default::default()
        })
        .collect::<Vec<_>>();
    let host_config = HostConfig {
        port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
        mounts: (!mounts.is_empty()).then_some(mounts),
        network_mode: spec.network_mode.clone(),
        privileged: Some(spec.privileged),
        readonly_rootfs: Some(spec.read_only),
        dns: (!spec.dns.is_empty()).then(|| spec.dns.clone()),
        ..Default::default()
    };
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd: spec.command.clone(),
        entrypoint: spec.entrypoint.clone(),
        env: (!spec.env.is_empty()).then(|| spec.env.clone()),
        labels: Some(spec.labels.clone()),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        hostname: spec.hostname.clone(),
        user: spec.user.clone(),
        stop_timeout: spec.stop_timeout,
        healthcheck: spec.healthcheck.as_ref().map(|cmd| {
            let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
            let t = spec.healthcheck_timing;
            HealthConfig {
                test: Some(vec!["CMD-SHELL".to_string(), cmd.clone()]),
                // Docker refuses an interval or timeout under 1 ms.
                interval: Some(nanos(
                    t.map_or(Duration::from_secs(10), |t| t.interval)
                        .max(Duration::from_millis(1)),
                )),
                timeout: t.map(|t| nanos(t.timeout.max(Duration::from_millis(1)))),
                retries: t.map(|t| i64::from(t.retries)),
                start_period: t.map(|t| nanos(t.start_period)),
                ..Default::default()
            }
        }),
        host_config: Some(host_config),
        ..Default::default()
    }
}

/// The `docker create` command line equivalent to `spec`, for the call log.
fn create_cli_args(spec: &ContainerSpec) -> String {
    let mut a = vec!["create".to_string(), format!("--name {}", spec.name)];
    let mut labels: Vec<_> = spec.labels.iter().collect();
    labels.sort();
    for (k, v) in labels {
        a.push(format!("--label {k}={v}"));
    }
    for e in &spec.env {
        a.push(format!("-e {e}"));
    }
    for p in &spec.ports {
        let host = match (&p.host_ip, p.host_port) {
            (Some(ip), Some(hp)) => format!("{ip}:{hp}:"),
            (None, Some(hp)) => format!("{hp}:"),
            _ => String::new(),
        };
        a.push(format!("-p {host}{}/{}", p.container_port, p.proto));
    }
    for m in &spec.mounts {
        let ro = if m.read_only { ":ro" } else { "" };
        a.push(format!("-v {}:{}{ro}", m.source, m.target));
    }
    if let Some(n) = &spec.network_mode {
        a.push(format!("--network {n}"));
    }
    for d in &spec.dns {
        a.push(format!("--dns {d}"));
    }
    if let Some(h) = &spec.hostname {
        a.push(format!("--hostname {h}"));
    }
    if let Some(u) = &spec.user {
        a.push(format!("--user {u}"));
    }
    if spec.read_only {
        a.push("--read-only".into());
    }
    if spec.privileged {
        a.push("--privileged".into());
    }
    if let Some(ep) = &spec.entrypoint {
        a.push(format!("--entrypoint {}", ep.join(" ")));
    }
    a.push(spec.image.clone());
    if let Some(c) = &spec.command {
        a.extend(c.iter().cloned());
    }
    a.join(" ")
}

#[cfg(test)]
mod tests {
    use super::split_image;

    #[test]
    fn image_references_split_on_the_tag_colon_only() {
        let cases = [
            ("busybox", ("busybox", "latest")),
            ("local/pause:1", ("local/pause", "1")),
            ("127.0.0.1:5000/x/y:2", ("127.0.0.1:5000/x/y", "2")),
            ("127.0.0.1:5000/x", ("127.0.0.1:5000/x", "latest")),
        ];
        for (input, want) in cases {
            assert_eq!(split_image(input), want, "{input}");
        }
    }

    #[test]
    fn a_subnet_without_a_gateway_gets_its_first_host() {
        use super::{first_host, interface_ipv4};
        assert_eq!(
            first_host("172.17.0.0/16"),
            Some("172.17.0.1".parse().unwrap())
        );
        assert_eq!(
            first_host("10.1.2.128/25"),
            Some("10.1.2.129".parse().unwrap())
        );
        assert_eq!(
            first_host("10.1.2.77/24"),
            Some("10.1.2.1".parse().unwrap())
        );
        assert_eq!(first_host("10.1.2.0/31"), None);
        assert_eq!(first_host("fd00::/64"), None);
        assert_eq!(interface_ipv4("lo"), Some("127.0.0.1".parse().unwrap()));
    }
}
