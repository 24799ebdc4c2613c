//! Bodies of the users, groups and tokens endpoints. Grants travel as
//! their text (`admin:app1-*`), parsed by the daemon.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UserInfo {
    pub name: String,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub grants: Vec<String>,
    /// `local` or `ldap`.
    pub source: String,
    /// Seconds since the epoch.
    pub created: u64,
    pub has_password: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GroupInfo {
    pub name: String,
    #[serde(default)]
    pub grants: Vec<String>,
    pub source: String,
    /// LDAP groups whose members (nested groups resolved) are its members.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ldap_groups: Vec<String>,
    /// An LDAP filter whose entries (groups or users) are its members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap_filter: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UserCreateRequest {
    pub name: String,
    /// None: a user that only ever holds tokens (a robot).
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub grants: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NameRequest {
    pub name: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PasswdRequest {
    pub name: String,
    pub password: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GrantRequest {
    /// A user's name, or a group's with `group`.
    pub name: String,
    #[serde(default)]
    pub group: bool,
    pub grants: Vec<String>,
    /// Remove these grants instead of adding them.
    #[serde(default)]
    pub revoke: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GrantsReply {
    pub name: String,
    pub grants: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GroupCreateRequest {
    pub name: String,
    #[serde(default)]
    pub grants: Vec<String>,
    /// LDAP group DNs it maps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ldap_groups: Vec<String>,
    /// An LDAP filter it maps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap_filter: Option<String>,
}

pub use berth_model::ldap::{LdapSyncReport, LdapUserChange};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenCreateRequest {
    pub user: String,
    pub ttl_secs: u64,
    /// None: all of the user's grants.
    #[serde(default)]
    pub grants: Option<Vec<String>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenRevokeRequest {
    /// A whole token, or a token's id.
    pub token: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoginRequest {
    pub user: String,
    pub password: String,
    pub ttl_secs: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenInfo {
    pub token: String,
    pub id: String,
    pub user: String,
    pub grants: Vec<String>,
    /// Seconds since the epoch.
    pub expires: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WhoAmI {
    pub user: String,
    pub grants: Vec<String>,
}

/// The cluster CA a client pins (`berth login`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CaInfo {
    /// The trust bundle: the current CA, then the previous one during a
    /// rotation.
    pub pem: String,
    /// SHA-256 of the current CA certificate (DER), lowercase hex: the
    /// same fingerprint join tokens carry.
    pub sha256: String,
}

/// `berth audit`'s filters.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AuditQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// A glob on the object (`app1-*/*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// Only records of the last this many seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub refused: bool,
    /// At most this many, the newest (default 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// One audit record.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AuditEntry {
    pub request: String,
    /// Milliseconds since the epoch.
    pub time_ms: u64,
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    pub node: String,
    pub source: String,
    pub object: String,
    pub action: String,
    /// `allowed` or `refused`.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `?path=...&key=...`: one key of a `sec` or `cfg` object.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SecretQuery {
    pub path: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SecretKeyInfo {
    pub key: String,
    pub version: u64,
    pub size: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SecretPutRequest {
    pub path: String,
    pub key: String,
    /// The value, base64.
    pub value: String,
    /// Write a new version of an existing key (else the key must be new).
    #[serde(default)]
    pub change: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SecretRemoveRequest {
    pub path: String,
    pub key: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SecretWritten {
    pub path: String,
    pub key: String,
    pub version: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SecretValue {
    pub path: String,
    pub key: String,
    /// The value, base64.
    pub value: String,
}
