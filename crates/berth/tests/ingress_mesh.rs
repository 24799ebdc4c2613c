//! The TCP mesh's limits: an instance with several mesh ports is drained
//! on all of them before it stops, and a mesh port at the connection
//! limit keeps new clients waiting. Real busybox containers on the real
//! dockerd, plain TCP clients.

mod common;
mod ingress_util;

use common::{free_port, unique};
use ingress_util::*;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

/// A line sent through `s` and what came back, or the error.
fn echo(s: &mut BufReader<TcpStream>, line: &str) -> std::io::Result<String> {
    s.get_mut().write_all(format!("{line}\n").as_bytes())?;
    let mut back = String::new();
    s.read_line(&mut back)?;
    Ok(back.trim_end().to_string())
}

fn connect(port: u16, read_wait: Duration) -> BufReader<TcpStream> {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(read_wait)).expect("timeout");
    BufReader::new(s)
}

/// An echo (`nc -ll -p 81 -e /bin/cat`) behind mesh port `port`.
fn echo_service(n: &Node, path: &str, port: u16, extra: &[&str]) {
    let ports = format!("container#0.ports={port}:81");
    let mut kw = vec![
        r#"container#0.command=/bin/sh -c "trap 'exit 0' TERM; /bin/busybox nc -ll -p 81 -e /bin/cat & wait""#,
        &ports,
        "container#0.mesh=true",
    ];
    kw.extend_from_slice(extra);
    n.env.create_svc(path, &kw);
    n.env.ok(&[path, "start"]);
    wait_until("the echo through the mesh", 30, || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
            && echo(&mut connect(port, Duration::from_secs(2)), "hi").is_ok_and(|b| b == "hi")
    });
}

#[test]
fn an_instance_is_drained_on_every_mesh_port_before_it_stops() {
    let n = node();
    let path = format!("{}/two", unique("meshdrain"));
    let (web, tcp) = (free_port(), free_port());
    n.env.create_svc(
        &path,
        &[
            r#"container#0.command=/bin/sh -c "mkdir -p /www && echo two > /www/index.html; trap 'exit 0' TERM; /bin/busybox httpd -f -p 80 -h /www & /bin/busybox nc -ll -p 81 -e /bin/cat & wait""#,
            &format!("container#0.ports={web}:80 {tcp}:81"),
            "container#0.service_port=80",
            "container#0.mesh=true",
            "container#0.stop_timeout=30s",
        ],
    );
    n.env.ok(&[&path, "start"]);
    wait_until("the second mesh port", 30, || {
        TcpStream::connect(("127.0.0.1", tcp)).is_ok()
            && echo(&mut connect(tcp, Duration::from_secs(2)), "hi").is_ok_and(|b| b == "hi")
    });

    // A long-lived connection on the second mesh port, not the service's.
    let mut open = connect(tcp, Duration::from_secs(10));
    assert_eq!(echo(&mut open, "a").expect("echo"), "a");
    let mut stop = Command::new(common::BIN)
        .args([&path, "stop"])
        .env("BERTH_HOME", n.env.home())
        .spawn()
        .expect("berth stop");
    let route = format!("tcp:{tcp}");
    wait_until("the instance out of the catalog", 20, || {
        route_of(&n, &route).is_null()
    });
    // Draining: the stop waits for the connection, which still works.
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(3) {
        assert!(
            stop.try_wait().expect("wait").is_none(),
            "the stop did not wait for the connection on the second mesh port"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(echo(&mut open, "b").expect("echo while draining"), "b");
    drop(open);
    let status = stop.wait().expect("stop");
    assert!(status.success(), "{status}");
    wait_until("the mesh port closed", 20, || {
        TcpStream::connect(("127.0.0.1", tcp)).is_err()
    });
}

#[test]
fn a_mesh_port_at_the_connection_limit_keeps_new_clients_waiting() {
    let n = node_with(&["--ingress-max-connections", "2"]);
    let path = format!("{}/echo", unique("meshlimit"));
    let port = free_port();
    echo_service(&n, &path, port, &[]);

    let mut held: Vec<_> = (0..2)
        .map(|i| {
            let mut s = connect(port, Duration::from_secs(10));
            assert_eq!(
                echo(&mut s, &format!("h{i}")).expect("echo"),
                format!("h{i}")
            );
            s
        })
        .collect();
    // A third connects (the backlog takes it) but is not served yet.
    let mut third = connect(port, Duration::from_secs(2));
    assert!(
        echo(&mut third, "c").is_err(),
        "a third connection was served past the limit of 2"
    );
    // A slot frees: the waiting one is served, on the same connection.
    drop(held.pop());
    third
        .get_ref()
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut back = String::new();
    third
        .read_line(&mut back)
        .expect("the waiting client's echo");
    assert_eq!(back.trim_end(), "c");
    assert_eq!(echo(&mut held[0], "still").expect("echo"), "still");
}
