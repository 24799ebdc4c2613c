//! Encoding of stored values and mapping of storage errors to io::Error,
//! which is what openraft's storage traits return.

use serde::de::DeserializeOwned;
use serde::Serialize;

pub(crate) fn io<E: std::fmt::Display>(e: E) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

pub(crate) fn encode<T: Serialize>(v: &T) -> std::io::Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(io)
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> std::io::Result<T> {
    serde_json::from_slice(bytes).map_err(io)
}
