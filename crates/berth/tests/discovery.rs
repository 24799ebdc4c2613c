//! The catalog, DNS and the registrator on one node: real clients only
//! (py-consul, dig, dnsmasq as the recursor, docker run for registrator
//! metadata).

mod common;

use common::{docker, free_port, unique, Env, IMAGE};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A UDP port that is also free on TCP.
fn free_dual_port() -> u16 {
    loop {
        let p = free_port();
        if std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

struct Node {
    env: Env,
    http: u16,
    dns: u16,
}

fn node(extra: &[&str]) -> Node {
    let (http, dns) = (free_port(), free_dual_port());
    let (h, d) = (format!("127.0.0.1:{http}"), format!("127.0.0.1:{dns}"));
    let mut args = vec!["--consul-addr", &h, "--dns-addr", &d];
    args.extend_from_slice(extra);
    Node {
        env: Env::start_with(&args),
        http,
        dns,
    }
}

fn wait_until(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn curl(port: u16, method: &str, path: &str, body: Option<&str>) -> String {
    let mut c = Command::new("curl");
    c.args(["-s", "-X", method]);
    if let Some(b) = body {
        c.args(["--data-binary", b]);
    }
    let out = c
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn dig(n: &Node, args: &[&str]) -> String {
    let out = Command::new("dig")
        .args([
            "@127.0.0.1",
            "-p",
            &n.dns.to_string(),
            "+time=2",
            "+tries=1",
        ])
        .args(args)
        .output()
        .expect("dig (bind9-dnsutils)");
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn short(n: &Node, args: &[&str]) -> Vec<String> {
    let mut a = vec!["+short"];
    a.extend_from_slice(args);
    let mut v: Vec<String> = dig(n, &a).lines().map(str::to_string).collect();
    v.sort();
    v
}

fn register(n: &Node, node: &str, addr: &str, id: &str, name: &str, tags: &[&str], port: u16) {
    let tags: Vec<String> = tags.iter().map(|t| format!("{t:?}")).collect();
    let body = format!(
        r#"{{"Node":"{node}","Address":"{addr}","Service":{{"ID":"{id}","Service":"{name}","Tags":[{}],"Port":{port}}}}}"#,
        tags.join(",")
    );
    assert_eq!(
        curl(n.http, "PUT", "/v1/catalog/register", Some(&body)).trim(),
        "true"
    );
}

#[test]
fn dig_gets_a_srv_tags_nxdomain_and_truncation_as_from_consul() {
    let n = node(&[]);
    let svc = unique("web");
    register(&n, "ext1", "10.9.0.1", "w1", &svc, &["v1"], 8081);
    register(&n, "ext2", "10.9.0.2", "w2", &svc, &["v2"], 8082);
    let a = short(&n, &[&format!("{svc}.service.berth"), "A"]);
    assert_eq!(a, ["10.9.0.1", "10.9.0.2"]);
    // Case does not matter.
    assert_eq!(
        short(&n, &[&format!("{}.SERVICE.Berth", svc.to_uppercase()), "A"]),
        a
    );
    assert_eq!(
        short(&n, &[&format!("v2.{svc}.service.berth")]),
        ["10.9.0.2"]
    );
    let srv = dig(&n, &[&format!("_{svc}._tcp.service.berth"), "SRV"]);
    assert!(srv.contains("1 1 8081 ext1.node.berth."), "{srv}");
    assert!(srv.contains("1 1 8082 ext2.node.berth."), "{srv}");
    let additional = srv.split("ADDITIONAL SECTION:").nth(1).unwrap_or_default();
    assert!(
        additional.contains("ext1.node.berth.") && additional.contains("10.9.0.1"),
        "{srv}"
    );
    assert_eq!(
        short(&n, &[&format!("_{svc}._v1.service.berth"), "SRV"]),
        ["1 1 8081 ext1.node.berth."]
    );
    assert_eq!(short(&n, &["ext2.node.berth"]), ["10.9.0.2"]);
    let nx = dig(&n, &["nothing-here.service.berth"]);
    assert!(
        nx.contains("status: NXDOMAIN") && nx.contains("flags: qr aa"),
        "{nx}"
    );
    assert!(
        nx.split("AUTHORITY SECTION:")
            .nth(1)
            .is_some_and(|a| a.contains("SOA")),
        "{nx}"
    );
    // The name exists, not with this type: empty, authoritative, with SOA.
    let empty = dig(&n, &[&format!("{svc}.service.berth"), "AAAA"]);
    assert!(
        empty.contains("status: NOERROR") && empty.contains("ANSWER: 0") && empty.contains("SOA"),
        "{empty}"
    );

    // Forty instances: cut to 512 bytes over UDP without EDNS, with TC;
    // whole over TCP.
    let many = unique("many");
    for i in 0..40 {
        register(
            &n,
            &format!("m{i}"),
            &format!("10.8.0.{}", i + 1),
            &format!("m{i}"),
            &many,
            &[],
            80,
        );
    }
    let udp = dig(
        &n,
        &["+noedns", "+ignore", &format!("{many}.service.berth")],
    );
    assert!(udp.contains(" tc ") || udp.contains(" tc;"), "{udp}");
    let size: usize = udp
        .lines()
        .find_map(|l| l.strip_prefix(";; MSG SIZE  rcvd: "))
        .and_then(|s| s.trim().parse().ok())
        .expect("a size");
    assert!(size <= 512, "{size} bytes over UDP without EDNS");
    assert_eq!(
        short(&n, &["+tcp", &format!("{many}.service.berth")]).len(),
        40
    );
}

/// A dnsmasq on 127.0.0.1:`port` answering `upstream.test` names with `addr`.
fn upstream(port: u16, addr: &str) -> Child {
    Command::new("dnsmasq")
        .args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            "--user=root",
            &format!("--port={port}"),
            &format!("--address=/upstream.test/{addr}"),
        ])
        .stderr(Stdio::null())
        .spawn()
        .expect("dnsmasq")
}

#[test]
fn other_names_go_to_the_recursor() {
    let port = free_dual_port();
    let mut dnsmasq = upstream(port, "10.7.7.7");
    let recursor = format!("127.0.0.1:{port}");
    let n = node(&["--dns-recursor", &recursor]);
    let answer = short(&n, &["www.upstream.test"]);
    let _ = dnsmasq.kill();
    let _ = dnsmasq.wait();
    assert_eq!(answer, ["10.7.7.7"]);
}

#[test]
fn malformed_packets_are_ignored_and_serving_goes_on() {
    let n = node(&[]);
    let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
    for junk in [
        &b""[..],
        b"\x00",
        b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
        &[0u8; 600],
    ] {
        let _ = s.send_to(junk, ("127.0.0.1", n.dns));
    }
    register(&n, "ext", "10.9.9.9", "x", "after-junk", &[], 1);
    assert_eq!(short(&n, &["after-junk.service.berth"]), ["10.9.9.9"]);
}

/// Removes the container even when the test fails.
struct Removed(String);

impl Drop for Removed {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.0]);
    }
}

