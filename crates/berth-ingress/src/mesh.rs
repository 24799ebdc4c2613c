//! The routing mesh for TCP: every port a `mesh=true` instance publishes
//! listens on every node's ingress address, and each connection goes, at
//! L4, to one of the port's instances on any node (round robin over those
//! in rotation, another one tried if the first refuses). A backend that
//! asks for it (`mesh_proxy_protocol`) gets a PROXY v2 header with the
//! client's address first.
//!
//! The listeners follow the route table: a port is bound when it first
//! appears and closed when no instance asks for it any more; connections
//! already open are left to finish. A port that cannot be bound (in use)
//! is tried again at the next look.

use crate::balance::{InFlight, Picked};
use crate::table::MeshRoute;
use crate::Ingress;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// How often the listeners are compared with the table.
const LOOK: Duration = Duration::from_millis(100);
const CONNECT_WAIT: Duration = Duration::from_secs(5);

/// Keeps one listener per mesh port of the table, on `ip`.
pub async fn supervise(ingress: Arc<Ingress>, ip: IpAddr) {
    let mut listening: HashMap<u16, tokio::task::JoinHandle<()>> = HashMap::new();
    let mut failing: HashMap<u16, String> = HashMap::new();
    loop {
        let table = ingress.table();
        listening.retain(|port, task| {
            let keep = table.mesh.contains_key(port);
            if !keep {
                task.abort();
                tracing::info!("mesh: no instance asks for port {port} any more; closed");
            }
            keep
        });
        for port in table.mesh.keys() {
            if listening.contains_key(port) {
                continue;
            }
            match TcpListener::bind((ip, *port)).await {
                Ok(l) => {
                    failing.remove(port);
                    tracing::info!("mesh: listening on {ip}:{port}");
                    listening.insert(*port, tokio::spawn(accept(ingress.clone(), l, *port)));
                }
                Err(e) => {
                    let e = e.to_string();
                    if failing.get(port) != Some(&e) {
                        tracing::warn!("mesh: cannot listen on {ip}:{port}: {e}");
                        failing.insert(*port, e);
                    }
                }
            }
        }
        tokio::time::sleep(LOOK).await;
    }
}

async fn accept(ingress: Arc<Ingress>, listener: TcpListener, port: u16) {
    let what = format!("mesh port {port}");
    let mut gate = crate::conn::Gate::new(ingress.opts.max_connections, what.clone());
    loop {
        let Some(permit) = gate.admit().await else {
            return;
        };
        let (client, peer) = crate::conn::accept_next(&listener, &what).await;
        let ingress = ingress.clone();
        tokio::spawn(async move {
            let _permit = permit;
            forward(ingress, client, peer, port).await;
        });
    }
}

async fn forward(ingress: Arc<Ingress>, mut client: TcpStream, peer: SocketAddr, port: u16) {
    let table = ingress.table();
    let Some(mesh) = table.mesh.get(&port) else {
        return;
    };
    let Some((mut backend, _inflight)) = connect(&ingress, mesh).await else {
        tracing::debug!(
            "mesh: no instance of {} answered for {peer}",
            mesh.route.service
        );
        return;
    };
    if mesh.proxy_v2 {
        let local = client.local_addr().unwrap_or(peer);
        if backend.write_all(&v2_header(peer, local)).await.is_err() {
            return;
        }
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut backend).await;
}

/// A connection to a backend in rotation, counted in flight; a second one
/// is tried when the first cannot be reached.
async fn connect(ingress: &Ingress, mesh: &MeshRoute) -> Option<(TcpStream, InFlight)> {
    let mut tried = Vec::new();
    while tried.len() < 2 {
        let Picked { backend: b, stats } = ingress.balancer.pick(&mesh.route, &tried)?;
        tried.push(b.addr);
        stats
            .requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let inflight = InFlight::start(stats.clone());
        match tokio::time::timeout(CONNECT_WAIT, TcpStream::connect(b.addr)).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                return Some((s, inflight));
            }
            _ => {
                stats
                    .errors
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                stats.eject();
            }
        }
    }
    None
}

/// A PROXY protocol v2 `PROXY` header for a TCP connection from `src` to
/// `dst` (both IPv4, or else both as IPv6).
pub fn v2_header(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let mut h = crate::proxy_protocol::V2_SIG.to_vec();
    h.push(0x21);
    let v4 = |a: SocketAddr| match a.ip().to_canonical() {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(_) => None,
    };
    match (v4(src), v4(dst)) {
        (Some(s), Some(d)) => {
            h.push(0x11);
            h.extend_from_slice(&12u16.to_be_bytes());
            h.extend_from_slice(&s.octets());
            h.extend_from_slice(&d.octets());
        }
        _ => {
            let v6 = |a: SocketAddr| match a.ip() {
                IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                IpAddr::V6(v6) => v6,
            };
            h.push(0x21);
            h.extend_from_slice(&36u16.to_be_bytes());
            h.extend_from_slice(&v6(src).octets());
            h.extend_from_slice(&v6(dst).octets());
        }
    }
    h.extend_from_slice(&src.port().to_be_bytes());
    h.extend_from_slice(&dst.port().to_be_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy_protocol::{parse, Parsed};

    #[test]
    fn the_header_sent_to_backends_reads_back_as_the_client() {
        for (src, dst) in [
            ("192.0.2.7:5555", "10.0.0.1:8080"),
            ("[2001:db8::7]:5555", "[2001:db8::1]:8080"),
            ("[::ffff:192.0.2.7]:5555", "10.0.0.1:8080"),
        ] {
            let (src, dst): (SocketAddr, SocketAddr) = (src.parse().unwrap(), dst.parse().unwrap());
            let h = v2_header(src, dst);
            match parse(&h) {
                Parsed::Header {
                    len,
                    client: Some(c),
                } => {
                    assert_eq!(len, h.len());
                    assert_eq!(
                        (c.ip().to_canonical(), c.port()),
                        (src.ip().to_canonical(), 5555)
                    );
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
