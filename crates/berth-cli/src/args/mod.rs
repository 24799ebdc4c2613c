//! Command-line grammar. `berth <selector> <command>` is parsed in two steps:
//! the top level captures an unknown first word as a selector, then
//! [`ObjectCli`] parses the rest.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

mod auth;
mod daemon_opts;

pub use auth::{GroupCmd, LdapCmd, TokenCmd, UserCmd};
pub use daemon_opts::{Anonymous, DaemonOpts, Listen};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    #[default]
    Text,
    Json,
}

#[derive(Args, Clone, Debug, Default)]
pub struct Common {
    /// berth home (socket, store, configs). Default: $BERTH_HOME, else /var/lib/berth for root.
    #[arg(long, global = true, env = "BERTH_HOME")]
    pub home: Option<PathBuf>,
    /// Output format.
    #[arg(long, global = true, value_enum)]
    pub format: Option<Format>,
    /// A node's remote API (https://HOST[:PORT], after `berth login`)
    /// instead of this node's socket.
    #[arg(long, global = true, env = "BERTH_SERVER")]
    pub server: Option<String>,
}

const MON_HELP: &str = "\
Cells, one per object and node:
  O   up: every resource is up
  X   down: no resource is up
  !   first letter: warn, some resources up and some not, or a resource
      failed; after other letters: this node's instance has a warning
      (a failed resource, or an entry in `print status`'s warn lines)
  /   not applicable: the object has no resources
  ?   the node is unreachable, its instance unknown
  ^   the instance is placed on this node (standalone: the object is
      meant to run)
  *   the object is frozen: the daemon takes no action on it

Examples:
  berth mon
  berth mon 'app[12]-*/*' --watch
  berth mon --format json";

const TOP_EXAMPLES: &str = "\
Object commands: berth <selector> <command>
  set, unset, get, print config, config show, print status, status,
  start, stop, restart, freeze, thaw, docker, ls, delete, create
  (run `berth <selector> --help` for details)

Selectors: 'app[12]-*/*', 'ns/name', 'name' (root namespace), '*';
  ',' union, '+' intersection, '!' negation, env=PRD, container#0.image:

Examples:
  berth daemon start
  berth create app1-dev/svc1 --kw env=DEV
  berth 'app*-*/*' set --kw container#0.type=docker --kw container#0.image=local/pause:1
  berth 'app*-*/*' start
  berth mon
  berth app1-dev/svc1 print status --format json";

#[derive(Parser, Debug)]
#[command(name = "berth", version, about = "berth: services in namespaces on Docker hosts", after_help = TOP_EXAMPLES)]
pub struct Cli {
    #[command(flatten)]
    pub common: Common,
    #[command(subcommand)]
    pub cmd: Top,
}

#[derive(Subcommand, Debug)]
pub enum Top {
    /// Run, start, stop or query the berth daemon.
    #[command(
        after_help = "Examples:\n  berth daemon run --home /tmp/b\n  berth daemon start\n  berth daemon status --format json\n  berth daemon stop   # containers keep running"
    )]
    Daemon {
        #[command(subcommand)]
        cmd: Box<DaemonCmd>,
    },
    /// Create an object.
    #[command(
        after_help = "Examples:\n  berth create app1-dev/svc1\n  berth create app1-dev/svc1 --kw env=DEV --kw container#0.image=local/pause:1\n  berth create web --config ./web.conf"
    )]
    Create(CreateArgs),
    /// Show the services grid (like svcmon).
    #[command(after_help = MON_HELP)]
    Mon {
        /// Object selector; all objects when omitted.
        selector: Option<String>,
        /// Redraw every second until interrupted.
        #[arg(long)]
        watch: bool,
    },
    /// List objects.
    #[command(after_help = "Examples:\n  berth ls\n  berth ls 'app1-*/*' --format json")]
    Ls { selector: Option<String> },
    /// Stream the daemon's events.
    #[command(
        after_help = "Examples:\n  berth events\n  berth events --last 50 --no-follow --format json"
    )]
    Events {
        /// Replay the last N events first.
        #[arg(long, default_value_t = 0)]
        last: usize,
        /// Stop after the replay instead of following.
        #[arg(long)]
        no_follow: bool,
    },
    /// Keyword documentation.
    #[command(
        after_help = "Examples:\n  berth doc container.image\n  berth doc env\n  berth doc container\n  berth doc"
    )]
    Doc {
        /// `section.keyword`, a keyword of DEFAULT, or a section family.
        keyword: Option<String>,
    },
    /// Create, join and inspect a cluster.
    #[command(
        after_help = "Examples:\n  berth cluster init --advertise 10.0.0.1:7946\n  berth cluster token --manager\n  berth cluster join 10.0.0.1:7946 --token BERTH-1-... --advertise 10.0.0.2:7946\n  berth cluster status"
    )]
    Cluster {
        #[command(subcommand)]
        cmd: ClusterCmd,
    },
    /// List and administer cluster nodes: `berth node ls`, `berth node <name> <command>`.
    #[command(
        after_help = "Examples:\n  berth node ls\n  berth node node2 label --kw role=app\n  berth node node2 drain\n  berth node node3 promote",
        arg_required_else_help = true
    )]
    Node {
        /// `ls`, or a node name followed by a command.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        words: Vec<String>,
    },
    /// Read and write the Consul-compatible KV store (the same keys the
    /// Consul API serves on --consul-addr).
    #[command(
        after_help = "Examples:\n  berth kv put container/key1 docker\n  berth kv get container/key1\n  berth kv get container/ --recurse --format json\n  berth kv ls container/\n  berth kv del container/ --recurse\n  berth kv watch container/ --recurse",
        arg_required_else_help = true
    )]
    Kv {
        #[command(subcommand)]
        cmd: KvCmd,
    },
    /// Read the catalog of services (the one the Consul API and DNS serve).
    #[command(
        after_help = "Examples:\n  berth catalog services\n  berth catalog service web --tag v1 --format json",
        arg_required_else_help = true
    )]
    Catalog {
        #[command(subcommand)]
        cmd: CatalogCmd,
    },
    /// Show this node's ingress (--ingress-http, --ingress-https): host routes and backends.
    #[command(
        after_help = "Examples:\n  berth ingress routes\n  berth ingress routes --format json",
        arg_required_else_help = true
    )]
    Ingress {
        #[command(subcommand)]
        cmd: IngressCmd,
    },
    /// Manage users: create, ls, delete, passwd, grant, revoke, grants.
    #[command(
        after_help = "Grants: root, squatter, admin:<ns glob>, operator:<ns glob>[:restricted], guest:<ns glob>, kv:<key glob>:read|write.\n\nExamples:\n  echo \"$PASSWORD\" | berth user create alice --group devs --password-stdin\n  berth user grant alice admin:app1-*\n  berth user grants alice\n  berth user ls --format json",
        arg_required_else_help = true
    )]
    User {
        #[command(subcommand)]
        cmd: UserCmd,
    },
    /// Manage groups, whose grants their members hold.
    #[command(
        after_help = "Examples:\n  berth group create devs\n  berth group grant devs operator:app*-dev\n  berth user create bob --group devs",
        arg_required_else_help = true
    )]
    Group {
        #[command(subcommand)]
        cmd: GroupCmd,
    },
    /// LDAP users: `berth ldap sync` syncs them now (the daemon's
    /// --ldap-* options say where the directory is).
    #[command(
        after_help = "Examples:\n  berth daemon run --ldap-url ldap://ldap1 --ldap-bind-dn cn=berth,ou=services,dc=example,dc=com \\\n      --ldap-bind-password-file /etc/berth/ldap.pw --ldap-user-base ou=people,dc=example,dc=com \\\n      --ldap-group-base ou=groups,dc=example,dc=com\n  berth group create devs --grant operator:app*-dev --ldap-group cn=devs,ou=groups,dc=example,dc=com\n  berth ldap sync --format json\n  berth login https://node1:7947 --user alice   # her LDAP password",
        arg_required_else_help = true
    )]
    Ldap {
        #[command(subcommand)]
        cmd: LdapCmd,
    },
    /// Issue and revoke tokens (BERTH_TOKEN makes the CLI act with one).
    #[command(
        after_help = "Examples:\n  berth token create --user ci-bot --ttl 1h --grant operator:app1-dev\n  BERTH_TOKEN=$(berth token create --user ci-bot --ttl 1h --quiet) berth ls\n  berth token revoke <token or id>",
        arg_required_else_help = true
    )]
    Token {
        #[command(subcommand)]
        cmd: TokenCmd,
    },
    /// Log in to a node's remote API (--api-addr) and keep the token in
    /// ~/.config/berth/credentials.json. The first login pins the cluster
    /// CA by its fingerprint, as a join token does.
    #[command(
        after_help = "Examples:\n  berth login https://node1:7947 --user alice --ca-sha256 <fingerprint>\n  echo \"$PASSWORD\" | berth login https://node1 --user alice --password-stdin\n  berth --server https://node1:7947 'app1-*/*' ls",
        arg_required_else_help = true
    )]
    Login {
        /// https://HOST[:PORT] (port 7947 by default).
        server: String,
        #[arg(long)]
        user: String,
        /// Read the password from standard input instead of the terminal.
        #[arg(long)]
        password_stdin: bool,
        /// The cluster CA's SHA-256 fingerprint (in every join token:
        /// BERTH-1-<fingerprint>-...). Needed at the first login only.
        #[arg(long)]
        ca_sha256: Option<String>,
        /// How long the token is valid.
        #[arg(long, default_value = "8h", value_parser = parse_duration)]
        ttl: std::time::Duration,
    },
    /// Forget the token kept for a server (its CA stays pinned).
    Logout { server: String },
    /// The audit trail: every change and every refusal, newest last.
    #[command(
        after_help = "Examples:\n  berth audit --user alice --since 1h\n  berth audit --object 'app1-*/*' --refused\n  berth audit --since 24h --export > audit.jsonl"
    )]
    Audit {
        #[arg(long)]
        user: Option<String>,
        /// A glob on the object acted on.
        #[arg(long)]
        object: Option<String>,
        /// Only the last DURATION: 15m, 1h, 7d.
        #[arg(long, value_parser = parse_duration)]
        since: Option<std::time::Duration>,
        /// Refusals only.
        #[arg(long)]
        refused: bool,
        /// At most this many records, the newest.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        /// One JSON object per line, for export.
        #[arg(long)]
        export: bool,
    },
    /// Who the CLI acts as, and the grants it holds.
    #[command(
        after_help = "Examples:\n  berth whoami\n  BERTH_TOKEN=... berth whoami --format json"
    )]
    Whoami,
    /// Print a shell completion script.
    #[command(after_help = "Examples:\n  berth completion bash > /etc/bash_completion.d/berth")]
    Completion { shell: clap_complete::Shell },
    /// Write man pages (berth.1 and one per subcommand) into DIR.
    #[command(after_help = "Examples:\n  berth manpages /usr/local/share/man/man1")]
    Manpages { dir: PathBuf },
    #[command(external_subcommand)]
    Object(Vec<String>),
}

