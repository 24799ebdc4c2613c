use super::*;

#[test]
fn ports() {
    let p = parse_port("127.0.0.1:8080:80/udp").expect("parse");
    assert_eq!(p.host_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(
        (p.host_port, p.container_port, p.proto),
        (Some(8080), 80, "udp")
    );
    let p = parse_port("[::1]:8080:80").expect("parse");
    assert_eq!(p.host_ip.as_deref(), Some("::1"));
    assert_eq!(parse_port("80").expect("parse").host_port, None);
    assert_eq!(parse_port("8080:80").expect("parse").host_port, Some(8080));
    for bad in [
        "99999:80",
        "abc",
        "0:80",
        "80:0",
        "x:80",
        "80/foo",
        "1.2.3.4:80",
        "a:1:2",
        ":80",
        "1:2:3:4",
    ] {
        assert!(parse_port(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn images() {
    for ok in [
        "busybox",
        "local/pause:1",
        "127.0.0.1:5000/local/pause:1",
        "localhost/x",
        "registry.example.com/a/b-c__d.e:v1.2-rc",
        "Registry.Example.com/x",
        "x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "[::1]:5000/x:1",
    ] {
        assert!(check_image(ok).is_ok(), "{ok:?}: {:?}", check_image(ok));
    }
    for bad in [
        "",
        "local/pause 1",
        "Pause",
        "local/Pause",
        "x:",
        "x:-a",
        "a//b",
        "a/-b",
        "x@sha256:12",
        "a..b",
        "reg:port/x",
    ] {
        assert!(check_image(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn rules() {
    let r = Rule::Range { min: 0, max: 10 };
    assert!(r.check("3").is_ok());
    assert!(r.check("-1").is_err());
    assert!(r.check("11").is_err());
    assert!(Rule::KeyValues.check(r#"A=1 D="x y=z""#).is_ok());
    assert!(Rule::KeyValues.check("NOEQUALS").is_err());
    assert!(Rule::KeyValues.check("=x").is_err());
    assert!(Rule::Mounts.check("data:/data /srv:/etc/x:ro").is_ok());
    assert!(Rule::Mounts.check("data:rel").is_err());
    assert!(Rule::AbsPath.check("/srv").is_ok());
    assert!(Rule::AbsPath.check("srv").is_err());
    assert!(Rule::Ports.check("8080:80 53/udp").is_ok());
    assert!(Rule::Ports.check("8080:80 abc").is_err());
}

#[test]
fn host_routes() {
    let r = parse_host_route("Shop.Example.test/api").expect("route");
    assert_eq!(
        (r.host.as_str(), r.path.as_str()),
        ("shop.example.test", "/api")
    );
    assert_eq!(r.wildcard(), None);
    let w = parse_host_route("*.example.test").expect("wildcard");
    assert_eq!((w.wildcard(), w.path.as_str()), (Some("example.test"), "/"));
    for bad in [
        "",
        "/x",
        "*.",
        "a..b",
        "-a.test",
        "a_b.test",
        "a.test/x?y",
        "*.*.test",
    ] {
        assert!(parse_host_route(bad).is_err(), "{bad:?}");
    }
    assert!(Rule::HostRoutes.check("a.test b.test/v1").is_ok());
    assert!(Rule::HostRoutes.check("a.test b_c").is_err());
}
