//! berth's DNS server, on every node (`--dns-addr`, by default
//! `127.0.0.1:8600`, UDP and TCP), on hickory-proto's wire format. It speaks
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
mod mmsg;
pub mod names;
mod respond;
mod serve;
mod view;

use berth_store::Desired;
use respond::Responder;
use std::net::SocketAddr;
use std::sync::Arc;

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

/// The running DNS server: the listener on `--dns-addr`, and the ones
/// added on container bridges for `dns_berth`, all answering from one view.
pub struct DnsServer {
    opts: DnsOptions,
    view: view::Shared,
    listeners: std::sync::Mutex<std::collections::HashMap<SocketAddr, tokio::task::JoinHandle<()>>>,
}

/// Binds UDP and TCP on `opts.addr` and serves until the process ends.
pub async fn serve(opts: DnsOptions, desired: Arc<Desired>) -> std::io::Result<Arc<DnsServer>> {
    let udp = tokio::net::UdpSocket::bind(opts.addr).await?;
    let tcp = tokio::net::TcpListener::bind(opts.addr).await?;
    let view = crate::view::Shared::default();
    tokio::spawn(view::follow(desired, view.clone()));
    let main = serve::spawn(
        Arc::new(Responder::new(opts.clone(), view.clone())),
        udp,
        tcp,
    );
    let listeners = std::sync::Mutex::new([(opts.addr, main)].into_iter().collect());
    Ok(Arc::new(DnsServer {
        opts,
        view,
        listeners,
    }))
}

impl DnsServer {
    /// Serves on `ip` port 53 too, for the containers of a bridge whose
    /// gateway `ip` is; a no-op when it already does. Names outside the
    /// domain go to the recursors, or without any to the host's
    /// nameservers, so that such a container resolves everything.
    pub fn serve_on(&self, ip: std::net::IpAddr) -> std::io::Result<()> {
        let addr = SocketAddr::new(ip, 53);
        let mut listeners = self.lock();
        if listeners.get(&addr).is_some_and(|h| !h.is_finished()) {
            return Ok(());
        }
        let udp = std::net::UdpSocket::bind(addr)?;
        udp.set_nonblocking(true)?;
        let tcp = std::net::TcpListener::bind(addr)?;
        tcp.set_nonblocking(true)?;
        let mut opts = self.opts.clone();
        if opts.recursors.is_empty() {
            opts.recursors = forward::host_nameservers(
                &std::fs::read_to_string(RESOLV_CONF).unwrap_or_default(),
            );
        }
        let h = serve::spawn(
            Arc::new(Responder::new(opts, self.view.clone())),
            tokio::net::UdpSocket::from_std(udp)?,
            tokio::net::TcpListener::from_std(tcp)?,
        );
        tracing::info!("DNS listening on {addr} (udp, tcp) for containers with dns_berth");
        listeners.insert(addr, h);
        Ok(())
    }

    /// Stops every listener.
    pub fn shutdown(&self) {
        for (_, h) in self.lock().drain() {
            h.abort();
        }
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<SocketAddr, tokio::task::JoinHandle<()>>>
    {
        self.listeners.lock().unwrap_or_else(|e| e.into_inner())
    }
}

const RESOLV_CONF: &str = "/etc/resolv.conf";

/// The answer to the query `bytes` over UDP (`udp`) or TCP, from a small
/// fixed catalog: what the listeners send back, for the fuzz target
/// `dns_packets`. `None` when nothing is sent (junk, or a name for the
/// recursors).
#[doc(hidden)]
pub fn answer_for_fuzzing(bytes: &[u8], udp: bool) -> Option<Vec<u8>> {
    use respond::{Reply, Transport};
    static RESPONDER: std::sync::OnceLock<Responder> = std::sync::OnceLock::new();
    let r = RESPONDER.get_or_init(|| {
        let inst = |i: u8| view::Inst {
            node: format!("n{i}"),
            address: format!("10.0.0.{i}"),
            port: 80,
            tags: vec!["v1".into()],
            critical: i == 3,
        };
        let mut v = view::View::default();
        v.services
            .insert("web".into(), (1..=40).map(inst).collect());
        v.nodes.insert("n1".into(), "10.0.0.1".into());
        v.berth.insert("ns/app".into(), vec![inst(1)]);
        let opts = DnsOptions {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            domain: "berth".into(),
            datacenter: "dc1".into(),
            ttl: 0,
            recursors: Vec::new(),
        };
        Responder::new(opts, Arc::new(std::sync::RwLock::new(Arc::new(v))))
    });
    let t = if udp { Transport::Udp } else { Transport::Tcp };
    match r.respond(bytes, t) {
        Reply::Now(v) => Some(v),
        Reply::Forward(_) | Reply::Drop => None,
    }
}
