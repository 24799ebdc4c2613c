//! The options of `berth daemon run` and `start`.

use super::parse_duration;
use clap::Args;

/// Who is served without a token.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anonymous {
    Loopback,
    None,
    Any,
}

#[derive(Args, Debug, Clone)]
pub struct DaemonOpts {
    /// Socket of the host's dockerd. Default: $BERTH_DOCKER_SOCKET, else the unix socket of
    /// $DOCKER_HOST (as the docker CLI takes it), else /var/run/docker.sock.
    #[arg(long, env = "BERTH_DOCKER_SOCKET")]
    pub docker_socket: Option<String>,
    /// Node name. Default: $BERTH_NODENAME, else the hostname.
    #[arg(long, env = "BERTH_NODENAME")]
    pub nodename: Option<String>,
    /// Objects acting on Docker at once.
    #[arg(long, default_value_t = 16)]
    pub parallelism: usize,
    /// Safety-net period at which every object is re-checked against Docker
    /// and its config file re-read for hand edits; Docker events trigger
    /// checks in between. Examples: 30s, 2m.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub resync: std::time::Duration,
    /// How long a warning stays in `mon` and `print status` when its
    /// condition is not seen to clear (a later successful pass removes it
    /// at once; `berth <sel> clear` by hand).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub warn_ttl: std::time::Duration,
    /// The /16 network private dockerds' bridges take a /24 from each.
    /// Move it where 10.213.0.0/16 is in use on the site.
    #[arg(long, default_value = "10.213.0.0/16")]
    pub private_bridge_pool: berth_model::settings::BridgePool,
    /// Cluster heartbeat period: a node heartbeats to the leader twice in
    /// each, and its failover lease lasts --down-after minus one period.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub heartbeat: std::time::Duration,
    /// Silence after which the leader considers a node down; also the
    /// failover lease a node keeps after its last acknowledged heartbeat.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub down_after: std::time::Duration,
    /// Scheduling niceness of the daemon (-20..19). Heartbeats and Raft
    /// must be answered in time even when the node's containers and dockerd
    /// keep every core busy, or the node loses its failover lease; as with
    /// etcd, the control plane runs ahead of the workload. Lowering it needs
    /// root; without, the daemon keeps its niceness and says so.
    #[arg(long, default_value_t = -10, value_parser = clap::value_parser!(i32).range(-20..=19), allow_negative_numbers = true)]
    pub nice: i32,
    /// Address of the Consul-compatible HTTP API (KV, sessions, status),
    /// or `none` to serve none. Examples: 127.0.0.1:8500, 0.0.0.0:8500.
    #[arg(long, env = "BERTH_CONSUL_ADDR", default_value = "127.0.0.1:8500", value_parser = parse_listen)]
    pub consul_addr: Listen,
    /// Open the API socket to this unix group too (mode 0660): a member
    /// that is not root acts as the berth user of its own account name,
    /// with that user's grants (`berth user create <name>`).
    #[arg(long, env = "BERTH_SOCKET_GROUP")]
    pub socket_group: Option<String>,
    /// How long the audit trail keeps a record; older ones are removed
    /// by the leader, hourly.
    #[arg(long, env = "BERTH_AUDIT_RETENTION", default_value = "90d", value_parser = parse_duration)]
    pub audit_retention: std::time::Duration,
    /// Who the Consul API serves without a berth token (X-Consul-Token):
    /// `loopback` clients only (as Consul without ACLs, on this host),
    /// `none` (every request needs a token), or `any` client that reaches
    /// --consul-addr.
    #[arg(
        long,
        env = "BERTH_CONSUL_ANONYMOUS",
        value_enum,
        default_value = "loopback"
    )]
    pub consul_anonymous: Anonymous,
    /// Address of the remote API: the /v1 API over HTTPS (TLS 1.3, the
    /// node's certificate from the cluster CA), for `berth login` and
    /// `berth --server`; every request needs a token. Off by default; it
    /// serves once the node is a cluster member. Example: 0.0.0.0:7947.
    #[arg(long, env = "BERTH_API_ADDR", default_value = "none", value_parser = parse_listen)]
    pub api_addr: Listen,
    /// Register containers' exposed ports at their own addresses too, not
    /// only their published ports at the node's (registrator's -internal).
    #[arg(long)]
    pub registrator_internal: bool,
    /// Address of the DNS server (UDP and TCP), or `none`.
    #[arg(long, env = "BERTH_DNS_ADDR", default_value = "127.0.0.1:8600", value_parser = parse_listen)]
    pub dns_addr: Listen,
    /// The domain the DNS server answers for: <service>.service.<domain>.
    #[arg(long, default_value = "berth", value_parser = parse_domain)]
    pub dns_domain: String,
    /// Upstream resolver for every other name, ADDR[:PORT] (repeatable, tried in order).
    #[arg(long = "dns-recursor", value_parser = parse_recursor)]
    pub dns_recursors: Vec<std::net::SocketAddr>,
    /// Address of the HTTP ingress (host routes from the catalog's
    /// ingress_hosts and dns=<host> tags), or none. Off by default.
    /// Example: 0.0.0.0:80.
    #[arg(long, env = "BERTH_INGRESS_HTTP", default_value = "none", value_parser = parse_listen)]
    pub ingress_http: Listen,
    /// Address of the HTTPS ingress, or none (the default): TLS with the
    /// certificate of each host picked by SNI (a service's
    /// ingress_tls_cert and ingress_tls_key), h2 and http/1.1 over ALPN.
    /// Example: 0.0.0.0:443.
    #[arg(long, env = "BERTH_INGRESS_HTTPS", default_value = "none", value_parser = parse_listen)]
    pub ingress_https: Listen,
    /// Request bodies over this many bytes get 413 from the ingress.
    #[arg(long, default_value_t = 64 << 20)]
    pub ingress_max_body: u64,
    /// Client connections the ingress keeps open at once, per listener. At
    /// the limit it stops accepting, and new clients wait in the backlog.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub ingress_max_connections: u32,
    /// Threads that serve the ingress's connections, each with its own
    /// event loop and backend connections, as haproxy's nbthread; 0 is
    /// one per core.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=1024))]
    pub ingress_threads: u16,
    /// How long a keep-alive client connection may wait for its next
    /// request before the ingress closes it. Examples: 60s, 5m.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub ingress_idle_timeout: std::time::Duration,
    /// Front load balancers, ip or ip/prefix, comma-separated: their
    /// PROXY protocol header (v1 or v2) gives the client's address, and
    /// their X-Forwarded-For is extended rather than replaced.
    /// Example: 10.0.0.0/24,192.0.2.10.
    #[arg(long, value_delimiter = ',', value_parser = parse_cidr)]
    pub ingress_trusted_proxies: Vec<berth_model::cidr::Cidr>,
    /// Append the ingress's access log (combined log format) to this
    /// file; `-` is standard output. Off by default.
    #[arg(long)]
    pub ingress_access_log: Option<std::path::PathBuf>,
    /// Address of the daemon's Prometheus metrics (GET /metrics: the
    /// ingress's per-route counters and latency, Raft, instances), or
    /// none. Off by default. Example: 127.0.0.1:9100.
    #[arg(long, env = "BERTH_METRICS_ADDR", default_value = "none", value_parser = parse_listen)]
    pub metrics_addr: Listen,
    /// TTL of the DNS answers (Consul's default is 0).
    #[arg(long, default_value = "0s", value_parser = berth_model::parse_duration)]
    pub dns_ttl: std::time::Duration,
    /// An LDAP server, ldap://HOST[:PORT] or ldaps://HOST[:PORT]
    /// (repeatable, tried in order). With one, a login of an LDAP user, or
    /// of a name that is no local user, binds to the directory as that
    /// user, and the leader syncs the LDAP users every --ldap-sync
    /// (`berth ldap sync`). Off by default.
    #[arg(long = "ldap-url", value_name = "URL", help_heading = "LDAP")]
    pub ldap_urls: Vec<String>,
    /// The account berth searches the directory with. Without it,
    /// searches are anonymous.
    #[arg(long, value_name = "DN", help_heading = "LDAP")]
    pub ldap_bind_dn: Option<String>,
    /// A file whose first line is --ldap-bind-dn's password (keep it mode
    /// 0600). Read once, at start.
    #[arg(long, value_name = "FILE", help_heading = "LDAP")]
    pub ldap_bind_password_file: Option<std::path::PathBuf>,
    /// Where users are searched (subtree; repeatable, each searched);
    /// needed with --ldap-url. Example: ou=people,dc=example,dc=com.
    #[arg(long = "ldap-user-base", value_name = "DN", help_heading = "LDAP")]
    pub ldap_user_bases: Vec<String>,
    /// The user search. {user} stands for the login name, escaped as a
    /// filter value (RFC 4515); with * in its place the filter lists every
    /// user, for the sync. Example: (&(objectClass=inetOrgPerson)(uid={user})).
    #[arg(
        long,
        default_value = "(uid={user})",
        value_name = "FILTER",
        help_heading = "LDAP"
    )]
    pub ldap_user_filter: String,
    /// The attribute of a user entry that holds its berth user name
    /// (lowercased; a name berth cannot take is skipped).
    #[arg(
        long,
        default_value = "uid",
        value_name = "ATTR",
        help_heading = "LDAP"
    )]
    pub ldap_user_attr: String,
    /// Where groups are searched (subtree); default: the first
    /// --ldap-user-base.
    /// Nested groups are resolved among the groups found there, and
    /// --ldap-filter mappings search there.
    #[arg(long, value_name = "DN", help_heading = "LDAP")]
    pub ldap_group_base: Option<String>,
    /// The attribute that lists a group's members: member or
    /// uniqueMember (DNs), memberUid (user names).
    #[arg(
        long,
        default_value = "member",
        value_name = "ATTR",
        help_heading = "LDAP"
    )]
    pub ldap_group_member_attr: String,
    /// How often the leader syncs the LDAP users: a user gone from LDAP,
    /// or from every mapped group, loses access and its tokens then.
    #[arg(long, default_value = "1h", value_parser = parse_duration, help_heading = "LDAP")]
    pub ldap_sync: std::time::Duration,
    /// StartTLS on ldap:// servers.
    #[arg(long, help_heading = "LDAP")]
    pub ldap_starttls: bool,
    /// PEM certificates to trust for ldaps:// and StartTLS instead of the
    /// system's.
    #[arg(long, value_name = "FILE", help_heading = "LDAP")]
    pub ldap_ca_file: Option<std::path::PathBuf>,
    /// Bound of each LDAP connection and operation.
    #[arg(long, default_value = "10s", value_parser = parse_duration, help_heading = "LDAP")]
    pub ldap_timeout: std::time::Duration,
}

