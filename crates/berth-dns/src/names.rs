//! What a query name asks for, under berth's domain. Pure, and fuzzed.

/// A lookup of a name under the domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// `<service>.service`, `<tag>.<service>.service`, RFC 2782's
    /// `_<service>._<tag|tcp>.service`.
    Service { name: String, tag: Option<String> },
    /// `<node>.node`.
    Node(String),
    /// berth's `<name>.<namespace>.svc`.
    Berth { namespace: String, name: String },
    /// Under the domain, but no name berth answers: NXDOMAIN.
    Unknown,
    /// Not under the domain: for the recursors.
    Outside,
}

/// Reads `qname` (any case, with or without its final dot) against
/// `domain` (`berth`); `dc` may follow `service` or `node`, as in Consul.
pub fn parse(qname: &str, domain: &str, dc: &str) -> Lookup {
    let q = qname.trim_end_matches('.').to_ascii_lowercase();
    let domain = domain.trim_matches('.').to_ascii_lowercase();
    let inner = if q == domain {
        ""
    } else {
        match q.strip_suffix(&domain).and_then(|r| r.strip_suffix('.')) {
            Some(r) => r,
            None => return Lookup::Outside,
        }
    };
    let mut labels: Vec<&str> = if inner.is_empty() {
        Vec::new()
    } else {
        inner.split('.').collect()
    };
    if labels.iter().any(|l| l.is_empty()) {
        return Lookup::Unknown;
    }
    if labels.len() >= 2
        && labels.last() == Some(&dc)
        && matches!(labels[labels.len() - 2], "service" | "node")
    {
        labels.pop();
    }
    match labels.as_slice() {
        [svc, tag, "service"] if svc.starts_with('_') && tag.starts_with('_') => {
            let name = &svc[1..];
            let tag = &tag[1..];
            if name.is_empty() || tag.is_empty() {
                return Lookup::Unknown;
            }
            Lookup::Service {
                name: name.to_string(),
                tag: (tag != "tcp" && tag != "udp").then(|| tag.to_string()),
            }
        }
        [name, "service"] => Lookup::Service {
            name: name.to_string(),
            tag: None,
        },
        [tag, name, "service"] => Lookup::Service {
            name: name.to_string(),
            tag: Some(tag.to_string()),
        },
        [name, "node"] => Lookup::Node(name.to_string()),
        [name, namespace, "svc"] => Lookup::Berth {
            namespace: namespace.to_string(),
            name: name.to_string(),
        },
        _ => Lookup::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(name: &str, tag: Option<&str>) -> Lookup {
        Lookup::Service {
            name: name.into(),
            tag: tag.map(str::to_string),
        }
    }

    #[test]
    fn names_are_read_as_consul_reads_them() {
        assert_eq!(
            parse("web.service.berth.", "berth", "dc1"),
            svc("web", None)
        );
        assert_eq!(parse("WEB.Service.BERTH", "berth", "dc1"), svc("web", None));
        assert_eq!(
            parse("v1.web.service.berth.", "berth", "dc1"),
            svc("web", Some("v1"))
        );
        assert_eq!(
            parse("_web._tcp.service.berth.", "berth", "dc1"),
            svc("web", None)
        );
        assert_eq!(
            parse("_web._v1.service.berth.", "berth", "dc1"),
            svc("web", Some("v1"))
        );
        assert_eq!(
            parse("web.service.dc1.berth.", "berth", "dc1"),
            svc("web", None)
        );
        assert_eq!(
            parse("n1.node.berth.", "berth", "dc1"),
            Lookup::Node("n1".into())
        );
        assert_eq!(
            parse("db.prd.svc.berth.", "berth", "dc1"),
            Lookup::Berth {
                namespace: "prd".into(),
                name: "db".into()
            }
        );
        assert_eq!(parse("example.com.", "berth", "dc1"), Lookup::Outside);
        assert_eq!(parse("notberth.", "berth", "dc1"), Lookup::Outside);
        for unknown in [
            "berth.",
            "x.berth.",
            "a.b.c.d.berth.",
            "web..service.berth.",
            "_._tcp.service.berth.",
        ] {
            assert_eq!(parse(unknown, "berth", "dc1"), Lookup::Unknown, "{unknown}");
        }
    }
}
