//! The API client: HTTP/1.1 over the daemon's unix socket, or over
//! HTTPS to a node's remote API (`--server`), trusting only the cluster
//! CA the user pinned at `berth login`. Calls name their endpoint type
//! (`berth-api-types`), which gives path, method, query, body and reply.

use berth_api_types::bodies::ErrorBody;
use berth_api_types::{Endpoint, Method as ApiMethod};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub enum ClientError {
    NoDaemon {
        socket: PathBuf,
        reason: String,
    },
    /// The daemon refused the request; `usage` when it was bad input (HTTP 400).
    Api {
        message: String,
        usage: bool,
    },
    Protocol(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::NoDaemon { socket, reason } if socket.starts_with("https:") => write!(
                f,
                "no berth API answers at {} ({reason}).",
                socket.display()
            ),
            ClientError::NoDaemon { socket, reason } => write!(
                f,
                "no berth daemon answers on {} ({reason}).\nStart one with `berth daemon start` (or `berth daemon run` in the foreground); set --home or BERTH_HOME if it uses another home.",
                socket.display()
            ),
            ClientError::Api { message, .. } => f.write_str(message),
            ClientError::Protocol(m) => write!(f, "daemon API: {m}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// Where the API is.
#[derive(Clone)]
enum Transport {
    Unix,
    /// `host:port`, and the TLS configuration that pins the CA.
    Https {
        authority: String,
        tls: std::sync::Arc<rustls::ClientConfig>,
    },
    /// A remote API berth cannot reach yet, and why (no pinned CA).
    Unusable(String),
}

/// A byte stream to the API, unix or TLS.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

#[derive(Clone)]
pub struct Client {
    socket: PathBuf,
    transport: Transport,
    /// Sent as `Authorization: Bearer`: the request then has the token's
    /// rights, not root's.
    token: Option<String>,
}

async fn body_bytes(b: hyper::body::Incoming) -> Result<Bytes, String> {
    b.collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| e.to_string())
}

impl Client {
    pub fn new(socket: &Path) -> Client {
        Client {
            socket: socket.to_path_buf(),
            transport: Transport::Unix,
            token: None,
        }
    }

    /// A client of the remote API at `authority` (`host:port`), whose
    /// certificate must chain to `tls`'s pinned CA.
    pub fn remote(authority: &str, tls: std::sync::Arc<rustls::ClientConfig>) -> Client {
        Client {
            socket: PathBuf::from(format!("https://{authority}")),
            transport: Transport::Https {
                authority: authority.to_string(),
                tls,
            },
            token: None,
        }
    }

    /// A remote client that fails every call with `why`.
    pub fn unusable(server: &str, why: String) -> Client {
        Client {
            socket: PathBuf::from(server),
            transport: Transport::Unusable(why),
            token: None,
        }
    }

    async fn connect(&self) -> Result<Box<dyn Io>, String> {
        match &self.transport {
            Transport::Unusable(why) => Err(why.clone()),
            Transport::Unix => tokio::net::UnixStream::connect(&self.socket)
                .await
                .map(|s| Box::new(s) as Box<dyn Io>)
                .map_err(|e| e.to_string()),
            Transport::Https { authority, tls } => {
                let tcp = tokio::time::timeout(
                    std::time::Duration::from_secs(10),
                    tokio::net::TcpStream::connect(authority.as_str()),
                )
                .await
                .map_err(|_| "no answer within 10 s".to_string())?
                .map_err(|e| e.to_string())?;
                let host = authority
                    .rsplit_once(':')
                    .map_or(authority.as_str(), |(h, _)| h)
                    .trim_start_matches('[')
                    .trim_end_matches(']');
                let name = rustls::pki_types::ServerName::try_from(host.to_string())
                    .map_err(|e| format!("{host}: {e}"))?;
                let s = tokio_rustls::TlsConnector::from(tls.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| format!("TLS: {e}"))?;
                Ok(Box::new(s))
            }
        }
    }

    pub fn with_token(mut self, token: Option<String>) -> Client {
        self.token = token;
        self
    }

    async fn send(
        &self,
        method: Method,
        uri: &str,
        body: Option<Vec<u8>>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, ClientError> {
        let no_daemon = |reason: String| ClientError::NoDaemon {
            socket: self.socket.clone(),
            reason,
        };
        let stream = self.connect().await.map_err(no_daemon)?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| no_daemon(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", "berth")
            .header("content-type", "application/json");
        if let Some(t) = &self.token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        sender
            .send_request(req)
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))
    }

    async fn request(
        &self,
        method: Method,
        uri: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Bytes, ClientError> {
        let resp = self.send(method, uri, body).await?;
        let status = resp.status();
        let bytes = body_bytes(resp.into_body())
            .await
            .map_err(ClientError::Protocol)?;
        if status != StatusCode::OK {
            let message = serde_json::from_slice::<ErrorBody>(&bytes)
                .map(|e| e.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned());
            return Err(ClientError::Api {
                message,
                usage: status == StatusCode::BAD_REQUEST,
            });
        }
        Ok(bytes)
    }

    fn uri<E: Endpoint>(query: &E::Query) -> Result<String, ClientError> {
        let q = serde_urlencoded::to_string(query)
            .map_err(|e| ClientError::Protocol(format!("query of {}: {e}", E::PATH)))?;
        Ok(if q.is_empty() {
            E::PATH.to_string()
        } else {
            format!("{}?{q}", E::PATH)
        })
    }

    /// One call of endpoint `E`.
    pub async fn call<E: Endpoint>(
        &self,
        query: &E::Query,
        body: &E::Body,
    ) -> Result<E::Reply, ClientError> {
        let uri = Self::uri::<E>(query)?;
        let (method, body) = match E::METHOD {
            ApiMethod::Get => (Method::GET, None),
            ApiMethod::Post => (
                Method::POST,
                Some(serde_json::to_vec(body).map_err(|e| ClientError::Protocol(e.to_string()))?),
            ),
        };
        let b = self.request(method, &uri, body).await?;
        serde_json::from_slice(&b).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// Follows endpoint `E`'s event stream, calling `on_item` with each.
    pub async fn stream<E: Endpoint>(
        &self,
        query: &E::Query,
        mut on_item: impl FnMut(E::Reply),
    ) -> Result<(), ClientError> {
        let uri = Self::uri::<E>(query)?;
        self.sse(&uri, |data| match serde_json::from_str::<E::Reply>(data) {
            Ok(item) => on_item(item),
            Err(e) => tracing::debug!("skipping an undecodable event: {e}"),
        })
        .await
    }

    /// Follows a server-sent event stream, calling `on_data` with each data payload.
    async fn sse(&self, uri: &str, mut on_data: impl FnMut(&str)) -> Result<(), ClientError> {
        let resp = self.send(Method::GET, uri, None).await?;
        let status = resp.status();
        if status != StatusCode::OK {
            let b = body_bytes(resp.into_body())
                .await
                .map_err(ClientError::Protocol)?;
            let message = serde_json::from_slice::<ErrorBody>(&b)
                .map(|e| e.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&b).into_owned());
            return Err(ClientError::Api {
                message,
                usage: status == StatusCode::BAD_REQUEST,
            });
        }
        let mut body = resp.into_body();
        // Bytes are decoded only per complete event, so a multi-byte
        // character split across frames stays whole.
        let mut buf: Vec<u8> = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| ClientError::Protocol(e.to_string()))?;
            if let Ok(data) = frame.into_data() {
                buf.extend_from_slice(&data);
                while let Some(i) = buf.windows(2).position(|w| w == b"\n\n") {
                    let block: Vec<u8> = buf.drain(..i + 2).collect();
                    for line in String::from_utf8_lossy(&block).lines() {
                        if let Some(d) = line.strip_prefix("data:") {
                            on_data(d.trim_start());
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
