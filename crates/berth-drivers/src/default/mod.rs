//! The `[DEFAULT]` section: object-wide keywords.
pub mod keywords;
