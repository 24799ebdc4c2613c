//! Value constraints, written as data next to each keyword in its table:
//! `set`, `create`, hand edits, `berth doc` and the API's JSON schema all
//! read the same [`Rule`]. The grammars here (port specs, mounts, image
//! references) are also the parsers the drivers use, so a value that passes
//! at write time cannot fail to parse at start.

use core::net::IpAddr;

use crate::words::split_words;

/// A constraint on a keyword's value, beyond its type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// No constraint beyond the type.
    None,
    /// An integer in `min..=max`.
    Range { min: i64, max: i64 },
    /// Words of the form `[ip:][hostport:]containerport[/tcp|udp|sctp]`.
    Ports,
    /// Words of the form `source:target[:ro|:rw]`.
    Mounts,
    /// A Docker image reference: `[host[:port]/]path[:tag][@digest]`.
    Image,
    /// Words of the form `KEY=VALUE` with a non-empty KEY.
    KeyValues,
    /// An absolute path.
    AbsPath,
    /// Words of the form `host[/path]`, the host a DNS name or a
    /// `*.domain` wildcard.
    HostRoutes,
    /// A check berth runs: `http://:PORT[/path]` or `tcp://:PORT`.
    Check,
}

impl Rule {
    /// The rule in words, for errors and `berth doc`; empty for `None`.
    pub fn describe(&self) -> String {
        match self {
            Rule::None => String::new(),
            Rule::Range { min, max } => format!("an integer from {min} to {max}"),
            Rule::Ports => "[ip:][hostport:]containerport[/tcp|udp|sctp], ports 1-65535".into(),
            Rule::Mounts => "source:target[:ro|rw], target an absolute path".into(),
            Rule::Image => "a docker image reference, [host[:port]/]path[:tag][@digest]".into(),
            Rule::KeyValues => "KEY=VALUE words".into(),
            Rule::AbsPath => "an absolute path".into(),
            Rule::HostRoutes => "host[/path] words, the host a DNS name or *.domain".into(),
            Rule::Check => "http://:PORT[/path] or tcp://:PORT, on the container's address".into(),
        }
    }

    /// Checks a value that already passed its type check.
    pub fn check(&self, value: &str) -> Result<(), String> {
        let each = |f: fn(&str) -> Result<(), String>| -> Result<(), String> {
            for w in split_words(value)? {
                f(&w)?;
            }
            Ok(())
        };
        match self {
            Rule::None => Ok(()),
            Rule::Range { min, max } => {
                let n: i64 = value
                    .trim()
                    .parse()
                    .map_err(|_| format!("{value:?} is not an integer"))?;
                if n < *min || n > *max {
                    return Err(format!("{value:?} is out of range {min}..{max}"));
                }
                Ok(())
            }
            Rule::Ports => each(|w| parse_port(w).map(|_| ())),
            Rule::Mounts => each(|w| parse_mount(w).map(|_| ())),
            Rule::Image => check_image(value),
            Rule::KeyValues => each(|w| parse_key_value(w).map(|_| ())),
            Rule::HostRoutes => each(|w| parse_host_route(w).map(|_| ())),
            Rule::Check => crate::health::parse_check(value.trim()).map(|_| ()),
            Rule::AbsPath => {
                if value.starts_with('/') {
                    Ok(())
                } else {
                    Err(format!("{value:?} is not an absolute path"))
                }
            }
        }
    }
}

/// One published port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortParts {
    pub host_ip: Option<String>,
    pub host_port: Option<u16>,
    pub container_port: u16,
    pub proto: &'static str,
}

/// Parses `[ip:][hostport:]containerport[/proto]`; an IPv6 host address is
/// written in brackets, `[::1]:8080:80`.
pub fn parse_port(p: &str) -> Result<PortParts, String> {
    let bad = |why: &str| format!("{p:?} is not [ip:][hostport:]containerport[/proto]: {why}");
    let (body, proto) = match p.rsplit_once('/') {
        Some((b, "tcp")) => (b, "tcp"),
        Some((b, "udp")) => (b, "udp"),
        Some((b, "sctp")) => (b, "sctp"),
        Some((_, other)) => return Err(bad(&format!("unknown protocol {other:?}"))),
        None => (p, "tcp"),
    };
    let (ip, rest) = match body.strip_prefix('[') {
        Some(v6) => {
            let (ip, rest) = v6.split_once("]:").ok_or_else(|| bad("unclosed ["))?;
            (Some(ip), rest)
        }
        None => match body.matches(':').count() {
            2 => body
                .split_once(':')
                .map(|(ip, r)| (Some(ip), r))
                .unwrap_or((None, body)),
            0 | 1 => (None, body),
            _ => return Err(bad("too many ':'")),
        },
    };
    if let Some(ip) = ip {
        ip.parse::<IpAddr>()
            .map_err(|_| bad(&format!("{ip:?} is not an IP address")))?;
    }
    let num = |s: &str| -> Result<u16, String> {
        match s.parse::<u32>() {
            Ok(n @ 1..=65535) => Ok(n as u16),
            Ok(n) => Err(bad(&format!("port {n} is out of range 1..65535"))),
            Err(_) => Err(bad(&format!("{s:?} is not a port number"))),
        }
    };
    let (host_port, container_port) = match rest.split_once(':') {
        Some((h, c)) => (Some(num(h)?), num(c)?),
        None if ip.is_some() => return Err(bad("an address needs a host port")),
        None => (None, num(rest)?),
    };
    Ok(PortParts {
        host_ip: ip.map(str::to_string),
        host_port,
        container_port,
        proto,
    })
}

