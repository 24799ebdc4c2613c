//! The daemon itself, wired together here: `berth daemon run` opens the
//! agent (which opens the cluster and the buses), serves the API on the
//! unix socket, and on SIGTERM leaves every container running.
//! `berth daemon watchdog` is the fencing watchdog a cluster node spawns.

use anyhow::{bail, Context};
use berth_agent::{Agent, AgentOptions, Home};
use berth_api_types::bodies::Empty;
use berth_cli::args::DaemonOpts;
use berth_manager::liveness::Timing;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Runs `berth daemon run` in the foreground until SIGTERM or Ctrl-C.
pub fn run(home: PathBuf, o: DaemonOpts) -> ExitCode {
    crate::memory::limit_arenas();
    report(
        tokio::runtime::Runtime::new()
            .context("starting the runtime")
            .and_then(|rt| rt.block_on(run_foreground(&home, o))),
    )
}

/// Runs the fencing watchdog of `home` until nothing needs it.
pub fn watchdog(home: PathBuf) -> ExitCode {
    report(
        berth_watchdog::run(&home)
            .with_context(|| format!("fencing watchdog for {}", home.display()))
            .map(|()| ExitCode::SUCCESS),
    )
}

fn report(r: anyhow::Result<ExitCode>) -> ExitCode {
    r.unwrap_or_else(|e| {
        eprintln!("berth: {e:#}");
        ExitCode::FAILURE
    })
}

/// The host dockerd's socket: `--docker-socket` (or $BERTH_DOCKER_SOCKET),
/// else $DOCKER_HOST as the docker CLI reads it, else the default socket.
/// berth talks to Docker over unix sockets only.
pub fn docker_socket(flag: Option<&str>, docker_host: Option<&str>) -> anyhow::Result<String> {
    if let Some(s) = flag {
        return Ok(s.trim_start_matches("unix://").to_string());
    }
    match docker_host.map(str::trim).filter(|h| !h.is_empty()) {
        None => Ok(berth_engine::HOST_DOCKER_SOCKET.to_string()),
        Some(h) => match h.strip_prefix("unix://") {
            Some(path) if path.starts_with('/') => Ok(path.to_string()),
            _ => bail!(
                "DOCKER_HOST={h}: berth reaches dockerd over a unix socket only (unix:///path); pass --docker-socket"
            ),
        },
    }
}

fn options(home: &Path, o: &DaemonOpts) -> anyhow::Result<AgentOptions> {
    let timing = Timing::derive(o.heartbeat, o.down_after)?;
    let nodename = o.nodename.clone().unwrap_or_else(|| {
        nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".into())
    });
    let docker_host = std::env::var("DOCKER_HOST").ok();
    Ok(AgentOptions {
        home: Home::new(home),
        nodename,
        host_docker_socket: docker_socket(o.docker_socket.as_deref(), docker_host.as_deref())?,
        parallelism: o.parallelism,
        resync: o.resync,
        warn_ttl: o.warn_ttl,
        private_bridge_pool: o.private_bridge_pool,
        timing,
        watchdog: Some(vec![
            std::env::current_exe()
                .context("locating the berth binary for the watchdog")?
                .into_os_string(),
            "daemon".into(),
            "watchdog".into(),
            "--home".into(),
            home.as_os_str().to_owned(),
        ]),
    })
}

