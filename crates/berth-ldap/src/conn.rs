//! One connection to the directory: connect (servers in order), the
//! service bind, searches (paged, so a server's size limit does not cut
//! a large directory short), base reads and user binds. Every step is
//! bounded by the configured timeout. Entries are read from the BER
//! structure here, field by field, so a malformed answer is skipped
//! instead of panicking (ldap3's `SearchEntry::construct` would).

use crate::{Directory, LdapError};
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::asn1::StructureTag;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, ResultEntry, Scope};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Entries asked for per page.
const PAGE: i32 = 500;
/// LDAP result codes berth tells apart.
const NO_SUCH_OBJECT: u32 = 32;
const INVALID_CREDENTIALS: u32 = 49;

/// An entry as a search returned it; attribute names lowercase.
#[derive(Clone, Debug, Default)]
pub(crate) struct Entry {
    pub dn: String,
    attrs: HashMap<String, Vec<String>>,
}

impl Entry {
    pub fn values(&self, attr: &str) -> &[String] {
        self.attrs
            .get(&attr.to_ascii_lowercase())
            .map_or(&[], Vec::as_slice)
    }

    pub fn first(&self, attr: &str) -> Option<&str> {
        self.values(attr).first().map(String::as_str)
    }

    /// A SearchResultEntry (`[APPLICATION 4] { dn, attributes }`), or
    /// `None` when it is not one.
    fn parse(tag: StructureTag) -> Option<Entry> {
        let mut parts = tag.match_id(4)?.expect_constructed()?.into_iter();
        let dn = String::from_utf8(parts.next()?.expect_primitive()?).ok()?;
        let mut attrs = HashMap::new();
        for attr in parts.next()?.expect_constructed()? {
            let mut a = attr.expect_constructed()?.into_iter();
            let name = String::from_utf8(a.next()?.expect_primitive()?).ok()?;
            // Binary values (a photo, a certificate) are not names.
            let values: Vec<String> = a
                .next()?
                .expect_constructed()?
                .into_iter()
                .filter_map(StructureTag::expect_primitive)
                .filter_map(|v| String::from_utf8(v).ok())
                .collect();
            attrs.insert(name.to_ascii_lowercase(), values);
        }
        Some(Entry { dn, attrs })
    }
}

