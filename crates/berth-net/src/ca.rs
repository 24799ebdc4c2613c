//! The cluster CA and the node certificates it issues.

use crate::error::NetError;
use crate::token::Role;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
    PKCS_ECDSA_P256_SHA256,
};
use std::time::Duration;
use time::OffsetDateTime;

/// Node certificates live 90 days unless told otherwise; agents renew them
/// at a random point between 50 % and 80 % of that.
pub const DEFAULT_NODE_CERT_VALIDITY: Duration = Duration::from_secs(90 * 24 * 3600);

const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// The built-in certificate authority of one cluster.
#[derive(Clone)]
pub struct ClusterCa {
    cluster: String,
    cert_pem: String,
    cert_der: Vec<u8>,
    key_pem: String,
}

/// What a node needs to speak mutual TLS: its certificate and key, and the
/// CA certificate it trusts.
#[derive(Clone, Debug)]
pub struct NodeIdentity {
    pub node: String,
    pub cert_pem: String,
    pub key_pem: String,
    pub ca_pem: String,
}

fn ca_params(cluster: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("berth cluster CA {cluster}"));
    dn.push(DnType::OrganizationName, "berth");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p
}

fn pem_to_der(pem: &str) -> Result<Vec<u8>, NetError> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .map(|c| c.as_ref().to_vec())
        .map_err(|e| NetError::Cert(format!("bad certificate PEM: {e}")))
}

impl ClusterCa {
    /// Creates a new CA for `cluster`.
    pub fn generate(cluster: &str) -> Result<ClusterCa, NetError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = ca_params(cluster);
        let now = OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + CA_VALIDITY;
        let cert = params.self_signed(&key)?;
        Ok(ClusterCa {
            cluster: cluster.to_string(),
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Reloads a CA saved with [`ClusterCa::cert_pem`] and [`ClusterCa::key_pem`],
    /// refusing a key that is not the certificate's.
    pub fn from_pem(cluster: &str, cert_pem: &str, key_pem: &str) -> Result<ClusterCa, NetError> {
        let key = KeyPair::from_pem(key_pem)?;
        let cert_spki = spki_of(cert_pem)?;
        if cert_spki != key.public_key_raw() {
            return Err(NetError::Cert(
                "the CA key does not match the CA certificate".into(),
            ));
        }
        Ok(ClusterCa {
            cluster: cluster.to_string(),
            cert_der: pem_to_der(cert_pem)?,
            cert_pem: cert_pem.to_string(),
            key_pem: key_pem.to_string(),
        })
    }

    /// The cluster name the CA was created for.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// SHA-256 of the CA certificate (DER), lowercase hex: what join tokens pin.
    pub fn fingerprint(&self) -> String {
        fingerprint_der(&self.cert_der)
    }

    /// Issues a certificate and a fresh key for `node`, here: for the CA's
    /// own node, and for tests. Other nodes send a signing request instead
    /// ([`ClusterCa::issue_for`]), so their key never leaves them.
    pub fn issue(
        &self,
        node: &str,
        role: Role,
        names: &[String],
        validity: Duration,
    ) -> Result<NodeIdentity, NetError> {
        let key = NodeKey::generate(node)?;
        let cert_pem = self.issue_for(node, role, names, validity, &key.csr_pem)?;
        Ok(NodeIdentity {
            node: node.to_string(),
            cert_pem,
            key_pem: key.key_pem,
            ca_pem: self.cert_pem.clone(),
        })
    }

    /// Signs the public key of a certificate signing request (whose
    /// signature proves the requester holds the private key) into a
    /// certificate for `node` with `role`, valid for `validity`, usable as
    /// both TLS server and client. `names` are its DNS names or IP
    /// addresses. Nothing else in the request is used: the CA decides the
    /// subject, names and role.
    pub fn issue_for(
        &self,
        node: &str,
        role: Role,
        names: &[String],
        validity: Duration,
        csr_pem: &str,
    ) -> Result<String, NetError> {
        if node.is_empty()
            || !node
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return Err(NetError::Cert(format!("invalid node name {node:?}")));
        }
        let ca_key = KeyPair::from_pem(&self.key_pem)?;
        // The issuer is read from the CA certificate itself, so what is
        // issued always chains to it.
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, ca_key)?;
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| NetError::Cert(format!("certificate signing request: {e}")))?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, node);
        dn.push(DnType::OrganizationName, "berth");
        params.distinguished_name = dn;
        let role_uri = rcgen::string::Ia5String::try_from(role_uri(role, node))
            .map_err(|e| NetError::Cert(format!("role URI: {e}")))?;
        params.subject_alt_names = std::iter::once(Ok(SanType::URI(role_uri)))
            .chain(names.iter().map(|n| {
                match n.parse::<std::net::IpAddr>() {
                    Ok(ip) => Ok(SanType::IpAddress(ip)),
                    Err(_) => n
                        .clone()
                        .try_into()
                        .map(SanType::DnsName)
                        .map_err(|e: rcgen::Error| NetError::Cert(format!("name {n:?}: {e}"))),
                }
            }))
            .collect::<Result<_, _>>()?;
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        let now = OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::minutes(5);
        params.not_after = now
            + time::Duration::try_from(validity)
                .map_err(|e| NetError::Cert(format!("validity: {e}")))?;
        let cert = params.signed_by(&csr.public_key, &issuer)?;
        Ok(cert.pem())
    }
}

