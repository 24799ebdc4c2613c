//! Mutual TLS between nodes: a peer with a certificate from the cluster CA
//! is served; plaintext, no certificate, or another CA's certificate is
//! refused. Everything listens on 127.0.0.1.

use berth_net::{
    client_config, install_crypto_provider, server_config, ClusterCa, JoinToken, NodeIdentity, Role,
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::{TlsAcceptor, TlsConnector};

const REPLY: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

fn identity(ca: &ClusterCa, node: &str) -> NodeIdentity {
    ca.issue(
        node,
        Role::Manager,
        &["127.0.0.1".to_string(), node.to_string()],
        berth_net::DEFAULT_NODE_CERT_VALIDITY,
    )
    .expect("issue")
}

/// A TLS server answering one fixed reply per connection, until dropped.
async fn serve(id: &NodeIdentity) -> SocketAddr {
    let acceptor = TlsAcceptor::from(server_config(id).expect("server config"));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        for _ in 0..32 {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let mut buf = [0u8; 256];
                    let _ = tls.read(&mut buf).await;
                    let _ = tls.write_all(REPLY).await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    addr
}

/// Connects with `cfg`, sends a request, returns what came back.
async fn ask(addr: SocketAddr, cfg: Arc<rustls::ClientConfig>) -> Result<Vec<u8>, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let name = ServerName::try_from("127.0.0.1").map_err(|e| e.to_string())?;
    let mut tls = TlsConnector::from(cfg)
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    tls.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut out))
        .await
        .map_err(|_| "timeout".to_string())?
        .map_err(|e| e.to_string())?;
    Ok(out)
}

#[tokio::test]
async fn only_peers_with_a_cluster_certificate_are_served() {
    install_crypto_provider();
    let ca = ClusterCa::generate("test").expect("ca");
    let server = identity(&ca, "node1");
    let addr = serve(&server).await;

    let good = client_config(&identity(&ca, "node2")).expect("client");
    assert_eq!(
        ask(addr, good).await.expect("a cluster peer is served"),
        REPLY
    );

    // A CA reloaded from its PEM files issues certificates peers accept.
    let reloaded = ClusterCa::from_pem("test", ca.cert_pem(), ca.key_pem()).expect("reload");
    let reissued = client_config(&identity(&reloaded, "node4")).expect("client");
    assert_eq!(
        ask(addr, reissued).await.expect("reissued cert is served"),
        REPLY
    );

    // A certificate from another CA: refused.
    let other = ClusterCa::generate("other").expect("ca");
    let mut stranger = identity(&other, "intruder");
    stranger.ca_pem = server.ca_pem.clone();
    let refused = ask(addr, client_config(&stranger).expect("client")).await;
    assert!(
        refused.is_err() || refused.as_deref() == Ok(&[][..]),
        "wrong-CA peer was served: {refused:?}"
    );

    // No client certificate at all: refused.
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    roots
        .add(
            rustls::pki_types::CertificateDer::from_pem_slice(server.ca_pem.as_bytes())
                .expect("ca der"),
        )
        .expect("root");
    let anonymous = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let refused = ask(addr, Arc::new(anonymous)).await;
    assert!(
        refused.is_err() || refused.as_deref() == Ok(&[][..]),
        "anonymous peer was served: {refused:?}"
    );

    // Plaintext: no HTTP answer comes back.
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut out)).await;
    assert!(
        !out.starts_with(b"HTTP/"),
        "plaintext was answered: {:?}",
        String::from_utf8_lossy(&out)
    );

    // A client pinning another CA does not trust this server.
    let pinned_elsewhere = NodeIdentity {
        ca_pem: other.cert_pem().to_string(),
        ..identity(&other, "node3")
    };
    assert!(ask(addr, client_config(&pinned_elsewhere).expect("client"))
        .await
        .is_err());
}

#[test]
fn tokens_pin_the_cluster_ca() {
    let ca = ClusterCa::generate("pin").expect("ca");
    let token = JoinToken::generate(&ca.fingerprint(), Role::Worker).expect("token");
    assert!(token.pins(ca.cert_pem()).is_ok());
    let other = ClusterCa::generate("pin").expect("ca");
    assert!(
        token.pins(other.cert_pem()).is_err(),
        "a different CA passed the pin"
    );
    // A CA reloaded from PEM keeps its fingerprint and still issues certs.
    let reloaded = ClusterCa::from_pem("pin", ca.cert_pem(), ca.key_pem()).expect("reload");
    assert_eq!(reloaded.fingerprint(), ca.fingerprint());
    reloaded
        .issue(
            "node9",
            Role::Worker,
            &["node9".to_string()],
            berth_net::DEFAULT_NODE_CERT_VALIDITY,
        )
        .expect("issue after reload");
    // A key that is not the CA's is refused at load.
    let other = ClusterCa::generate("pin").expect("ca");
    assert!(ClusterCa::from_pem("pin", ca.cert_pem(), other.key_pem()).is_err());
    // Roles are carried by the certificate; node names cannot fake one.
    use rustls::pki_types::pem::PemObject;
    let der =
        |pem: &str| rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).expect("der");
    let v = berth_net::DEFAULT_NODE_CERT_VALIDITY;
    let w = reloaded.issue("w1", Role::Worker, &[], v).expect("issue");
    let m = reloaded.issue("m1", Role::Manager, &[], v).expect("issue");
    assert!(berth_net::has_role(der(&w.cert_pem).as_ref(), Role::Worker));
    assert!(!berth_net::has_role(
        der(&w.cert_pem).as_ref(),
        Role::Manager
    ));
    assert!(berth_net::has_role(
        der(&m.cert_pem).as_ref(),
        Role::Manager
    ));
    assert!(reloaded
        .issue("evil://manager/", Role::Worker, &[], v)
        .is_err());
}