#[derive(Subcommand, Debug)]
pub enum CatalogCmd {
    /// Every service, with its tags and how many instances pass.
    #[command(after_help = "Examples:\n  berth catalog services")]
    Services,
    /// The instances of one service: node, address, port, tags, health.
    #[command(
        after_help = "Examples:\n  berth catalog service web\n  berth catalog service web --tag v1"
    )]
    Service {
        name: String,
        /// Only instances with this tag.
        #[arg(long)]
        tag: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum IngressCmd {
    /// Host routes, their backends, health and counters.
    #[command(after_help = "Examples:\n  berth ingress routes --format json")]
    Routes,
}

#[derive(Subcommand, Debug)]
pub enum KvCmd {
    /// Write a key. VALUE `-` reads standard input, `@FILE` a file; no
    /// VALUE stores an empty value.
    #[command(
        after_help = "Examples:\n  berth kv put container/key1 docker\n  berth kv put app/config @config.json\n  berth kv put app/leader me --cas 0   # only if absent"
    )]
    Put {
        key: String,
        value: Option<String>,
        /// Opaque number stored with the key.
        #[arg(long, default_value_t = 0)]
        flags: u64,
        /// Write only if the key's ModifyIndex is this; 0: only if absent.
        #[arg(long)]
        cas: Option<u64>,
    },
    /// Print a key's value, or with --recurse every key under a prefix.
    #[command(
        after_help = "Examples:\n  berth kv get container/key1\n  berth kv get container/ --recurse"
    )]
    Get {
        key: String,
        #[arg(long)]
        recurse: bool,
    },
    /// Delete a key, or with --recurse every key under a prefix.
    #[command(
        after_help = "Examples:\n  berth kv del container/key1\n  berth kv del container/ --recurse\n  berth kv del app/lock --cas 42"
    )]
    Del {
        key: String,
        #[arg(long)]
        recurse: bool,
        /// Delete only if the key's ModifyIndex is this.
        #[arg(long, conflicts_with = "recurse")]
        cas: Option<u64>,
    },
    /// List keys under a prefix, folded at `/` like directories.
    #[command(after_help = "Examples:\n  berth kv ls\n  berth kv ls container/")]
    Ls {
        #[arg(default_value = "")]
        prefix: String,
        /// Fold keys at this separator (empty: list every key).
        #[arg(long, default_value = "/")]
        separator: String,
    },
    /// Print a key (or with --recurse a prefix) now and at every change.
    #[command(
        after_help = "Examples:\n  berth kv watch app/config\n  berth kv watch app/ --recurse --format json"
    )]
    Watch {
        key: String,
        #[arg(long)]
        recurse: bool,
    },
}

