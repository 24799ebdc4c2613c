use berth_model::{Keyword, KeywordTable, KwType, Rule};

const fn kw(
    name: &'static str,
    kind: KwType,
    default: Option<&'static str>,
    text: &'static str,
    example: Option<&'static str>,
) -> Keyword {
    Keyword {
        name,
        kind,
        default,
        required: false,
        scopable: true,
        text,
        example,
        rule: Rule::None,
    }
}

pub static TABLE: KeywordTable = KeywordTable {
    family: "container",
    rtype: Some("docker"),
    text: "A docker container, named <ns>..<name>.container.<idx> (no prefix in the root namespace).",
    keywords: &[
        kw("type", KwType::Enum(&["docker"]), Some("docker"), "Resource driver.", Some("docker")),
        Keyword {
            name: "image",
            kind: KwType::String,
            default: None,
            required: true,
            scopable: true,
            text: "Image to run. Used from the local engine if present, else handled per pull_policy.",
            example: Some("127.0.0.1:5000/local/pause:1"),
            rule: Rule::Image,
        },
        kw("pull_policy", KwType::Enum(&["missing", "always", "never", "host"]), Some("missing"),
           "missing: use the local image, pull when absent. always: pull before each create. never: local only. host: when absent from a private daemon, copy it from the host's dockerd (docker save | docker load), else pull.",
           Some("host")),
        kw("command", KwType::String, None, "Command and arguments, split like a shell would.", Some("sleep 3600")),
        kw("entrypoint", KwType::String, None, "Entrypoint override, split like a shell would.", Some("/bin/sh -c")),
        kw("environment", KwType::List, None, "Environment variables, as KEY=VALUE words. Words are separated by spaces. Quotes group words and are removed: D=\"x y=z\" is the one variable D with the value x y=z. A backslash escapes the next character, outside quotes and inside \"...\"; inside '...' every character is literal.", Some("LOG=debug MODE=prd")).with_rule(Rule::KeyValues),
        kw("ports", KwType::List, None, "Published ports: [ip:]hostport:containerport[/proto], space-separated.", Some("8080:80/tcp")).with_rule(Rule::Ports),
        kw("volume_mounts", KwType::List, None, "Mounts: <volume name or /host/dir>:<container dir>[:ro], space-separated.", Some("data:/data /srv/conf:/etc/app:ro")).with_rule(Rule::Mounts),
        kw("netns", KwType::String, None, "Network mode: host, none, bridge, or a docker network name.", Some("host")),
        kw("hostname", KwType::String, None, "Container hostname.", Some("{name}")),
        kw("labels", KwType::List, None, "Extra container labels, as space-separated KEY=VALUE words.", Some("team=one")).with_rule(Rule::KeyValues),
        kw("restart", KwType::Int, Some("3"), "How many times the agent restarts the container after it exits unexpectedly, before marking the resource failed. A start action resets the count.", Some("5")).with_rule(Rule::Range { min: 0, max: 1_000_000 }),
        kw("restart_delay", KwType::Duration, Some("1s"), "Delay before each restart.", Some("500ms")),
        kw("stop_timeout", KwType::Duration, Some("10s"), "Grace period between SIGTERM and SIGKILL on stop.", Some("30s")),
        kw("healthcheck", KwType::String, None, "Shell command docker runs inside the container to check its health.", Some("wget -q -O- localhost/health")),
        kw("read_only", KwType::Bool, Some("false"), "Mount the container's root filesystem read-only.", Some("true")),
        kw("user", KwType::String, None, "User (name or uid[:gid]) the container runs as.", Some("1000:1000")),
        kw("privileged", KwType::Bool, Some("false"), "Give the container extended privileges.", Some("false")),
        kw("ingress_hosts", KwType::List, None, "Host names the ingress of every node routes to this service (--ingress-http): host[/path] words, exact names or *.domain wildcards, with an optional path prefix. Requests go to service_port's instances that are not critical, round robin.", Some("shop.example.test *.shop.test api.test/v1")).with_rule(Rule::HostRoutes),
        kw("dns_berth", KwType::Bool, Some("false"), "Resolve through this node's berth DNS: the container's only nameserver is berth, served on the gateway of the container's bridge network, port 53. Names under the berth domain (web.service.berth) resolve from the catalog; other names go to --dns-recursor, or to the host's resolv.conf nameservers. Needs a bridge network (not netns=host or none) and berth's DNS (--dns-addr not none).", Some("true")),
        kw("service_name", KwType::String, None, "Name the container is registered under in the catalog and DNS (<service>.service.<domain>). Default: <name>-<namespace>.", Some("web")),
        kw("service_tags", KwType::List, None, "Catalog tags of the service, space-separated (<tag>.<service>.service.<domain>).", Some("v1 primary")),
        kw("service_port", KwType::Int, None, "The container port the service answers on; registered as its published host port when it has one. Default: the first published port.", Some("80")).with_rule(Rule::Range { min: 1, max: 65535 }),
    ],
};
