//! The records: a key's entry and a session, in Consul's JSON shape (the
//! state machine keeps them as the API shows them).

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One key, as `GET /v1/kv/<key>` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Entry {
    pub lock_index: u64,
    pub key: String,
    pub flags: u64,
    /// `None` for an empty PUT: Consul shows `"Value": null`.
    #[serde(with = "base64_value")]
    pub value: Option<Vec<u8>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    pub create_index: u64,
    pub modify_index: u64,
}

/// What happens to the keys a session holds when it is invalidated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Behavior {
    #[default]
    Release,
    Delete,
}

/// A session, as the leader created it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub name: String,
    /// The node it is bound to: invalidated when that node is declared down.
    pub node: String,
    /// Node checks (`serfHealth` stands for berth's own liveness).
    pub node_checks: Vec<String>,
    pub service_checks: Vec<String>,
    pub behavior: Behavior,
    /// 0: no TTL.
    pub ttl_ms: u64,
    pub lock_delay_ms: u64,
    pub create_index: u64,
    pub modify_index: u64,
}

mod base64_value {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| {
            base64::engine::general_purpose::STANDARD
                .decode(t)
                .map_err(serde::de::Error::custom)
        })
        .transpose()
    }
}