/// A node's private key, made on the node, and the signing request that
/// carries its public key to the CA.
pub struct NodeKey {
    pub key_pem: String,
    pub csr_pem: String,
}

impl NodeKey {
    pub fn generate(node: &str) -> Result<NodeKey, NetError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, node);
        params.distinguished_name = dn;
        let csr = params.serialize_request(&key)?;
        Ok(NodeKey {
            key_pem: key.serialize_pem(),
            csr_pem: csr
                .pem()
                .map_err(|e| NetError::Cert(format!("signing request: {e}")))?,
        })
    }
}

/// `berth://<role>/<node>`: the SAN URI that tells managers from workers.
fn role_uri(role: Role, node: &str) -> String {
    format!("{}{node}", role_prefix(role))
}

fn role_prefix(role: Role) -> &'static str {
    match role {
        Role::Manager => "berth://manager/",
        Role::Worker => "berth://worker/",
    }
}

/// Whether a certificate (DER) the cluster CA signed carries `role`.
/// The URI is stored verbatim in the signed certificate, and node names
/// cannot contain "://", so a substring test cannot be fooled.
pub fn has_role(cert_der: &[u8], role: Role) -> bool {
    let p = role_prefix(role).as_bytes();
    cert_der.windows(p.len()).any(|w| w == p)
}

/// The role and node name a node certificate (DER) carries in its SAN URI.
/// The caller has verified that the cluster CA signed it.
pub fn cert_identity(cert_der: &[u8]) -> Option<(Role, String)> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    let san = cert.subject_alternative_name().ok()??;
    san.value.general_names.iter().find_map(|n| match n {
        x509_parser::extensions::GeneralName::URI(u) => {
            [Role::Manager, Role::Worker].into_iter().find_map(|r| {
                u.strip_prefix(role_prefix(r))
                    .map(|node| (r, node.to_string()))
            })
        }
        _ => None,
    })
}

/// When a PEM certificate stops being valid, in seconds since the epoch,
/// with the time it started.
pub fn validity_pem(pem: &str) -> Result<(i64, i64), NetError> {
    let der = pem_to_der(pem)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| NetError::Cert(format!("certificate: {e}")))?;
    Ok((
        cert.validity().not_before.timestamp(),
        cert.validity().not_after.timestamp(),
    ))
}

/// The SubjectPublicKeyInfo's public key bytes of a PEM certificate.
fn spki_of(cert_pem: &str) -> Result<Vec<u8>, NetError> {
    let der = pem_to_der(cert_pem)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| NetError::Cert(format!("CA certificate: {e}")))?;
    Ok(cert.public_key().subject_public_key.data.to_vec())
}

/// SHA-256 of a DER certificate, lowercase hex.
pub(crate) fn fingerprint_der(der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Fingerprint of a PEM certificate, to check a CA against a token's pin.
pub fn fingerprint_pem(pem: &str) -> Result<String, NetError> {
    Ok(fingerprint_der(&pem_to_der(pem)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signing_request_gets_the_requesters_key_and_the_cas_names() {
        let ca = ClusterCa::generate("csr").unwrap();
        // The request names another node: only its public key is used.
        let key = NodeKey::generate("evil").unwrap();
        let v = DEFAULT_NODE_CERT_VALIDITY;
        let cert = ca
            .issue_for("n1", Role::Worker, &["10.0.0.1".into()], v, &key.csr_pem)
            .unwrap();
        let pair = KeyPair::from_pem(&key.key_pem).unwrap();
        let der = pem_to_der(&cert).unwrap();
        let (_, parsed) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert_eq!(
            parsed.public_key().raw,
            rcgen::PublicKeyData::subject_public_key_info(&pair).as_slice(),
            "the certificate is not for the requester's key"
        );
        assert_eq!(
            cert_identity(&pem_to_der(&cert).unwrap()),
            Some((Role::Worker, "n1".to_string()))
        );
    }

    #[test]
    fn a_tampered_signing_request_is_refused() {
        let ca = ClusterCa::generate("csr").unwrap();
        let key = NodeKey::generate("n1").unwrap();
        let mut lines: Vec<String> = key.csr_pem.lines().map(str::to_string).collect();
        // The last base64 line holds the request's signature.
        let last = lines.len() - 2;
        let flipped: String = lines[last]
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i == 4 {
                    if c == 'A' {
                        'B'
                    } else {
                        'A'
                    }
                } else {
                    c
                }
            })
            .collect();
        lines[last] = flipped;
        let bad = lines.join("\n");
        let v = DEFAULT_NODE_CERT_VALIDITY;
        assert!(ca.issue_for("n1", Role::Worker, &[], v, &bad).is_err());
        assert!(ca
            .issue_for("n1", Role::Worker, &[], v, "not a request")
            .is_err());
    }
}