fn parse_domain(s: &str) -> Result<String, String> {
    let d = s.trim_matches('.').to_ascii_lowercase();
    let ok = !d.is_empty()
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if ok {
        Ok(d)
    } else {
        Err(format!("{s:?} is not a domain name"))
    }
}

fn parse_recursor(s: &str) -> Result<std::net::SocketAddr, String> {
    if let Ok(a) = s.parse::<std::net::SocketAddr>() {
        return Ok(a);
    }
    s.parse::<std::net::IpAddr>()
        .map(|ip| std::net::SocketAddr::new(ip, 53))
        .map_err(|_| format!("{s:?} is not an address, ADDR or ADDR:PORT"))
}

/// An address to listen on, or none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listen {
    Off,
    On(std::net::SocketAddr),
}

impl Listen {
    /// The address, or `None` for `none`.
    pub fn addr(&self) -> Option<std::net::SocketAddr> {
        match self {
            Listen::Off => None,
            Listen::On(a) => Some(*a),
        }
    }
}

impl std::fmt::Display for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listen::Off => f.write_str("none"),
            Listen::On(a) => write!(f, "{a}"),
        }
    }
}

fn parse_cidr(s: &str) -> Result<berth_model::cidr::Cidr, String> {
    s.trim().parse()
}

fn parse_listen(s: &str) -> Result<Listen, String> {
    if s == "none" {
        return Ok(Listen::Off);
    }
    s.parse()
        .map(Listen::On)
        .map_err(|_| format!("{s:?} is not an address and port (like 127.0.0.1:8500) or none"))
}
