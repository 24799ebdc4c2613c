//! What an LDAP sync reports: the cluster makes it, the API sends it as is.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A user the sync created or changed, with its berth groups.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LdapUserChange {
    pub name: String,
    pub groups: Vec<String>,
}

/// What a sync changed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LdapSyncReport {
    pub created: Vec<LdapUserChange>,
    pub updated: Vec<LdapUserChange>,
    /// LDAP users whose record was deleted, and their tokens voided.
    pub removed: Vec<String>,
    /// LDAP users left as they were.
    pub unchanged: usize,
    /// Directory users left out, and why.
    pub skipped: Vec<String>,
    /// Each mapped berth group's LDAP users.
    pub groups: BTreeMap<String, Vec<String>>,
}

impl LdapSyncReport {
    pub fn changed(&self) -> bool {
        !(self.created.is_empty() && self.updated.is_empty() && self.removed.is_empty())
    }
}
