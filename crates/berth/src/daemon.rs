//! `berth daemon run|start|stop|status`.

use crate::args::{DaemonCmd, DaemonOpts};
use crate::Ctx;
use anyhow::{bail, Context};
use berth_agent::{Agent, AgentOptions, Home};
use berth_api::types::DaemonInfo;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

pub async fn run(ctx: &Ctx, cmd: DaemonCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        DaemonCmd::Run(o) => run_foreground(ctx, o).await,
        DaemonCmd::Start(o) => start(ctx, o).await,
        DaemonCmd::Stop => stop(ctx).await,
        DaemonCmd::Status => status(ctx).await,
        DaemonCmd::Watchdog => {
            berth_agent::watchdog::run(&ctx.home)
                .with_context(|| format!("fencing watchdog for {}", ctx.home.display()))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn options(ctx: &Ctx, o: &DaemonOpts) -> anyhow::Result<AgentOptions> {
    if o.heartbeat >= o.down_after {
        bail!(
            "--heartbeat ({:?}) must be shorter than --down-after ({:?})",
            o.heartbeat,
            o.down_after
        );
    }
    let nodename = o.nodename.clone().unwrap_or_else(|| {
        nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".into())
    });
    Ok(AgentOptions {
        home: Home::new(ctx.home.clone()),
        nodename,
        host_docker_socket: o
            .docker_socket
            .clone()
            .map(|s| s.trim_start_matches("unix://").to_string())
            .unwrap_or_else(|| berth_engine::HOST_DOCKER_SOCKET.to_string()),
        parallelism: o.parallelism,
        resync: o.resync,
        timing: berth_agent::Timing {
            heartbeat: o.heartbeat,
            down_after: o.down_after,
            // A node tolerates one lost heartbeat before it fences, and is
            // fenced by the time the leader calls it down: failover then
            // waits max(down_after, lease + stop_grace) = down_after.
            lease: o.down_after.saturating_sub(o.heartbeat).max(o.heartbeat),
            stop_grace: Duration::from_secs(1).min(o.down_after / 3),
        },
        watchdog: Some(vec![
            std::env::current_exe()
                .context("locating the berth binary for the watchdog")?
                .into_os_string(),
            "daemon".into(),
            "watchdog".into(),
            "--home".into(),
            ctx.home.clone().into_os_string(),
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

async fn run_foreground(ctx: &Ctx, o: DaemonOpts) -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
                .unwrap_or_else(|_| "info,openraft=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let opts = options(ctx, &o)?;
    if let Err(e) = set_niceness(o.nice) {
        tracing::warn!(
            "keeping the current scheduling niceness, not {}: {e}",
            o.nice
        );
    }
    std::fs::create_dir_all(&ctx.home)
        .with_context(|| format!("creating {}", ctx.home.display()))?;
    std::fs::set_permissions(&ctx.home, std::fs::Permissions::from_mode(0o711))?;
    if let Ok(info) = ctx.client().get::<DaemonInfo>("/v1/daemon").await {
        bail!(
            "a berth daemon (pid {}) already runs on {}",
            info.pid,
            ctx.home.display()
        );
    }
    let agent = Agent::start(opts.clone())
        .await
        .with_context(|| format!("starting the agent in {}", ctx.home.display()))?;
    let pidfile = opts.home.pidfile();
    std::fs::write(&pidfile, format!("{}\n", std::process::id()))?;
    let socket = opts.home.socket();
    tracing::info!("berth daemon listening on {}", socket.display());
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
        let _ = stop_tx.send(true);
    };
    // Open event streams would hold a graceful shutdown forever: give
    // in-flight requests a short grace, then go.
    let mut stopping = stop_rx.clone();
    let grace = async move {
        let _ = stopping.wait_for(|s| *s).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let served = tokio::select! {
        r = berth_api::serve(agent.clone(), &socket, shutdown) => r,
        _ = grace => Ok(()),
    };
    agent.events.emit(
        None,
        None,
        "daemon stopping; containers left running".into(),
        None,
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    agent.desired.shutdown().await;
    let _ = std::fs::remove_file(&socket);
    let _ = std::fs::remove_file(&pidfile);
    served.with_context(|| format!("serving the API on {}", socket.display()))?;
    Ok(ExitCode::SUCCESS)
}

async fn start(ctx: &Ctx, o: DaemonOpts) -> anyhow::Result<ExitCode> {
    options(ctx, &o)?;
    let client = ctx.client();
    if let Ok(info) = client.get::<DaemonInfo>("/v1/daemon").await {
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
    cmd.arg("--heartbeat")
        .arg(format!("{}ms", o.heartbeat.as_millis()));
    cmd.arg("--down-after")
        .arg(format!("{}ms", o.down_after.as_millis()));
    cmd.arg(format!("--nice={}", o.nice));
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0);
    let mut child = cmd.spawn().context("spawning berth daemon")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(info) = client.get::<DaemonInfo>("/v1/daemon").await {
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
    let pid = match ctx.client().get::<DaemonInfo>("/v1/daemon").await {
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
    match ctx.client().get::<DaemonInfo>("/v1/daemon").await {
        Ok(info) => {
            if ctx.json() {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                println!(
                    "berth daemon running: pid {}, version {}, node {}, home {}, {} objects, docker {}",
                    info.pid, info.version, info.nodename, info.home, info.objects, info.host_docker_socket
                );
            }
            Ok(ExitCode::SUCCESS)
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
