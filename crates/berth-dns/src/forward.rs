//! Names outside berth's domain, for the recursors (`--dns-recursor`):
//! asked in order, each within a short time, over UDP and, when the
//! answer was truncated, over TCP.

use crate::respond::{self, Reply, Transport};
use hickory_proto::op::{Header, Message, MessageType, OpCode, Query, ResponseCode};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PATIENCE: Duration = Duration::from_secs(2);

fn question(query: &Query) -> Message {
    let mut m = Message::new();
    m.set_id(uuid::Uuid::new_v4().as_u128() as u16);
    m.set_message_type(MessageType::Query);
    m.set_op_code(OpCode::Query);
    m.set_recursion_desired(true);
    m.add_query(query.clone());
    m
}

async fn udp(to: SocketAddr, bytes: &[u8]) -> Option<Message> {
    let bind: SocketAddr = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }
        .parse()
        .ok()?;
    let sock = tokio::net::UdpSocket::bind(bind).await.ok()?;
    sock.send_to(bytes, to).await.ok()?;
    let mut buf = vec![0u8; 65535];
    let (n, _) = sock.recv_from(&mut buf).await.ok()?;
    Message::from_vec(&buf[..n]).ok()
}

async fn tcp(to: SocketAddr, bytes: &[u8]) -> Option<Message> {
    let mut s = tokio::net::TcpStream::connect(to).await.ok()?;
    let len = u16::try_from(bytes.len()).ok()?;
    s.write_all(&len.to_be_bytes()).await.ok()?;
    s.write_all(bytes).await.ok()?;
    let mut lenb = [0u8; 2];
    s.read_exact(&mut lenb).await.ok()?;
    let mut buf = vec![0u8; u16::from_be_bytes(lenb) as usize];
    s.read_exact(&mut buf).await.ok()?;
    Message::from_vec(&buf).ok()
}

/// The `nameserver` lines of a resolv.conf, on port 53.
pub fn host_nameservers(resolv_conf: &str) -> Vec<SocketAddr> {
    resolv_conf
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next()? == "nameserver").then_some(())?;
            let ip: std::net::IpAddr = w.next()?.parse().ok()?;
            Some(SocketAddr::new(ip, 53))
        })
        .collect()
}

/// The first recursor's answer, if any answers.
async fn ask(recursors: &[SocketAddr], query: &Query) -> Option<Message> {
    let q = question(query);
    let bytes = q.to_vec().ok()?;
    for to in recursors {
        let got = tokio::time::timeout(PATIENCE, udp(*to, &bytes))
            .await
            .ok()
            .flatten();
        let got = match got {
            Some(m) if m.truncated() => tokio::time::timeout(PATIENCE, tcp(*to, &bytes))
                .await
                .ok()
                .flatten()
                .or(Some(m)),
            other => other,
        };
        if let Some(m) = got.filter(|m| m.id() == q.id()) {
            return Some(m);
        }
    }
    None
}

/// The answer to `req` from the recursors, under the client's id; REFUSED
/// when none answers. Over UDP, an answer over the client's limit goes
/// without its records and with TC, for the client to ask over TCP.
pub async fn answer(recursors: &[SocketAddr], req: &Message, t: Transport) -> Reply {
    let Some(query) = req.queries().first() else {
        return respond::fail(req, ResponseCode::FormErr);
    };
    let Some(reply) = ask(recursors, query).await else {
        return respond::fail(req, ResponseCode::Refused);
    };
    let mut header = Header::response_from_request(req.header());
    header.set_response_code(reply.response_code());
    header.set_recursion_available(true);
    let edns = respond::our_edns(req);
    let full = respond::encode(
        &header,
        req.queries(),
        reply.answers(),
        reply.name_servers(),
        reply.additionals().iter(),
        edns.as_ref(),
    );
    let out = match full {
        Some(v) if respond::fits(req, t, &v) => Some(v),
        _ => {
            header.set_truncated(true);
            respond::encode(&header, req.queries(), &[], &[], [].iter(), edns.as_ref())
        }
    };
    out.map_or(Reply::Drop, Reply::Now)
}

#[cfg(test)]
mod tests {
    #[test]
    fn nameservers_of_a_resolv_conf() {
        let conf = "# generated\nsearch lan\nnameserver 10.0.0.2\nnameserver ::1\nnameserver junk\noptions edns0\n";
        let got: Vec<String> = super::host_nameservers(conf)
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(got, ["10.0.0.2:53", "[::1]:53"]);
    }
}
