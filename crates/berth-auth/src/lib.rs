//! Who may do what: the principals berth knows and the rules that decide
//! their requests, as data and pure functions.
//!
//! - `grant`: grants as text (`admin:app1-*`, `kv:service/*:write`).
//! - `rbac`: `Rights`, the decisions (OpenSVC om3's roles: root,
//!   squatter, admin, operator, guest; Docker Datacenter's restricted
//!   control), and what a token may carry.
//! - `records`: users, groups and revoked tokens as desired state keeps
//!   them.
//! - `password`: argon2id hashes.
//! - `token`: Ed25519-signed tokens, their claims and their checks.
//!
//! Architecture invariant: this crate does no I/O and reads no clock: the
//! time is an argument. The only thing it takes from the system is the
//! randomness of a password's salt.

pub mod audit;
pub mod grant;
pub mod matrix;
pub mod password;
pub mod rbac;
pub mod records;
pub mod secret;
pub mod token;

pub use grant::{Grant, GrantError, NsRole};
pub use rbac::{restricted_violations, Action, Rights};
pub use records::{GroupRecord, LdapGroupMap, Revocation, SignerRecord, Source, UserRecord};
pub use token::{Claims, Signer, TokenError, Verifier};
