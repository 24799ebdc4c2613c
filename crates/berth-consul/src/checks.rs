//! The node's check runner: the HTTP, TCP and TTL checks registered
//! through this node's agent API, run here at their interval. Only a
//! change of status is written to the catalog.

use crate::Consul;
use berth_cluster::Command;
use berth_kv::catalog::{self as cat, CatalogOp, Check, Health};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

const TICK: Duration = Duration::from_millis(100);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Default)]
pub(crate) struct Runner {
    /// TTL check id → last update through the agent API (or first sight).
    touched: Mutex<HashMap<String, Instant>>,
    next_run: Mutex<HashMap<String, Instant>>,
    running: Mutex<HashSet<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Runner {
    pub fn ttl_touched(&self, id: &str) {
        lock(&self.touched).insert(id.to_string(), Instant::now());
    }
}

pub(crate) async fn run(c: Arc<Consul>) {
    loop {
        tokio::time::sleep(TICK).await;
        let Ok(all) = cat::checks(c.desired().as_ref(), None) else {
            continue;
        };
        let mine: Vec<Check> = all
            .into_iter()
            .filter(|ch| ch.node == c.cluster.nodename())
            .collect();
        let now = Instant::now();
        {
            let ids: HashSet<&str> = mine.iter().map(|ch| ch.id.as_str()).collect();
            lock(&c.checks.touched).retain(|k, _| ids.contains(k.as_str()));
            lock(&c.checks.next_run).retain(|k, _| ids.contains(k.as_str()));
        }
        for ch in mine {
            if ch.def.ttl_ms > 0 {
                let since = *lock(&c.checks.touched).entry(ch.id.clone()).or_insert(now);
                if now.duration_since(since) > Duration::from_millis(ch.def.ttl_ms)
                    && ch.status != Health::Critical
                {
                    let out = format!(
                        "TTL expired (last update {:?} ago)",
                        now.duration_since(since)
                    );
                    report(&c, &ch, Health::Critical, out).await;
                }
            } else if !ch.def.http.is_empty() || !ch.def.tcp.is_empty() {
                let due = *lock(&c.checks.next_run).entry(ch.id.clone()).or_insert(now);
                if now < due || !lock(&c.checks.running).insert(ch.id.clone()) {
                    continue;
                }
                lock(&c.checks.next_run).insert(
                    ch.id.clone(),
                    now + Duration::from_millis(ch.def.interval_ms.max(100)),
                );
                let c = c.clone();
                tokio::spawn(async move {
                    let (status, output) = probe(&ch).await;
                    if status != ch.status {
                        report(&c, &ch, status, output).await;
                    }
                    lock(&c.checks.running).remove(&ch.id);
                });
            }
        }
    }
}

async fn report(c: &Consul, ch: &Check, status: Health, output: String) {
    let cmd = Command::Catalog {
        by: None,
        ops: vec![CatalogOp::SetStatus {
            node: ch.node.clone(),
            id: ch.id.clone(),
            status,
            output,
            now_ms: crate::now_ms(),
        }],
    };
    if let Err(e) = c.cluster.submit(cmd).await {
        tracing::warn!("check {}: reporting {}: {e}", ch.id, status.as_str());
    }
}

/// Runs an HTTP or TCP check once.
pub async fn probe(ch: &Check) -> (Health, String) {
    let timeout = match ch.def.timeout_ms {
        0 => DEFAULT_TIMEOUT,
        ms => Duration::from_millis(ms),
    };
    let r = if !ch.def.http.is_empty() {
        tokio::time::timeout(timeout, http(&ch.def.http)).await
    } else {
        tokio::time::timeout(timeout, tcp(&ch.def.tcp)).await
    };
    match r {
        Ok(answer) => answer,
        Err(_) => (Health::Critical, format!("timed out after {timeout:?}")),
    }
}

async fn tcp(addr: &str) -> (Health, String) {
    match tokio::net::TcpStream::connect(addr).await {
        Ok(_) => (Health::Passing, format!("TCP connect {addr}: Success")),
        Err(e) => (Health::Critical, format!("dial tcp {addr}: {e}")),
    }
}

/// A plain-HTTP GET: 2xx is passing, 429 warning, anything else critical,
/// as Consul's HTTP checks.
async fn http(url: &str) -> (Health, String) {
    let Some(rest) = url.strip_prefix("http://") else {
        return (
            Health::Critical,
            format!("{url}: only http:// checks are supported"),
        );
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let mut s = match tokio::net::TcpStream::connect(&addr).await {
        Ok(s) => s,
        Err(e) => {
            return (
                Health::Critical,
                format!("Get {url:?}: dial tcp {addr}: {e}"),
            )
        }
    };
    let req = format!(
        "GET {path} HTTP/1.0\r\nHost: {authority}\r\nUser-Agent: Consul Health Check\r\nAccept: text/plain, text/*, */*\r\n\r\n"
    );
    if let Err(e) = s.write_all(req.as_bytes()).await {
        return (Health::Critical, format!("Get {url:?}: {e}"));
    }
    let mut buf = vec![0u8; 4096];
    let mut got = 0;
    while got < buf.len() {
        match s.read(&mut buf[got..]).await {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => return (Health::Critical, format!("Get {url:?}: {e}")),
        }
        if buf[..got].windows(2).any(|w| w == b"\r\n") {
            break;
        }
    }
    let head = String::from_utf8_lossy(&buf[..got]);
    let status_line = head.lines().next().unwrap_or_default().to_string();
    let code: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let out = format!(
        "HTTP GET {url}: {}",
        status_line.split_once(' ').map_or("", |(_, r)| r)
    );
    match code {
        200..=299 => (Health::Passing, out),
        429 => (Health::Warning, out),
        _ => (Health::Critical, out),
    }
}
