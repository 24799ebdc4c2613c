//! Answers from the catalog: which records a lookup gets, before
//! encoding. Critical instances are left out; answers are shuffled.

use crate::names::Lookup;
use berth_kv::catalog::{self as cat, Health, Instance};
use berth_kv::Read;
use hickory_proto::rr::rdata::{A, AAAA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::net::IpAddr;

/// What a lookup found.
pub enum Found {
    /// The name does not exist: NXDOMAIN.
    NoName,
    /// Records (maybe none: the name exists, not with this type), and
    /// SRV targets' addresses for the additional section, pairwise with
    /// the answers of an SRV query.
    Records {
        answers: Vec<Record>,
        extra: Vec<Option<Record>>,
    },
}

pub struct Ctx<'a> {
    pub domain: &'a str,
    pub ttl: u32,
}

fn address_record(name: &Name, addr: &str, ttl: u32, qtype: RecordType) -> Option<Record> {
    match (addr.parse::<IpAddr>().ok()?, qtype) {
        (IpAddr::V4(v4), RecordType::A | RecordType::ANY | RecordType::SRV) => {
            Some(Record::from_rdata(name.clone(), ttl, RData::A(A(v4))))
        }
        (IpAddr::V6(v6), RecordType::AAAA | RecordType::ANY | RecordType::SRV) => {
            Some(Record::from_rdata(name.clone(), ttl, RData::AAAA(AAAA(v6))))
        }
        _ => None,
    }
}

fn shuffle<T>(v: &mut [T]) {
    for i in (1..v.len()).rev() {
        let j = (uuid::Uuid::new_v4().as_u128() % (i as u128 + 1)) as usize;
        v.swap(i, j);
    }
}

fn instances_answer(
    qname: &Name,
    mut list: Vec<Instance>,
    qtype: RecordType,
    c: &Ctx<'_>,
) -> Found {
    list.retain(|i| i.health() != Health::Critical);
    if list.is_empty() {
        return Found::NoName;
    }
    shuffle(&mut list);
    let mut answers = Vec::new();
    let mut extra = Vec::new();
    for i in &list {
        if qtype == RecordType::SRV {
            let Ok(target) = Name::from_ascii(format!("{}.node.{}.", i.service.node, c.domain))
            else {
                continue;
            };
            let srv = SRV::new(1, 1, i.service.port, target.clone());
            answers.push(Record::from_rdata(qname.clone(), c.ttl, RData::SRV(srv)));
            extra.push(address_record(&target, i.address(), c.ttl, qtype));
        } else if let Some(r) = address_record(qname, i.address(), c.ttl, qtype) {
            answers.push(r);
            extra.push(None);
        }
    }
    Found::Records { answers, extra }
}

/// Looks `lookup` up in the replica `t`.
pub fn find(
    t: &dyn Read,
    qname: &Name,
    qtype: RecordType,
    lookup: &Lookup,
    c: &Ctx<'_>,
) -> std::io::Result<Found> {
    Ok(match lookup {
        Lookup::Service { name, tag } => {
            instances_answer(qname, cat::instances(t, name, tag.as_deref())?, qtype, c)
        }
        Lookup::Berth { namespace, name } => {
            let path = format!("{namespace}/{name}");
            let mut list = Vec::new();
            let mut names: Vec<String> = cat::services(t, None)?
                .into_iter()
                .filter(|s| s.meta.get("berth-path") == Some(&path))
                .map(|s| s.name)
                .collect();
            names.dedup();
            for n in names {
                list.extend(
                    cat::instances(t, &n, None)?
                        .into_iter()
                        .filter(|i| i.service.meta.get("berth-path") == Some(&path)),
                );
            }
            instances_answer(qname, list, qtype, c)
        }
        Lookup::Node(node) => match cat::node(t, node)? {
            None => Found::NoName,
            Some(n) => Found::Records {
                answers: address_record(qname, &n.address, c.ttl, qtype)
                    .into_iter()
                    .collect(),
                extra: vec![None],
            },
        },
        Lookup::Unknown | Lookup::Outside => Found::NoName,
    })
}
