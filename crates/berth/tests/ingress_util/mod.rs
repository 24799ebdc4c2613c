//! What the ingress tests share: a node with the ingress on, backends,
//! requests through the ingress, and the real peers (haproxy, openssl).
#![allow(dead_code)]

use crate::common::{free_port, Env};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Node {
    pub env: Env,
    pub http: u16,
    pub ingress: u16,
}

pub fn node() -> Node {
    node_with(&[])
}

/// A node with the ingress on, given `extra` daemon arguments too.
pub fn node_with(extra: &[&str]) -> Node {
    let (http, ingress) = (free_port(), free_port());
    let (h, i) = (format!("127.0.0.1:{http}"), format!("127.0.0.1:{ingress}"));
    let mut args = vec![
        "--consul-addr",
        &h,
        "--dns-addr",
        "none",
        "--ingress-http",
        &i,
    ];
    args.extend_from_slice(extra);
    Node {
        env: Env::start_with(&args),
        http,
        ingress,
    }
}

/// A backend named `name` registered for `host` through `n`'s Consul
/// API, once the ingress routes to it; returns the host.
pub fn routed_backend(n: &Node, name: &str) -> (Backend, String) {
    let svc = crate::common::unique(name);
    let host = format!("{svc}.test");
    let port = free_port();
    let be = backend(port, name);
    register(n, &format!("{svc}-1"), &svc, port, &host, "");
    wait_until("the route", 10, || get(n, &host, "/", &[]).0 == 200);
    (be, host)
}

pub fn py(script: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(script)
}

/// A backend process, killed when dropped.
pub struct Backend(Child);

impl Drop for Backend {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn backend(port: u16, name: &str) -> Backend {
    let mut cmd = Command::new("python3");
    cmd.arg(py("ingress_backend.py"))
        .args([&port.to_string(), name]);
    backend_from(cmd)
}

/// A backend started by `cmd` (which may enter another network namespace),
/// once it says it is ready.
pub fn backend_from(mut cmd: Command) -> Backend {
    let mut child = cmd.stdout(Stdio::piped()).spawn().expect("python3");
    let mut line = String::new();
    let out = child.stdout.take().expect("stdout");
    BufReader::new(out)
        .read_line(&mut line)
        .expect("ready line");
    assert_eq!(line.trim(), "ready");
    Backend(child)
}

pub fn consul(n: &Node, method: &str, path: &str, body: &str) -> String {
    let out = Command::new("curl")
        .args(["-s", "-X", method, "--data-binary", body])
        .arg(format!("http://127.0.0.1:{}{path}", n.http))
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).to_string()
}

pub fn register(n: &Node, id: &str, name: &str, port: u16, host: &str, check: &str) {
    let body = format!(
        r#"{{"ID":"{id}","Name":"{name}","Address":"127.0.0.1","Port":{port},"Tags":["dns={host}"]{check}}}"#
    );
    consul(n, "PUT", "/v1/agent/service/register", &body);
}

/// Status code and body of a GET through the ingress.
pub fn get(n: &Node, host: &str, path: &str, extra: &[&str]) -> (u16, String) {
    get_at(n.ingress, host, path, extra)
}

