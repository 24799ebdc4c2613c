use super::*;

fn facts(
    image: &str,
    labels: &[(&str, &str)],
    env: &[&str],
    ports: Vec<PortFact>,
) -> ContainerFacts {
    ContainerFacts {
        id: "c1".into(),
        name: "redis1".into(),
        image: image.into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        env: env.iter().map(|e| e.to_string()).collect(),
        ip: "172.17.0.5".into(),
        ports,
        health: None,
        running: true,
    }
}

fn published(private: u16, public: u16) -> PortFact {
    PortFact {
        private,
        proto: "tcp".into(),
        public: Some(public),
        host_ip: "0.0.0.0".into(),
    }
}

fn exposed(private: u16) -> PortFact {
    PortFact {
        private,
        proto: "tcp".into(),
        public: None,
        host_ip: String::new(),
    }
}

#[test]
fn the_image_base_name_is_the_default_and_ids_name_node_container_and_port() {
    let f = facts(
        "127.0.0.1:5000/library/redis:6",
        &[("SERVICE_TAGS", "a, b")],
        &[],
        vec![published(6379, 32768)],
    );
    let r = registrator(&f, "n1", "10.0.0.1", false);
    assert_eq!(r.len(), 1);
    let s = &r[0].0;
    assert_eq!(
        (s.name.as_str(), s.id.as_str()),
        ("redis", "n1:redis1:6379")
    );
    assert_eq!((s.address.as_str(), s.port), ("10.0.0.1", 32768));
    assert_eq!(s.tags, ["a", "b"]);
}

#[test]
fn a_label_wins_over_the_environment_and_ignore_skips() {
    let f = facts(
        "x",
        &[("SERVICE_NAME", "from-label")],
        &["SERVICE_NAME=from-env"],
        vec![published(80, 8080)],
    );
    assert_eq!(registrator(&f, "n", "a", false)[0].0.name, "from-label");
    let f = facts(
        "x",
        &[],
        &["SERVICE_NAME=from-env"],
        vec![published(80, 8080)],
    );
    assert_eq!(registrator(&f, "n", "a", false)[0].0.name, "from-env");
    let f = facts(
        "x",
        &[("SERVICE_IGNORE", "1")],
        &["SERVICE_NAME=x"],
        vec![published(80, 8080)],
    );
    assert!(registrator(&f, "n", "a", false).is_empty());
    // No metadata: not registered.
    let f = facts("x", &[], &[], vec![published(80, 8080)]);
    assert!(registrator(&f, "n", "a", false).is_empty());
}

#[test]
fn only_published_ports_count_unless_internal() {
    let f = facts(
        "web",
        &[("SERVICE_NAME", "web")],
        &[],
        vec![exposed(80), published(443, 8443)],
    );
    let r = registrator(&f, "n", "10.0.0.1", false);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].0.port, 8443);
    let r = registrator(&f, "n", "10.0.0.1", true);
    assert_eq!(r.len(), 2);
    assert_eq!((r[0].0.address.as_str(), r[0].0.port), ("172.17.0.5", 80));
}

#[test]
fn several_ports_get_their_own_names_and_checks() {
    let f = facts(
        "app:1",
        &[
            ("SERVICE_443_NAME", "app-tls"),
            ("SERVICE_CHECK_HTTP", "/health"),
            ("SERVICE_CHECK_INTERVAL", "5s"),
        ],
        &[],
        vec![published(80, 8080), published(443, 8443)],
    );
    let r = registrator(&f, "n", "10.0.0.1", false);
    let names: Vec<_> = r.iter().map(|(s, _)| s.name.as_str()).collect();
    assert_eq!(names, ["app-80", "app-tls"]);
    let check = &r[0].1[0];
    assert_eq!(check.def.http, "http://10.0.0.1:8080/health");
    assert_eq!(check.def.interval_ms, 5_000);
}

#[test]
fn a_berth_container_uses_its_keywords() {
    let f = facts("x", &[], &[], vec![published(80, 8080)]);
    let mut health = berth_model::health::InstanceHealth {
        state: berth_model::health::HealthState::Starting,
        source: berth_model::health::HealthSource::Berth,
        output: "GET http://10.0.0.9:80/health: connection refused".into(),
        since_ms: 0,
    };
    let svc = ServiceInfo {
        name: "web-prd".into(),
        tags: vec!["v1".into()],
        port: Some(80),
        ingress_hosts: vec!["shop.test".into(), "*.shop.test/api".into()],
        ingress_check: None,
        ingress_balance: Default::default(),
        ingress_tls: None,
        mesh: Vec::new(),
        mesh_proxy: false,
    };
    let (s, checks) = berth(
        &f,
        Some(&health),
        &svc,
        "prd/web",
        "container#0",
        "n1",
        "10.0.0.1",
    );
    assert_eq!(
        (s.name.as_str(), s.address.as_str(), s.port),
        ("web-prd", "10.0.0.1", 8080)
    );
    assert_eq!(s.meta["berth-path"], "prd/web");
    assert_eq!(s.meta[INGRESS_HOSTS_META], "shop.test *.shop.test/api");
    assert_eq!(checks[0].status, Health::Critical);
    assert!(checks[0].id.ends_with(":health"));
    assert!(checks[0].output.contains("connection refused"));
    health.state = berth_model::health::HealthState::Healthy;
    let (_, checks) = berth(
        &f,
        Some(&health),
        &svc,
        "prd/web",
        "container#0",
        "n1",
        "10.0.0.1",
    );
    assert_eq!(checks[0].status, Health::Passing);
    let (_, checks) = berth(&f, None, &svc, "prd/web", "container#0", "n1", "10.0.0.1");
    assert!(checks.is_empty());
}