/// A connection, bound as the service account (or anonymously); its
/// driver task ends with it.
pub(crate) struct Conn {
    ldap: Ldap,
    timeout: Duration,
    driver: tokio::task::JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

fn protocol(e: ldap3::LdapError) -> LdapError {
    LdapError::Protocol(e.to_string())
}

/// A client config trusting the certificates of `pem` only.
pub(crate) fn tls_config(pem: &str) -> Result<Arc<rustls::ClientConfig>, LdapError> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(|e| LdapError::Config(format!("the CA file: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| LdapError::Config(format!("the CA file: {e}")))?;
    }
    if roots.is_empty() {
        return Err(LdapError::Config(
            "the CA file holds no PEM certificate".into(),
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| LdapError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

impl Directory {
    /// A connection to the first server that answers, bound as the
    /// service account. A refused service bind is a configuration error
    /// and is not tried on the next server.
    pub(crate) async fn connect(&self) -> Result<Conn, LdapError> {
        let t = self.cfg.timeout;
        let mut failed = Vec::new();
        for url in &self.cfg.urls {
            let mut settings = LdapConnSettings::new()
                .set_conn_timeout(t)
                .set_starttls(self.cfg.starttls && url.starts_with("ldap://"));
            if let Some(tls) = &self.tls {
                settings = settings.set_config(tls.clone());
            }
            let opened = tokio::time::timeout(t, LdapConnAsync::with_settings(settings, url)).await;
            let (driver, ldap) = match opened {
                Ok(Ok(pair)) => pair,
                Ok(Err(e)) => {
                    failed.push(format!("{url}: {e}"));
                    continue;
                }
                Err(_) => {
                    failed.push(format!("{url}: no answer within {t:?}"));
                    continue;
                }
            };
            let driver = tokio::spawn(async move {
                if let Err(e) = driver.drive().await {
                    tracing::debug!("ldap connection: {e}");
                }
            });
            let mut c = Conn {
                ldap,
                timeout: t,
                driver,
            };
            let (Some(dn), Some(pw)) = (&self.cfg.bind_dn, &self.cfg.bind_password) else {
                return Ok(c);
            };
            match c.bind(dn, pw).await {
                Ok(Ok(())) => return Ok(c),
                Ok(Err(why)) => {
                    return Err(LdapError::ServiceBind {
                        dn: dn.clone(),
                        why,
                    })
                }
                Err(e) => failed.push(format!("{url}: {e}")),
            }
        }
        Err(LdapError::Unreachable(failed.join("; ")))
    }
}

impl Conn {
    /// A simple bind: `Ok(Err(why))` when the server refuses it.
    pub async fn bind(
        &mut self,
        dn: &str,
        password: &str,
    ) -> Result<Result<(), String>, LdapError> {
        let r = self
            .ldap
            .with_timeout(self.timeout)
            .simple_bind(dn, password)
            .await
            .map_err(protocol)?;
        Ok(match r.rc {
            0 => Ok(()),
            INVALID_CREDENTIALS => Err("wrong password".into()),
            rc => Err(format!("the bind was refused: {r} (rc {rc})")),
        })
    }

    /// Every entry under `base` (subtree) that `filter` selects, with
    /// `attrs`, page by page.
    pub async fn search(
        &mut self,
        base: &str,
        filter: &str,
        attrs: &[&str],
    ) -> Result<Vec<Entry>, LdapError> {
        let failed = |why: String| LdapError::Search {
            base: base.into(),
            filter: filter.into(),
            why,
        };
        let attrs: Vec<String> = attrs.iter().map(|a| a.to_string()).collect();
        let adapters: Vec<Box<dyn Adapter<String, Vec<String>>>> = vec![
            Box::new(EntriesOnly::new()),
            Box::new(PagedResults::new(PAGE)),
        ];
        let mut stream = self
            .ldap
            .with_timeout(self.timeout)
            .streaming_search_with(adapters, base, Scope::Subtree, filter, attrs)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let mut out = Vec::new();
        let mut malformed = 0usize;
        loop {
            match stream.next().await {
                Ok(Some(entry)) => match Entry::parse(entry.0) {
                    Some(e) => out.push(e),
                    None => malformed += 1,
                },
                Ok(None) => break,
                Err(e) => return Err(failed(e.to_string())),
            }
        }
        let r = stream.finish().await;
        if malformed > 0 {
            tracing::warn!("ldap: {malformed} malformed entries under {base} skipped");
        }
        match r.rc {
            0 => Ok(out),
            NO_SUCH_OBJECT => Err(failed("the base does not exist".into())),
            rc => Err(failed(format!("{r} (rc {rc})"))),
        }
    }

    /// The entry `dn` itself, with `attrs`; `None` when there is none.
    pub async fn read(&mut self, dn: &str, attrs: &[&str]) -> Result<Option<Entry>, LdapError> {
        let r = self
            .ldap
            .with_timeout(self.timeout)
            .search(dn, Scope::Base, "(objectClass=*)", attrs.to_vec())
            .await
            .map_err(protocol)?;
        let ldap3::SearchResult(entries, res) = r;
        match res.rc {
            0 => Ok(entries
                .into_iter()
                .find_map(|e: ResultEntry| Entry::parse(e.0))),
            NO_SUCH_OBJECT => Ok(None),
            rc => Err(LdapError::Search {
                base: dn.into(),
                filter: "(objectClass=*)".into(),
                why: format!("{res} (rc {rc})"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ldap3::asn1::{TagClass, PL};

    fn prim(s: &str) -> StructureTag {
        StructureTag {
            class: TagClass::Universal,
            id: 4,
            payload: PL::P(s.as_bytes().to_vec()),
        }
    }

    fn cons(id: u64, class: TagClass, inner: Vec<StructureTag>) -> StructureTag {
        StructureTag {
            class,
            id,
            payload: PL::C(inner),
        }
    }

    #[test]
    fn entries_are_read_without_panicking_on_junk() {
        let attr = cons(
            16,
            TagClass::Universal,
            vec![
                prim("UID"),
                cons(17, TagClass::Universal, vec![prim("alice")]),
            ],
        );
        let good = cons(
            4,
            TagClass::Application,
            vec![
                prim("uid=alice,dc=t"),
                cons(16, TagClass::Universal, vec![attr]),
            ],
        );
        let e = Entry::parse(good).expect("an entry");
        assert_eq!(e.dn, "uid=alice,dc=t");
        assert_eq!(e.first("uid"), Some("alice"));
        assert!(e.values("member").is_empty());
        // Wrong tag, missing parts, a primitive where a sequence goes.
        for junk in [
            cons(5, TagClass::Application, vec![]),
            cons(4, TagClass::Application, vec![]),
            cons(4, TagClass::Application, vec![prim("dn")]),
            cons(4, TagClass::Application, vec![prim("dn"), prim("x")]),
            prim("x"),
        ] {
            assert!(Entry::parse(junk).is_none());
        }
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        assert!(matches!(tls_config("no pem"), Err(LdapError::Config(_))));
    }
}
