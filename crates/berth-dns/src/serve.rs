//! The listeners. UDP: a few loops share the socket, each taking a batch
//! of datagrams (`mmsg.rs`) and answering them in place, with no task or
//! channel per query (hickory-server spawns a task per query and sends
//! each answer through a channel, which held berth at 0.57x dnsmasq's
//! rate). TCP: a task per
//! connection, length-prefixed messages, closed when idle. A name for the
//! recursors gets a task of its own, so a slow upstream holds no loop.

use crate::respond::{Reply, Responder, Transport};
use crate::{forward, mmsg};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// How long a TCP connection may stay silent (RFC 7766 suggests seconds).
const TCP_IDLE: Duration = Duration::from_secs(5);
/// TCP connections at once; past it, new ones wait in the backlog.
const TCP_CONNECTIONS: usize = 1024;

/// Serves `udp` and `tcp` until the returned task is aborted, which ends
/// every loop and connection with it.
pub fn spawn(r: Arc<Responder>, udp: UdpSocket, tcp: TcpListener) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let udp = Arc::new(udp);
        let mut set = tokio::task::JoinSet::new();
        let loops = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
        for _ in 0..loops {
            set.spawn(udp_loop(udp.clone(), r.clone()));
        }
        set.spawn(tcp_accept(tcp, r));
        while set.join_next().await.is_some() {}
    })
}

async fn udp_loop(sock: Arc<UdpSocket>, r: Arc<Responder>) {
    let fd = sock.as_raw_fd();
    let mut b = mmsg::Batch::default();
    loop {
        // Errors here are a previous answer's ICMP and the like: not fatal.
        let Ok(n) = sock.async_io(Interest::READABLE, || b.recv(fd)).await else {
            continue;
        };
        for i in 0..n {
            match r.respond(b.datagram(i), Transport::Udp) {
                Reply::Now(out) => b.out.push((i, out)),
                Reply::Forward(req) => {
                    if let Some(from) = b.sender(i) {
                        forward_udp(sock.clone(), r.clone(), req, from);
                    }
                }
                Reply::Drop => {}
            }
        }
        send_all(&sock, &mut b).await;
    }
}

/// Sends the batch's answers, waiting for room when the socket has none.
async fn send_all(sock: &UdpSocket, b: &mut mmsg::Batch) {
    let fd = sock.as_raw_fd();
    let mut done = 0;
    while done < b.out.len() {
        match sock.async_io(Interest::WRITABLE, || b.send(fd, done)).await {
            Ok(sent) => done += sent.max(1),
            Err(e) => {
                // One answer the kernel refuses (a firewall, an address
                // gone) must not hold back the others.
                tracing::debug!("dns: answer: {e}");
                done += 1;
            }
        }
    }
}

/// Answers a name outside the domain from the recursors, in its own task.
fn forward_udp(
    sock: Arc<UdpSocket>,
    r: Arc<Responder>,
    req: Box<hickory_proto::op::Message>,
    to: SocketAddr,
) {
    tokio::spawn(async move {
        if let Reply::Now(out) = forward::answer(&r.opts.recursors, &req, Transport::Udp).await {
            if let Err(e) = sock.send_to(&out, to).await {
                tracing::debug!("dns: answer to {to}: {e}");
            }
        }
    });
}

async fn tcp_accept(listener: TcpListener, r: Arc<Responder>) {
    let permits = Arc::new(tokio::sync::Semaphore::new(TCP_CONNECTIONS));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((s, _)) => {
                let r = r.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    tcp_conn(s, r).await;
                });
            }
            Err(e) => {
                // Out of descriptors and the like: wait rather than spin.
                tracing::warn!("dns: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Messages on one connection, each a 2-byte length and its bytes, until
/// the client closes, goes quiet, or sends what gets no answer.
async fn tcp_conn(mut s: TcpStream, r: Arc<Responder>) {
    let mut buf = Vec::new();
    loop {
        let mut len = [0u8; 2];
        if !matches!(
            tokio::time::timeout(TCP_IDLE, s.read_exact(&mut len)).await,
            Ok(Ok(_))
        ) {
            return;
        }
        buf.resize(u16::from_be_bytes(len) as usize, 0);
        if !matches!(
            tokio::time::timeout(TCP_IDLE, s.read_exact(&mut buf)).await,
            Ok(Ok(_))
        ) {
            return;
        }
        let out = match r.respond(&buf, Transport::Tcp) {
            Reply::Forward(req) => forward::answer(&r.opts.recursors, &req, Transport::Tcp).await,
            other => other,
        };
        let Reply::Now(out) = out else {
            return;
        };
        let Ok(n) = u16::try_from(out.len()) else {
            return;
        };
        let mut framed = Vec::with_capacity(2 + out.len());
        framed.extend_from_slice(&n.to_be_bytes());
        framed.extend_from_slice(&out);
        if s.write_all(&framed).await.is_err() {
            return;
        }
    }
}
