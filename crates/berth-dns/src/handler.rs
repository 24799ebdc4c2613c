//! The request handler: parses, looks up, truncates to what the client
//! can take, answers authoritatively; names outside the domain go to the
//! recursors.

use crate::answer::{self, Ctx, Found};
use crate::names::{self, Lookup};
use crate::{forward, DnsOptions};
use hickory_proto::op::{Edns, Header, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Name, RData, Record};
use hickory_proto::xfer::Protocol;
use hickory_server::authority::MessageResponseBuilder;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};

/// What a UDP answer without EDNS may weigh (RFC 1035).
const CLASSIC_UDP: u16 = 512;
/// What berth offers in its own EDNS record.
const OUR_PAYLOAD: u16 = 4096;

pub struct Handler {
    pub opts: DnsOptions,
    pub view: crate::view::Shared,
}

impl Handler {
    fn soa(&self) -> Option<Record> {
        let d = &self.opts.domain;
        let zone = Name::from_ascii(format!("{d}.")).ok()?;
        let mname = Name::from_ascii(format!("ns.{d}.")).ok()?;
        let rname = Name::from_ascii(format!("hostmaster.{d}.")).ok()?;
        let serial = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as u32);
        let soa = SOA::new(mname, rname, serial, 3600, 600, 86400, self.opts.ttl);
        Some(Record::from_rdata(zone, self.opts.ttl, RData::SOA(soa)))
    }

    async fn fail<R: ResponseHandler>(
        &self,
        request: &Request,
        mut rh: R,
        code: ResponseCode,
    ) -> ResponseInfo {
        let builder = MessageResponseBuilder::from_message_request(request);
        let r = builder.error_msg(request.header(), code);
        rh.send_response(r).await.unwrap_or_else(|_| {
            let mut h = Header::new();
            h.set_response_code(ResponseCode::ServFail);
            h.into()
        })
    }
}

/// The most an rdata can weigh on the wire; unknown kinds force the
/// exact encoding.
fn rdata_bound(d: &RData) -> usize {
    match d {
        RData::A(_) => 4,
        RData::AAAA(_) => 16,
        RData::SRV(s) => 6 + s.target().len() + 2,
        RData::SOA(s) => s.mname().len() + s.rname().len() + 4 + 20,
        _ => 65535,
    }
}

/// Drops answer pairs from the end until the message fits; says whether
/// it dropped any.
fn fit(
    header: &Header,
    query: &hickory_proto::op::Query,
    answers: &mut Vec<Record>,
    extra: &mut Vec<Option<Record>>,
    soa: &[Record],
    edns: Option<&Edns>,
    max: usize,
) -> bool {
    // Most answers are far below the limit: a bound that counts every
    // name in full spares the exact encoding.
    let qlen = query.name().len() + 2;
    let bound = |r: &Record| r.name().len() + 2 + 10 + rdata_bound(r.data());
    let upper = 12
        + qlen
        + 4
        + answers.iter().map(bound).sum::<usize>()
        + extra.iter().flatten().map(bound).sum::<usize>()
        + soa.iter().map(bound).sum::<usize>()
        + if edns.is_some() { 11 } else { 0 };
    if upper <= max {
        return false;
    }
    let size = |answers: &[Record], extra: &[Option<Record>]| {
        let mut m = Message::new();
        m.set_header(*header);
        m.add_query(query.clone());
        m.add_answers(answers.iter().cloned());
        m.add_name_servers(soa.iter().cloned());
        m.add_additionals(extra.iter().flatten().cloned());
        if let Some(e) = edns {
            m.set_edns(e.clone());
        }
        m.to_vec().map_or(usize::MAX, |v| v.len())
    };
    // hickory writes the question from the request's own bytes, so the
    // first answer's name cannot point at it: it costs up to the name's
    // length more than this estimate.
    let margin = query.name().to_ascii().len() + 2;
    let max = max.saturating_sub(margin);
    let mut cut = false;
    while !answers.is_empty() && size(answers, extra) > max {
        answers.pop();
        extra.pop();
        cut = true;
    }
    cut
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler>(
        &self,
        request: &Request,
        mut rh: R,
    ) -> ResponseInfo {
        if request.message_type() != MessageType::Query || request.op_code() != OpCode::Query {
            return self.fail(request, rh, ResponseCode::NotImp).await;
        }
        let Ok(info) = request.request_info() else {
            return self.fail(request, rh, ResponseCode::FormErr).await;
        };
        let query = info.query.original().clone();
        let qname = query.name().clone();
        let qtype = query.query_type();
        let lookup = names::parse(&qname.to_ascii(), &self.opts.domain, &self.opts.datacenter);
        if lookup == Lookup::Outside {
            return match forward::ask(&self.opts.recursors, request).await {
                Some(reply) => forward::relay(request, rh, reply).await,
                None => self.fail(request, rh, ResponseCode::Refused).await,
            };
        }
        let ctx = Ctx {
            domain: &self.opts.domain,
            ttl: self.opts.ttl,
        };
        let view = self.view.read().unwrap_or_else(|e| e.into_inner()).clone();
        let found = answer::find(&view, &qname, qtype, &lookup, &ctx);
        let mut header = Header::response_from_request(request.header());
        header.set_authoritative(true);
        let (mut answers, mut extra) = match found {
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
        let edns = request.edns().map(|_| {
            let mut e = Edns::new();
            e.set_max_payload(OUR_PAYLOAD);
            e
        });
        let max = match (info.protocol, request.edns()) {
            (Protocol::Udp, None) => CLASSIC_UDP,
            (Protocol::Udp, Some(e)) => e.max_payload().max(CLASSIC_UDP),
            _ => u16::MAX,
        };
        if fit(
            &header,
            &query,
            &mut answers,
            &mut extra,
            &soa,
            edns.as_ref(),
            max as usize,
        ) {
            header.set_truncated(true);
        }
        let extra: Vec<Record> = extra.into_iter().flatten().collect();
        let mut builder = MessageResponseBuilder::from_message_request(request);
        if let Some(mut e) = edns {
            // The encoder truncates to the response's payload: the client's.
            e.set_max_payload(max);
            builder.edns(e);
        }
        let response = builder.build(
            header,
            answers.iter(),
            std::iter::empty(),
            soa.iter(),
            extra.iter(),
        );
        match rh.send_response(response).await {
            Ok(i) => i,
            Err(e) => {
                tracing::debug!("dns reply: {e}");
                let mut h = Header::new();
                h.set_response_code(ResponseCode::ServFail);
                h.into()
            }
        }
    }
}
