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
    Create {
        name: String,
        /// A grant its members hold (repeatable).
        #[arg(long = "grant")]
        grants: Vec<String>,
    },
    /// Every group, with its grants.
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
