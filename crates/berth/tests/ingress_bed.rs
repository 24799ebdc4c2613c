//! The ingress and the TCP mesh across nodes, on the netns bed: every
//! node's ingress serves instances that run on other nodes, a node crash
//! during a request loop fails no idempotent request, a mesh port
//! published by one instance answers on every node, TLS picks each host's
//! certificate, a WebSocket outlives a route change, the client's address
//! comes through directly and through haproxy's PROXY protocol, and a
//! rolling stop across the nodes fails no request.

mod common;
mod ingress_util;
use common::testbed::{Node, Testbed};
use common::wait_until;
use common::{free_port, unique, IMAGE};
use ingress_util as iu;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::Command;
use std::process::Stdio;
use std::time::{Duration, Instant};

const INGRESS: u16 = 8080;

fn create(node: &Node, path: &str, extra: &[&str]) {
    let image = format!("container#0.image={IMAGE}");
    let mut args = vec!["create", path, "--kw", &image];
    for kw in extra {
        args.extend_from_slice(&["--kw", kw]);
    }
    node.ok(&args);
}

/// Status and body of a GET to `addr:port` with `Host: host`.
fn get(addr: &str, port: u16, host: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-m", "10", "-w", "\n%{http_code}", "-H"])
        .arg(format!("Host: {host}"))
        .arg(format!("http://{addr}:{port}/"))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn runners(bed: &Testbed, name: &str) -> Vec<usize> {
    (0..bed.nodes.len())
        .filter(|i| bed.nodes[*i].running().iter().any(|c| c == name))
        .collect()
}

/// A busybox httpd answering with its container's hostname.
const WHO: &str = r#"container#0.command=/bin/sh -c "mkdir -p /www && hostname > /www/index.html && exec /bin/busybox httpd -f -p 80 -h /www""#;

#[test]
fn every_nodes_ingress_and_mesh_reach_instances_on_other_nodes_through_a_crash() {
    let mut bed = Testbed::with_args(3, &["--ingress-http", &format!("{{addr}}:{INGRESS}")]);
    bed.form_cluster(1);
    let ns = unique("ibed");
    let host = format!("{ns}.test");
    let n0 = &bed.nodes[0];
    create(
        n0,
        &format!("{ns}/web"),
        &[
            "topology=flex",
            "flex_target=2",
            WHO,
            "container#0.ports=8081:80",
            &format!("container#0.ingress_hosts={host}"),
            "container#0.stop_timeout=1s",
        ],
    );
    create(
        n0,
        &format!("{ns}/tcp"),
        &[
            WHO,
            "container#0.ports=9090:80",
            "container#0.mesh=true",
            "container#0.stop_timeout=1s",
        ],
    );
    n0.ok(&[&format!("{ns}/web"), "start"]);
    n0.ok(&[&format!("{ns}/tcp"), "start"]);
    let web = format!("{ns}..web.container.0");
    wait_until("two instances on two nodes", 60, || {
        runners(&bed, &web).len() == 2
    });
    let on = runners(&bed, &web);
    let third = (0..3)
        .find(|i| !on.contains(i))
        .expect("a node without one");
    let third_addr = bed.nodes[third].addr.clone();

    // The third node serves both instances, which run elsewhere.
    let mut seen = BTreeSet::new();
    wait_until("both instances through the third node", 30, || {
        let (code, body) = get(&third_addr, INGRESS, &host);
        if code == 200 {
            seen.insert(body);
        }
        seen.len() == 2
    });

    // The mesh port of the single tcp instance answers on every node.
    let tcp = format!("{ns}..tcp.container.0");
    wait_until("the tcp instance", 60, || runners(&bed, &tcp).len() == 1);
    let owner = runners(&bed, &tcp)[0];
    for n in &bed.nodes {
        wait_until("the mesh port on every node", 30, || {
            get(&n.addr, 9090, "x").0 == 200
        });
    }
    let published = bed.nodes[owner].docker(&["port", &tcp, "80/tcp"]);
    let published = String::from_utf8_lossy(&published.stdout).to_string();
    assert!(
        !published.contains(":9090"),
        "docker holds the mesh port: {published}"
    );

    // A node with an instance crashes while requests go through the
    // third one: idempotent requests never fail.
    let victim = on[0];
    let (addr, h) = (third_addr.clone(), host.clone());
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let killed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(usize::MAX));
    let (sent_in, killed_in) = (sent.clone(), killed.clone());
    let load = std::thread::spawn(move || {
        use std::sync::atomic::Ordering::SeqCst;
        let mut failed = Vec::new();
        let t0 = Instant::now();
        // Until 200 requests after the crash: bounded in count and time.
        while sent_in.load(SeqCst) < killed_in.load(SeqCst).saturating_add(200)
            && sent_in.load(SeqCst) < 3000
            && t0.elapsed() < Duration::from_secs(90)
        {
            let (code, body) = get(&addr, INGRESS, &h);
            if code != 200 {
                failed.push(format!("{code} {}", body.trim()));
            }
            sent_in.fetch_add(1, SeqCst);
        }
        failed
    });
    wait_until("requests under way", 30, || {
        sent.load(std::sync::atomic::Ordering::SeqCst) >= 20
    });
    bed.kill(victim);
    killed.store(
        sent.load(std::sync::atomic::Ordering::SeqCst),
        std::sync::atomic::Ordering::SeqCst,
    );
    let failed = load.join().expect("load");
    let total = sent.load(std::sync::atomic::Ordering::SeqCst);
    assert!(total >= 220, "only {total} requests");
    assert!(
        failed.is_empty(),
        "{} of {total} failed: {failed:?}",
        failed.len()
    );
}

