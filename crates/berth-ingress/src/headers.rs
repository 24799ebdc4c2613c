//! The headers a proxy changes: hop-by-hop ones removed (RFC 9110 7.6.1),
//! the client's address and the original host and scheme set. What an
//! untrusted peer sent in `X-Forwarded-*` and `Forwarded` is replaced,
//! never appended to; a trusted proxy's are kept and extended.

use hyper::header::{
    HeaderMap, HeaderName, HeaderValue, CONNECTION, FORWARDED, PROXY_AUTHENTICATE,
    PROXY_AUTHORIZATION, TE, TRAILER, TRANSFER_ENCODING, UPGRADE,
};
use std::net::IpAddr;

const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Parsed once: a name given as text is parsed at every use.
const HOP_BY_HOP: [HeaderName; 9] = [
    CONNECTION,
    KEEP_ALIVE,
    PROXY_CONNECTION,
    PROXY_AUTHENTICATE,
    PROXY_AUTHORIZATION,
    TE,
    TRAILER,
    TRANSFER_ENCODING,
    UPGRADE,
];

/// The protocol a request asks to upgrade to (`Upgrade`, with `Connection:
/// upgrade`), such as `websocket`.
pub fn upgrade_of(h: &HeaderMap) -> Option<HeaderValue> {
    let asks = h
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    asks.then(|| h.get(UPGRADE).cloned()).flatten()
}

/// Removes the hop-by-hop headers, and those `Connection` names.
pub fn strip_hop_by_hop(h: &mut HeaderMap) {
    // Most messages have none: one pass over the names, no lookups.
    if !h.keys().any(|k| HOP_BY_HOP.contains(k)) {
        return;
    }
    if h.contains_key(CONNECTION) {
        let named: Vec<HeaderName> = h
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
            .collect();
        for n in named {
            h.remove(n);
        }
    }
    for n in &HOP_BY_HOP {
        h.remove(n);
    }
}

/// Who a connection's requests come from, as the forwarding headers say
/// it: rendered once per connection, not per request.
#[derive(Debug)]
pub struct Forwarding {
    proto: &'static str,
    /// The peer is a trusted proxy that forwarded the request itself: the
    /// client is appended to its `X-Forwarded-For` and `Forwarded`, and
    /// its `X-Forwarded-Proto` and `-Host` are kept.
    extend: bool,
    /// The client's address, as `X-Forwarded-For` of an untrusted peer.
    xff: HeaderValue,
    /// `Forwarded` up to its host: `for=...;proto=...`.
    forwarded: String,
}

impl Forwarding {
    pub fn new(client: IpAddr, proto: &'static str, extend: bool) -> Forwarding {
        let ip = client.to_canonical();
        let text = ip.to_string();
        let forwarded = match ip {
            IpAddr::V4(_) => format!("for={text};proto={proto}"),
            IpAddr::V6(_) => format!("for=\"[{text}]\";proto={proto}"),
        };
        Forwarding {
            proto,
            extend,
            xff: HeaderValue::try_from(text).unwrap_or(HeaderValue::from_static("unknown")),
            forwarded,
        }
    }

    /// `Forwarded` for a request to `host`.
    fn forwarded(&self, host: &str) -> String {
        let mut f = String::with_capacity(self.forwarded.len() + host.len() + 8);
        f.push_str(&self.forwarded);
        if !host.is_empty() && host.bytes().all(|b| b.is_ascii_graphic() && b != b'"') {
            f.push_str(";host=\"");
            f.push_str(host);
            f.push('"');
        }
        f
    }
}

/// Sets who asked, for which host (given without its port, as a header
/// value), over which scheme. What an untrusted peer sent is replaced.
pub fn set_forwarded(h: &mut HeaderMap, from: &Forwarding, host: &HeaderValue) {
    let host_text = host.to_str().unwrap_or("");
    if from.extend {
        return extend_forwarded(h, from, host_text);
    }
    h.insert(X_FORWARDED_FOR, from.xff.clone());
    h.insert(X_FORWARDED_PROTO, HeaderValue::from_static(from.proto));
    if host_text.is_empty() {
        h.remove(X_FORWARDED_HOST);
    } else {
        h.insert(X_FORWARDED_HOST, host.clone());
    }
    if let Ok(v) = HeaderValue::try_from(from.forwarded(host_text)) {
        h.insert(FORWARDED, v);
    }
}