#[derive(Args, Debug, Clone)]
pub struct CreateArgs {
    /// Object path: ns/name, or name for the root namespace.
    pub path: String,
    /// Keyword to set, section.keyword=value (repeatable).
    #[arg(long = "kw")]
    pub kw: Vec<String>,
    /// Start from this config file.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

pub(crate) fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let d = berth_model::parse_duration(s)?;
    if d.is_zero() {
        return Err("must be more than 0".into());
    }
    Ok(d)
}

#[derive(Subcommand, Debug)]
pub enum ClusterCmd {
    /// Make this node the first manager of a new cluster. Its services keep running.
    #[command(
        after_help = "Examples:\n  berth cluster init\n  berth cluster init --advertise 10.0.0.1:7946 --name prod"
    )]
    Init {
        /// Address and port other nodes reach this one on. Default: the
        /// daemon's address on its default route's interface, port 7946.
        #[arg(long)]
        advertise: Option<String>,
        /// Cluster name.
        #[arg(long)]
        name: Option<String>,
    },
    /// Join the cluster of the manager at ADDR. The node must have no objects.
    #[command(
        after_help = "Examples:\n  berth cluster join 10.0.0.1:7946 --token BERTH-1-...\n  berth cluster join 10.0.0.1:7946 --token BERTH-1-... --advertise 10.0.0.2:7946"
    )]
    Join {
        /// A manager's advertised address.
        addr: String,
        /// Join token (`berth cluster token` on a manager).
        #[arg(long, env = "BERTH_JOIN_TOKEN")]
        token: String,
        /// Address and port other nodes reach this one on. Default: the
        /// address the daemon reaches ADDR from, port 7946.
        #[arg(long)]
        advertise: Option<String>,
    },
    /// Print the worker (or manager) join token; --rotate replaces it first.
    #[command(
        after_help = "Examples:\n  berth cluster token\n  berth cluster token --manager\n  berth cluster token --rotate   # the old token is refused from now on"
    )]
    Token {
        #[arg(long)]
        manager: bool,
        #[arg(long)]
        rotate: bool,
    },
    /// The cluster CA.
    #[command(after_help = "Examples:\n  berth cluster ca rotate")]
    Ca {
        #[command(subcommand)]
        cmd: CaCmd,
    },
    /// Autolock: managers keep the cluster's seal key on disk only sealed
    /// with an unlock key, so a restarted manager serves no secret, signs
    /// nothing and takes no part in Raft until `berth cluster unlock`.
    #[command(
        after_help = "Examples:\n  berth cluster autolock enable    # prints the unlock key, once: keep it safe\n  berth cluster autolock rotate    # a new key; the old one no longer unlocks\n  berth cluster autolock disable"
    )]
    Autolock {
        #[command(subcommand)]
        cmd: AutolockCmd,
    },
    /// Unlock this manager after a restart (autolock). The key is read from
    /// standard input.
    #[command(
        after_help = "Examples:\n  berth cluster unlock            # paste the key, then Enter\n  berth cluster unlock < /secure/unlock.key"
    )]
    Unlock,
    /// Leave the cluster. Services move to other nodes and this node becomes
    /// standalone and empty; the last member keeps its services.
    #[command(after_help = "Examples:\n  berth cluster leave")]
    Leave,
    /// Nodes, roles, leader and reachability.
    #[command(
        after_help = "Examples:\n  berth cluster status\n  berth cluster status --format json"
    )]
    Status,
}

