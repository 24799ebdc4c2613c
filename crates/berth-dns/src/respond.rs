//! One query in, one answer out: parsed, looked up in the view, fitted to
//! what the client can take, answered authoritatively. Names outside the
//! domain are handed back for the recursors. Synchronous and allocation
//! light, so the UDP loop answers in place (`serve.rs`).

use crate::answer::{self, Ctx, Found};
use crate::names::{self, Lookup};
use crate::DnsOptions;
use hickory_proto::op::message::emit_message_parts;
use hickory_proto::op::{Edns, Header, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Name, RData, Record};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncoder};

/// What a UDP answer without EDNS may weigh (RFC 1035).
const CLASSIC_UDP: u16 = 512;
/// What berth offers in its own EDNS record.
const OUR_PAYLOAD: u16 = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    /// The most an answer may weigh for a request with `edns`.
    fn limit(self, edns: Option<&Edns>) -> usize {
        match (self, edns) {
            (Transport::Udp, None) => CLASSIC_UDP as usize,
            (Transport::Udp, Some(e)) => e.max_payload().max(CLASSIC_UDP) as usize,
            (Transport::Tcp, _) => u16::MAX as usize,
        }
    }
}

pub enum Reply {
    /// The encoded answer.
    Now(Vec<u8>),
    /// A name outside the domain: for the recursors.
    Forward(Box<Message>),
    /// Nothing to answer: too short to carry an id, or not a query.
    Drop,
}

pub struct Responder {
    pub opts: DnsOptions,
    pub view: crate::view::Shared,
    /// The SOA's zone, primary server and mailbox names, parsed once.
    soa_names: Option<(Name, Name, Name)>,
}

impl Responder {
    pub fn new(opts: DnsOptions, view: crate::view::Shared) -> Responder {
        let d = &opts.domain;
        let soa_names = (|| {
            Some((
                Name::from_ascii(format!("{d}.")).ok()?,
                Name::from_ascii(format!("ns.{d}.")).ok()?,
                Name::from_ascii(format!("hostmaster.{d}.")).ok()?,
            ))
        })();
        Responder {
            opts,
            view,
            soa_names,
        }
    }

    fn soa(&self) -> Option<Record> {
        let (zone, mname, rname) = self.soa_names.clone()?;
        let serial = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as u32);
        let soa = SOA::new(mname, rname, serial, 3600, 600, 86400, self.opts.ttl);
        Some(Record::from_rdata(zone, self.opts.ttl, RData::SOA(soa)))
    }

    /// The answer to the datagram or TCP message `bytes`.
    pub fn respond(&self, bytes: &[u8], t: Transport) -> Reply {
        let req = match Message::from_vec(bytes) {
            Ok(m) => m,
            Err(_) => return form_error(bytes),
        };
        if req.message_type() != MessageType::Query {
            return Reply::Drop;
        }
        if req.op_code() != OpCode::Query {
            return fail(&req, ResponseCode::NotImp);
        }
        let [query] = req.queries() else {
            return fail(&req, ResponseCode::FormErr);
        };
        let lookup = names::parse(
            &query.name().to_ascii(),
            &self.opts.domain,
            &self.opts.datacenter,
        );
        if lookup == Lookup::Outside {
            return Reply::Forward(Box::new(req));
        }
        let ctx = Ctx {
            domain: &self.opts.domain,
            ttl: self.opts.ttl,
        };
        let view = self.view.read().unwrap_or_else(|e| e.into_inner()).clone();
        let found = answer::find(&view, query.name(), query.query_type(), &lookup, &ctx);
        let mut header = Header::response_from_request(req.header());
        header.set_authoritative(true);
        let (answers, extra) = match found {
            Found::NoName => {
                header.set_response_code(ResponseCode::NXDomain);
                (Vec::new(), Vec::new())
            }
            Found::Records { answers, extra } => (answers, extra),
        };
        let soa: Vec<Record> = if answers.is_empty() {
            self.soa().into_iter().collect()
        } else {
            Vec::new()
        };
        let edns = our_edns(&req);
        let max = t.limit(req.extensions().as_ref());
        fitted(header, query, &answers, &extra, &soa, edns.as_ref(), max)
            .map_or(Reply::Drop, Reply::Now)
    }
}

/// Our EDNS record, when the request had one.
pub fn our_edns(req: &Message) -> Option<Edns> {
    req.extensions().as_ref().map(|_| {
        let mut e = Edns::new();
        e.set_max_payload(OUR_PAYLOAD);
        e
    })
}

/// A bodiless answer with `code`, the question echoed.
pub fn fail(req: &Message, code: ResponseCode) -> Reply {
    let mut header = Header::response_from_request(req.header());
    header.set_response_code(code);
    let edns = our_edns(req);
    encode(&header, req.queries(), &[], &[], [].iter(), edns.as_ref())
        .map_or(Reply::Drop, Reply::Now)
}

/// FORMERR for a query whose header reads but whose rest does not, as
/// hickory's server and Consul answer; nothing for anything shorter.
fn form_error(bytes: &[u8]) -> Reply {
    let Ok(h) = Header::read(&mut BinDecoder::new(bytes)) else {
        return Reply::Drop;
    };
    if h.message_type() != MessageType::Query {
        return Reply::Drop;
    }
    let mut header = Header::response_from_request(&h);
    header.set_response_code(ResponseCode::FormErr);
    encode(&header, &[], &[], &[], [].iter(), None).map_or(Reply::Drop, Reply::Now)
}

/// The message's wire form; counts come from the sections.
pub fn encode<'a>(
    header: &Header,
    queries: &[Query],
    answers: &[Record],
    authority: &[Record],
    mut additional: impl Iterator<Item = &'a Record>,
    edns: Option<&Edns>,
) -> Option<Vec<u8>> {
    let mut buf = Vec::with_capacity(512);
    let mut enc = BinEncoder::new(&mut buf);
    emit_message_parts(
        header,
        &mut queries.iter(),
        &mut answers.iter(),
        &mut authority.iter(),
        &mut additional,
        edns,
        &[],
        &mut enc,
    )
    .ok()?;
    Some(buf)
}

/// The answer in at most `max` bytes: answer pairs (an SRV record and its
/// target's address) are dropped from the end until it fits, and TC says
/// some were.
fn fitted(
    mut header: Header,
    query: &Query,
    answers: &[Record],
    extra: &[Option<Record>],
    soa: &[Record],
    edns: Option<&Edns>,
    max: usize,
) -> Option<Vec<u8>> {
    let queries = std::slice::from_ref(query);
    let mut n = answers.len();
    loop {
        header.set_truncated(n < answers.len());
        let extra = extra.get(..n).unwrap_or_default().iter().flatten();
        let out = encode(&header, queries, &answers[..n], soa, extra, edns)?;
        if out.len() <= max || n == 0 {
            return Some(out);
        }
        // In proportion first: 40 answers over 512 bytes would otherwise
        // take some 30 encodings.
        n = (n * max / out.len()).min(n - 1);
    }
}

/// Whether `bytes`, an encoded answer, fits `t`'s limit for `req`.
pub fn fits(req: &Message, t: Transport, bytes: &[u8]) -> bool {
    bytes.len() <= t.limit(req.extensions().as_ref())
}

#[cfg(test)]
#[path = "respond_tests.rs"]
mod tests;
