//! The route table: host routes read from the catalog, each with the
//! instances behind it. Built from the replica at each catalog change, so
//! a request is a lookup, and a change is in force within milliseconds.

use berth_kv::catalog::{self as cat, Health};
use berth_kv::Read;
use berth_model::rules::{parse_host_route, HostRoute};
use berth_model::status::{ActiveCheck, Balance};
use berth_registrator::rules::{
    INGRESS_BALANCE_META, INGRESS_CHECK_META, INGRESS_HOSTS_META, INGRESS_TLS_META, MESH_META,
    MESH_PROXY_META,
};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// One instance behind a route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backend {
    pub addr: SocketAddr,
    pub node: String,
    pub health: Health,
    /// The ingress's own check of it, if its service has one.
    pub check: Option<ActiveCheck>,
}

/// The PEM files a route's hosts are served with over TLS.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    fn decode(meta: &str) -> Option<TlsFiles> {
        let (cert, key) = meta.split_once('\n')?;
        Some(TlsFiles {
            cert: cert.into(),
            key: key.into(),
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub host: HostRoute,
    pub service: String,
    pub balance: Balance,
    pub tls: Option<TlsFiles>,
    pub backends: Vec<Backend>,
    pub ties: Ties,
}

/// A route's ties to what the ingress keeps across tables (its backends'
/// stats, its round-robin cursor, its counters), looked up at its first
/// request rather than at every one. Not part of what the route is: any
/// two compare equal, and a clone starts untied.
#[derive(Default)]
pub struct Ties {
    pub(crate) balance: OnceLock<crate::balance::Bound>,
    pub(crate) metrics: OnceLock<Arc<crate::observe::RouteMetrics>>,
}

impl Clone for Ties {
    fn clone(&self) -> Ties {
        Ties::default()
    }
}

impl PartialEq for Ties {
    fn eq(&self, _: &Ties) -> bool {
        true
    }
}

impl Eq for Ties {}

impl std::fmt::Debug for Ties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ties")
    }
}

#[derive(Clone, Debug, Default)]
pub struct Table {
    /// Exact host → its routes, longest path first.
    exact: HashMap<String, Vec<Route>>,
    /// `*.domain` routes: domain → its routes, longest path first.
    wildcard: HashMap<String, Vec<Route>>,
    /// TCP mesh: the port every node listens on → its instances.
    pub mesh: BTreeMap<u16, MeshRoute>,
}

/// A `mesh=true` port: connections go to one of the route's backends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeshRoute {
    pub route: Route,
    /// Each connection starts with a PROXY v2 header.
    pub proxy_v2: bool,
}

/// A `mesh=true` instance's (mesh port, its own host port) pairs.
fn mesh_ports(s: &cat::Service) -> Vec<(u16, u16)> {
    s.meta
        .get(MESH_META)
        .map(|m| berth_model::status::mesh_ports(m))
        .unwrap_or_default()
}

/// The routes an instance asks for: its `ingress_hosts` and its
/// registrator tags `dns=<host>`.
fn wanted(s: &cat::Service) -> Vec<HostRoute> {
    let from_meta = s
        .meta
        .get(INGRESS_HOSTS_META)
        .into_iter()
        .flat_map(|v| v.split_whitespace());
    let from_tags = s.tags.iter().filter_map(|t| t.strip_prefix("dns="));
    from_meta
        .chain(from_tags)
        .filter_map(|w| parse_host_route(w).ok())
        .collect()
}

impl Table {
    pub fn build(t: &dyn Read) -> std::io::Result<Table> {
        let nodes: HashMap<String, String> = cat::nodes(t)?
            .into_iter()
            .map(|n| (n.name, n.address))
            .collect();
        let mut worst: HashMap<(String, String), Health> = HashMap::new();
        let mut node_worst: HashMap<String, Health> = HashMap::new();
        for c in cat::checks(t, None)? {
            let slot = if c.service_id.is_empty() {
                node_worst.entry(c.node).or_default()
            } else {
                worst.entry((c.node, c.service_id)).or_default()
            };
            *slot = (*slot).max(c.status);
        }
        let mut routes: BTreeMap<(String, String), Route> = BTreeMap::new();
        let mut mesh: BTreeMap<u16, MeshRoute> = BTreeMap::new();
        for s in cat::services(t, None)? {
            let hosts = if s.port == 0 { Vec::new() } else { wanted(&s) };
            let meshed = mesh_ports(&s);
            if hosts.is_empty() && meshed.is_empty() {
                continue;
            }
            let ip = if s.address.is_empty() {
                nodes.get(&s.node).map(String::as_str).unwrap_or_default()
            } else {
                s.address.as_str()
            };
            let Ok(ip) = ip.parse::<std::net::IpAddr>() else {
                continue;
            };
            let health = worst
                .get(&(s.node.clone(), s.id.clone()))
                .copied()
                .unwrap_or_default()
                .max(node_worst.get(&s.node).copied().unwrap_or_default());
            let backend = Backend {
                addr: SocketAddr::new(ip, s.port),
                node: s.node.clone(),
                health,
                check: s
                    .meta
                    .get(INGRESS_CHECK_META)
                    .and_then(|m| ActiveCheck::decode(m)),
            };
            for h in hosts {
                let r = routes
                    .entry((h.host.clone(), h.path.clone()))
                    .or_insert_with(|| Route {
                        host: h,
                        service: s.name.clone(),
                        balance: s
                            .meta
                            .get(INGRESS_BALANCE_META)
                            .and_then(|b| Balance::parse(b))
                            .unwrap_or_default(),
                        tls: s
                            .meta
                            .get(INGRESS_TLS_META)
                            .and_then(|m| TlsFiles::decode(m)),
                        backends: Vec::new(),
                        ties: Ties::default(),
                    });
                // Two services claiming one route: the first by name keeps it.
                if r.service == s.name {
                    r.backends.push(backend.clone());
                }
            }
            for (public, host_port) in meshed {
                let m = mesh.entry(public).or_insert_with(|| MeshRoute {
                    route: Route {
                        host: HostRoute {
                            host: format!("tcp:{public}"),
                            path: "/".into(),
                        },
                        service: s.name.clone(),
                        balance: Balance::RoundRobin,
                        tls: None,
                        backends: Vec::new(),
                        ties: Ties::default(),
                    },
                    proxy_v2: s.meta.get(MESH_PROXY_META).is_some_and(|v| v == "v2"),
                });
                if m.route.service == s.name {
                    m.route.backends.push(Backend {
                        addr: SocketAddr::new(ip, host_port),
                        check: None,
                        ..backend.clone()
                    });
                }
            }
        }
        for m in mesh.values_mut() {
            m.route.backends.sort_by_key(|b| b.addr);
        }
        let mut table = Table::from_routes(routes.into_values());
        table.mesh = mesh;
        Ok(table)
    }

