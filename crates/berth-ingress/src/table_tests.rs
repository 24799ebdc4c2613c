use super::*;
use berth_kv::catalog::{Check, Node, Service};
use std::collections::BTreeMap;

#[derive(Default)]
struct Mem(BTreeMap<String, String>);

impl Read for Mem {
    fn get(&self, key: &str) -> std::io::Result<Option<String>> {
        Ok(self.0.get(key).cloned())
    }
    fn scan(&self, prefix: &str) -> std::io::Result<Vec<(String, String)>> {
        Ok(self
            .0
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}

impl Mem {
    fn node(&mut self, name: &str, addr: &str) {
        let n = Node {
            name: name.into(),
            address: addr.into(),
            ..Default::default()
        };
        self.0
            .insert(cat::node_key(name), serde_json::to_string(&n).unwrap());
    }
    fn service(&mut self, node: &str, id: &str, name: &str, port: u16, hosts: &str, tags: &[&str]) {
        let mut meta = BTreeMap::new();
        if !hosts.is_empty() {
            meta.insert(INGRESS_HOSTS_META.to_string(), hosts.to_string());
        }
        let s = Service {
            node: node.into(),
            id: id.into(),
            name: name.into(),
            port,
            meta,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            ..Default::default()
        };
        self.0.insert(
            cat::service_key(name, node, id),
            serde_json::to_string(&s).unwrap(),
        );
    }
    fn check(&mut self, node: &str, service_id: &str, name: &str, status: Health) {
        let c = Check {
            node: node.into(),
            id: format!("{service_id}-c"),
            name: "c".into(),
            status,
            service_id: service_id.into(),
            service_name: name.into(),
            ..Default::default()
        };
        self.0.insert(
            cat::check_key(c.group(), node, &c.id),
            serde_json::to_string(&c).unwrap(),
        );
    }
}

fn service_of(t: &Table, host: &str, path: &str) -> Option<String> {
    t.find(host, path).map(|r| r.service.clone())
}

#[test]
fn exact_hosts_beat_wildcards_and_long_paths_beat_short_ones() {
    let mut m = Mem::default();
    m.node("n1", "10.0.0.1");
    m.service("n1", "a", "shop", 8080, "shop.test", &[]);
    m.service("n1", "b", "api", 8081, "shop.test/api", &[]);
    m.service("n1", "c", "any", 8082, "*.test", &[]);
    m.service("n1", "d", "deep", 8083, "*.eu.test", &[]);
    m.service("n1", "e", "tagged", 8084, "", &["dns=legacy.test", "v1"]);
    let t = Table::build(&m).unwrap();
    assert_eq!(service_of(&t, "shop.test", "/"), Some("shop".into()));
    assert_eq!(service_of(&t, "SHOP.test.", "/api/x"), Some("api".into()));
    assert_eq!(service_of(&t, "shop.test", "/apix"), Some("shop".into()));
    assert_eq!(service_of(&t, "other.test", "/"), Some("any".into()));
    assert_eq!(service_of(&t, "a.eu.test", "/"), Some("deep".into()));
    assert_eq!(service_of(&t, "a.b.test", "/"), Some("any".into()));
    assert_eq!(service_of(&t, "test", "/"), None);
    assert_eq!(service_of(&t, "legacy.test", "/"), Some("tagged".into()));
    let r = t.find("shop.test", "/").unwrap();
    assert_eq!(r.backends[0].addr.to_string(), "10.0.0.1:8080");
}

#[test]
fn instances_carry_their_worst_check_and_portless_ones_are_left_out() {
    let mut m = Mem::default();
    m.node("n1", "10.0.0.1");
    m.node("n2", "10.0.0.2");
    m.service("n1", "a", "shop", 80, "shop.test", &[]);
    m.service("n2", "b", "shop", 80, "shop.test", &[]);
    m.service("n2", "c", "shop", 0, "shop.test", &[]);
    m.check("n2", "b", "shop", Health::Critical);
    let t = Table::build(&m).unwrap();
    let r = t.find("shop.test", "/").unwrap();
    let got: Vec<(String, Health)> = r
        .backends
        .iter()
        .map(|b| (b.addr.to_string(), b.health))
        .collect();
    assert_eq!(
        got,
        [
            ("10.0.0.1:80".to_string(), Health::Passing),
            ("10.0.0.2:80".to_string(), Health::Critical)
        ]
    );
    assert_eq!(t.routes().len(), 1);
}

#[test]
fn a_route_claimed_by_two_services_stays_with_one() {
    let mut m = Mem::default();
    m.node("n1", "10.0.0.1");
    m.service("n1", "a", "blue", 80, "shop.test", &[]);
    m.service("n1", "b", "green", 81, "shop.test", &[]);
    let t = Table::build(&m).unwrap();
    let r = t.find("shop.test", "/").unwrap();
    assert_eq!(r.backends.len(), 1);
    assert!(r
        .backends
        .iter()
        .all(|b| b.addr.port() == if r.service == "blue" { 80 } else { 81 }));
}
