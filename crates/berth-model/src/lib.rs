//! berth's domain model: object paths, selectors, the lossless config
//! document, the keyword schema, validation and effective configuration.
//!
//! This crate performs no I/O.

pub mod action;
pub mod cidr;
pub mod cluster;
pub mod config;
pub mod deploy;
pub mod effective;
pub mod event;
pub mod glob;
pub mod hash;
pub mod health;
pub mod ldap;
pub mod path;
pub mod refs;
pub mod rules;
pub mod schema;
pub mod selector;
pub mod settings;
pub mod status;
pub mod validate;
pub mod words;

#[cfg(test)]
mod test_fixtures;

pub use action::{ActionKind, ActionOutcome, ObjectInfo, SetOutcome};
pub use config::{
    ConfigDoc, ConfigEditError, ConfigParseError, Entry, KeywordRef, KeywordRefError,
    DEFAULT_SECTION,
};
pub use effective::*;
pub use glob::glob_match;
pub use hash::fnv1a64;
pub use path::*;
pub use refs::*;
pub use rules::Rule;
pub use schema::*;
pub use selector::*;
pub use settings::{ObjectSettings, Orchestrate, Topology};
pub use validate::*;
pub use words::{split_words, QUOTING_DOC};
