//! Bodies of the KV endpoints (`berth kv ...`): the entries in Consul's
//! JSON shape, values in base64.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct KvQuery {
    pub key: String,
    /// Every entry under `key`, taken as a prefix.
    #[serde(default)]
    pub recurse: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct KvKeysQuery {
    pub prefix: String,
    /// Keys are cut after the first separator that follows the prefix.
    pub separator: Option<String>,
}

/// One entry, as Consul's `GET /v1/kv` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KvItem {
    pub key: String,
    /// Base64, `None` for an empty value.
    pub value: Option<String>,
    pub flags: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    pub lock_index: u64,
    pub create_index: u64,
    pub modify_index: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct KvEntries {
    /// What a blocking query would wait on.
    pub index: u64,
    pub entries: Vec<KvItem>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct KvKeys {
    pub index: u64,
    pub keys: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct KvPutRequest {
    pub key: String,
    /// Base64; `None` stores an empty value.
    pub value: Option<String>,
    #[serde(default)]
    pub flags: u64,
    /// Only if the key's ModifyIndex is this (0: only if absent).
    pub cas: Option<u64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct KvDeleteRequest {
    pub key: String,
    #[serde(default)]
    pub recurse: bool,
    pub cas: Option<u64>,
}

/// `ok` false: a compare-and-set did not hold; nothing changed.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct KvWritten {
    pub ok: bool,
}
