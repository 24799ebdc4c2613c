//! C3's anchor: the same closed loop as `write_bench`, against etcd's v3
//! put over its HTTP gateway, from compiled code with one kept HTTP/1.1
//! connection per client, so the load generator weighs the same on both
//! sides. bench/cluster.sh runs it next to `write_bench`.
//!
//! Usage: etcd_bench <host:port> <clients> <seconds>

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let addr = args
        .get(1)
        .cloned()
        .ok_or("usage: etcd_bench <host:port> <clients> <seconds>")?;
    let clients: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1);
    let seconds: u64 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(10);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run(addr, clients, seconds))
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

async fn client(
    addr: String,
    k: usize,
    stop: Instant,
    done: Arc<AtomicU64>,
    errors: Arc<AtomicU64>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let tcp = tokio::net::TcpStream::connect(&addr).await?;
    tcp.set_nodelay(true)?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(conn);
    let key = base64(format!("c3/o{k}").as_bytes());
    let mut n = 0u64;
    while Instant::now() < stop {
        n += 1;
        let body = format!(
            "{{\"key\":\"{key}\",\"value\":\"{}\"}}",
            base64(format!("v{n}").as_bytes())
        );
        let req = hyper::Request::post("/v3/kv/put")
            .header("host", addr.as_str())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))?;
        let resp = send.send_request(req).await?;
        let ok = resp.status().is_success();
        resp.into_body().collect().await?;
        if ok {
            done.fetch_add(1, Ordering::Relaxed);
        } else {
            errors.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

async fn run(addr: String, clients: usize, seconds: u64) -> Result<(), Box<dyn std::error::Error>> {
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|k| tokio::spawn(client(addr.clone(), k, stop, done.clone(), errors.clone())))
        .collect();
    for t in tasks {
        if let Err(e) = t.await? {
            eprintln!("etcd_bench: client failed: {e}");
            errors.fetch_add(1, Ordering::Relaxed);
        }
    }
    let rate = done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    println!("{rate:.1} {}", errors.load(Ordering::Relaxed));
    Ok(())
}