pub fn get_at(ingress: u16, host: &str, path: &str, extra: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args([
            "-s",
            "-m",
            "10",
            "-w",
            "\n%{http_code}",
            "-H",
            &format!("Host: {host}"),
        ])
        .args(extra)
        .arg(format!("http://127.0.0.1:{ingress}{path}"))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

pub fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

pub fn wait_until(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A busybox httpd answering `/` with `name`, `/cgi-bin/slow` after `slow`
/// seconds and `/cgi-bin/ok` (a POST) at once; SIGTERM ends it at once,
/// in-flight requests with it.
pub fn slow_web(name: &str, slow: u32) -> String {
    format!(
        r#"container#0.command=/bin/sh -c "mkdir -p /www/cgi-bin && echo {name} > /www/index.html && echo '#!/bin/sh' > /www/cgi-bin/slow && echo 'sleep {slow}; echo Content-Type: text/plain; echo; echo slow' >> /www/cgi-bin/slow && echo '#!/bin/sh' > /www/cgi-bin/ok && echo 'cat >/dev/null; echo Content-Type: text/plain; echo; echo ok' >> /www/cgi-bin/ok && chmod +x /www/cgi-bin/slow /www/cgi-bin/ok; trap 'exit 0' TERM; /bin/busybox httpd -f -p 80 -h /www & wait""#
    )
}

pub fn route_of(n: &Node, host: &str) -> serde_json::Value {
    route_in(&n.env.json(&["ingress", "routes"]), host)
}

/// The route for `host` in `berth ingress routes --format json` output.
pub fn route_in(routes: &serde_json::Value, host: &str) -> serde_json::Value {
    routes["routes"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["host"] == host))
        .cloned()
        .unwrap_or_default()
}

pub fn in_rotation(n: &Node, host: &str) -> usize {
    rotation_of(&route_of(n, host))
}

/// How many of a route's backends are in rotation.
pub fn rotation_of(route: &serde_json::Value) -> usize {
    route["backends"]
        .as_array()
        .map_or(0, |v| v.iter().filter(|b| b["in_rotation"] == true).count())
}

/// Batches of 50 POSTs (which the ingress never retries) to the ingress at
/// `addr:port` for `host`, each batch on one keep-alive connection with a
/// `/cgi-bin/slow` one first (see [`slow_web`]), until
/// [`PostLoop::assert_none_failed`]: bounded to 400 batches and 120 s.
pub struct PostLoop {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    load: std::thread::JoinHandle<(usize, Vec<String>)>,
}

impl PostLoop {
    pub fn start(addr: String, port: u16, host: String) -> PostLoop {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let done = stop.clone();
        let load = std::thread::spawn(move || {
            let (mut sent, mut failed) = (0, Vec::new());
            let t0 = Instant::now();
            for _ in 0..400 {
                if done.load(std::sync::atomic::Ordering::Relaxed)
                    || t0.elapsed() > Duration::from_secs(120)
                {
                    break;
                }
                let mut args: Vec<String> = ["-s", "-m", "20", "-d", "x", "-w", "%{http_code}\n"]
                    .map(String::from)
                    .to_vec();
                args.extend(["-H".into(), format!("Host: {host}")]);
                for i in 0..50 {
                    let target = if i == 0 { "slow" } else { "ok" };
                    args.extend(["-o".into(), "/dev/null".into()]);
                    args.push(format!("http://{addr}:{port}/cgi-bin/{target}"));
                }
                let out = Command::new("curl").args(&args).output().expect("curl");
                for c in String::from_utf8_lossy(&out.stdout).lines() {
                    sent += 1;
                    if c != "200" {
                        failed.push(c.to_string());
                    }
                }
            }
            (sent, failed)
        });
        PostLoop { stop, load }
    }

    /// Stops the loop; at least one batch was sent and no request failed.
    pub fn assert_none_failed(self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (sent, failed) = self.load.join().expect("load thread");
        assert!(sent >= 50, "only {sent} requests were sent");
        assert!(
            failed.is_empty(),
            "{} of {sent} failed: {failed:?}",
            failed.len()
        );
    }
}

/// haproxy in TCP mode in front of the ingress: one port sends PROXY v1,
/// the other v2. Killed, and its config removed, when dropped.
pub struct Haproxy(Child, #[allow(dead_code)] tempfile::TempDir);

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn haproxy(v1: u16, v2: u16, ingress: u16) -> Haproxy {
    haproxy_to(v1, v2, &format!("127.0.0.1:{ingress}"))
}

/// [`haproxy`] in front of the ingress at `target` (`addr:port`).
pub fn haproxy_to(v1: u16, v2: u16, target: &str) -> Haproxy {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("haproxy.cfg");
    std::fs::write(
        &cfg,
        format!(
            "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n\
             frontend v1\n  bind 127.0.0.1:{v1}\n  default_backend b1\n\
             backend b1\n  server s {target} send-proxy\n\
             frontend v2\n  bind 127.0.0.1:{v2}\n  default_backend b2\n\
             backend b2\n  server s {target} send-proxy-v2\n"
        ),
    )
    .expect("write haproxy.cfg");
    let child = Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&cfg)
        .stdout(Stdio::null())
        .spawn()
        .expect("haproxy (Debian's haproxy package)");
    let h = Haproxy(child, dir);
    wait_until("haproxy listening", 10, || {
        std::net::TcpStream::connect(("127.0.0.1", v2)).is_ok()
    });
    h
}

/// `IP - - [02/Dec/2026:13:55:36 +0000] "GET /p HTTP/1.1" 200 12 "-" "curl/7.88.1"`.
pub fn combined_log_line(line: &str) -> bool {
    let Some((ip, rest)) = line.split_once(" - - [") else {
        return false;
    };
    let Some((time, rest)) = rest.split_once("] \"") else {
        return false;
    };
    let Some((request, rest)) = rest.split_once("\" ") else {
        return false;
    };
    let mut w = rest.splitn(3, ' ');
    let (code, bytes, tail) = (w.next(), w.next(), w.next().unwrap_or_default());
    ip.parse::<std::net::IpAddr>().is_ok()
        && time.len() == 26
        && time.ends_with(" +0000")
        && request.split(' ').count() == 3
        && code.is_some_and(|c| c.len() == 3 && c.parse::<u16>().is_ok())
        && bytes.is_some_and(|b| b == "-" || b.parse::<u64>().is_ok())
        && tail.starts_with('"')
        && tail.ends_with('"')
        && tail.matches("\" \"").count() == 1
}

/// A self-signed EC certificate for `host`, as `<dir>/<stem>.pem` and
/// `<dir>/<stem>.key`.
pub fn self_signed(dir: &std::path::Path, stem: &str, host: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (
        dir.join(format!("{stem}.pem")),
        dir.join(format!("{stem}.key")),
    );
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", &format!("/CN={host}")])
        .args(["-addext", &format!("subjectAltName=DNS:{host}")])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(out.status.success(), "{out:?}");
    (cert, key)
}

/// Status, HTTP version and body of a GET over TLS to `host`, trusting
/// only `ca`.
pub fn get_tls(
    port: u16,
    host: &str,
    ca: &std::path::Path,
    extra: &[&str],
) -> (u16, String, String) {
    get_tls_at("127.0.0.1", port, host, ca, extra)
}

/// [`get_tls`] to the ingress at `addr`.
pub fn get_tls_at(
    addr: &str,
    port: u16,
    host: &str,
    ca: &std::path::Path,
    extra: &[&str],
) -> (u16, String, String) {
    let out = Command::new("curl")
        .args(["-s", "-m", "10", "-w", "\n%{http_code} %{http_version}"])
        .arg("--cacert")
        .arg(ca)
        .args(["--resolve", &format!("{host}:{port}:{addr}")])
        .args(extra)
        .arg(format!("https://{host}:{port}/"))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, tail) = text.rsplit_once('\n').unwrap_or(("", "0 0"));
    let (code, version) = tail.split_once(' ').unwrap_or(("0", "0"));
    (
        code.parse().unwrap_or(0),
        version.to_string(),
        body.to_string(),
    )
}
