//! The berth binary: parses the command line; runs the daemon (wired in
//! `daemon`) or hands every other command to the CLI, a client of the
//! daemon's API.

mod daemon;
mod ldap;
mod logging;
mod memory;
mod metrics;
mod notify;

use berth_cli::args::{DaemonCmd, Top};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = berth_cli::parse();
    if let Top::Daemon { cmd } = &cli.cmd {
        match cmd.as_ref() {
            DaemonCmd::Run(o) => return daemon::run(berth_cli::home(&cli.common), o.clone()),
            DaemonCmd::Watchdog => return daemon::watchdog(berth_cli::home(&cli.common)),
            _ => {}
        }
    }
    berth_cli::run(cli)
}
