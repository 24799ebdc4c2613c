//! TLS termination on `--ingress-https`: the certificate of each handshake
//! is picked by its SNI name, from the route table (a service's
//! `ingress_tls_cert` and `ingress_tls_key`, carried as file paths in its
//! service meta), and h2 and http/1.1 are offered over ALPN.
//!
//! Certificates are read from the files when first asked for, and read
//! again when a file's modification time or size changed (looked at no
//! more than once a second), so a renewed certificate is served without a
//! restart. A file that no longer parses keeps the last good certificate
//! in service, with a warning.

use crate::table::TlsFiles;
use crate::Ingress;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

/// How often a certificate's files are looked at for a change.
const RECHECK: Duration = Duration::from_secs(1);

#[derive(Clone, PartialEq, Eq)]
struct Stamp(Option<(SystemTime, u64)>, Option<(SystemTime, u64)>);

struct Loaded {
    key: Option<Arc<CertifiedKey>>,
    stamp: Stamp,
    checked: Instant,
}

/// The certificates in use, by their files.
#[derive(Default)]
pub struct Certs {
    loaded: Mutex<HashMap<TlsFiles, Loaded>>,
}

fn stamp_of(f: &TlsFiles) -> Stamp {
    let one = |p: &std::path::Path| {
        std::fs::metadata(p)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())))
    };
    Stamp(one(&f.cert), one(&f.key))
}

fn load(f: &TlsFiles) -> Result<Arc<CertifiedKey>, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&f.cert)
        .map_err(|e| format!("{}: {e}", f.cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", f.cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate in it", f.cert.display()));
    }
    let key =
        PrivateKeyDer::from_pem_file(&f.key).map_err(|e| format!("{}: {e}", f.key.display()))?;
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("{}: {e}", f.key.display()))?;
    let ck = CertifiedKey::new(chain, signing);
    ck.keys_match().map_err(|e| {
        format!(
            "{} does not match {}: {e}",
            f.key.display(),
            f.cert.display()
        )
    })?;
    Ok(Arc::new(ck))
}

impl Certs {
    /// The certificate of `f`, read again if its files changed.
    pub fn get(&self, f: &TlsFiles) -> Option<Arc<CertifiedKey>> {
        let mut g = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(l) = g.get(f) {
            if l.checked.elapsed() < RECHECK {
                return l.key.clone();
            }
        }
        let stamp = stamp_of(f);
        let entry = g.entry(f.clone()).or_insert_with(|| Loaded {
            key: None,
            stamp: Stamp(None, None),
            checked: Instant::now(),
        });
        entry.checked = Instant::now();
        if entry.key.is_none() || entry.stamp != stamp {
            entry.stamp = stamp;
            match load(f) {
                Ok(k) => entry.key = Some(k),
                Err(e) => tracing::warn!("ingress TLS: {e}"),
            }
        }
        entry.key.clone()
    }
}

/// Picks a handshake's certificate from the ingress's current table.
#[derive(Debug)]
struct BySni(Weak<Ingress>);

impl ResolvesServerCert for BySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let ingress = self.0.upgrade()?;
        let name = hello.server_name()?;
        let table = ingress.table();
        let files = table.tls_for(name)?;
        ingress.certs.get(files)
    }
}

/// The server side of `--ingress-https`.
pub fn server_config(ingress: &Arc<Ingress>) -> std::io::Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(BySni(Arc::downgrade(ingress))));
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}