#[derive(Subcommand, Debug, Clone, Copy)]
pub enum AutolockCmd {
    /// Turn autolock on and print the unlock key (shown once).
    Enable,
    /// Make a new unlock key and print it; the previous one stops working.
    Rotate,
    /// Turn autolock off: managers keep the seal key in their identity file again.
    Disable,
}

#[derive(Subcommand, Debug)]
pub enum CaCmd {
    /// Replace the CA with a new one. Every node renews its certificate;
    /// the old CA stays trusted until all have. Join tokens change too.
    #[command(
        after_help = "Examples:\n  berth cluster ca rotate\n  berth cluster status   # ca_rotating until every node renewed"
    )]
    Rotate,
}

/// Administer one cluster node: berth node <name> <command>.
#[derive(Parser, Debug)]
#[command(name = "berth node", no_binary_name = true)]
pub struct NodeCli {
    /// Node name.
    pub name: String,
    #[command(flatten)]
    pub common: Common,
    #[command(subcommand)]
    pub cmd: NodeCmd,
}

/// `berth node ls`.
#[derive(Parser, Debug)]
#[command(name = "berth node ls", no_binary_name = true)]
pub struct NodeLsCli {
    #[command(flatten)]
    pub common: Common,
}

#[derive(Subcommand, Debug)]
pub enum NodeCmd {
    /// Set (key=value) or remove (--unset key) node labels, used by `nodes=` selectors.
    #[command(
        after_help = "Examples:\n  berth node node2 label --kw role=app\n  berth node node2 label --unset role"
    )]
    Label {
        #[arg(long = "kw")]
        kw: Vec<String>,
        #[arg(long)]
        unset: Vec<String>,
    },
    /// Move instances off the node and place no new ones there.
    Drain,
    /// Undo drain.
    Undrain,
    /// Place no new instances on the node; what runs stays.
    Freeze,
    /// Undo freeze.
    Thaw,
    /// Make the node a manager (Raft voter).
    Promote,
    /// Make the node a worker.
    Demote,
    /// Remove the node from the cluster.
    Remove,
}

