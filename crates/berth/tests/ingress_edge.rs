//! The ingress's edges on one node: the PROXY protocol from trusted peers
//! (haproxy, curl), header limits, the access log and /metrics (read by
//! Prometheus's Python parser), TLS with SNI and h2 (curl, openssl), and
//! the TCP mesh.

mod common;
mod ingress_util;

use common::{free_port, unique, Env};
use ingress_util::*;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

#[test]
fn the_client_address_comes_through_the_proxy_protocol_from_trusted_peers_only() {
    let metrics = free_port();
    let log = tempfile::NamedTempFile::new().expect("log file");
    let log_path = log.path().to_string_lossy().to_string();
    let n = node_with(&[
        "--ingress-trusted-proxies",
        "127.0.0.1/32,192.0.2.0/24",
        "--ingress-access-log",
        &log_path,
        "--metrics-addr",
        &format!("127.0.0.1:{metrics}"),
    ]);
    let (_be, host) = routed_backend(&n, "pp");
    let (v1, v2) = (free_port(), free_port());
    let _hap = haproxy(v1, v2, n.ingress);

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

#[test]
fn a_mesh_port_listens_on_the_ingress_and_can_send_the_proxy_protocol() {
    let n = node();
    let ns = unique("mesh");
    let (web_port, echo_port) = (free_port(), free_port());
    n.env.create_svc(
        &format!("{ns}/web"),
        &[
            r#"container#0.command=/bin/sh -c "mkdir -p /www && echo meshed > /www/index.html && exec /bin/busybox httpd -f -p 80 -h /www""#,
            &format!("container#0.ports={web_port}:80"),
            "container#0.mesh=true",
            // httpd as pid 1 ignores SIGTERM.
            "container#0.stop_timeout=1s",
        ],
    );
    n.env.create_svc(
        &format!("{ns}/echo"),
        &[
            "container#0.command=/bin/busybox nc -ll -p 80 -e /bin/cat",
            &format!("container#0.ports={echo_port}:80"),
            "container#0.mesh=true",
            "container#0.mesh_proxy_protocol=true",
        ],
    );
    n.env.ok(&[&format!("{ns}/web"), "start"]);
    n.env.ok(&[&format!("{ns}/echo"), "start"]);
    let url = format!("http://127.0.0.1:{web_port}/");
    let fetch = || {
        Command::new("curl")
            .args(["-s", "-m", "5", &url])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default()
    };
    wait_until("the mesh port", 20, || fetch() == "meshed\n");
    // The container itself is published on another, ephemeral port.
    let published = common::docker(&["port", &format!("{ns}..web.container.0"), "80/tcp"]);
    let published = String::from_utf8_lossy(&published.stdout).to_string();
    assert!(!published.is_empty(), "not published");
    assert!(
        !published.contains(&format!(":{web_port}\n")),
        "docker holds the mesh port: {published}"
    );
    let routes = n.env.json(&["ingress", "routes"]);
    let mesh_route = format!("tcp:{web_port}");
    assert!(
        routes["routes"]
            .as_array()
            .is_some_and(|rs| rs.iter().any(|r| r["host"] == mesh_route.as_str())),
        "{routes:#}"
    );

    // The echo backend asked for PROXY v2: it gets the client's address.
    let mut got = serde_json::Value::Null;
    wait_until("the echo through the mesh", 20, || {
        let out = Command::new("python3")
            .arg(py("proxy_v2_echo_client.py"))
            .args([&echo_port.to_string(), "127.0.0.7"])
            .output()
            .expect("python3");
        got = serde_json::from_slice(&out.stdout).unwrap_or_default();
        out.status.success()
    });
    assert_eq!(got["rest"], "hello\n", "{got}");
    assert_eq!(got["src"], got["me"], "{got}");
    assert!(
        got["src"]
            .as_str()
            .is_some_and(|s| s.starts_with("127.0.0.7:")),
        "{got}"
    );
    assert_eq!(got["dst"], format!("127.0.0.1:{echo_port}"), "{got}");

    // No instance left: the port closes.
    n.env.ok(&[&format!("{ns}/web"), "stop"]);
    wait_until("the mesh port closed", 20, || {
        std::net::TcpStream::connect(("127.0.0.1", web_port)).is_err()
    });
}

#[test]
fn at_its_connection_limit_the_ingress_keeps_new_clients_waiting_rather_than_closing_them() {
    let n = node_with(&["--ingress-max-connections", "2"]);
    let ingress = n.ingress;
    let (_be, host) = routed_backend(&n, "limit");

    // Two keep-alive clients hold both slots.
    let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
    // One whole answer (head and Content-Length body), so the next starts
    // on a clean connection.
    let ask = |s: &mut std::net::TcpStream| {
        s.write_all(request.as_bytes()).expect("write");
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&got).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .expect("content-length");
                if body.len() >= len {
                    return head.to_string();
                }
            }
            let n = std::io::Read::read(s, &mut buf).expect("read");
            assert!(n > 0, "closed after {text:?}");
            got.extend_from_slice(&buf[..n]);
        }
    };
    let mut held: Vec<std::net::TcpStream> = (0..2)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", ingress)).expect("connect");
            s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .expect("timeout");
            assert!(ask(&mut s).starts_with("HTTP/1.1 200"));
            s
        })
        .collect();

    // A third waits (curl times out: exit 28), rather than being closed
    // (52, 56) or refused (7).
    let header = format!("Host: {host}");
    let third = move |secs: &str| {
        Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-m", secs, "-w", "%{http_code}"])
            .args(["-H", &header])
            .arg(format!("http://127.0.0.1:{ingress}/"))
            .output()
            .expect("curl")
    };
    let out = third("2");
    assert_eq!(out.status.code(), Some(28), "{out:?}");

    // A slot frees: the next client is served, and so is a waiting one.
    let waiting = std::thread::spawn(move || third("20"));
    drop(held.pop());
    let out = waiting.join().expect("waiting client");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200", "{out:?}");
    assert!(ask(&mut held[0]).starts_with("HTTP/1.1 200"));
}

#[test]
fn a_request_over_tls_is_forwarded_as_https() {
    let https = free_port();
    let n = node_with(&["--ingress-https", &format!("127.0.0.1:{https}")]);
    let certs = tempfile::tempdir().expect("tempdir");
    let svc = unique("fwtls");
    let host = format!("{svc}.test");
    let (cert, key) = self_signed(certs.path(), "fw", &host);
    let port = free_port();
    let _be = backend(port, "fw");
    let tls_meta = format!(
        r#","Meta":{{"berth-ingress-tls":"{}\n{}"}}"#,
        cert.display(),
        key.display()
    )
    .replace('\n', "\\n");
    register(&n, &format!("{svc}-1"), &svc, port, &host, &tls_meta);
    wait_until("the TLS route", 10, || {
        get_tls(https, &host, &cert, &[]).0 == 200
    });
    for version in ["--http1.1", "--http2"] {
        let (code, _, body) = get_tls(https, &host, &cert, &[version]);
        assert_eq!(code, 200, "{body}");
        let v = json(&body);
        assert_eq!(v["proto"], "https", "{v}");
        assert_eq!(
            v["forwarded"],
            format!("for=127.0.0.1;proto=https;host=\"{host}\""),
            "{v}"
        );
    }
    // The same backend over plain HTTP is told so.
    let (_, body) = get(&n, &host, "/", &[]);
    assert_eq!(json(&body)["proto"], "http", "{body}");
}
