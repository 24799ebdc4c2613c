//! `berth daemon start|stop|status`: the client side of the daemon.
//! `daemon run` (the daemon itself) and `daemon watchdog` are the binary's
//! (`crates/berth/src/daemon.rs`); `start` spawns `daemon run`.

use crate::args::{DaemonCmd, DaemonOpts};
use crate::Ctx;
use anyhow::{bail, Context};
use berth_api_types::bodies::{DaemonInfo, Empty};
use berth_api_types::DaemonStatus;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::os::unix::process::CommandExt;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

pub async fn run(ctx: &Ctx, cmd: DaemonCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        DaemonCmd::Start(o) => start(ctx, o).await,
        DaemonCmd::Stop => stop(ctx).await,
        DaemonCmd::Status => status(ctx).await,
        DaemonCmd::Run(_) | DaemonCmd::Watchdog => {
            bail!("the daemon runs from the berth binary (`berth daemon run`)")
        }
    }
}

async fn daemon_info(ctx: &Ctx) -> Result<DaemonInfo, crate::client::ClientError> {
    ctx.client()
        .call::<DaemonStatus>(&Empty {}, &Empty {})
        .await
}

async fn start(ctx: &Ctx, o: DaemonOpts) -> anyhow::Result<ExitCode> {
    berth_manager::liveness::Timing::derive(o.heartbeat, o.down_after)?;
    if let Ok(info) = daemon_info(ctx).await {
        report(ctx, "already running", info.pid, &info.home);
        return Ok(ExitCode::SUCCESS);
    }
    std::fs::create_dir_all(&ctx.home)?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(ctx.home.join("berth.log"))?;
    let exe = std::env::current_exe()?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("daemon").arg("run").arg("--home").arg(&ctx.home);
    if let Some(s) = &o.docker_socket {
        cmd.arg("--docker-socket").arg(s);
    }
    if let Some(n) = &o.nodename {
        cmd.arg("--nodename").arg(n);
    }
    cmd.arg("--parallelism").arg(o.parallelism.to_string());
    cmd.arg("--resync")
        .arg(format!("{}ms", o.resync.as_millis()));
    cmd.arg("--private-bridge-pool")
        .arg(o.private_bridge_pool.to_string());
    cmd.arg("--warn-ttl")
        .arg(format!("{}ms", o.warn_ttl.as_millis()));
    cmd.arg("--heartbeat")
        .arg(format!("{}ms", o.heartbeat.as_millis()));
    cmd.arg("--down-after")
        .arg(format!("{}ms", o.down_after.as_millis()));
    cmd.arg(format!("--nice={}", o.nice));
    cmd.arg("--consul-addr").arg(o.consul_addr.to_string());
    if o.registrator_internal {
        cmd.arg("--registrator-internal");
    }
    cmd.arg("--dns-addr").arg(o.dns_addr.to_string());
    cmd.arg("--dns-domain").arg(&o.dns_domain);
    for r in &o.dns_recursors {
        cmd.arg("--dns-recursor").arg(r.to_string());
    }
    cmd.arg("--dns-ttl")
        .arg(format!("{}ms", o.dns_ttl.as_millis()));
    cmd.arg("--ingress-http").arg(o.ingress_http.to_string());
    cmd.arg("--ingress-https").arg(o.ingress_https.to_string());
    cmd.arg("--ingress-max-body")
        .arg(o.ingress_max_body.to_string());
    for c in &o.ingress_trusted_proxies {
        cmd.arg("--ingress-trusted-proxies").arg(c.to_string());
    }
    if let Some(log) = &o.ingress_access_log {
        cmd.arg("--ingress-access-log").arg(log);
    }
    cmd.arg("--metrics-addr").arg(o.metrics_addr.to_string());
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0);
    let mut child = cmd.spawn().context("spawning berth daemon")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(info) = daemon_info(ctx).await {
            report(ctx, "started", info.pid, &info.home);
            return Ok(ExitCode::SUCCESS);
        }
        if let Some(st) = child.try_wait()? {
            bail!(
                "berth daemon exited with {st} during start-up; see {}",
                ctx.home.join("berth.log").display()
            );
        }
        if Instant::now() > deadline {
            bail!(
                "berth daemon did not answer within 30s; see {}",
                ctx.home.join("berth.log").display()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn stop(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let pid = match daemon_info(ctx).await {
        Ok(info) => info.pid as i32,
        Err(_) => match std::fs::read_to_string(ctx.home.join("berth.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            // A pidfile can outlive a crash: only signal a berth process.
            Some(p) if kill(Pid::from_raw(p), None).is_ok() && is_berth(p) => p,
            _ => {
                report(ctx, "not running", 0, &ctx.home.display().to_string());
                return Ok(ExitCode::SUCCESS);
            }
        },
    };
    kill(Pid::from_raw(pid), Signal::SIGTERM).context("signalling the daemon")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while berth_engine::process_alive(pid) {
        if Instant::now() > deadline {
            bail!("berth daemon (pid {pid}) did not stop within 30s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    report(
        ctx,
        "stopped; containers left running",
        pid as u32,
        &ctx.home.display().to_string(),
    );
    Ok(ExitCode::SUCCESS)
}

async fn status(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    match daemon_info(ctx).await {
        Ok(info) => {
            if ctx.json() {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                print!("{}", status_text(&info));
            }
            // Running but unable to write desired state is not healthy.
            Ok(if info.store.state == "ok" {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Err(e) => {
            if ctx.json() {
                println!(
                    "{}",
                    serde_json::json!({"running": false, "error": e.to_string()})
                );
            } else {
                eprintln!("{e}");
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

fn status_text(info: &DaemonInfo) -> String {
    let mut out = format!(
        "berth daemon running: pid {}, version {}, node {}, home {}, {} objects\n",
        info.pid, info.version, info.nodename, info.home, info.objects
    );
    for d in &info.docker {
        let state = match &d.error {
            None => "ok".to_string(),
            Some(e) => format!("NOT ANSWERING: {e}"),
        };
        out += &format!("  docker {}: {} {state}\n", d.daemon, d.socket);
    }
    out += &format!("  store: {}", info.store.state);
    if let Some(e) = &info.store.error {
        out += &format!(" since {}: {e}", info.store.since.as_deref().unwrap_or("?"));
    }
    out += "\n";
    let c = &info.cluster;
    out += &format!(
        "  cluster: {}, leader {}, term {}\n",
        c.role,
        c.leader.as_deref().unwrap_or("unknown"),
        c.term
    );
    out
}

fn is_berth(pid: i32) -> bool {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
    let me = std::env::current_exe().ok();
    matches!((exe, me), (Some(a), Some(b)) if a == b)
        || std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "berth")
}

fn report(ctx: &Ctx, state: &str, pid: u32, home: &str) {
    if ctx.json() {
        println!(
            "{}",
            serde_json::json!({"daemon": state, "pid": pid, "home": home})
        );
    } else if pid == 0 {
        println!("berth daemon {state} (home {home})");
    } else {
        println!("berth daemon {state} (pid {pid}, home {home})");
    }
}
