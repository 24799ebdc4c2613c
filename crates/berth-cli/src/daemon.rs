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
    cmd.args(run_args(&o));
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

/// The options `daemon start` gives `daemon run`: every one of them, so
/// the daemon runs with what the user typed.
fn run_args(o: &DaemonOpts) -> Vec<std::ffi::OsString> {
    let mut a: Vec<std::ffi::OsString> = Vec::new();
    let mut opt = |name: &str, value: std::ffi::OsString| {
        a.push(name.into());
        a.push(value);
    };
    let ms = |d: Duration| format!("{}ms", d.as_millis()).into();
    if let Some(s) = &o.docker_socket {
        opt("--docker-socket", s.into());
    }
    if let Some(n) = &o.nodename {
        opt("--nodename", n.into());
    }
    opt("--parallelism", o.parallelism.to_string().into());
    opt("--resync", ms(o.resync));
    opt(
        "--private-bridge-pool",
        o.private_bridge_pool.to_string().into(),
    );
    opt("--warn-ttl", ms(o.warn_ttl));
    opt("--heartbeat", ms(o.heartbeat));
    opt("--down-after", ms(o.down_after));
    opt("--consul-addr", o.consul_addr.to_string().into());
    if let Some(v) = clap::ValueEnum::to_possible_value(&o.consul_anonymous) {
        opt("--consul-anonymous", v.get_name().into());
    }
    opt("--api-addr", o.api_addr.to_string().into());
    opt("--audit-retention", ms(o.audit_retention));
    if let Some(g) = &o.socket_group {
        opt("--socket-group", g.into());
    }
    opt("--dns-addr", o.dns_addr.to_string().into());
    opt("--dns-domain", (&o.dns_domain).into());
    for r in &o.dns_recursors {
        opt("--dns-recursor", r.to_string().into());
    }
    opt("--dns-ttl", ms(o.dns_ttl));
    opt("--ingress-http", o.ingress_http.to_string().into());
    opt("--ingress-https", o.ingress_https.to_string().into());
    opt("--ingress-max-body", o.ingress_max_body.to_string().into());
    let max = o.ingress_max_connections.to_string();
    opt("--ingress-max-connections", max.into());
    opt("--ingress-threads", o.ingress_threads.to_string().into());
    opt("--ingress-idle-timeout", ms(o.ingress_idle_timeout));
    for c in &o.ingress_trusted_proxies {
        opt("--ingress-trusted-proxies", c.to_string().into());
    }
    if let Some(log) = &o.ingress_access_log {
        opt("--ingress-access-log", log.into());
    }
    opt("--metrics-addr", o.metrics_addr.to_string().into());
    for u in &o.ldap_urls {
        opt("--ldap-url", u.into());
    }
    if let Some(dn) = &o.ldap_bind_dn {
        opt("--ldap-bind-dn", dn.into());
    }
    if let Some(f) = &o.ldap_bind_password_file {
        opt("--ldap-bind-password-file", f.into());
    }
    for b in &o.ldap_user_bases {
        opt("--ldap-user-base", b.into());
    }
    opt("--ldap-user-filter", (&o.ldap_user_filter).into());
    opt("--ldap-user-attr", (&o.ldap_user_attr).into());
    if let Some(b) = &o.ldap_group_base {
        opt("--ldap-group-base", b.into());
    }
    opt(
        "--ldap-group-member-attr",
        (&o.ldap_group_member_attr).into(),
    );
    opt("--ldap-sync", ms(o.ldap_sync));
    if let Some(f) = &o.ldap_ca_file {
        opt("--ldap-ca-file", f.into());
    }
    opt("--ldap-timeout", ms(o.ldap_timeout));
    if o.ldap_starttls {
        a.push("--ldap-starttls".into());
    }
    // `--nice=-5`: a negative value must not read as an option.
    a.push(format!("--nice={}", o.nice).into());
    if o.registrator_internal {
        a.push("--registrator-internal".into());
    }
    a
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser, Debug)]
    struct Run {
        #[command(flatten)]
        o: DaemonOpts,
    }

    /// Every option of `daemon start` reaches `daemon run` unchanged: a new
    /// option fails this test until it is set below and in [`run_args`].
    #[test]
    fn every_option_reaches_daemon_run() {
        let typed = [
            "run",
            "--docker-socket=/run/x.sock",
            "--nodename=n7",
            "--parallelism=3",
            "--resync=7s",
            "--warn-ttl=9m",
            "--private-bridge-pool=10.99.0.0/16",
            "--heartbeat=2s",
            "--down-after=9s",
            "--nice=-5",
            "--consul-addr=127.0.0.1:18500",
            "--consul-anonymous=any",
            "--api-addr=127.0.0.1:17947",
            "--audit-retention=30d",
            "--socket-group=staff",
            "--registrator-internal",
            "--dns-addr=none",
            "--dns-domain=corp",
            "--dns-recursor=192.0.2.1:53",
            "--dns-recursor=192.0.2.2:5353",
            "--dns-ttl=4s",
            "--ingress-http=127.0.0.1:1080",
            "--ingress-https=127.0.0.1:1443",
            "--ingress-max-body=9",
            "--ingress-max-connections=7",
            "--ingress-threads=3",
            "--ingress-idle-timeout=90s",
            "--ingress-trusted-proxies=10.0.0.0/8,192.0.2.9",
            "--ingress-access-log=/var/log/x",
            "--metrics-addr=127.0.0.1:9100",
            "--ldap-url=ldap://ldap1:389",
            "--ldap-url=ldaps://ldap2",
            "--ldap-bind-dn=cn=berth,dc=example,dc=com",
            "--ldap-bind-password-file=/etc/berth/ldap.pw",
            "--ldap-user-base=ou=people,dc=example,dc=com",
            "--ldap-user-base=ou=robots,dc=example,dc=com",
            "--ldap-user-filter=(&(objectClass=person)(uid={user}))",
            "--ldap-user-attr=sAMAccountName",
            "--ldap-group-base=ou=groups,dc=example,dc=com",
            "--ldap-group-member-attr=uniqueMember",
            "--ldap-sync=15m",
            "--ldap-starttls",
            "--ldap-ca-file=/etc/berth/ldap-ca.pem",
            "--ldap-timeout=3s",
        ];
        for arg in Run::command().get_arguments() {
            let Some(long) = arg.get_long().filter(|l| *l != "help") else {
                continue;
            };
            let set = typed
                .iter()
                .any(|t| t.split('=').next() == Some(&format!("--{long}")));
            assert!(
                set,
                "--{long}: give it a value here and forward it in run_args"
            );
        }
        let o = Run::try_parse_from(typed).expect("typed").o;
        let forwarded = std::iter::once("run".into()).chain(run_args(&o));
        let back = Run::try_parse_from(forwarded).expect("forwarded").o;
        assert_eq!(format!("{o:?}"), format!("{back:?}"));
        let defaults = Run::try_parse_from(["run"]).expect("defaults").o;
        let forwarded = std::iter::once("run".into()).chain(run_args(&defaults));
        let back = Run::try_parse_from(forwarded).expect("forwarded").o;
        assert_eq!(format!("{defaults:?}"), format!("{back:?}"));
    }
}
