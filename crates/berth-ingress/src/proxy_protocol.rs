//! The PROXY protocol (haproxy's proxy-protocol.txt), versions 1 and 2, as
//! sent by a front load balancer that is trusted (`--ingress-trusted-proxies`):
//! the header gives the client's address, which then stands for the peer's.
//! A trusted peer may also connect without a header (its own health
//! checks); an untrusted peer's header is never read, so hyper sees it as
//! a malformed request and answers 400.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

pub(crate) const V2_SIG: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
const V1_MAX: usize = 107;
/// A v2 header's address block; anything longer is refused.
const V2_MAX_BODY: usize = 1024;

#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// More bytes are needed to decide.
    NeedMore,
    /// Not a PROXY header: the bytes are the request itself.
    NotProxy,
    /// A header of `len` bytes; `client` is `None` for `LOCAL`, `UNKNOWN`
    /// or an address family other than TCP over IPv4 or IPv6.
    Header {
        len: usize,
        client: Option<SocketAddr>,
    },
    Bad(&'static str),
}

/// Decides what `buf`, the first bytes of a connection, starts with.
pub fn parse(buf: &[u8]) -> Parsed {
    let n = buf.len().min(V2_SIG.len());
    if buf[..n] == V2_SIG[..n] {
        return if buf.len() < 16 {
            Parsed::NeedMore
        } else {
            v2(buf)
        };
    }
    let n = buf.len().min(6);
    if buf[..n] == b"PROXY "[..n] {
        return if buf.len() < 6 {
            Parsed::NeedMore
        } else {
            v1(buf)
        };
    }
    Parsed::NotProxy
}

fn v1(buf: &[u8]) -> Parsed {
    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
        return if buf.len() >= V1_MAX {
            Parsed::Bad("a PROXY v1 line over 107 bytes")
        } else {
            Parsed::NeedMore
        };
    };
    if end + 2 > V1_MAX {
        return Parsed::Bad("a PROXY v1 line over 107 bytes");
    }
    let Ok(line) = std::str::from_utf8(&buf[6..end]) else {
        return Parsed::Bad("a PROXY v1 line that is not text");
    };
    let w: Vec<&str> = line.split(' ').collect();
    let client = match w.as_slice() {
        ["UNKNOWN", ..] => None,
        [fam @ ("TCP4" | "TCP6"), src, dst, sport, dport] => {
            let (Ok(src), Ok(_), Ok(sport), Ok(_)) = (
                src.parse::<IpAddr>(),
                dst.parse::<IpAddr>(),
                port(sport),
                port(dport),
            ) else {
                return Parsed::Bad("a PROXY v1 line with a bad address or port");
            };
            if src.is_ipv4() != (*fam == "TCP4") {
                return Parsed::Bad("a PROXY v1 address of the wrong family");
            }
            Some(SocketAddr::new(src, sport))
        }
        _ => return Parsed::Bad("a malformed PROXY v1 line"),
    };
    Parsed::Header {
        len: end + 2,
        client,
    }
}

/// A decimal port without sign or leading zero, as the spec writes it.
fn port(s: &str) -> Result<u16, ()> {
    if s.is_empty() || (s.len() > 1 && s.starts_with('0')) || !s.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(());
    }
    s.parse().map_err(|_| ())
}

fn v2(buf: &[u8]) -> Parsed {
    let (ver_cmd, fam) = (buf[12], buf[13]);
    let body = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if ver_cmd >> 4 != 2 {
        return Parsed::Bad("a PROXY v2 header of another version");
    }
    if body > V2_MAX_BODY {
        return Parsed::Bad("a PROXY v2 header over 1024 bytes");
    }
    let len = 16 + body;
    if buf.len() < len {
        return Parsed::NeedMore;
    }
    let a = &buf[16..len];
    let client = match (ver_cmd & 0x0f, fam) {
        (0, _) => None,
        (1, 0x11) if a.len() >= 12 => Some(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3])),
            u16::from_be_bytes([a[8], a[9]]),
        )),
        (1, 0x21) if a.len() >= 36 => {
            let mut ip = [0u8; 16];
            ip.copy_from_slice(&a[..16]);
            Some(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::from(ip)),
                u16::from_be_bytes([a[32], a[33]]),
            ))
        }
        (1, 0x11 | 0x21) => return Parsed::Bad("a PROXY v2 address block too short"),
        (1, _) => None,
        _ => return Parsed::Bad("a PROXY v2 header with an unknown command"),
    };
    Parsed::Header { len, client }
}

/// Reads a trusted peer's PROXY header, if it sends one: the client it
/// names, and the bytes read past the header.
pub async fn read<S: AsyncRead + Unpin>(
    s: &mut S,
) -> std::io::Result<(Option<SocketAddr>, Vec<u8>)> {
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 256];
    loop {
        match parse(&buf) {
            Parsed::NeedMore => {}
            Parsed::NotProxy => return Ok((None, buf)),
            Parsed::Header { len, client } => return Ok((client, buf.split_off(len))),
            Parsed::Bad(why) => {
                return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, why))
            }
        }
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A stream whose first bytes were already read: they are served first.
pub struct Prefixed<S> {
    head: Vec<u8>,
    at: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    pub fn new(head: Vec<u8>, inner: S) -> Prefixed<S> {
        Prefixed { head, at: 0, inner }
    }

    /// Whether bytes are waiting before the stream's own.
    pub fn buffered(&self) -> bool {
        self.at < self.head.len()
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Puts `bytes`, just read, back in front.
    pub fn unread(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let mut head = bytes.to_vec();
        head.extend_from_slice(&self.head[self.at..]);
        self.head = head;
        self.at = 0;
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.at < self.head.len() {
            let n = out.remaining().min(self.head.len() - self.at);
            let at = self.at;
            out.put_slice(&self.head[at..at + n]);
            self.at += n;
            if self.at == self.head.len() {
                self.head = Vec::new();
                self.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, out)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
#[path = "proxy_protocol_tests.rs"]
mod tests;
