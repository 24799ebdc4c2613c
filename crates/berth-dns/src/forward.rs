//! Names outside berth's domain, for the recursors (`--dns-recursor`):
//! asked in order, each within a short time, over UDP and, when the
//! answer was truncated, over TCP.

use hickory_proto::op::{Header, Message, MessageType, OpCode};
use hickory_server::authority::MessageResponseBuilder;
use hickory_server::server::{Request, ResponseHandler, ResponseInfo};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PATIENCE: Duration = Duration::from_secs(2);

fn question(request: &Request) -> Option<Message> {
    let info = request.request_info().ok()?;
    let mut m = Message::new();
    m.set_id(uuid::Uuid::new_v4().as_u128() as u16);
    m.set_message_type(MessageType::Query);
    m.set_op_code(OpCode::Query);
    m.set_recursion_desired(true);
    m.add_query(info.query.original().clone());
    Some(m)
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
pub async fn ask(recursors: &[SocketAddr], request: &Request) -> Option<Message> {
    let q = question(request)?;
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

/// Sends the recursor's answer back under the client's id.
pub async fn relay<R: ResponseHandler>(
    request: &Request,
    mut rh: R,
    reply: Message,
) -> ResponseInfo {
    let mut header = Header::response_from_request(request.header());
    header.set_response_code(reply.response_code());
    header.set_recursion_available(true);
    let builder = MessageResponseBuilder::from_message_request(request);
    let response = builder.build(
        header,
        reply.answers().iter(),
        reply.name_servers().iter(),
        std::iter::empty(),
        reply.additionals().iter(),
    );
    match rh.send_response(response).await {
        Ok(i) => i,
        Err(_) => {
            let mut h = Header::new();
            h.set_response_code(hickory_proto::op::ResponseCode::ServFail);
            h.into()
        }
    }
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