#[derive(Subcommand, Debug)]
pub enum DaemonCmd {
    /// Run in the foreground.
    #[command(
        after_help = "Examples:\n  berth daemon run\n  berth daemon run --home /tmp/b --docker-socket /run/other.sock"
    )]
    Run(DaemonOpts),
    /// Start in the background and wait until it answers.
    #[command(
        after_help = "Examples:\n  berth daemon start\n  BERTH_HOME=/tmp/b berth daemon start --nodename node1"
    )]
    Start(DaemonOpts),
    /// Stop the daemon. Containers and private dockerds keep running; on a
    /// cluster node, failover instances are killed by the fencing watchdog
    /// once the node's lease runs out (about 3 s), as the managers then move
    /// them. A restart within that time bounces nothing.
    #[command(after_help = "Examples:\n  berth daemon stop")]
    Stop,
    /// Is the daemon running, and healthy? Shows each Docker daemon's
    /// connection (the host's and every private one), the store (ok;
    /// degraded or read-only: writes fail, reads are served) and the
    /// cluster role and leader. Exit code 1 when it is not running or the
    /// store is not ok.
    #[command(
        after_help = "Examples:\n  berth daemon status\n  berth daemon status --format json"
    )]
    Status,
    /// The fencing watchdog a cluster node's daemon spawns for itself.
    #[command(hide = true)]
    Watchdog,
}

const OBJECT_EXAMPLES: &str = "\
Examples:
  berth 'app[12]-dev/*' set --kw env=DEV
  berth app1-prd/svc1 get --kw container#0.image
  berth app1-prd/svc1 unset --kw app
  berth app1-prd/svc1 print config
  berth 'app*-*/*' start
  berth app1-prd/svc1 stop --local
  berth app1-prd/svc1 print status --format json
  berth 'app*-*/*' docker images
  berth 'app*-*/*' freeze
  berth app1-prd/svc1 delete";