    /// A table of these host routes, as [`Table::find`] searches them.
    pub fn from_routes(routes: impl IntoIterator<Item = Route>) -> Table {
        let mut table = Table::default();
        for mut r in routes {
            r.backends.sort_by_key(|b| b.addr);
            let slot = match r.host.wildcard() {
                Some(domain) => table.wildcard.entry(domain.to_string()).or_default(),
                None => table.exact.entry(r.host.host.clone()).or_default(),
            };
            slot.push(r);
        }
        for v in table.exact.values_mut().chain(table.wildcard.values_mut()) {
            v.sort_by_key(|r| std::cmp::Reverse(r.host.path.len()));
        }
        table
    }

    /// The route for a request: an exact host before a wildcard, the
    /// longest matching wildcard domain, then the longest path prefix.
    pub fn find(&self, host: &str, path: &str) -> Option<&Route> {
        self.by_host(host, |rs| longest(rs, path))
    }

    /// The certificate files for a TLS handshake naming `host`, picked as
    /// [`Table::find`] picks routes.
    pub fn tls_for(&self, host: &str) -> Option<&TlsFiles> {
        self.by_host(host, |rs| rs.iter().find_map(|r| r.tls.as_ref()))
    }

    /// `pick` on the routes of `host`: its exact ones first, then those of
    /// each wildcard domain above it, the longest first.
    fn by_host<'a, T: 'a>(
        &'a self,
        host: &str,
        pick: impl Fn(&'a [Route]) -> Option<&'a T>,
    ) -> Option<&'a T> {
        let host = host.trim_end_matches('.');
        let host: std::borrow::Cow<str> = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            host.to_ascii_lowercase().into()
        } else {
            host.into()
        };
        if let Some(t) = self.exact.get(host.as_ref()).and_then(|rs| pick(rs)) {
            return Some(t);
        }
        let mut rest = host.as_ref();
        while let Some((_, parent)) = rest.split_once('.') {
            if let Some(t) = self.wildcard.get(parent).and_then(|rs| pick(rs)) {
                return Some(t);
            }
            rest = parent;
        }
        None
    }

    /// Whether a request may still go to `addr`: it backs a route and is
    /// not critical.
    pub fn routes_to(&self, addr: SocketAddr) -> bool {
        self.exact
            .values()
            .chain(self.wildcard.values())
            .flatten()
            .chain(self.mesh.values().map(|m| &m.route))
            .flat_map(|r| &r.backends)
            .any(|b| b.addr == addr && b.health != Health::Critical)
    }

    /// Every backend with an active check, once each.
    pub fn checked(&self) -> Vec<(SocketAddr, ActiveCheck)> {
        let mut v: Vec<(SocketAddr, ActiveCheck)> = self
            .routes()
            .iter()
            .flat_map(|r| &r.backends)
            .filter_map(|b| Some((b.addr, b.check.clone()?)))
            .collect();
        v.sort_by(|a, b| (a.0, &a.1.path).cmp(&(b.0, &b.1.path)));
        v.dedup();
        v
    }

    /// Every route, the mesh's (`tcp:<port>`) too, sorted by host then path.
    pub fn routes(&self) -> Vec<&Route> {
        let mut v: Vec<&Route> = self
            .exact
            .values()
            .chain(self.wildcard.values())
            .flatten()
            .chain(self.mesh.values().map(|m| &m.route))
            .collect();
        v.sort_by(|a, b| (&a.host.host, &a.host.path).cmp(&(&b.host.host, &b.host.path)));
        v
    }
}

/// `prefix` matches whole path segments: `/api` takes `/api` and
/// `/api/x`, not `/apix`.
fn path_matches(prefix: &str, path: &str) -> bool {
    prefix == "/"
        || path == prefix
        || (path.starts_with(prefix)
            && (prefix.ends_with('/') || path.as_bytes().get(prefix.len()) == Some(&b'/')))
}

fn longest<'a>(routes: &'a [Route], path: &str) -> Option<&'a Route> {
    routes.iter().find(|r| path_matches(&r.host.path, path))
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;
