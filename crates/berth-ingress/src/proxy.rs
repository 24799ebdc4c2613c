//! One request through the ingress: its route, a backend in rotation, the
//! request forwarded with its hop-by-hop headers removed and the client's
//! address set, and the answer streamed back. An idempotent request
//! without a body that fails before an answer is tried once more on
//! another backend; upgrades (WebSocket) are tunnelled once the backend
//! answers 101.

use crate::backends::{Lease, Returning};
use crate::balance::{InFlight, Picked};
use crate::body::{Answer, OutBody, Reply};
use crate::conn::Peer;
use crate::headers::{set_forwarded, strip_hop_by_hop, upgrade_of};
use crate::observe::Exchange;
use crate::park::Exchanges;
use crate::Ingress;
use http_body_util::Limited;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING, UPGRADE};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;

fn plain(status: StatusCode, text: String) -> Response<Reply> {
    let mut r = Response::new(Reply::text(text));
    *r.status_mut() = status;
    r.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The request's host, without a port: the `Host` header itself when it
/// has none, as it mostly has not.
fn host_of(req: &Request<Incoming>) -> Option<HeaderValue> {
    let header = req.headers().get(HOST);
    let raw = match header {
        Some(h) => h.to_str().ok()?,
        None => req.uri().authority()?.as_str(),
    };
    let host = if let Some(rest) = raw.strip_prefix('[') {
        &raw[..rest.find(']')? + 2]
    } else {
        raw.rsplit_once(':')
            .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
            .map_or(raw, |(h, _)| h)
    };
    if host.is_empty() {
        return None;
    }
    match header {
        Some(h) if host.len() == raw.len() => Some(h.clone()),
        _ => HeaderValue::from_str(host).ok(),
    }
}

/// The request's target as a backend takes it: `/path?query`, also
/// when the client sent the absolute form.
fn origin_form(uri: &Uri) -> Uri {
    if uri.scheme().is_none() && uri.authority().is_none() {
        return uri.clone();
    }
    uri.path_and_query()
        .map_or_else(|| Uri::from_static("/"), |pq| Uri::from(pq.clone()))
}

/// Safe to send twice: an idempotent method and no body to replay.
fn replayable(req: &Request<Incoming>) -> bool {
    let idempotent = matches!(
        *req.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    );
    let no_body = req.headers().get(TRANSFER_ENCODING).is_none()
        && req
            .headers()
            .get(CONTENT_LENGTH)
            .is_none_or(|v| v.as_bytes() == b"0");
    idempotent && no_body
}

impl Ingress {
    /// One request: recorded (metrics, access log) once its answer is done.
    /// On HTTP/1, `exchanges` is the connection's: the request counts
    /// open until its answer's body is done, and a 101 gives the
    /// connection to the tunnel.
    pub(crate) async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        peer: Peer,
        exchanges: Option<Arc<Exchanges>>,
    ) -> Result<Response<Answer>, Infallible> {
        let open = exchanges.as_ref().map(|e| e.begin());
        let mut ex = self
            .observer
            .start(self.observer.unrouted(), peer.client.ip(), &req);
        let resp = self.route(req, peer, &mut ex).await;
        let (parts, body) = resp.into_parts();
        ex.status = parts.status.as_u16();
        if let (StatusCode::SWITCHING_PROTOCOLS, Some(e)) = (parts.status, &exchanges) {
            e.upgraded();
        }
        Ok(Response::from_parts(parts, Answer::new(body, ex, open)))
    }

    async fn route(
        self: Arc<Self>,
        mut req: Request<Incoming>,
        peer: Peer,
        ex: &mut Exchange,
    ) -> Response<Reply> {
        let Some(host_value) = host_of(&req) else {
            return plain(StatusCode::BAD_REQUEST, "a request needs a Host\n".into());
        };
        // Checked by host_of.
        let host = host_value.to_str().unwrap_or_default();
        let table = self.table();
        let Some(route) = table.find(host, req.uri().path()) else {
            return plain(StatusCode::NOT_FOUND, format!("no route for host {host}\n"));
        };
        ex.metrics = self.observer.route_of(route);
        let too_big = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .is_some_and(|n| n > self.opts.max_body);
        if too_big {
            return plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is over {} bytes\n", self.opts.max_body),
            );
        }
        let upgrade = upgrade_of(req.headers());
        let client_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut req));
        let replay = upgrade.is_none() && replayable(&req);
        let (mut parts, body) = req.into_parts();
        let limit = usize::try_from(self.opts.max_body).unwrap_or(usize::MAX);
        let mut body = Some(OutBody::Client(Limited::new(body, limit)));
        let mut headers = std::mem::take(&mut parts.headers);
        strip_hop_by_hop(&mut headers);
        set_forwarded(&mut headers, &peer.forwarding, &host_value);
        if let Some(u) = &upgrade {
            headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
            headers.insert(UPGRADE, u.clone());
        }
        if !headers.contains_key(HOST) {
            headers.insert(HOST, host_value.clone());
        }
        let target = origin_form(&parts.uri);
        let mut tried = Vec::new();
        loop {
            let Some(Picked { backend, stats }) = self.balancer.pick(route, &tried) else {
                let text = if tried.is_empty() {
                    format!("no healthy backend for {}\n", route.service)
                } else {
                    format!("every backend of {} failed\n", route.service)
                };
                let status = if tried.is_empty() {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::BAD_GATEWAY
                };
                return plain(status, text);
            };
            tried.push(backend.addr);
            stats.requests.fetch_add(1, Ordering::Relaxed);
            let inflight = InFlight::start(stats.clone());
            let mut out = Request::new(match body.take() {
                Some(b) if !replay => b,
                _ => OutBody::Empty,
            });
            *out.method_mut() = parts.method.clone();
            *out.uri_mut() = target.clone();
            // Only a replayable request is sent twice.
            *out.headers_mut() = if replay {
                headers.clone()
            } else {
                std::mem::take(&mut headers)
            };
            let sent = tokio::time::timeout(
                self.opts.backend_timeout,
                crate::backends::send(backend.addr, out),
            )
            .await;
            let failure = match sent {
                Ok(Ok((resp, lease))) => return self.answer(resp, lease, client_upgrade, inflight),
                Ok(Err(e)) => {
                    // Refused, reset or closed before an answer: out of
                    // rotation for a while.
                    stats.eject();
                    format!("{e}")
                }
                Err(_) => format!("no answer within {:?}", self.opts.backend_timeout),
            };
            stats.errors.fetch_add(1, Ordering::Relaxed);
            ex.metrics.backend_error();
            tracing::debug!("ingress: {} via {}: {failure}", host, backend.addr);
            if !replay || tried.len() >= 2 {
                let status = if failure.starts_with("no answer") {
                    StatusCode::GATEWAY_TIMEOUT
                } else {
                    StatusCode::BAD_GATEWAY
                };
                return plain(status, format!("backend {}: {failure}\n", backend.addr));
            }
        }
    }

    /// The backend's answer for the client; a 101 starts the tunnel.
    /// The request counts as in flight until its answer's body is done,
    /// or its tunnel closed.
    fn answer(
        &self,
        mut resp: Response<Incoming>,
        lease: Lease,
        client_upgrade: Option<hyper::upgrade::OnUpgrade>,
        inflight: InFlight,
    ) -> Response<Reply> {
        if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
            if let Some(client) = client_upgrade {
                let backend = hyper::upgrade::on(&mut resp);
                tokio::spawn(async move {
                    let _inflight = inflight;
                    let (Ok(c), Ok(b)) = tokio::join!(client, backend) else {
                        return;
                    };
                    let _ =
                        tokio::io::copy_bidirectional(&mut TokioIo::new(c), &mut TokioIo::new(b))
                            .await;
                });
                let (parts, _) = resp.into_parts();
                return Response::from_parts(parts, Reply::empty());
            }
        }
        let (mut parts, body) = resp.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        let body = Returning::new(body, lease);
        Response::from_parts(
            parts,
            Reply::Upstream {
                body,
                _inflight: inflight,
            },
        )
    }
}
