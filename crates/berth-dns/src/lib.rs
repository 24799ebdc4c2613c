//! berth's DNS server, on every node (`--dns-addr`, by default
//! `127.0.0.1:8600`, UDP and TCP), built on hickory-server. It speaks
//! Consul's DNS interface for the catalog, from this node's replica:
//! `<service>.service.<domain>`, `<tag>.<service>.service.<domain>`,
//! RFC 2782 `_<service>._<tag|tcp>.service.<domain>` (SRV `1 1 <port>
//! <node>.node.<domain>.` with the address in the additional section),
//! `<node>.node.<domain>`, and berth's own `<name>.<namespace>.svc.<domain>`.
//! Critical instances are left out and answers shuffled; NXDOMAIN and
//! empty answers are authoritative with an SOA. A UDP answer without EDNS
//! fits in 512 bytes (TC when cut); with EDNS, in the client's size.
//! Other names go to the recursors.
//!
//! Answers come from an in-memory view of the catalog, rebuilt from the
//! replica at every catalog change (`view.rs`).
//!
//! Architecture invariant: DNS only reads: the replica, never the leader,
//! so a leader change never takes a running service out of an answer.

mod answer;
mod forward;
mod handler;
pub mod names;
mod view;

use berth_store::Desired;
use hickory_server::ServerFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct DnsOptions {
    pub addr: SocketAddr,
    /// Without dots: `berth`.
    pub domain: String,
    /// The datacenter label Consul allows after `service`/`node`.
    pub datacenter: String,
    pub ttl: u32,
    pub recursors: Vec<SocketAddr>,
}

/// Binds UDP and TCP on `opts.addr` and serves until the process ends.
pub async fn serve(
    opts: DnsOptions,
    desired: Arc<Desired>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let udp = tokio::net::UdpSocket::bind(opts.addr).await?;
    let tcp = tokio::net::TcpListener::bind(opts.addr).await?;
    let view = crate::view::Shared::default();
    tokio::spawn(view::follow(desired, view.clone()));
    let mut server = ServerFuture::new(handler::Handler { opts, view });
    server.register_socket(udp);
    server.register_listener(tcp, Duration::from_secs(5));
    Ok(tokio::spawn(async move {
        if let Err(e) = server.block_until_done().await {
            tracing::error!("dns: {e}");
        }
    }))
}
