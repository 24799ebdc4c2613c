//! The HTTP ingress on one node, driven with curl and raw sockets: host
//! routes from the catalog (registrator tags `dns=<host>` and a berth
//! service's `ingress_hosts`), round robin, the client's address, retries
//! past a dead backend, 404 and 503, a route added under load, and an
//! upgraded connection that outlives a route change.

mod common;

use common::{free_port, unique, Env};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Node {
    env: Env,
    http: u16,
    ingress: u16,
}

fn node() -> Node {
    let (http, ingress) = (free_port(), free_port());
    let (h, i) = (format!("127.0.0.1:{http}"), format!("127.0.0.1:{ingress}"));
    Node {
        env: Env::start_with(&[
            "--consul-addr",
            &h,
            "--dns-addr",
            "none",
            "--ingress-http",
            &i,
        ]),
        http,
        ingress,
    }
}

fn py(script: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(script)
}

/// A backend process, killed when dropped.
struct Backend(Child);

impl Drop for Backend {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn backend(port: u16, name: &str) -> Backend {
    let mut child = Command::new("python3")
        .arg(py("ingress_backend.py"))
        .args([&port.to_string(), name])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    let out = child.stdout.take().expect("stdout");
    BufReader::new(out)
        .read_line(&mut line)
        .expect("ready line");
    assert_eq!(line.trim(), "ready");
    Backend(child)
}

fn consul(n: &Node, method: &str, path: &str, body: &str) -> String {
    let out = Command::new("curl")
        .args(["-s", "-X", method, "--data-binary", body])
        .arg(format!("http://127.0.0.1:{}{path}", n.http))
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn register(n: &Node, id: &str, name: &str, port: u16, host: &str, check: &str) {
    let body = format!(
        r#"{{"ID":"{id}","Name":"{name}","Address":"127.0.0.1","Port":{port},"Tags":["dns={host}"]{check}}}"#
    );
    consul(n, "PUT", "/v1/agent/service/register", &body);
}

/// Status code and body of a GET through the ingress.
fn get(n: &Node, host: &str, path: &str, extra: &[&str]) -> (u16, String) {
    get_at(n.ingress, host, path, extra)
}

fn get_at(ingress: u16, host: &str, path: &str, extra: &[&str]) -> (u16, String) {
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

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

fn wait_until(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn host_routes_balance_keep_the_client_address_and_survive_a_dead_backend() {
    let n = node();
    let svc = unique("shop");
    let host = format!("{svc}.test");
    let (pa, pb) = (free_port(), free_port());
    let a = backend(pa, "a");
    let _b = backend(pb, "b");
    register(&n, &format!("{svc}-a"), &svc, pa, &host, "");
    register(&n, &format!("{svc}-b"), &svc, pb, &host, "");
    wait_until("the route", 10, || get(&n, &host, "/", &[]).0 == 200);

    // Round robin over both; the client's address replaces a forged one.
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..4 {
        let (code, body) = get(&n, &host, "/x?y=1", &["-H", "X-Forwarded-For: 6.6.6.6"]);
        assert_eq!(code, 200, "{body}");
        let v = json(&body);
        assert_eq!(v["xff"], serde_json::json!(["127.0.0.1"]), "{v}");
        assert_eq!(v["host"], host.as_str());
        assert_eq!(v["fhost"], host.as_str());
        assert_eq!(v["proto"], "http");
        assert_eq!(v["path"], "/x?y=1");
        assert_eq!(
            v["forwarded"],
            format!("for=127.0.0.1;proto=http;host=\"{host}\"")
        );
        assert!(v["connection"].is_null(), "hop-by-hop header passed: {v}");
        seen.insert(v["name"].as_str().unwrap_or_default().to_string());
    }
    assert_eq!(seen.len(), 2, "{seen:?}");

    // A backend dies: idempotent requests never fail.
    drop(a);
    for i in 0..30 {
        let (code, body) = get(&n, &host, "/", &[]);
        assert_eq!(code, 200, "request {i} after the kill: {body}");
        assert_eq!(json(&body)["name"], "b");
    }

    // Unknown host: 404; a route whose only instance is critical: 503.
    let (code, body) = get(&n, &unique("nothing"), "/", &[]);
    assert_eq!(
        (code, body.starts_with("no route for host")),
        (404, true),
        "{body}"
    );
    let sick = unique("sick");
    register(
        &n,
        &sick,
        &sick,
        free_port(),
        &format!("{sick}.test"),
        r#","Check":{"TTL":"30s"}"#,
    );
    wait_until("the critical route", 10, || {
        get(&n, &format!("{sick}.test"), "/", &[]).0 == 503
    });

    // The route table shows both backends, one of them ejected or failing.
    let routes = n.env.json(&["ingress", "routes"]);
    let route = routes["routes"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["host"] == host.as_str()))
        .unwrap_or_else(|| panic!("{routes:#}"))
        .clone();
    assert_eq!(route["service"], svc.as_str());
    let backends = route["backends"].as_array().expect("backends");
    assert_eq!(backends.len(), 2, "{route:#}");
    let requests: u64 = backends.iter().filter_map(|b| b["requests"].as_u64()).sum();
    assert!(requests >= 34, "{route:#}");
    assert!(
        backends
            .iter()
            .any(|b| b["in_rotation"] == false && b["errors"].as_u64() > Some(0)),
        "{route:#}"
    );
}

#[test]
fn a_route_added_under_load_drops_nothing_and_a_tunnel_outlives_it() {
    let n = node();
    let svc = unique("load");
    let host = format!("{svc}.test");
    let port = free_port();
    let _be = backend(port, "load");
    register(&n, &format!("{svc}-1"), &svc, port, &host, "");
    wait_until("the route", 10, || get(&n, &host, "/", &[]).0 == 200);

    let mut tunnel = Command::new("python3")
        .arg(py("upgrade_client.py"))
        .args([&n.ingress.to_string(), host.as_str()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut lines = BufReader::new(tunnel.stdout.take().expect("stdout")).lines();
    assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("open"));

    let ingress = n.ingress;
    let loop_host = host.clone();
    let load = std::thread::spawn(move || {
        let mut failed = Vec::new();
        // One curl for 1000 requests on one keep-alive connection.
        let urls: Vec<String> = (0..1000)
            .flat_map(|i| {
                [
                    "-o".to_string(),
                    "/dev/null".to_string(),
                    format!("http://127.0.0.1:{ingress}/r{i}"),
                ]
            })
            .collect();
        let out = Command::new("curl")
            .args(["-s", "-w", "%{http_code}\n", "-H"])
            .arg(format!("Host: {loop_host}"))
            .args(&urls)
            .output()
            .expect("curl");
        let codes = String::from_utf8_lossy(&out.stdout).to_string();
        for (i, c) in codes.lines().enumerate() {
            if c != "200" {
                failed.push((i, c.chars().take(80).collect::<String>()));
            }
        }
        (codes.lines().count(), failed)
    });
    let other = unique("added");
    let other_port = free_port();
    let _other_be = backend(other_port, "added");
    register(&n, &other, &other, other_port, &format!("{other}.test"), "");
    let t0 = Instant::now();
    wait_until("the added route", 10, || {
        get(&n, &format!("{other}.test"), "/", &[]).0 == 200
    });
    let took = t0.elapsed();
    let (count, failed) = load.join().expect("load thread");
    assert_eq!(count, 1000);
    assert!(failed.is_empty(), "failed requests: {failed:?}");
    assert!(took < Duration::from_secs(5), "the route took {took:?}");

    let stdin = tunnel.stdin.as_mut().expect("stdin");
    writeln!(stdin).expect("go on");
    assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("ok"));
    assert!(tunnel.wait().expect("wait").success());
}

#[test]
fn a_berth_service_is_routed_by_its_ingress_hosts() {
    let n = node();
    let path = format!("{}/web", unique("ingr"));
    let host = format!("{}.test", unique("web"));
    let port = free_port();
    n.env.create_svc(
        &path,
        &[
            r#"container#0.command=/bin/sh -c "mkdir -p /www && echo berth-web > /www/index.html && exec /bin/busybox httpd -f -p 80 -h /www""#,
            &format!("container#0.ports={port}:80"),
            &format!("container#0.ingress_hosts={host}"),
        ],
    );
    // A bad host route is refused at write time.
    let bad = n
        .env
        .berth(&[&path, "set", "--kw", "container#0.ingress_hosts=bad_host"]);
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    n.env.ok(&[&path, "start"]);
    wait_until("the berth service through the ingress", 20, || {
        get(&n, &host, "/", &[]) == (200, "berth-web\n".to_string())
    });
    n.env.ok(&[&path, "stop"]);
    wait_until("the stopped service gone from its route", 20, || {
        matches!(get(&n, &host, "/", &[]).0, 404 | 503)
    });
}

#[test]
fn an_instance_failing_its_active_check_leaves_rotation_and_comes_back() {
    let n = node();
    let ns = unique("ichk");
    let host = format!("{ns}.test");
    for i in 1..=2 {
        let cmd = format!(
            r#"container#0.command=/bin/sh -c "mkdir -p /www && echo web{i} > /www/index.html && echo ok > /www/health && exec /bin/busybox httpd -f -p 80 -h /www""#
        );
        n.env.create_svc(
            &format!("{ns}/web{i}"),
            &[
                &cmd,
                &format!("container#0.ports={}:80", free_port()),
                "container#0.service_name=checked",
                &format!("container#0.ingress_hosts={host}"),
                "container#0.ingress_check=/health",
                "container#0.ingress_check_interval=300ms",
            ],
        );
        n.env.ok(&[&format!("{ns}/web{i}"), "start"]);
    }
    let bodies =
        |count: usize| -> Vec<String> { (0..count).map(|_| get(&n, &host, "/", &[]).1).collect() };
    wait_until("both instances in rotation", 30, || {
        let b = bodies(4);
        b.contains(&"web1\n".to_string()) && b.contains(&"web2\n".to_string())
    });
    let ctr = format!("{ns}..web1.container.0");
    let rm = common::docker(&["exec", &ctr, "/bin/busybox", "rm", "/www/health"]);
    assert!(rm.status.success(), "{rm:?}");
    // Two failed checks, 300 ms apart: out of rotation well within 3 s.
    let t0 = Instant::now();
    wait_until("web1 out of rotation", 10, || {
        bodies(4).iter().all(|b| b == "web2\n")
    });
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    for b in bodies(20) {
        assert_eq!(b, "web2\n");
    }
    let routes = n.env.json(&["ingress", "routes"]);
    let out_of_rotation = routes["routes"][0]["backends"]
        .as_array()
        .map(|v| v.iter().filter(|b| b["in_rotation"] == false).count());
    assert_eq!(out_of_rotation, Some(1), "{routes:#}");
    common::docker(&["exec", &ctr, "sh", "-c", "echo ok > /www/health"]);
    wait_until("web1 back in rotation", 10, || {
        bodies(4).contains(&"web1\n".to_string())
    });
}

/// A busybox httpd answering `/` with `name`, `/cgi-bin/slow` after `slow`
/// seconds and `/cgi-bin/ok` (a POST) at once; SIGTERM ends it at once,
/// in-flight requests with it.
fn slow_web(name: &str, slow: u32) -> String {
    format!(
        r#"container#0.command=/bin/sh -c "mkdir -p /www/cgi-bin && echo {name} > /www/index.html && echo '#!/bin/sh' > /www/cgi-bin/slow && echo 'sleep {slow}; echo Content-Type: text/plain; echo; echo slow' >> /www/cgi-bin/slow && echo '#!/bin/sh' > /www/cgi-bin/ok && echo 'cat >/dev/null; echo Content-Type: text/plain; echo; echo ok' >> /www/cgi-bin/ok && chmod +x /www/cgi-bin/slow /www/cgi-bin/ok; trap 'exit 0' TERM; /bin/busybox httpd -f -p 80 -h /www & wait""#
    )
}

fn route_of(n: &Node, host: &str) -> serde_json::Value {
    let routes = n.env.json(&["ingress", "routes"]);
    routes["routes"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["host"] == host))
        .cloned()
        .unwrap_or_default()
}

fn in_rotation(n: &Node, host: &str) -> usize {
    route_of(n, host)["backends"]
        .as_array()
        .map_or(0, |v| v.iter().filter(|b| b["in_rotation"] == true).count())
}

#[test]
fn a_stop_drains_the_instance_before_its_container_stops() {
    let n = node();
    let path = format!("{}/web", unique("drain"));
    let host = format!("{}.test", unique("drain"));
    n.env.create_svc(
        &path,
        &[
            &slow_web("drain", 2),
            &format!("container#0.ports={}:80", free_port()),
            &format!("container#0.ingress_hosts={host}"),
            "container#0.stop_timeout=20s",
        ],
    );
    n.env.ok(&[&path, "start"]);
    wait_until("the route", 20, || {
        get(&n, &host, "/", &[]) == (200, "drain\n".to_string())
    });
    let ingress = n.ingress;
    let slow_host = host.clone();
    let slow = std::thread::spawn(move || get_at(ingress, &slow_host, "/cgi-bin/slow", &[]));
    wait_until("the slow request in flight", 10, || {
        route_of(&n, &host)["backends"][0]["inflight"].as_u64() == Some(1)
    });
    n.env.ok(&[&path, "stop"]);
    assert_eq!(
        slow.join().expect("slow request"),
        (200, "slow\n".to_string()),
        "the stop cut the request in flight"
    );
    let (code, body) = get(&n, &host, "/", &[]);
    assert_eq!(
        (code, body.as_str()),
        (404, format!("no route for host {host}\n").as_str())
    );
}

#[test]
fn a_rolling_restart_under_load_fails_no_request() {
    let n = node();
    let ns = unique("roll");
    let host = format!("{ns}.test");
    let paths: Vec<String> = (1..=3).map(|i| format!("{ns}/web{i}")).collect();
    for (i, p) in paths.iter().enumerate() {
        n.env.create_svc(
            p,
            &[
                &slow_web(&format!("web{}", i + 1), 1),
                &format!("container#0.ports={}:80", free_port()),
                "container#0.service_name=rolled",
                &format!("container#0.ingress_hosts={host}"),
                "container#0.ingress_balance=leastconn",
            ],
        );
        n.env.ok(&[p, "start"]);
    }
    wait_until("3 instances in rotation", 30, || {
        in_rotation(&n, &host) == 3
    });
    assert_eq!(route_of(&n, &host)["balance"], "leastconn");

    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (ingress, loop_host, stop) = (n.ingress, host.clone(), done.clone());
    let load = std::thread::spawn(move || {
        let (mut sent, mut failed) = (0, Vec::new());
        let t0 = Instant::now();
        // Batches of 50 POSTs, which the ingress never retries, on one
        // keep-alive connection, a slow one among them, until the
        // restarts are done: bounded in count and time.
        for _ in 0..400 {
            if stop.load(std::sync::atomic::Ordering::Relaxed)
                || t0.elapsed() > Duration::from_secs(120)
            {
                break;
            }
            let mut args = vec![
                "-s".to_string(),
                "-m".into(),
                "20".into(),
                "-d".into(),
                "x".into(),
            ];
            args.extend(["-w".into(), "%{http_code}\n".into(), "-H".into()]);
            args.push(format!("Host: {loop_host}"));
            for i in 0..50 {
                let target = if i == 0 { "slow" } else { "ok" };
                args.extend(["-o".into(), "/dev/null".into()]);
                args.push(format!("http://127.0.0.1:{ingress}/cgi-bin/{target}"));
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
    for p in &paths {
        n.env.ok(&[p, "stop"]);
        n.env.ok(&[p, "start"]);
        wait_until("the restarted instance back in rotation", 30, || {
            in_rotation(&n, &host) == 3
        });
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let (sent, failed) = load.join().expect("load thread");
    assert!(sent >= 50, "only {sent} requests were sent");
    assert!(
        failed.is_empty(),
        "{} of {sent} failed: {failed:?}",
        failed.len()
    );
}

/// haproxy in TCP mode in front of the ingress: one port sends PROXY v1,
/// the other v2. Killed, and its config removed, when dropped.
struct Haproxy(Child, #[allow(dead_code)] tempfile::TempDir);

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn haproxy(v1: u16, v2: u16, ingress: u16) -> Haproxy {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("haproxy.cfg");
    std::fs::write(
        &cfg,
        format!(
            "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n\
             frontend v1\n  bind 127.0.0.1:{v1}\n  default_backend b1\n\
             backend b1\n  server s 127.0.0.1:{ingress} send-proxy\n\
             frontend v2\n  bind 127.0.0.1:{v2}\n  default_backend b2\n\
             backend b2\n  server s 127.0.0.1:{ingress} send-proxy-v2\n"
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

#[test]
fn the_client_address_comes_through_the_proxy_protocol_from_trusted_peers_only() {
    let (http, ingress, metrics) = (free_port(), free_port(), free_port());
    let log = tempfile::NamedTempFile::new().expect("log file");
    let log_path = log.path().to_string_lossy().to_string();
    let n = Node {
        env: Env::start_with(&[
            "--consul-addr",
            &format!("127.0.0.1:{http}"),
            "--dns-addr",
            "none",
            "--ingress-http",
            &format!("127.0.0.1:{ingress}"),
            "--ingress-trusted-proxies",
            "127.0.0.1/32,192.0.2.0/24",
            "--ingress-access-log",
            &log_path,
            "--metrics-addr",
            &format!("127.0.0.1:{metrics}"),
        ]),
        http,
        ingress,
    };
    let svc = unique("pp");
    let host = format!("{svc}.test");
    let port = free_port();
    let _be = backend(port, "pp");
    register(&n, &format!("{svc}-1"), &svc, port, &host, "");
    wait_until("the route", 10, || get(&n, &host, "/", &[]).0 == 200);
    let (v1, v2) = (free_port(), free_port());
    let _hap = haproxy(v1, v2, ingress);

    // curl from 127.0.0.5 and 127.0.0.6, through haproxy: the address
    // haproxy saw is the one the backend gets.
    for (port, from) in [(v1, "127.0.0.5"), (v2, "127.0.0.6")] {
        let (code, body) = get_at(port, &host, "/pp", &["--interface", from]);
        assert_eq!(code, 200, "{body}");
        let v = json(&body);
        assert_eq!(v["xff"], serde_json::json!([from]), "{v}");
        assert_eq!(
            v["forwarded"],
            format!("for={from};proto=http;host=\"{host}\"")
        );
    }
    // A trusted peer that forwards HTTP itself: its X-Forwarded-For is
    // extended, not replaced.
    let (_, body) = get(&n, &host, "/", &["-H", "X-Forwarded-For: 198.51.100.7"]);
    assert_eq!(
        json(&body)["xff"],
        serde_json::json!(["198.51.100.7, 127.0.0.1"])
    );
    // An untrusted peer's PROXY header is not read: the request is
    // malformed (curl's --haproxy-protocol sends v1), and its forwarding
    // headers are replaced.
    // hyper answers 400 and closes with the rest of the request unread, so
    // the client may see the reset before the answer.
    let (code, _) = get(
        &n,
        &host,
        "/",
        &["--interface", "127.0.0.9", "--haproxy-protocol"],
    );
    assert!(
        matches!(code, 400 | 0),
        "an untrusted PROXY header got {code}"
    );
    let (code, body) = get(
        &n,
        &host,
        "/",
        &["--interface", "127.0.0.1", "--haproxy-protocol"],
    );
    assert_eq!(
        (code, json(&body)["xff"].clone()),
        (200, serde_json::json!(["127.0.0.1"]))
    );
    let (_, body) = get(
        &n,
        &host,
        "/",
        &["--interface", "127.0.0.9", "-H", "X-Forwarded-For: 6.6.6.6"],
    );
    assert_eq!(json(&body)["xff"], serde_json::json!(["127.0.0.9"]));

    // A header block over the limit: 431.
    let big = format!("X-Big: {}", "a".repeat(70 << 10));
    let (code, _) = get(&n, &host, "/", &["-H", &big]);
    assert_eq!(code, 431);

    // The access log, in the combined format, one line per request.
    wait_until("the access log lines", 10, || {
        std::fs::read_to_string(log.path()).is_ok_and(|t| t.contains("\"GET /pp HTTP/1.1\" 200"))
    });
    let text = std::fs::read_to_string(log.path()).expect("log");
    let line = text
        .lines()
        .find(|l| l.starts_with("127.0.0.5 - - ["))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        combined_log_line(line),
        "not the combined log format: {line}"
    );
    assert!(line.contains("\"GET /pp HTTP/1.1\" 200 "), "{line}");
    assert!(
        line.ends_with("\"-\" \"curl/") || line.contains("\"-\" \"curl/"),
        "{line}"
    );

    // /metrics, read by Prometheus's reference Python parser.
    let page = Command::new("curl")
        .args(["-s", "-f", &format!("http://127.0.0.1:{metrics}/metrics")])
        .output()
        .expect("curl");
    assert!(page.status.success(), "{page:?}");
    let python =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/py-clients/bin/python");
    assert!(python.exists(), "run scripts/py-clients");
    let mut parse = Command::new(python)
        .arg(py("prom_parse.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python");
    parse
        .stdin
        .take()
        .expect("stdin")
        .write_all(&page.stdout)
        .expect("page");
    let out = parse.wait_with_output().expect("parse");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&page.stdout)
    );
    let samples: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json");
    let route = format!("{host}/");
    let of = |name: &str, code: Option<&str>| -> f64 {
        samples
            .iter()
            .filter(|s| s["name"] == name && s["labels"]["route"] == route.as_str())
            .filter(|s| code.is_none_or(|c| s["labels"]["code"] == c))
            .filter_map(|s| s["value"].as_f64())
            .sum()
    };
    let ok = of("berth_ingress_requests_total", Some("200"));
    let all = of("berth_ingress_requests_total", None);
    let count = of("berth_ingress_request_duration_seconds_count", None);
    assert!(ok >= 5.0, "{ok} 200s in {samples:?}");
    assert_eq!(count, all, "the histogram counts every request");
    assert!(samples
        .iter()
        .any(|s| s["name"] == "berth_raft_applied_index"));
}

/// `IP - - [02/Dec/2026:13:55:36 +0000] "GET /p HTTP/1.1" 200 12 "-" "curl/7.88.1"`.
fn combined_log_line(line: &str) -> bool {
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
fn self_signed(dir: &std::path::Path, stem: &str, host: &str) -> (PathBuf, PathBuf) {
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
fn get_tls(port: u16, host: &str, ca: &std::path::Path, extra: &[&str]) -> (u16, String, String) {
    let out = Command::new("curl")
        .args(["-s", "-m", "10", "-w", "\n%{http_code} %{http_version}"])
        .arg("--cacert")
        .arg(ca)
        .args(["--resolve", &format!("{host}:{port}:127.0.0.1")])
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

#[test]
fn tls_picks_each_hosts_certificate_by_sni_offers_h2_and_reloads_a_changed_one() {
    let https = free_port();
    let env = Env::start_with(&[
        "--consul-addr",
        "none",
        "--dns-addr",
        "none",
        "--ingress-https",
        &format!("127.0.0.1:{https}"),
    ]);
    let certs = tempfile::tempdir().expect("tempdir");
    let ns = unique("tls");
    let hosts = [format!("a.{ns}.test"), format!("b.{ns}.test")];
    let mut files = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        let (cert, key) = self_signed(certs.path(), &format!("h{i}"), host);
        let path = format!("{ns}/web{i}");
        env.create_svc(
            &path,
            &[
                &format!(
                    r#"container#0.command=/bin/sh -c "mkdir -p /www && echo tls{i} > /www/index.html && exec /bin/busybox httpd -f -p 80 -h /www""#
                ),
                &format!("container#0.ports={}:80", free_port()),
                &format!("container#0.ingress_hosts={host}"),
                &format!("container#0.ingress_tls_cert={}", cert.display()),
                &format!("container#0.ingress_tls_key={}", key.display()),
            ],
        );
        env.ok(&[&path, "start"]);
        files.push((cert, key));
    }
    // A certificate without its key is refused at write time.
    let half = env.berth(&[
        &format!("{ns}/web0"),
        "unset",
        "--kw",
        "container#0.ingress_tls_key",
    ]);
    assert_eq!(half.status.code(), Some(2), "{half:?}");
    for (i, host) in hosts.iter().enumerate() {
        wait_until("the TLS route", 20, || {
            get_tls(https, host, &files[i].0, &[]).0 == 200
        });
        let (code, version, body) = get_tls(https, host, &files[i].0, &["--http2"]);
        assert_eq!(
            (code, version.as_str(), body.as_str()),
            (200, "2", format!("tls{i}\n").as_str())
        );
        let (_, version, _) = get_tls(https, host, &files[i].0, &["--http1.1"]);
        assert_eq!(version, "1.1");
        // The other host's certificate does not verify for this name.
        assert_eq!(get_tls(https, host, &files[1 - i].0, &[]).0, 0);
    }
    // An unknown name gets no certificate, so no handshake.
    let stranger = format!("c.{ns}.test");
    assert_eq!(get_tls(https, &stranger, &files[0].0, &["-k"]).0, 0);

    // A renewed certificate is served without a restart.
    let (new_cert, new_key) = self_signed(certs.path(), "renewed", &hosts[0]);
    assert_eq!(get_tls(https, &hosts[0], &new_cert, &[]).0, 0);
    std::fs::rename(&new_key, &files[0].1).expect("key in place");
    std::fs::copy(&new_cert, &files[0].0).expect("cert in place");
    wait_until("the renewed certificate", 10, || {
        get_tls(https, &hosts[0], &new_cert, &[]).0 == 200
    });
}
