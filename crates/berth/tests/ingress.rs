//! The HTTP ingress on one node, driven with curl and raw sockets: host
//! routes from the catalog (registrator tags `dns=<host>` and a berth
//! service's `ingress_hosts`), round robin, the client's address, retries
//! past a dead backend, 404 and 503, a route added under load, an
//! upgraded connection that outlives a route change, active checks, and
//! draining before a stop.

mod common;
mod ingress_util;

use common::{free_port, unique};
use ingress_util::*;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

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
    wait_until("the added route", 10, || {
        get(&n, &format!("{other}.test"), "/", &[]).0 == 200
    });
    // How soon a route takes effect is measured by bench I4, not here.
    let (count, failed) = load.join().expect("load thread");
    assert_eq!(count, 1000);
    assert!(failed.is_empty(), "failed requests: {failed:?}");

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
            // httpd as pid 1 ignores SIGTERM.
            "container#0.stop_timeout=1s",
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
        // httpd -vv logs each answer's status, so the test counts the
        // checks that failed. The checks run at the default thresholds
        // (2 in a row) and interval (2 s, far longer than a look at the
        // route takes).
        let cmd = format!(
            r#"container#0.command=/bin/sh -c "mkdir -p /www && echo web{i} > /www/index.html && echo ok > /www/health && exec /bin/busybox httpd -f -vv -p 80 -h /www""#
        );
        n.env.create_svc(
            &format!("{ns}/web{i}"),
            &[
                &cmd,
                &format!("container#0.ports={}:80", free_port()),
                "container#0.service_name=checked",
                &format!("container#0.ingress_hosts={host}"),
                "container#0.ingress_check=/health",
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
    wait_until("web1 out of rotation", 20, || in_rotation(&n, &host) == 1);
    // Only the checks ask for /health, and only failing ones get 404.
    let logs = common::docker(&["logs", &ctr]);
    let failed = String::from_utf8_lossy(&[logs.stdout, logs.stderr].concat())
        .lines()
        .filter(|l| l.ends_with("response:404"))
        .count();
    assert!(
        (1..=2).contains(&failed),
        "out of rotation after {failed} failed checks, not within 2"
    );
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

    // A third whose check never passes takes no request, not even in the
    // moment before its first check.
    n.env.create_svc(
        &format!("{ns}/web3"),
        &[
            r#"container#0.command=/bin/sh -c "mkdir -p /www && echo web3 > /www/index.html && exec /bin/busybox httpd -f -p 80 -h /www""#,
            &format!("container#0.ports={}:80", free_port()),
            "container#0.service_name=checked",
            &format!("container#0.ingress_hosts={host}"),
            "container#0.ingress_check=/health",
            "container#0.ingress_check_interval=300ms",
        ],
    );
    n.env.ok(&[&format!("{ns}/web3"), "start"]);
    wait_until("web3 in the route", 30, || {
        route_of(&n, &host)["backends"]
            .as_array()
            .is_some_and(|v| v.len() == 3)
    });
    let seen = bodies(20);
    assert!(seen.iter().all(|b| b != "web3\n"), "{seen:?}");
    assert_eq!(in_rotation(&n, &host), 2);
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

    let load = PostLoop::start("127.0.0.1".into(), n.ingress, host.clone());
    for p in &paths {
        n.env.ok(&[p, "stop"]);
        n.env.ok(&[p, "start"]);
        wait_until("the restarted instance back in rotation", 30, || {
            in_rotation(&n, &host) == 3
        });
    }
    load.assert_none_failed();
}
