//! The address a node advertises when the operator gives none, found by
//! the daemon in its own network namespace (the CLI may run in another):
//! for `join`, the source address the kernel picks to reach the address
//! joined; for `init`, the address of the default route's interface.

use crate::ClusterError;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};

/// The node listener's port when none is given.
pub const DEFAULT_PORT: u16 = 7946;

/// `ip:port`, not a wildcard: peers dial it and certificates name it.
pub(crate) fn check(addr: &str) -> Result<SocketAddr, ClusterError> {
    let sa: SocketAddr = addr.parse().map_err(|_| {
        ClusterError::BadInput(format!(
            "--advertise {addr:?}: expected an IP address and port, like 10.0.0.1:7946"
        ))
    })?;
    if sa.ip().is_unspecified() || sa.port() == 0 {
        return Err(ClusterError::BadInput(format!(
            "--advertise {addr}: peers must be able to dial it; give this node's own address and a port"
        )));
    }
    Ok(sa)
}

/// The address to advertise for a join through `peer` (`host:port`).
pub(crate) fn towards(peer: &str) -> Result<SocketAddr, ClusterError> {
    let target: SocketAddr = peer.parse().map_err(|_| {
        ClusterError::BadInput(format!(
            "{peer:?}: expected the manager's IP address and port, like 10.0.0.1:7946"
        ))
    })?;
    let unspecified: IpAddr = match target {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
    };
    // Connecting a UDP socket sends nothing: it only asks the kernel
    // which source address it would route from.
    let sock = UdpSocket::bind(SocketAddr::new(unspecified, 0))?;
    sock.connect(target).map_err(|e| {
        ClusterError::BadInput(format!(
            "no route from this node to {peer}: {e}; pass --advertise <ip:port>"
        ))
    })?;
    let ip = sock.local_addr()?.ip();
    if ip.is_loopback() && !target.ip().is_loopback() {
        return Err(ClusterError::BadInput(format!(
            "this node reaches {peer} only through loopback; pass --advertise <ip:port>"
        )));
    }
    Ok(SocketAddr::new(ip, DEFAULT_PORT))
}

/// The address to advertise for `init`: the default route's interface's.
pub(crate) fn default_route() -> Result<SocketAddr, ClusterError> {
    let routes = std::fs::read_to_string("/proc/net/route")?;
    let iface = default_interface(&routes).ok_or_else(|| {
        ClusterError::BadInput(
            "this node has no default route to take its address from; pass --advertise <ip:port>"
                .into(),
        )
    })?;
    let addrs =
        nix::ifaddrs::getifaddrs().map_err(|e| ClusterError::Io(std::io::Error::other(e)))?;
    for a in addrs {
        if a.interface_name != iface {
            continue;
        }
        if let Some(sin) = a.address.as_ref().and_then(|s| s.as_sockaddr_in()) {
            return Ok(SocketAddr::new(IpAddr::V4(sin.ip()), DEFAULT_PORT));
        }
    }
    Err(ClusterError::BadInput(format!(
        "the default route's interface {iface} has no IPv4 address; pass --advertise <ip:port>"
    )))
}

/// The interface of the default route with the lowest metric, from the
/// text of `/proc/net/route`.
fn default_interface(routes: &str) -> Option<String> {
    routes
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // Iface Destination Gateway Flags RefCnt Use Metric Mask ...
            let up = u32::from_str_radix(f.get(3)?, 16).ok()? & 1 == 1;
            let default = *f.get(1)? == "00000000" && *f.get(7)? == "00000000";
            let metric: u32 = f.get(6)?.parse().ok()?;
            (up && default).then(|| (metric, f[0].to_string()))
        })
        .min()
        .map(|(_, iface)| iface)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTES: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth1\t0000000A\t00000000\t0001\t0\t0\t0\t000000FF\t0\t0\t0
eth0\t00000000\t0100000A\t0003\t0\t0\t100\t00000000\t0\t0\t0
wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0
";

    #[test]
    fn the_default_route_with_the_lowest_metric_wins() {
        assert_eq!(default_interface(ROUTES).as_deref(), Some("eth0"));
        assert_eq!(default_interface("Iface\tDestination\n"), None);
    }

    #[test]
    fn a_join_to_loopback_advertises_loopback() {
        let a = towards("127.0.0.1:7946").unwrap();
        assert_eq!(a, "127.0.0.1:7946".parse().unwrap());
        assert!(towards("not an address").is_err());
    }

    #[test]
    fn advertised_addresses_must_be_dialable() {
        assert!(check("10.0.0.1:7946").is_ok());
        assert!(check("0.0.0.0:7946").is_err());
        assert!(check("10.0.0.1:0").is_err());
        assert!(check("node1:7946").is_err());
    }
}
