//! Idle keep-alive connections are parked (their buffers freed) and taken
//! up again when the client speaks; a connection with an exchange open,
//! a head half sent, or a tunnel is never parked; a parked connection is
//! closed after the idle timeout. Real sockets and curl against the real
//! binary; the parked count is read from /metrics.

mod common;
mod ingress_util;

use common::free_port;
use ingress_util::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A connection to the ingress, reading answers with a Content-Length.
struct Client {
    r: BufReader<TcpStream>,
}

impl Client {
    fn connect(port: u16) -> Client {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        Client {
            r: BufReader::new(s),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.r.get_mut().write_all(bytes).expect("write");
    }

    /// One answer's status line and body.
    fn answer(&mut self) -> (String, String) {
        let mut status = String::new();
        self.r.read_line(&mut status).expect("status line");
        let mut len = 0;
        loop {
            let mut line = String::new();
            self.r.read_line(&mut line).expect("header");
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().expect("length");
                }
            }
        }
        let mut body = vec![0; len];
        self.r.read_exact(&mut body).expect("body");
        (
            status.trim().to_string(),
            String::from_utf8_lossy(&body).into(),
        )
    }

    /// Whether the server closed the connection (a read gets nothing).
    fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.r.read(&mut b), Ok(0))
    }
}

fn get(host: &str, path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes()
}

/// The ingress's parked connections, from /metrics.
fn parked(metrics: u16) -> usize {
    let out = std::process::Command::new("curl")
        .args(["-s", &format!("http://127.0.0.1:{metrics}/metrics")])
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("berth_ingress_connections{state=\"parked\"} "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as usize)
}

#[test]
fn idle_connections_are_parked_and_taken_up_again_and_busy_ones_never_are() {
    let metrics = free_port();
    let m = format!("127.0.0.1:{metrics}");
    let n = node_with(&["--metrics-addr", &m, "--ingress-idle-timeout", "4s"]);
    let (_be, host) = routed_backend(&n, "park");

    // A keep-alive connection goes quiet, is parked, then asks again.
    let mut a = Client::connect(n.ingress);
    a.send(&get(&host, "/one"));
    let (status, body) = a.answer();
    assert!(status.ends_with("200 OK"), "{status}");
    assert_eq!(json(&body)["path"], "/one");
    wait_until("the quiet connection parked", 10, || parked(metrics) == 1);
    a.send(&get(&host, "/two"));
    let (status, body) = a.answer();
    assert!(status.ends_with("200 OK"), "{status}");
    assert_eq!(json(&body)["path"], "/two");

    // Two pipelined requests in one write get both answers, in order.
    let mut b = Client::connect(n.ingress);
    b.send(&[get(&host, "/p1"), get(&host, "/p2")].concat());
    assert_eq!(json(&b.answer().1)["path"], "/p1");
    assert_eq!(json(&b.answer().1)["path"], "/p2");

    // A head sent in two parts, with a pause longer than the park delay
    // in between, is still one request.
    let mut c = Client::connect(n.ingress);
    c.send(format!("GET /slow-head HTTP/1.1\r\nHost: {host}\r\n").as_bytes());
    std::thread::sleep(Duration::from_millis(1500));
    c.send(b"X-Late: 1\r\n\r\n");
    assert_eq!(json(&c.answer().1)["path"], "/slow-head");

    // An answer that pauses longer than the park delay arrives whole.
    let out = std::process::Command::new("curl")
        .args(["-s", "-m", "20", "-H", &format!("Host: {host}")])
        .arg(format!("http://127.0.0.1:{}/drip", n.ingress))
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "abc");

    // A tunnel quiet for longer than the park delay still carries bytes.
    let mut t = Client::connect(n.ingress);
    t.send(
        format!(
            "GET /ws HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
        )
        .as_bytes(),
    );
    let (status, _) = t.answer();
    assert!(status.contains(" 101 "), "{status}");
    std::thread::sleep(Duration::from_millis(2500));
    t.send(b"ping");
    let mut echo = [0u8; 4];
    t.r.read_exact(&mut echo).expect("echo");
    assert_eq!(&echo, b"ping");

    // Past the idle timeout, a quiet connection is closed.
    let mut d = Client::connect(n.ingress);
    d.send(&get(&host, "/last"));
    d.answer();
    assert!(
        d.closed(),
        "the ingress kept an idle connection past its idle timeout"
    );
}
