//! Answers from the catalog: which records a lookup gets, before
//! encoding. Critical instances are left out; answers are shuffled.

use crate::names::Lookup;
use crate::view::{Inst, View};
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

thread_local! {
    /// xorshift64*, seeded once per thread: answers need a fair order,
    /// not a secret one, and a system call per query would dominate.
    static RNG: std::cell::Cell<u64> = std::cell::Cell::new(uuid::Uuid::new_v4().as_u128() as u64 | 1);
}

fn next_random() -> u64 {
    RNG.with(|r| {
        let mut x = r.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        r.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    })
}

fn shuffle<T>(v: &mut [T]) {
    for i in (1..v.len()).rev() {
        let j = (next_random() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

fn instances_answer(
    qname: &Name,
    list: Option<&Vec<Inst>>,
    tag: Option<&str>,
    qtype: RecordType,
    c: &Ctx<'_>,
) -> Found {
    let mut list: Vec<&Inst> = list
        .into_iter()
        .flatten()
        .filter(|i| !i.critical)
        .filter(|i| tag.is_none_or(|t| i.tags.iter().any(|x| x == t)))
        .collect();
    if list.is_empty() {
        return Found::NoName;
    }
    shuffle(&mut list);
    let mut answers = Vec::new();
    let mut extra = Vec::new();
    for i in list {
        if qtype == RecordType::SRV {
            let Ok(target) = Name::from_ascii(format!("{}.node.{}.", i.node, c.domain)) else {
                continue;
            };
            let srv = SRV::new(1, 1, i.port, target.clone());
            answers.push(Record::from_rdata(qname.clone(), c.ttl, RData::SRV(srv)));
            extra.push(address_record(&target, &i.address, c.ttl, qtype));
        } else if let Some(r) = address_record(qname, &i.address, c.ttl, qtype) {
            answers.push(r);
            extra.push(None);
        }
    }
    Found::Records { answers, extra }
}

/// Looks `lookup` up in the view.
pub fn find(v: &View, qname: &Name, qtype: RecordType, lookup: &Lookup, c: &Ctx<'_>) -> Found {
    match lookup {
        Lookup::Service { name, tag } => {
            instances_answer(qname, v.services.get(name), tag.as_deref(), qtype, c)
        }
        Lookup::Berth { namespace, name } => instances_answer(
            qname,
            v.berth.get(&format!("{namespace}/{name}")),
            None,
            qtype,
            c,
        ),
        Lookup::Node(node) => match v.nodes.get(node) {
            None => Found::NoName,
            Some(addr) => Found::Records {
                answers: address_record(qname, addr, c.ttl, qtype)
                    .into_iter()
                    .collect(),
                extra: vec![None],
            },
        },
        Lookup::Unknown | Lookup::Outside => Found::NoName,
    }
}
