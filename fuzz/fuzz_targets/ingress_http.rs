//! The ingress's request-side parsing: host routes and route matching,
//! header handling, and the PROXY protocol reader. Never a panic; a found
//! route matches the host and path it was found for; forwarding headers
//! come out as one value; a PROXY header never claims more bytes than it
//! was given.
#![no_main]
use berth_ingress::headers::{set_forwarded, strip_hop_by_hop, upgrade_of};
use berth_ingress::proxy_protocol::{parse, Parsed};
use berth_ingress::{Route, Table};
use berth_model::rules::parse_host_route;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

fn routes_and_request(text: &str) {
    let mut lines = text.lines();
    let (Some(host), Some(path)) = (lines.next(), lines.next()) else {
        return;
    };
    let routes: Vec<Route> = lines
        .take(16)
        .filter_map(|l| parse_host_route(l).ok())
        .map(|h| Route {
            host: h,
            service: "s".into(),
            balance: Default::default(),
            tls: None,
            backends: Vec::new(),
        })
        .collect();
    let table = Table::from_routes(routes);
    let _ = table.tls_for(host);
    if let Some(r) = table.find(host, path) {
        let want = host.trim_end_matches('.').to_ascii_lowercase();
        match r.host.wildcard() {
            Some(domain) => assert!(want.ends_with(&format!(".{domain}")), "{want} {domain}"),
            None => assert_eq!(r.host.host, want),
        }
        assert!(r.host.path == "/" || path.starts_with(&r.host.path));
    }
}

fn headers(data: &[u8]) {
    let mut h = HeaderMap::new();
    for pair in data.split(|b| *b == b'\n').take(32) {
        let Some(i) = pair.iter().position(|b| *b == b':') else {
            continue;
        };
        let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(&pair[..i]),
            HeaderValue::from_bytes(&pair[i + 1..]),
        ) else {
            continue;
        };
        h.append(n, v);
    }
    let _ = upgrade_of(&h);
    let mut extended = h.clone();
    strip_hop_by_hop(&mut h);
    for n in ["connection", "keep-alive", "te", "transfer-encoding", "upgrade"] {
        assert!(!h.contains_key(n));
    }
    let host = String::from_utf8_lossy(data.get(..8).unwrap_or(data)).to_string();
    set_forwarded(&mut h, "192.0.2.1".parse().unwrap(), &host, "http", false);
    assert_eq!(h.get_all("x-forwarded-for").iter().count(), 1);
    assert_eq!(h["x-forwarded-for"], "192.0.2.1");
    set_forwarded(&mut extended, "192.0.2.1".parse().unwrap(), &host, "https", true);
    assert!(extended.get_all("x-forwarded-for").iter().count() <= 1);
}

fuzz_target!(|data: &[u8]| {
    if let Parsed::Header { len, .. } = parse(data) {
        assert!(len <= data.len());
    }
    headers(data);
    if let Ok(text) = std::str::from_utf8(data) {
        routes_and_request(text);
    }
});