/// A trusted proxy's forwarding headers, extended with its client.
fn extend_forwarded(h: &mut HeaderMap, from: &Forwarding, host: &str) {
    let joined = |h: &HeaderMap, name: &HeaderName| -> Option<String> {
        let v: Vec<&str> = h
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        (!v.is_empty()).then(|| v.join(", "))
    };
    let mut pairs = [
        (
            X_FORWARDED_FOR,
            from.xff.to_str().unwrap_or_default().to_string(),
        ),
        (X_FORWARDED_PROTO, String::new()),
        (X_FORWARDED_HOST, host.to_string()),
        (FORWARDED, from.forwarded(host)),
    ];
    let mut proto_value = Some(HeaderValue::from_static(from.proto));
    for (name, value) in pairs.iter_mut() {
        let Some(old) = joined(h, name) else { continue };
        if *name == X_FORWARDED_PROTO {
            proto_value = None;
        }
        *value = if *name == X_FORWARDED_FOR || *name == FORWARDED {
            format!("{old}, {value}")
        } else {
            old
        };
    }
    for (name, value) in pairs {
        let v = match (&name, &proto_value) {
            (n, Some(p)) if *n == X_FORWARDED_PROTO => Some(p.clone()),
            _ if value.is_empty() => None,
            // Taken as it is, not copied.
            _ => HeaderValue::try_from(value).ok(),
        };
        // An insert replaces every value the request had.
        match v {
            Some(v) => h.insert(name, v),
            None => h.remove(&name),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn hop_by_hop_headers_and_the_ones_connection_names_go() {
        let mut h = map(&[
            ("connection", "keep-alive, x-secret"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("te", "trailers"),
            ("accept", "*/*"),
        ]);
        strip_hop_by_hop(&mut h);
        let left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["accept"]);
    }

    #[test]
    fn an_upgrade_needs_both_headers() {
        let h = map(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
        ]);
        assert_eq!(upgrade_of(&h).unwrap(), "websocket");
        assert!(upgrade_of(&map(&[("upgrade", "websocket")])).is_none());
    }

    #[test]
    fn forwarded_headers_are_replaced_not_appended() {
        let mut h = map(&[("x-forwarded-for", "6.6.6.6"), ("forwarded", "for=6.6.6.6")]);
        let from = Forwarding::new("::ffff:127.0.0.1".parse().unwrap(), "http", false);
        set_forwarded(&mut h, &from, &HeaderValue::from_static("shop.test"));
        assert_eq!(h.get_all("x-forwarded-for").iter().count(), 1);
        assert_eq!(h["x-forwarded-for"], "127.0.0.1");
        assert_eq!(h["x-forwarded-host"], "shop.test");
        assert_eq!(
            h["forwarded"],
            "for=127.0.0.1;proto=http;host=\"shop.test\""
        );
        let from = Forwarding::new("::1".parse().unwrap(), "http", false);
        set_forwarded(&mut h, &from, &HeaderValue::from_static(""));
        assert_eq!(h["forwarded"], "for=\"[::1]\";proto=http");
        assert!(h.get("x-forwarded-host").is_none());
    }

    #[test]
    fn a_trusted_proxys_forwarding_headers_are_extended() {
        let mut h = map(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-for", "10.0.0.7"),
            ("x-forwarded-proto", "https"),
            ("forwarded", "for=203.0.113.9"),
        ]);
        let from = Forwarding::new("10.0.0.8".parse().unwrap(), "http", true);
        set_forwarded(&mut h, &from, &HeaderValue::from_static("shop.test"));
        assert_eq!(h["x-forwarded-for"], "203.0.113.9, 10.0.0.7, 10.0.0.8");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "shop.test");
        assert_eq!(
            h["forwarded"],
            "for=203.0.113.9, for=10.0.0.8;proto=http;host=\"shop.test\""
        );
    }
}
