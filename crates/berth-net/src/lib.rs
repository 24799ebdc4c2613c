//! Node identity and transport security for the cluster.
//!
//! - [`ClusterCa`]: the built-in CA (ECDSA P-256), created at `cluster init`,
//!   which issues node certificates at join.
//! - [`JoinToken`]: carries the CA's SHA-256 fingerprint, so a joining node
//!   pins the CA before trusting anything it is sent (as swarm's SWMTKN).
//! - [`server_config`] / [`client_config`]: mutual TLS, both sides
//!   presenting a certificate the cluster CA signed.
//!
//! Architecture invariant: node-to-node traffic is never accepted without a
//! client certificate from the cluster CA.

mod ca;
mod error;
mod seal;
mod tls;
mod token;

pub use ca::{
    cert_identity, fingerprint_pem, has_role, validity_pem, ClusterCa, NodeIdentity, NodeKey,
    DEFAULT_NODE_CERT_VALIDITY,
};
pub use error::NetError;
pub use seal::SealKey;
pub use tls::{
    api_server_config, ca_only_client_config, client_config, install_crypto_provider,
    node_server_config, pinned_ca_client_config, server_config, unverified_api_client_config,
    unverified_client_config,
};
pub use token::{JoinToken, Role};
