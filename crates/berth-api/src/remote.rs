//! The remote API (`--api-addr`, off by default): the same `/v1` routes
//! over HTTPS, TLS 1.3 with the node's certificate from the cluster CA.
//! Every request but the CA's, the login and the OpenAPI document must
//! carry a token; nobody is root here.

use berth_agent::Agent;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceExt;

/// Marks a request that came over the network: no token, no rights.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Remote;

/// What the remote API serves without a token: the CA to pin, the login
/// that gets a token, and the API's description.
const OPEN_PATHS: &[&str] = &["/v1/ca", "/v1/login", "/v1/openapi.json"];

/// Every other request must carry a token that holds, whatever its
/// handler does with the caller: there is no root over the network.
async fn require_token(
    axum::extract::State(agent): axum::extract::State<Arc<Agent>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::extract::FromRequestParts;
    use axum::response::IntoResponse;
    if OPEN_PATHS.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    let caller = match crate::caller::Caller::from_request_parts(&mut parts, &agent).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = agent.cluster().rights(&caller.0) {
        return crate::routes::ApiError(berth_agent::AgentError::from(e)).into_response();
    }
    next.run(axum::extract::Request::from_parts(parts, body))
        .await
}

/// Open connections at most; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 1024;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The TLS configuration for the node's current certificate, rebuilt when
/// a renewal replaced it.
#[derive(Default)]
struct TlsCache(Mutex<Option<(String, Arc<rustls::ServerConfig>)>>);

impl TlsCache {
    fn current(&self, agent: &Agent) -> Option<Arc<rustls::ServerConfig>> {
        let id = agent.cluster().identity()?;
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((pem, cfg)) = slot.as_ref() {
            if *pem == id.cert_pem {
                return Some(cfg.clone());
            }
        }
        match berth_net::api_server_config(&id.net()) {
            Ok(cfg) => {
                *slot = Some((id.cert_pem.clone(), cfg.clone()));
                Some(cfg)
            }
            Err(e) => {
                tracing::warn!("remote API: no TLS configuration: {e}");
                None
            }
        }
    }
}

/// Serves the remote API on `listener` until `shutdown` resolves. Until
/// the node is a cluster member it has no certificate, and connections
/// are closed at once.
pub async fn serve_remote(
    agent: Arc<Agent>,
    ingress: crate::IngressSlot,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let app = crate::routes::router_with(agent.clone(), ingress)
        .layer(axum::middleware::from_fn_with_state(
            agent.clone(),
            require_token,
        ))
        .layer(axum::Extension(Remote));
    let cache = Arc::new(TlsCache::default());
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            _ = &mut shutdown => return,
        };
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!("remote API: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => return,
        };
        let Some(tls) = cache.current(&agent) else {
            continue;
        };
        let app = app.clone();
        tokio::spawn(async move {
            let _permit = permit;
            serve_one(app, tls, tcp, peer).await;
        });
    }
}

async fn serve_one(
    app: axum::Router,
    tls: Arc<rustls::ServerConfig>,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
) {
    // Small answers go out at once, not after the peer's delayed ACK.
    let _ = tcp.set_nodelay(true);
    let accept = tokio_rustls::TlsAcceptor::from(tls).accept(tcp);
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, accept).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!("remote API: TLS handshake with {peer}: {e}");
            return;
        }
        Err(_) => return,
    };
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            app.clone().oneshot(req.map(axum::body::Body::new))
        });
    if let Err(e) = http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        tracing::debug!("remote API: connection from {peer}: {e}");
    }
}
