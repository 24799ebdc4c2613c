//! kvbench TARGET ADDR MODE CLIENTS OPS
//!   TARGET: consul | etcd      MODE: put | get | watch
//! put/get: CLIENTS connections share OPS requests on keys bench/0..1000;
//! prints {"ops_per_s", "p50_ms", "p99_ms"}.
//! watch (consul only): CLIENTS blocking queries on CLIENTS distinct keys,
//! then OPS single writes to one watched key; prints the latency of each
//! write until its watcher returns, and how many watchers returned.

use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(addr: &str) -> Sender {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn request(target: &str, addr: &str, put: bool, key: &str, value: &str) -> Request<Full<Bytes>> {
    let (method, path, body) = match (target, put) {
        ("consul", true) => ("PUT", format!("/v1/kv/{key}"), value.to_string()),
        ("consul", false) => ("GET", format!("/v1/kv/{key}"), String::new()),
        (_, true) => (
            "POST",
            "/v3/kv/put".to_string(),
            format!(r#"{{"key":"{}","value":"{}"}}"#, b64(key), b64(value)),
        ),
        // Serializable, as Consul's default read: from the member's own
        // store, without a quorum round.
        (_, false) => (
            "POST",
            "/v3/kv/range".to_string(),
            format!(r#"{{"key":"{}","serializable":true}}"#, b64(key)),
        ),
    };
    Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr)
        .body(Full::new(Bytes::from(body)))
        .expect("request")
}

async fn send(s: &mut Sender, req: Request<Full<Bytes>>) -> u16 {
    s.ready().await.expect("connection");
    let r = s.send_request(req).await.expect("send");
    let status = r.status().as_u16();
    let _ = r.into_body().collect().await;
    status
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    if v.is_empty() {
        return 0.0;
    }
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

async fn load(target: String, addr: String, put: bool, clients: usize, ops: usize) {
    // Keys exist for gets.
    if !put {
        let mut s = connect(&addr).await;
        for k in 0..1000 {
            send(
                &mut s,
                request(&target, &addr, true, &format!("bench/{k}"), "v"),
            )
            .await;
        }
    }
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (target, addr, next) = (target.clone(), addr.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut s = connect(&addr).await;
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= ops {
                    return lat;
                }
                let key = format!("bench/{}", i % 1000);
                let t = Instant::now();
                let status = send(
                    &mut s,
                    request(&target, &addr, put, &key, "value-0123456789"),
                )
                .await;
                assert!(status < 300, "status {status}");
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    let secs = start.elapsed().as_secs_f64();
    let n = all.len();
    println!(
        r#"{{"ops_per_s": {:.0}, "p50_ms": {:.3}, "p99_ms": {:.3}}}"#,
        n as f64 / secs,
        pct(&mut all, 0.5),
        pct(&mut all, 0.99)
    );
}

async fn watch(addr: String, watchers: usize, writes: usize) {
    let mut s = connect(&addr).await;
    for k in 0..watchers {
        send(
            &mut s,
            request("consul", &addr, true, &format!("w/{k}"), "0"),
        )
        .await;
    }
    let woken = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Instant)>();
    for k in 0..watchers {
        let (addr, woken, tx) = (addr.clone(), woken.clone(), tx.clone());
        tasks.push(tokio::spawn(async move {
            let mut s = connect(&addr).await;
            let mut index = 1u64;
            loop {
                let req = Request::builder()
                    .uri(format!("/v1/kv/w/{k}?index={index}&wait=5m"))
                    .header("host", &addr)
                    .body(Full::new(Bytes::new()))
                    .expect("request");
                s.ready().await.expect("connection");
                let r = s.send_request(req).await.expect("watch");
                let got: u64 = r
                    .headers()
                    .get("x-consul-index")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let _ = r.into_body().collect().await;
                if index > 1 {
                    woken.fetch_add(1, Ordering::Relaxed);
                    let _ = tx.send((k, Instant::now()));
                }
                index = got;
            }
        }));
    }
    // Every watcher has its first answer (its index) and blocks; then the
    // caller may sample the server's CPU before saying go.
    tokio::time::sleep(Duration::from_secs(3 + watchers as u64 / 2000)).await;
    println!("READY");
    let mut line = String::new();
    let _ = tokio::task::spawn_blocking(move || std::io::stdin().read_line(&mut line)).await;
    let mut lat = Vec::new();
    for i in 0..writes {
        let k = (i * 7919) % watchers;
        let before = woken.load(Ordering::Relaxed);
        let t = Instant::now();
        send(
            &mut s,
            request("consul", &addr, true, &format!("w/{k}"), &format!("{i}")),
        )
        .await;
        let Ok(Some((who, at))) = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await
        else {
            panic!("watcher {k} did not wake");
        };
        assert_eq!(who, k, "another watcher woke");
        lat.push(at.duration_since(t).as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let extra = woken.load(Ordering::Relaxed) - before;
        assert_eq!(extra, 1, "{extra} watchers woke for one write");
    }
    println!(
        r#"{{"watchers": {watchers}, "writes": {writes}, "woken_per_write": 1, "p50_ms": {:.3}, "p99_ms": {:.3}}}"#,
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99)
    );
    for t in tasks {
        t.abort();
    }
}

#[tokio::main]
async fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 6 {
        eprintln!("usage: kvbench consul|etcd ADDR put|get|watch CLIENTS OPS");
        std::process::exit(2);
    }
    let clients: usize = a[4].parse().expect("CLIENTS");
    let ops: usize = a[5].parse().expect("OPS");
    match a[3].as_str() {
        "watch" => watch(a[2].clone(), clients, ops).await,
        mode => load(a[1].clone(), a[2].clone(), mode == "put", clients, ops).await,
    }
}
