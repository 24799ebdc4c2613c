//! The berth binary: parses the command line; runs the daemon (wired in
//! `daemon`) or hands every other command to the CLI, a client of the
//! daemon's API.

mod daemon;
mod logging;
mod memory;
mod notify;

use berth_cli::args::{DaemonCmd, Top};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = berth_cli::parse();
    match &cli.cmd {
        Top::Daemon {
            cmd: DaemonCmd::Run(o),
        } => daemon::run(berth_cli::home(&cli.common), o.clone()),
        Top::Daemon {
            cmd: DaemonCmd::Watchdog,
        } => daemon::watchdog(berth_cli::home(&cli.common)),
        _ => berth_cli::run(cli),
    }
}
