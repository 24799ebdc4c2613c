//! The ingress and the TCP mesh across nodes, on the netns bed: every
//! node's ingress serves instances that run on other nodes, a node crash
//! during a request loop fails no idempotent request, and a mesh port
//! published by one instance answers on every node.

mod common;
use common::testbed::{Node, Testbed};
use common::{unique, IMAGE};
use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

const INGRESS: u16 = 8080;

fn wait_until(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

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