#[test]
fn a_docker_run_with_service_metadata_is_registered_and_removed() {
    let n = node(&[]);
    let name = unique("reg");
    let _gone = Removed(name.clone());
    let svc = unique("regsvc");
    let hostport = free_port();
    let out = docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "-l",
        &format!("SERVICE_NAME={svc}"),
        "-e",
        "SERVICE_TAGS=blue",
        "-p",
        &format!("127.0.0.1:{hostport}:80"),
        IMAGE,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let q = format!("{svc}.service.berth");
    wait_until("the container in DNS", 10, || {
        short(&n, &[&q]) == ["127.0.0.1"]
    });
    let cat = curl(n.http, "GET", &format!("/v1/catalog/service/{svc}"), None);
    assert!(
        cat.contains(&format!("\"ServicePort\":{hostport}")) && cat.contains("blue"),
        "{cat}"
    );
    assert!(
        cat.contains(&format!(":{name}:80")),
        "the id is node:container:port: {cat}"
    );
    let _ = docker(&["rm", "-f", &name]);
    wait_until("the container out of DNS", 10, || {
        dig(&n, &[&q]).contains("NXDOMAIN")
    });
}

#[test]
fn a_berth_service_is_registered_under_its_service_name() {
    let n = node(&[]);
    let path = format!("{}/web", unique("disc"));
    let svc = unique("berthweb");
    n.env.create_svc(
        &path,
        &[
            &format!("container#0.service_name={svc}"),
            "container#0.service_tags=edge",
        ],
    );
    n.env.ok(&[&path, "start"]);
    let q = format!("{svc}.service.berth");
    wait_until("the berth service in DNS", 20, || {
        !short(&n, &[&q]).is_empty()
    });
    assert!(!short(&n, &[&format!("edge.{svc}.service.berth")]).is_empty());
    // The same catalog through berth's own CLI.
    let list = n.env.json(&["catalog", "services"]);
    let entry = list["services"]
        .as_array()
        .and_then(|v| v.iter().find(|s| s["name"] == svc.as_str()))
        .unwrap_or_else(|| panic!("{list:#}"))
        .clone();
    assert_eq!(
        (entry["instances"].as_u64(), entry["passing"].as_u64()),
        (Some(1), Some(1)),
        "{entry}"
    );
    let inst = n.env.json(&["catalog", "service", &svc, "--tag", "edge"]);
    assert_eq!(inst["instances"][0]["path"], path.as_str(), "{inst:#}");
    let none = n.env.berth(&["catalog", "service", &svc, "--tag", "nope"]);
    assert_eq!(none.status.code(), Some(1), "{none:?}");
    let (ns, name) = path.split_once('/').expect("ns/name");
    assert_eq!(
        short(&n, &[&format!("{name}.{ns}.svc.berth")]),
        short(&n, &[&q])
    );
    n.env.ok(&[&path, "stop"]);
    wait_until("the stopped service out of DNS", 20, || {
        dig(&n, &[&q]).contains("NXDOMAIN")
    });
}