/// Registers a service through `node`'s Consul API, routed for `host`.
fn register(node: &Node, name: &str, port: u16, host: &str) {
    let body = format!(
        r#"{{"ID":"{name}","Name":"{name}","Address":"{}","Port":{port},"Tags":["dns={host}"]}}"#,
        node.addr
    );
    let out = node
        .nsenter("curl")
        .args(["-s", "-f", "-X", "PUT", "--data-binary", &body])
        .arg("http://127.0.0.1:8500/v1/agent/service/register")
        .output()
        .expect("curl");
    assert!(out.status.success(), "register {name}: {out:?}");
}

/// The JSON a backend saw, through `addr:port` for `host`.
fn seen(addr: &str, port: u16, host: &str, extra: &[&str]) -> serde_json::Value {
    let out = Command::new("curl")
        .args(["-s", "-f", "-m", "10", "-H", &format!("Host: {host}")])
        .args(extra)
        .arg(format!("http://{addr}:{port}/"))
        .output()
        .expect("curl");
    iu::json(&String::from_utf8_lossy(&out.stdout))
}

fn in_rotation(node: &Node, host: &str) -> usize {
    iu::rotation_of(&iu::route_in(&node.json(&["ingress", "routes"]), host))
}

#[test]
fn tls_websockets_client_addresses_and_a_rolling_stop_across_nodes() {
    let bed = Testbed::with_args(
        3,
        &[
            "--ingress-http",
            &format!("{{addr}}:{INGRESS}"),
            "--ingress-https",
            "{addr}:8443",
            "--ingress-trusted-proxies",
            "{gateway}/32",
        ],
    );
    bed.form_cluster(1);
    let ns = unique("iedge");
    let (a, b) = (format!("a.{ns}.test"), format!("b.{ns}.test"));
    let certs = tempfile::tempdir().expect("tempdir");
    let (cert_a, key_a) = iu::self_signed(certs.path(), "a", &a);
    let (cert_b, key_b) = iu::self_signed(certs.path(), "b", &b);
    let tls = |cert: &std::path::Path, key: &std::path::Path| {
        [
            format!("container#0.ingress_tls_cert={}", cert.display()),
            format!("container#0.ingress_tls_key={}", key.display()),
        ]
    };
    let n0 = &bed.nodes[0];
    let [ca, ka] = tls(&cert_a, &key_a);
    create(
        n0,
        &format!("{ns}/web"),
        &[
            "topology=flex",
            "flex_target=3",
            &iu::slow_web("web", 1),
            "container#0.ports=8081:80",
            &format!("container#0.ingress_hosts={a}"),
            "container#0.stop_timeout=5s",
            &ca,
            &ka,
        ],
    );
    let [cb, kb] = tls(&cert_b, &key_b);
    create(
        n0,
        &format!("{ns}/other"),
        &[
            WHO,
            "container#0.ports=8082:80",
            &format!("container#0.ingress_hosts={b}"),
            &cb,
            &kb,
        ],
    );
    let web = format!("{ns}/web");
    n0.ok(&[&web, "start"]);
    n0.ok(&[&format!("{ns}/other"), "start"]);
    wait_until("three web instances in rotation", 90, || {
        in_rotation(n0, &a) == 3
    });

    // TLS on another node than the `other` instance's: each host gets its
    // own certificate, by SNI.
    let other = format!("{ns}..other.container.0");
    wait_until("the other instance", 60, || {
        runners(&bed, &other).len() == 1
    });
    let far = (runners(&bed, &other)[0] + 1) % 3;
    let far_addr = bed.nodes[far].addr.clone();
    wait_until("both hosts over TLS", 30, || {
        iu::get_tls_at(&far_addr, 8443, &a, &cert_a, &[]).0 == 200
            && iu::get_tls_at(&far_addr, 8443, &b, &cert_b, &[]).0 == 200
    });
    assert_eq!(
        iu::get_tls_at(&far_addr, 8443, &a, &cert_a, &[]).2.trim(),
        "web"
    );
    assert_eq!(iu::get_tls_at(&far_addr, 8443, &b, &cert_a, &[]).0, 0);

    // A backend on node 1, reached through node 2: the client's address,
    // directly and through haproxy's PROXY v2 from 127.0.0.5.
    let (n1, n2) = (&bed.nodes[1], &bed.nodes[2]);
    let mut cmd = n1.nsenter("python3");
    cmd.arg(iu::py("ingress_backend.py"))
        .args(["9000", "echo", "0.0.0.0"]);
    let _echo = iu::backend_from(cmd);
    let echo = format!("echo.{ns}.test");
    register(n1, &format!("{ns}-echo"), 9000, &echo);
    wait_until("the echo route on node 2", 10, || {
        get(&n2.addr, INGRESS, &echo).0 == 200
    });
    let direct = seen(&n2.addr, INGRESS, &echo, &[]);
    assert_eq!(direct["xff"], serde_json::json!([bed.gateway]), "{direct}");
    let (v1, v2) = (free_port(), free_port());
    let _hap = iu::haproxy_to(v1, v2, &format!("{}:{INGRESS}", n2.addr));
    let proxied = seen("127.0.0.1", v2, &echo, &["--interface", "127.0.0.5"]);
    assert_eq!(
        proxied["xff"],
        serde_json::json!(["127.0.0.5"]),
        "{proxied}"
    );

    // A WebSocket to node 1's echo server, through node 2, stays open
    // while a route is added.
    let python = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/py-clients/bin/python");
    assert!(python.exists(), "run scripts/py-clients");
    let mut cmd = n1.nsenter(&python.display().to_string());
    cmd.arg(iu::py("ws_echo.py")).args(["0.0.0.0", "9001"]);
    let _ws_server = iu::backend_from(cmd);
    let ws = format!("ws.{ns}.test");
    register(n1, &format!("{ns}-ws"), 9001, &ws);
    wait_until("the ws route on node 2", 10, || in_rotation(n2, &ws) == 1);
    let mut client = Command::new(&python)
        .arg(iu::py("ws_client.py"))
        .args([&n2.addr, &INGRESS.to_string(), &ws])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("ws client");
    let mut lines = BufReader::new(client.stdout.take().expect("stdout")).lines();
    assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("open"));
    let late = format!("late.{ns}.test");
    register(n1, &format!("{ns}-late"), 9000, &late);
    wait_until("the added route on node 2", 10, || {
        get(&n2.addr, INGRESS, &late).0 == 200
    });
    writeln!(client.stdin.as_mut().expect("stdin")).expect("go on");
    assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("ok"));
    assert!(client.wait().expect("wait").success());

    // A rolling stop, node by node, of the three web instances while POSTs
    // go through node 0: none fails.
    let load = iu::PostLoop::start(bed.nodes[0].addr.clone(), INGRESS, a.clone());
    for node in &bed.nodes {
        node.ok(&[&web, "stop", "--local"]);
        wait_until("the stopped instance out of rotation", 30, || {
            in_rotation(&bed.nodes[0], &a) == 2
        });
        node.ok(&[&web, "start", "--local"]);
        wait_until("the instance back in rotation", 60, || {
            in_rotation(&bed.nodes[0], &a) == 3
        });
    }
    load.assert_none_failed();
}