#[derive(Parser, Debug)]
#[command(name = "berth", no_binary_name = true, after_help = OBJECT_EXAMPLES)]
pub struct ObjectCli {
    /// Object selector.
    pub selector: String,
    #[command(flatten)]
    pub common: Common,
    #[command(subcommand)]
    pub cmd: ObjCmd,
}

#[derive(Args, Debug, Clone)]
pub struct SetList {
    /// keyword=value, or section.keyword=value for a resource
    /// (container#0.image=busybox); repeatable.
    #[arg(long = "kw", required = true, value_name = "[SECTION.]KEYWORD=VALUE")]
    pub kw: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct UnsetList {
    /// keyword, or section.keyword for a resource (container#0.ports);
    /// repeatable.
    #[arg(long = "kw", required = true, value_name = "[SECTION.]KEYWORD")]
    pub kw: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct SecretValueArgs {
    #[arg(long)]
    pub key: String,
    /// Read the value from FILE, or from standard input with `-`.
    #[arg(long, conflicts_with = "value")]
    pub from: Option<PathBuf>,
    /// The value itself (visible in the process list: prefer --from).
    #[arg(long)]
    pub value: Option<String>,
}

#[derive(Args, Debug, Clone, Copy)]
pub struct ActionArgs {
    /// Act on this node's instance only (the only one on a single node).
    #[arg(long)]
    pub local: bool,
}

#[derive(Subcommand, Debug)]
pub enum ObjCmd {
    /// Set keywords (all selected objects are validated before any is written).
    #[command(
        after_help = "Examples:\n  berth 'app*-*/*' set --kw env=DEV --kw container#0.image=local/pause:1"
    )]
    Set(SetList),
    /// Remove keywords.
    #[command(after_help = "Examples:\n  berth app1-prd/svc1 unset --kw app")]
    Unset(UnsetList),
    /// Print a keyword's value.
    #[command(
        after_help = "Examples:\n  berth app1-prd/svc1 get --kw container#0.image\n  berth app1-prd/svc1 get --kw docker_data_dir --eval"
    )]
    Get {
        #[arg(long = "kw")]
        kw: String,
        /// Print the effective value: defaults applied, references expanded.
        #[arg(long)]
        eval: bool,
    },
    /// Print the config or the status.
    #[command(
        after_help = "Examples:\n  berth app1-prd/svc1 print config\n  berth app1-prd/svc1 print config --version 3\n  berth app1-prd/svc1 print status"
    )]
    Print {
        #[arg(value_enum)]
        what: PrintWhat,
        /// config: the text a deployed version ran (see `history`).
        #[arg(long)]
        version: Option<u64>,
    },
    /// Config commands (`config show` = `print config`).
    #[command(after_help = "Examples:\n  berth app1-prd/svc1 config show")]
    Config {
        #[arg(value_enum)]
        what: ConfigWhat,
    },
    /// Print the status tree (= `print status`).
    #[command(after_help = "Examples:\n  berth app1-prd/svc1 status --format json")]
    Status,
    /// Start: thaw, set the target to started and wait for the containers.
    #[command(
        after_help = "Examples:\n  berth 'app*-*/*' start\n  berth app1-prd/svc1 start --local"
    )]
    Start(ActionArgs),
    /// Stop: set the target to stopped, freeze, stop the containers.
    #[command(
        after_help = "Examples:\n  berth 'app*-*/*' stop\n  berth app1-prd/svc1 stop --local"
    )]
    Stop(ActionArgs),
    /// Recreate the containers from the current config and start them.
    #[command(after_help = "Examples:\n  berth app1-prd/svc1 restart")]
    Restart(ActionArgs),
    /// Stop the daemon from acting on the objects.
    #[command(after_help = "Examples:\n  berth 'app*-*/*' freeze")]
    Freeze,
    /// Let the daemon act on the objects again.
    #[command(after_help = "Examples:\n  berth 'app*-*/*' thaw")]
    Thaw,
    /// topology=flex: run N instances, each on its own node.
    #[command(after_help = "Examples:\n  berth web scale 3")]
    Scale { instances: u32 },
    /// Roll the config out: instances running an older container spec are
    /// replaced a batch at a time, each new one behind a health gate; a
    /// failed gate rolls back (update_failure_action).
    #[command(
        after_help = "Examples:\n  berth web deploy\n  berth web deploy --parallelism 2 --delay 5s\n\nThe update_* keywords give the defaults. `history` lists the deployed versions."
    )]
    Deploy {
        /// Instances replaced at a time (update_parallelism).
        #[arg(long)]
        parallelism: Option<u32>,
        /// Wait between batches, such as 5s (update_delay).
        #[arg(long, value_parser = parse_delay)]
        delay: Option<std::time::Duration>,
        /// stop-first or start-first (update_order).
        #[arg(long, value_parser = ["stop-first", "start-first"])]
        order: Option<String>,
    },
    /// Deploy the previous deployed version's config again.
    #[command(after_help = "Examples:\n  berth web rollback")]
    Rollback,
    /// The deployed versions: who, when, digests, outcome.
    #[command(after_help = "Examples:\n  berth web history\n  berth web history --format json")]
    History,
    /// Diff a deployed version's config against the current config (or
    /// against another version with --to).
    #[command(
        after_help = "Examples:\n  berth web diff --version 3\n  berth web diff --version 3 --to 4\n  berth web diff --version 3 --exit-code"
    )]
    Diff {
        /// The deployed version to compare (see `history`).
        #[arg(long)]
        version: u64,
        /// Compare with this version instead of the current config.
        #[arg(long)]
        to: Option<u64>,
        /// Exit 1 when the configs differ, as `git diff --exit-code`.
        #[arg(long)]
        exit_code: bool,
    },
    /// Cluster: stop the service where it runs and start it on NODE.
    #[command(after_help = "Examples:\n  berth db switch --to node2")]
    Switch {
        #[arg(long)]
        to: String,
    },
    /// Cluster: move the service to this node.
    #[command(after_help = "Examples:\n  berth db takeover")]
    Takeover,
    /// Cluster: stop the service and let the scheduler place it again.
    #[command(after_help = "Examples:\n  berth db giveback")]
    Giveback,
    /// Run a docker command against each object's docker daemon.
    #[command(
        after_help = "Examples:\n  berth 'app*-*/*' docker images\n  berth app1-prd/svc1 docker ps -a"
    )]
    Docker {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        args: Vec<String>,
    },
    /// List the selected objects.
    #[command(after_help = "Examples:\n  berth 'app*-*/*' ls")]
    Ls,
    /// Forget this node's warnings and failed states of the objects (the
    /// `!` in mon), as om3's clear does. The daemon also drops a warning
    /// when its condition clears, or after --warn-ttl.
    #[command(after_help = "Examples:\n  berth app1-prd/svc1 clear\n  berth 'app*-*/*' clear")]
    Clear,
    /// Stop and delete the objects (data directories are kept).
    #[command(after_help = "Examples:\n  berth app1-prd/svc1 delete")]
    Delete,
    /// sec and cfg objects: add a key (its value from --from FILE, - for
    /// standard input, or --value).
    #[command(
        after_help = "Examples:\n  berth app1-prd/sec/db add --key password --from -\n  berth app1-prd/cfg/nginx add --key conf --from ./nginx.conf"
    )]
    Add(SecretValueArgs),
    /// sec and cfg objects: write a new version of a key.
    #[command(after_help = "Examples:\n  berth app1-prd/sec/db change --key password --from -")]
    Change(SecretValueArgs),
    /// sec and cfg objects: their keys, versions and sizes (never values).
    #[command(after_help = "Examples:\n  berth app1-prd/sec/db keys")]
    Keys,
    /// sec and cfg objects: print a key's value (a secret's needs admin).
    #[command(after_help = "Examples:\n  berth app1-prd/sec/db decode --key password")]
    Decode {
        #[arg(long)]
        key: String,
    },
    /// sec and cfg objects: remove a key.
    #[command(after_help = "Examples:\n  berth app1-prd/sec/db remove --key password")]
    Remove {
        #[arg(long)]
        key: String,
    },
    /// Create the object named by the selector.
    #[command(after_help = "Examples:\n  berth app1-dev/svc1 create --kw env=DEV")]
    Create {
        #[arg(long = "kw")]
        kw: Vec<String>,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum PrintWhat {
    Config,
    Status,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ConfigWhat {
    Show,
}

/// A `--delay` value: a duration such as 500ms, 5s or 1m.
fn parse_delay(s: &str) -> Result<std::time::Duration, String> {
    berth_model::parse_duration(s)
}