#[test]
fn py_consul_registers_services_with_checks_and_reads_health() {
    let n = node(&[]);
    let python =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/py-clients/bin/python");
    assert!(python.exists(), "run scripts/py-clients");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/consul_catalog.py");
    let out = Command::new(python)
        .arg(script)
        .args([
            "127.0.0.1",
            &n.http.to_string(),
            &unique("py"),
            &n.dns.to_string(),
        ])
        .output()
        .expect("python");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ok"),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_service_critical_past_deregister_critical_service_after_is_deregistered() {
    let n = node(&[]);
    let svc = unique("doomed");
    // A TCP check on a port nothing listens on: critical from the start.
    let closed = free_port();
    let body = format!(
        r#"{{"Name":"{svc}","Port":1,"Check":{{"TCP":"127.0.0.1:{closed}","Interval":"1s","DeregisterCriticalServiceAfter":"1m"}}}}"#
    );
    curl(n.http, "PUT", "/v1/agent/service/register", Some(&body));
    let path = format!("/v1/catalog/service/{svc}");
    assert!(curl(n.http, "GET", &path, None).contains(&svc));
    wait_until("the check to turn critical", 10, || {
        curl(n.http, "GET", &format!("/v1/health/checks/{svc}"), None).contains("critical")
    });
    // Consul's minimum is a minute: still there well before it.
    std::thread::sleep(Duration::from_secs(20));
    assert!(
        curl(n.http, "GET", &path, None).contains(&svc),
        "deregistered too early"
    );
    wait_until("the deregistration", 90, || {
        curl(n.http, "GET", &path, None).trim() == "[]"
    });
}

#[test]
fn a_container_with_dns_berth_resolves_services_and_outside_names() {
    let port = free_dual_port();
    let mut dnsmasq = upstream(port, "10.7.7.8");
    let recursor = format!("127.0.0.1:{port}");
    let mut n = node(&["--dns-recursor", &recursor]);
    let ns = unique("dnsb");
    let svc = unique("dnsbweb");
    let (web, client) = (format!("{ns}/web"), format!("{ns}/client"));
    n.env
        .create_svc(&web, &[&format!("container#0.service_name={svc}")]);
    n.env.create_svc(&client, &["container#0.dns_berth=true"]);
    // A nameserver needs a bridge: refused at write time, nothing written.
    let refused = n
        .env
        .berth(&[&client, "set", "--kw", "container#0.netns=host"]);
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("dns_berth"));
    assert!(n
        .env
        .fails(&[&client, "get", "--kw", "container#0.netns"])
        .contains("not set"));

    n.env.ok(&[&web, "start"]);
    n.env.ok(&[&client, "start"]);
    let name = format!("{ns}..client.container.0");
    let resolv = docker(&["exec", &name, "cat", "/etc/resolv.conf"]);
    let resolv = String::from_utf8_lossy(&resolv.stdout).to_string();
    let gw = docker(&[
        "network",
        "inspect",
        "bridge",
        "-f",
        "{{range .IPAM.Config}}{{.Gateway}}{{end}}",
    ]);
    let mut gw = String::from_utf8_lossy(&gw.stdout).trim().to_string();
    if gw.is_empty() {
        // No gateway in the IPAM config (docker0 set up by bip): the
        // bridge interface's own address is the gateway.
        let out = Command::new("ip")
            .args(["-4", "-o", "addr", "show", "docker0"])
            .output()
            .expect("ip");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        gw = text
            .split_whitespace()
            .skip_while(|w| *w != "inet")
            .nth(1)
            .and_then(|a| a.split('/').next())
            .unwrap_or_default()
            .to_string();
    }
    let servers: Vec<&str> = resolv
        .lines()
        .filter_map(|l| l.strip_prefix("nameserver "))
        .collect();
    assert_eq!(servers, [gw.as_str()], "{resolv}");
    let lookup = |q: &str| {
        let out = docker(&["exec", &name, "/bin/busybox", "nslookup", q]);
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let q = format!("{svc}.service.berth");
    wait_until("the service in DNS", 20, || !short(&n, &[&q]).is_empty());
    let want = short(&n, &[&q]);
    let got = lookup(&q);
    for ip in &want {
        assert!(
            got.contains(&format!("Address: {ip}")),
            "{got}\nwant {want:?}"
        );
    }
    // A daemon restart leaves the container running, and it resolves again.
    let id = || {
        let out = docker(&["inspect", "-f", "{{.Id}} {{.State.StartedAt}}", &name]);
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let before = id();
    n.env.stop_daemon();
    n.env.start_daemon();
    wait_until("resolving after a daemon restart", 20, || {
        lookup(&q).contains(&format!("Address: {}", want[0]))
    });
    assert_eq!(id(), before, "the container was recreated or restarted");
    let outside = lookup("www.upstream.test");
    let _ = dnsmasq.kill();
    let _ = dnsmasq.wait();
    assert!(outside.contains("10.7.7.8"), "{outside}");
    n.env.ok(&[&client, "stop"]);
    n.env.ok(&[&web, "stop"]);
}