/// Sets the niceness of every thread of this process: on Linux it is a
/// per-thread value, threads made later inherit it from their creator, and
/// the runtime's threads already exist.
fn set_niceness(nice: i32) -> std::io::Result<()> {
    for task in std::fs::read_dir("/proc/self/task")? {
        let Some(tid) = task?
            .file_name()
            .to_str()
            .and_then(|t| t.parse::<libc::id_t>().ok())
        else {
            continue;
        };
        // SAFETY: setpriority(2) takes plain integers and touches no memory
        // of ours.
        if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, nice) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

async fn run_foreground(home: &Path, o: DaemonOpts) -> anyhow::Result<ExitCode> {
    crate::logging::init();
    let opts = options(home, &o)?;
    if let Err(e) = set_niceness(o.nice) {
        tracing::warn!(
            "keeping the current scheduling niceness, not {}: {e}",
            o.nice
        );
    }
    std::fs::create_dir_all(home).with_context(|| format!("creating {}", home.display()))?;
    std::fs::set_permissions(home, std::fs::Permissions::from_mode(0o711))?;
    let client = berth_cli::client::Client::new(&opts.home.socket());
    if let Ok(info) = client
        .call::<berth_api_types::DaemonStatus>(&Empty {}, &Empty {})
        .await
    {
        bail!(
            "a berth daemon (pid {}) already runs on {}",
            info.pid,
            home.display()
        );
    }
    let socket_group = match &o.socket_group {
        None => None,
        Some(name) => Some(
            nix::unistd::Group::from_name(name)
                .with_context(|| format!("looking up group {name}"))?
                .with_context(|| format!("--socket-group {name}: no such group"))?
                .gid,
        ),
    };
    let ldap = crate::ldap::directory(&o)?;
    let agent = Agent::start(opts.clone())
        .await
        .with_context(|| format!("starting the agent in {}", home.display()))?;
    agent.cluster().spawn_audit(o.audit_retention);
    if let Some(dir) = ldap {
        tracing::info!("LDAP logins and sync: {}", o.ldap_urls.join(" "));
        agent.cluster().set_ldap(dir)?;
        agent.cluster().spawn_ldap_sync(o.ldap_sync);
    }
    let consul_addr = match o.consul_addr {
        berth_cli::args::Listen::Off => None,
        berth_cli::args::Listen::On(addr) => Some(addr),
    };
    let consul = berth_consul::serve(
        berth_consul::ConsulOptions {
            addr: consul_addr,
            datacenter: "berth".into(),
            anonymous: match o.consul_anonymous {
                berth_cli::args::Anonymous::Loopback => berth_consul::Anonymous::Loopback,
                berth_cli::args::Anonymous::None => berth_consul::Anonymous::Nobody,
                berth_cli::args::Anonymous::Any => berth_consul::Anonymous::Anyone,
            },
        },
        agent.cluster().clone(),
    )
    .await
    .with_context(|| {
        format!(
            "serving the Consul API on {} (--consul-addr ADDR, or none)",
            o.consul_addr
        )
    })?;
    if let Some(addr) = consul_addr {
        tracing::info!("Consul-compatible API listening on http://{addr}");
    }
    let dns = match o.dns_addr {
        berth_cli::args::Listen::Off => None,
        berth_cli::args::Listen::On(addr) => {
            let dns_opts = berth_dns::DnsOptions {
                addr,
                domain: o.dns_domain.clone(),
                datacenter: "berth".into(),
                ttl: o.dns_ttl.as_secs() as u32,
                recursors: o.dns_recursors.clone(),
            };
            let h = berth_dns::serve(dns_opts, agent.cluster().desired().clone())
                .await
                .with_context(|| format!("serving DNS on {addr} (--dns-addr ADDR, or none)"))?;
            tracing::info!("DNS listening on {addr} (udp, tcp) for .{}", o.dns_domain);
            agent.set_container_dns(Arc::new(ContainersDns(h.clone())));
            Some(h)
        }
    };
    let (http, https) = (o.ingress_http.addr(), o.ingress_https.addr());
    let ingress = if http.is_none() && https.is_none() {
        None
    } else {
        let mut io = berth_ingress::IngressOptions::on(http, https);
        io.max_body = o.ingress_max_body;
        io.max_connections = o.ingress_max_connections as usize;
        io.threads = o.ingress_threads.into();
        io.idle_timeout = o.ingress_idle_timeout;
        io.trusted_proxies = o.ingress_trusted_proxies.clone();
        io.access_log = o.ingress_access_log.clone();
        let i = berth_ingress::serve(io, agent.cluster().desired().clone())
            .await
            .with_context(|| {
                format!(
                    "serving the ingress on --ingress-http {} --ingress-https {}",
                    o.ingress_http, o.ingress_https
                )
            })?;
        for (scheme, a) in [("http", http), ("https", https)] {
            if let Some(a) = a {
                tracing::info!("ingress listening on {scheme}://{a}");
            }
        }
        agent
            .cluster()
            .set_ingress_probe(Arc::new(IngressUse(i.clone())));
        Some(i)
    };
    let metrics = match o.metrics_addr.addr() {
        None => None,
        Some(addr) => {
            let gather = crate::metrics::gather(agent.clone(), ingress.clone());
            let task = berth_metrics::serve(addr, gather)
                .await
                .with_context(|| format!("serving metrics on {addr} (--metrics-addr ADDR)"))?;
            tracing::info!("metrics on http://{addr}/metrics");
            Some(task)
        }
    };
    tokio::spawn(berth_registrator::run(
        berth_registrator::RegistratorOptions {
            host_docker_socket: opts.host_docker_socket.clone(),
            internal: o.registrator_internal,
            resync: opts.resync,
        },
        agent.cluster().clone(),
        agent.status_bus().clone(),
    ));
    let pidfile = opts.home.pidfile();
    std::fs::write(&pidfile, format!("{}\n", std::process::id()))?;
    let socket = opts.home.socket();
    tracing::info!("berth daemon listening on {}", socket.display());
    let notifier = tokio::spawn(crate::notify::ready_and_watchdog(socket.clone()));
    let trimmer = tokio::spawn(crate::memory::trim_loop());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        crate::notify::send("STOPPING=1");
        let _ = stop_tx.send(true);
    };
    // Open event streams would hold a graceful shutdown forever: give
    // in-flight requests a short grace, then go.
    let mut stopping = stop_rx.clone();
    let grace = async move {
        let _ = stopping.wait_for(|s| *s).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let remote_api = match o.api_addr {
        berth_cli::args::Listen::Off => None,
        berth_cli::args::Listen::On(addr) => {
            let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
                format!("serving the remote API on {addr} (--api-addr ADDR, or none)")
            })?;
            if !agent.cluster().is_clustered() {
                tracing::warn!(
                    "remote API on {addr}: this node is in no cluster and has no certificate yet; it serves once `berth cluster init` or `join` gives it one"
                );
            }
            tracing::info!("remote API listening on https://{addr}");
            let mut stopping = stop_rx.clone();
            Some(tokio::spawn(berth_api::serve_remote(
                agent.clone(),
                ingress.clone(),
                listener,
                async move {
                    let _ = stopping.wait_for(|s| *s).await;
                },
            )))
        }
    };
    let served = tokio::select! {
        r = berth_api::serve(agent.clone(), ingress.clone(), &socket, socket_group, shutdown) => r,
        _ = grace => Ok(()),
    };
    notifier.abort();
    trimmer.abort();
    if let Some(task) = consul {
        task.abort();
    }
    if let Some(task) = remote_api {
        task.abort();
    }
    if let Some(task) = metrics {
        task.abort();
    }
    if let Some(dns) = dns {
        dns.shutdown();
    }
    if let Some(i) = ingress {
        i.shutdown();
    }
    agent.shutdown().await;
    let _ = std::fs::remove_file(&socket);
    let _ = std::fs::remove_file(&pidfile);
    served.with_context(|| format!("serving the API on {}", socket.display()))?;
    Ok(ExitCode::SUCCESS)
}

