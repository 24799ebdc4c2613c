//! `berth user`, `berth group` and `berth token`.

use super::parse_duration;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum UserCmd {
    /// Create a user. Without --password-stdin it has no password and
    /// works with tokens only (a robot).
    #[command(
        after_help = "Examples:\n  echo \"$PASSWORD\" | berth user create alice --password-stdin --group devs\n  berth user create ci-bot --grant operator:app1-dev"
    )]
    Create {
        name: String,
        /// A group it belongs to (repeatable).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// A grant it holds (repeatable).
        #[arg(long = "grant")]
        grants: Vec<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Every user, with its groups and grants.
    Ls,
    /// Delete a user: its tokens stop working.
    Delete { name: String },
    /// Set a user's password from standard input; its earlier tokens stop working.
    #[command(after_help = "Examples:\n  echo \"$PASSWORD\" | berth user passwd alice")]
    Passwd { name: String },
    /// Add grants to a user.
    #[command(after_help = "Examples:\n  berth user grant alice admin:app1-* guest:shared")]
    Grant {
        name: String,
        #[arg(required = true)]
        grants: Vec<String>,
    },
    /// Remove grants from a user.
    Revoke {
        name: String,
        #[arg(required = true)]
        grants: Vec<String>,
    },
    /// A user's own grants and its groups'.
    Grants { name: String },
}

#[derive(Subcommand, Debug)]
pub enum GroupCmd {
    /// Create a group.
    ///
    /// With --ldap-group or --ldap-filter its members come from LDAP: each
    /// `berth ldap sync` (and the daemon's, every --ldap-sync) makes the
    /// LDAP users it maps its members.
    #[command(
        after_help = "Examples:\n  berth group create devs --grant operator:app*-dev\n  berth group create devs --grant operator:app*-dev --ldap-group cn=devs,ou=groups,dc=example,dc=com\n  berth group create ops --grant guest:* --ldap-filter '(&(objectClass=groupOfNames)(businessCategory=operations))'"
    )]
    Create {
        name: String,
        /// A grant its members hold (repeatable).
        #[arg(long = "grant")]
        grants: Vec<String>,
        /// An LDAP group's DN (repeatable): its members are this group's,
        /// members of groups nested in it too.
        #[arg(long = "ldap-group", value_name = "DN")]
        ldap_groups: Vec<String>,
        /// An LDAP search filter, run under --ldap-group-base: the users it
        /// selects, and the members of the groups it selects, are this
        /// group's.
        #[arg(long, value_name = "FILTER")]
        ldap_filter: Option<String>,
    },
    /// Every group, with its grants and LDAP mapping.
    Ls,
    /// Delete a group.
    Delete { name: String },
    /// Add grants to a group.
    Grant {
        name: String,
        #[arg(required = true)]
        grants: Vec<String>,
    },
    /// Remove grants from a group.
    Revoke {
        name: String,
        #[arg(required = true)]
        grants: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCmd {
    /// Issue a token for a user: all its grants, or only those given.
    #[command(
        after_help = "Examples:\n  berth token create --user ci-bot --ttl 1h --grant operator:app1-dev"
    )]
    Create {
        #[arg(long)]
        user: String,
        /// How long it is valid: 90s, 15m, 1h, 7d (at most 90d).
        #[arg(long, default_value = "1h", value_parser = parse_duration)]
        ttl: std::time::Duration,
        /// A grant it carries (repeatable); the user must hold it.
        #[arg(long = "grant")]
        grants: Vec<String>,
        /// Print the token only.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Revoke a token, given whole or by its id.
    Revoke { token: String },
}

#[derive(Subcommand, Debug)]
pub enum LdapCmd {
    /// Sync the LDAP users now, and print what changed.
    ///
    /// The leader's daemon does the same every --ldap-sync: every user
    /// the user search finds that is a member of a group a berth
    /// group maps (nested groups resolved) gets a user record (source
    /// ldap) whose berth groups are those it is in; the record of an LDAP
    /// user who is no longer found, or no longer in any mapped group, is
    /// deleted, and its tokens stop working. Root only; runs on the node
    /// asked, with its --ldap-* options.
    #[command(
        after_help = "Examples:\n  berth group create devs --grant operator:app*-dev --ldap-group cn=devs,ou=groups,dc=example,dc=com\n  berth ldap sync\n  berth ldap sync --format json\n  berth --server https://node1:7947 ldap sync"
    )]
    Sync,
}