/// One mount: source, absolute target, read-only.
pub fn parse_mount(m: &str) -> Result<(String, String, bool), String> {
    let parts: Vec<&str> = m.split(':').collect();
    let (source, target, read_only) = match parts.as_slice() {
        [s, t] => (*s, *t, false),
        [s, t, "ro"] => (*s, *t, true),
        [s, t, "rw"] => (*s, *t, false),
        _ => return Err(format!("{m:?} is not source:target[:ro|rw]")),
    };
    if source.is_empty() || !target.starts_with('/') {
        return Err(format!(
            "{m:?} needs a source and an absolute container path"
        ));
    }
    Ok((source.to_string(), target.to_string(), read_only))
}

/// An ingress route, `host[/path]`: the host lowercased, a wildcard
/// `*.domain` kept as such, the path prefix (`/` when none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostRoute {
    pub host: String,
    pub path: String,
}

impl HostRoute {
    /// `*.domain`: matches any name under `domain`, not `domain` itself.
    pub fn wildcard(&self) -> Option<&str> {
        self.host.strip_prefix("*.")
    }
}

pub fn parse_host_route(w: &str) -> Result<HostRoute, String> {
    let (host, path) = match w.find('/') {
        Some(i) => (&w[..i], &w[i..]),
        None => (w, "/"),
    };
    let bad = |why: &str| Err(format!("{w:?} is not host[/path]: {why}"));
    let name = host.strip_prefix("*.").unwrap_or(host);
    if name.is_empty() || name.len() > 253 {
        return bad("the host is empty or too long");
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if !name.split('.').all(label_ok) {
        return bad("the host is not a DNS name");
    }
    if path.contains(|c: char| c.is_ascii_control() || c == '?' || c == '#') {
        return bad("the path has a control character, '?' or '#'");
    }
    Ok(HostRoute {
        host: host.to_ascii_lowercase(),
        path: path.to_string(),
    })
}

/// `KEY=VALUE` with a non-empty KEY.
pub fn parse_key_value(w: &str) -> Result<(&str, &str), String> {
    match w.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k, v)),
        _ => Err(format!("{w:?} is not KEY=VALUE")),
    }
}

/// Checks a Docker image reference, as the distribution/reference grammar
/// has it.
pub fn check_image(r: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("{r:?} is not an image reference: {why}"));
    if r.is_empty() {
        return bad("it is empty");
    }
    let (name_tag, digest) = match r.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (r, None),
    };
    if let Some(d) = digest {
        let ok = d.split_once(':').is_some_and(|(algo, hex)| {
            algo.split(['+', '.', '-', '_']).all(|c| {
                c.starts_with(|ch: char| ch.is_ascii_alphabetic())
                    && c.chars().all(|ch| ch.is_ascii_alphanumeric())
            }) && hex.len() >= 32
                && hex.chars().all(|ch| ch.is_ascii_hexdigit())
        });
        if !ok {
            return bad("the digest is not algorithm:hex");
        }
    }
    let last_slash = name_tag.rfind('/').map(|i| i + 1).unwrap_or(0);
    let (name, tag) = match name_tag[last_slash..].rfind(':') {
        Some(i) => (
            &name_tag[..last_slash + i],
            Some(&name_tag[last_slash + i + 1..]),
        ),
        None => (name_tag, None),
    };
    if let Some(t) = tag {
        let ok = !t.is_empty()
            && t.len() <= 128
            && !t.starts_with(['.', '-'])
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !ok {
            return bad(&format!("bad tag {t:?}"));
        }
    }
    if name.len() > 255 {
        return bad("the name is over 255 characters");
    }
    let mut segs: Vec<&str> = name.split('/').collect();
    if segs.len() > 1 {
        let first = segs[0];
        let is_domain = first.contains(['.', ':'])
            || first == "localhost"
            || first.chars().any(|c| c.is_ascii_uppercase());
        if is_domain {
            check_domain(first).or_else(|why| bad(&why))?;
            segs.remove(0);
        }
    }
    for s in segs {
        if !path_component_ok(s) {
            return bad(&format!(
                "{s:?} is not lowercase letters and digits joined by '.', '_', '__' or '-'"
            ));
        }
    }
    Ok(())
}

fn check_domain(d: &str) -> Result<(), String> {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, Some(p)),
        _ => (d, None),
    };
    if let Some(p) = port {
        if p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!("bad registry port {p:?}"));
        }
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6
            .parse::<core::net::Ipv6Addr>()
            .map(|_| ())
            .map_err(|_| format!("bad registry address {host:?}"));
    }
    let ok = host.split('.').all(|c| {
        !c.is_empty()
            && !c.starts_with('-')
            && !c.ends_with('-')
            && c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
    });
    if ok {
        Ok(())
    } else {
        Err(format!("bad registry host {host:?}"))
    }
}

fn path_component_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &s[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