/// The node's DNS server, as the agent asks it to answer on a container
/// bridge for `dns_berth`.
struct ContainersDns(Arc<berth_dns::DnsServer>);

impl berth_agent::ContainerDns for ContainersDns {
    fn serve_on(&self, ip: std::net::IpAddr) -> Result<(), String> {
        self.0.serve_on(ip).map_err(|e| e.to_string())
    }
}

/// The node's ingress, as a draining stop anywhere in the cluster asks it
/// about a backend.
struct IngressUse(Arc<berth_ingress::Ingress>);

impl berth_cluster::IngressProbe for IngressUse {
    fn backend_use(&self, addr: std::net::SocketAddr) -> berth_cluster::BackendUse {
        let (routed, inflight) = self.0.backend_use(addr);
        berth_cluster::BackendUse { routed, inflight }
    }
}

#[cfg(test)]
mod tests {
    use super::docker_socket;

    #[test]
    fn docker_host_is_read_as_the_docker_cli_reads_it() {
        let s = |flag, host| docker_socket(flag, host).map_err(|e| e.to_string());
        assert_eq!(s(None, None).unwrap(), "/var/run/docker.sock");
        assert_eq!(s(None, Some("")).unwrap(), "/var/run/docker.sock");
        assert_eq!(s(None, Some("unix:///run/d.sock")).unwrap(), "/run/d.sock");
        assert_eq!(
            s(Some("unix:///a.sock"), Some("unix:///b.sock")).unwrap(),
            "/a.sock"
        );
        let tcp = s(None, Some("tcp://10.0.0.1:2375")).unwrap_err();
        assert!(
            tcp.contains("unix socket only") && tcp.contains("--docker-socket"),
            "{tcp}"
        );
        assert!(s(None, Some("unix://relative")).is_err());
    }
}
