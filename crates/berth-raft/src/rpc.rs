//! The client half of node-to-node RPCs: JSON bodies over HTTP/2 and TLS.

use crate::network::TlsSlot;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::{Arc, RwLock};
use std::time::Duration;

const DIAL_TIMEOUT: Duration = Duration::from_secs(2);

/// A client of one node's endpoint at `addr` (`host:port`): JSON over
/// HTTP/2 and TLS, one kept connection re-dialled after any failure.
/// Calls share the connection concurrently (HTTP/2 streams); only dialling
/// is serialized.
pub struct RpcClient {
    addr: String,
    tls: TlsSlot,
    conn: tokio::sync::Mutex<Option<SendRequest<Full<Bytes>>>>,
}

/// Why an RPC failed: the peer could not be reached at all, or the
/// exchange itself went wrong (timeout, HTTP error, undecodable reply).
#[derive(Debug)]
pub enum CallError {
    Unreachable(String),
    Exchange(String),
    /// The peer answered with an HTTP error status; `message` is its body.
    Refused {
        status: u16,
        message: String,
    },
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Unreachable(m) | CallError::Exchange(m) => f.write_str(m),
            CallError::Refused { status, message } => write!(f, "HTTP {status}: {message}"),
        }
    }
}

impl std::error::Error for CallError {}

/// The TLS server name of `host:port`, IPv6 `[::1]:port` included.
fn server_name(addr: &str) -> Option<rustls::pki_types::ServerName<'static>> {
    if let Ok(sa) = addr.parse::<std::net::SocketAddr>() {
        return Some(rustls::pki_types::ServerName::IpAddress(sa.ip().into()));
    }
    let host = addr.rsplit_once(':').map(|(h, _)| h).unwrap_or(addr);
    rustls::pki_types::ServerName::try_from(host.trim_matches(['[', ']']).to_string()).ok()
}

impl RpcClient {
    pub fn new(addr: String, tls: TlsSlot) -> RpcClient {
        RpcClient {
            addr,
            tls,
            conn: tokio::sync::Mutex::new(None),
        }
    }

    /// A client with a fixed TLS configuration.
    pub fn with_config(addr: String, tls: Arc<rustls::ClientConfig>) -> RpcClient {
        RpcClient::new(addr, Arc::new(RwLock::new(Some(tls))))
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    async fn dial(&self) -> Result<SendRequest<Full<Bytes>>, CallError> {
        let err = |what: &str, e: &dyn std::fmt::Display| {
            CallError::Unreachable(format!("{what} {}: {e}", self.addr))
        };
        let tcp = tokio::time::timeout(DIAL_TIMEOUT, tokio::net::TcpStream::connect(&self.addr))
            .await
            .map_err(|e| err("connect", &e))?
            .map_err(|e| err("connect", &e))?;
        // Small request/response exchanges: Nagle plus delayed ACKs would
        // add ~40 ms to every round trip.
        let _ = tcp.set_nodelay(true);
        let name = server_name(&self.addr).ok_or_else(|| err("server name", &"not a host:port"))?;
        let config = self
            .tls
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| err("tls", &"this node has no cluster identity"))?;
        let tls = tokio::time::timeout(
            DIAL_TIMEOUT,
            tokio_rustls::TlsConnector::from(config).connect(name, tcp),
        )
        .await
        .map_err(|e| err("tls", &e))?
        .map_err(|e| err("tls", &e))?;
        let mut h2 = hyper::client::conn::http2::Builder::new(TokioExecutor::new());
        // Half-open connections (a peer that rebooted) are noticed quickly.
        h2.timer(hyper_util::rt::TokioTimer::new())
            .keep_alive_interval(Duration::from_secs(1))
            .keep_alive_timeout(Duration::from_secs(2));
        let (sender, conn) = h2
            .handshake(TokioIo::new(tls))
            .await
            .map_err(|e| err("http2", &e))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    /// One RPC, bounded by `ttl` from dial to decoded reply.
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        path: &str,
        req: &Req,
        ttl: Duration,
    ) -> Result<Resp, CallError> {
        let r = match tokio::time::timeout(ttl, self.exchange(path, req)).await {
            Ok(r) => r,
            Err(_) => {
                *self.conn.lock().await = None;
                return Err(CallError::Exchange(format!(
                    "{}{path}: no answer within {ttl:?}",
                    self.addr
                )));
            }
        };
        // A broken connection is dialled afresh next time.
        if matches!(r, Err(CallError::Unreachable(_))) {
            *self.conn.lock().await = None;
        }
        r
    }

    /// The kept connection, dialled first if there is none.
    async fn sender(&self) -> Result<SendRequest<Full<Bytes>>, CallError> {
        let mut conn = self.conn.lock().await;
        match conn.as_ref() {
            Some(s) if !s.is_closed() => Ok(s.clone()),
            _ => {
                let s = self.dial().await?;
                *conn = Some(s.clone());
                Ok(s)
            }
        }
    }

    async fn exchange<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        path: &str,
        req: &Req,
    ) -> Result<Resp, CallError> {
        let bad = |m: String| CallError::Exchange(m);
        let body = serde_json::to_vec(req).map_err(|e| bad(e.to_string()))?;
        let mut sender = self.sender().await?;
        let request = hyper::Request::post(format!("https://{}{path}", self.addr))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| bad(e.to_string()))?;
        let resp = sender
            .send_request(request)
            .await
            .map_err(|e| CallError::Unreachable(format!("{}: {e}", self.addr)))?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| bad(e.to_string()))?
            .to_bytes();
        if !status.is_success() {
            // Error bodies are JSON strings; show the text itself.
            let message = serde_json::from_slice::<String>(&bytes)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned());
            return Err(CallError::Refused {
                status: status.as_u16(),
                message: format!("{}: {message}", self.addr),
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("{}: bad reply: {e}", self.addr)))
    }
}
