use super::*;
use crate::view::{Inst, View};
use hickory_proto::rr::RecordType;
use std::sync::{Arc, RwLock};

fn responder(instances: usize) -> Responder {
    let mut v = View::default();
    let list = (0..instances)
        .map(|i| Inst {
            node: format!("n{i}"),
            address: format!("10.1.{}.{}", i / 250, i % 250 + 1),
            port: 80,
            tags: vec!["v1".into()],
            critical: false,
        })
        .collect();
    v.services.insert("web".into(), list);
    v.nodes.insert("n0".into(), "10.1.0.1".into());
    let opts = DnsOptions {
        addr: "127.0.0.1:0".parse().unwrap(),
        domain: "berth".into(),
        datacenter: "dc1".into(),
        ttl: 0,
        recursors: Vec::new(),
    };
    Responder::new(opts, Arc::new(RwLock::new(Arc::new(v))))
}

fn query(name: &str, qtype: RecordType, edns: Option<u16>) -> Vec<u8> {
    let mut m = Message::new();
    m.set_id(4242);
    m.set_recursion_desired(true);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

fn answer(r: &Responder, bytes: &[u8], t: Transport) -> (Message, usize) {
    match r.respond(bytes, t) {
        Reply::Now(v) => (Message::from_vec(&v).unwrap(), v.len()),
        Reply::Forward(_) => panic!("forwarded"),
        Reply::Drop => panic!("dropped"),
    }
}

#[test]
fn a_service_is_answered_authoritatively_under_the_query_id() {
    let r = responder(2);
    let (m, _) = answer(
        &r,
        &query("WEB.service.berth.", RecordType::A, None),
        Transport::Udp,
    );
    assert_eq!(m.id(), 4242);
    assert!(m.authoritative() && m.recursion_desired());
    assert_eq!(m.response_code(), ResponseCode::NoError);
    assert_eq!(m.answers().len(), 2);
    assert_eq!(m.queries()[0].name().to_ascii(), "WEB.service.berth.");
}

#[test]
fn an_unknown_name_is_nxdomain_with_the_soa() {
    let r = responder(1);
    let (m, _) = answer(
        &r,
        &query("nope.service.berth.", RecordType::A, None),
        Transport::Udp,
    );
    assert_eq!(m.response_code(), ResponseCode::NXDomain);
    assert!(m.answers().is_empty());
    assert_eq!(m.name_servers()[0].record_type(), RecordType::SOA);
}

#[test]
fn udp_without_edns_is_cut_to_512_bytes_with_tc_and_edns_or_tcp_get_all() {
    let r = responder(40);
    let q = query("web.service.berth.", RecordType::SRV, None);
    let (m, len) = answer(&r, &q, Transport::Udp);
    assert!(len <= 512, "{len}");
    assert!(m.truncated());
    let kept = m.answers().len();
    assert!(kept > 0 && kept < 40, "{kept}");
    // Each SRV answer keeps its target's address.
    assert_eq!(m.additionals().len(), kept);
    let (m, _) = answer(&r, &q, Transport::Tcp);
    assert!(!m.truncated());
    assert_eq!(m.answers().len(), 40);
    let (m, len) = answer(
        &r,
        &query("web.service.berth.", RecordType::SRV, Some(4096)),
        Transport::Udp,
    );
    assert!(
        !m.truncated() && m.answers().len() == 40 && len > 512,
        "{len}"
    );
}

#[test]
fn junk_is_dropped_or_formerr_and_other_opcodes_not_implemented() {
    let r = responder(1);
    assert!(matches!(r.respond(b"", Transport::Udp), Reply::Drop));
    assert!(matches!(r.respond(b"\x00", Transport::Udp), Reply::Drop));
    // A header that says "response": never answered, so two servers
    // cannot answer each other for ever.
    assert!(matches!(
        r.respond(&[0xff; 13], Transport::Udp),
        Reply::Drop
    ));
    // A query header that promises a question it does not carry.
    let mut cut = query("web.service.berth.", RecordType::A, None);
    cut.truncate(16);
    let (m, _) = answer(&r, &cut, Transport::Udp);
    assert_eq!((m.id(), m.response_code()), (4242, ResponseCode::FormErr));
    let mut notify = Message::from_vec(&query("web.service.berth.", RecordType::A, None)).unwrap();
    notify.set_op_code(OpCode::Notify);
    let (m, _) = answer(&r, &notify.to_vec().unwrap(), Transport::Udp);
    assert_eq!(m.response_code(), ResponseCode::NotImp);
}

#[test]
fn names_outside_the_domain_are_for_the_recursors() {
    let r = responder(1);
    let q = query("example.org.", RecordType::A, None);
    assert!(matches!(r.respond(&q, Transport::Udp), Reply::Forward(_)));
}
