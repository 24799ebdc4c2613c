//! berth's command line: argument parsing, the API client, rendering.
//!
//! Architecture invariant: apart from `doc` and `completion`, every command
//! here goes through the daemon's API, by the endpoint types of
//! `berth-api-types`; this crate never depends on the agent. `berth <sel>
//! docker` asks the API for each object's socket, then runs the docker CLI.
//! `daemon run` and `daemon watchdog` are the binary's own (`crates/berth`).

pub mod args;
mod catalog;
pub mod client;
mod cluster;
mod commands;
mod daemon;
mod deploy;
mod instances;
mod kv;
mod remote;
mod render;
mod secrets;
mod textdiff;
mod users;

use args::{Common, Format, ObjectCli, Top};
use clap::{CommandFactory, Parser};
use std::path::PathBuf;
use std::process::ExitCode;

pub use args::Cli;

/// The command line, parsed (clap exits on `--help` and usage errors).
pub fn parse() -> Cli {
    Cli::parse()
}

/// The berth home the command acts on.
pub fn home(common: &Common) -> PathBuf {
    common.home.clone().unwrap_or_else(default_home)
}

/// Runs a client command. Exit codes: 0 success, 1 failure of at least
/// one object or of the command, 2 bad usage.
pub fn run(cli: Cli) -> ExitCode {
    let (common, top) = (cli.common, cli.cmd);
    // A client piped into `head` should end quietly, as Unix tools do. (The
    // daemon keeps Rust's default, SIGPIPE ignored: it must survive clients
    // that hang up.) SAFETY: restoring the default disposition of a
    // signal, before any thread is started.
    unsafe {
        let _ = nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigDfl,
        );
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("berth: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(dispatch(common, top));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("berth: {e:#}");
            let usage = e.downcast_ref::<Usage>().is_some()
                || matches!(
                    e.downcast_ref::<client::ClientError>(),
                    Some(client::ClientError::Api { usage: true, .. })
                );
            if usage {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// A usage error found by the client itself: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Usage(pub String);

/// Global flags given after a subcommand win over those given before.
pub(crate) fn merge(inner: &Common, outer: &Common) -> Common {
    Common {
        home: inner.home.clone().or_else(|| outer.home.clone()),
        format: inner.format.or(outer.format),
        server: inner.server.clone().or_else(|| outer.server.clone()),
    }
}

/// Resolved global settings.
pub(crate) struct Ctx {
    pub home: PathBuf,
    pub format: Format,
    /// `--server`: the remote API instead of this node's socket.
    pub server: Option<String>,
}

impl Ctx {
    pub(crate) fn from(common: &Common) -> Ctx {
        Ctx {
            home: home(common),
            format: common.format.unwrap_or_default(),
            server: common.server.clone().filter(|s| !s.is_empty()),
        }
    }
    pub fn client(&self) -> client::Client {
        if let Some(server) = &self.server {
            return remote::client_for(server);
        }
        client::Client::new(&self.home.join("berth.sock"))
            .with_token(std::env::var("BERTH_TOKEN").ok().filter(|t| !t.is_empty()))
    }
    pub fn json(&self) -> bool {
        self.format == Format::Json
    }
}

/// berth.1, and berth-<sub>.1 for each subcommand, and the object
/// commands' page (berth-object.1), from the clap grammar.
fn manpages(dir: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let write = |name: &str, cmd: clap::Command| -> anyhow::Result<()> {
        let path = dir.join(format!("{name}.1"));
        let mut out = Vec::new();
        clap_mangen::Man::new(cmd.name(name.to_string())).render(&mut out)?;
        std::fs::write(&path, out).with_context(|| format!("writing {}", path.display()))?;
        println!("{}", path.display());
        Ok(())
    };
    let top = Cli::command();
    write("berth", top.clone())?;
    for sub in top.get_subcommands().filter(|s| !s.is_hide_set()) {
        write(&format!("berth-{}", sub.get_name()), sub.clone())?;
    }
    write("berth-object", args::ObjectCli::command())?;
    Ok(())
}

fn default_home() -> PathBuf {
    if nix::unistd::Uid::effective().is_root() {
        PathBuf::from("/var/lib/berth")
    } else {
        std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".local/share/berth"))
            .unwrap_or_else(|| PathBuf::from(".berth"))
    }
}

async fn dispatch(common: Common, top: Top) -> anyhow::Result<ExitCode> {
    let ctx = Ctx::from(&common);
    match top {
        Top::Daemon { cmd } => daemon::run(&ctx, *cmd).await,
        Top::Create(a) => commands::create(&ctx, &a.path, &a.kw, a.config.as_deref()).await,
        Top::Mon { selector, watch } => {
            commands::mon(&ctx, selector.as_deref().unwrap_or("*"), watch).await
        }
        Top::Ls { selector } => commands::ls(&ctx, selector.as_deref().unwrap_or("*")).await,
        Top::Events { last, no_follow } => commands::events(&ctx, last, !no_follow).await,
        Top::Doc { keyword } => commands::doc(&ctx, keyword.as_deref()),
        Top::Cluster { cmd } => cluster::run(&ctx, cmd).await,
        Top::Node { words } => cluster::node(&common, words).await,
        Top::Kv { cmd } => kv::run(&ctx, cmd).await,
        Top::Catalog { cmd } => catalog::run(&ctx, cmd).await,
        Top::Ingress { cmd } => catalog::ingress(&ctx, cmd).await,
        Top::User { cmd } => users::user(&ctx, cmd).await,
        Top::Group { cmd } => users::group(&ctx, cmd).await,
        Top::Token { cmd } => users::token(&ctx, cmd).await,
        Top::Ldap { cmd } => users::ldap(&ctx, cmd).await,
        Top::Whoami => users::whoami(&ctx).await,
        Top::Audit {
            user,
            object,
            since,
            refused,
            limit,
            export,
        } => {
            let q = berth_api_types::auth::AuditQuery {
                user,
                object,
                since_secs: since.map(|d| d.as_secs().max(1)),
                refused,
                limit: Some(limit),
            };
            users::audit(&ctx, q, export).await
        }
        Top::Login {
            server,
            user,
            password_stdin,
            ca_sha256,
            ttl,
        } => {
            remote::login(
                &ctx,
                &server,
                &user,
                password_stdin,
                ca_sha256.as_deref(),
                ttl,
            )
            .await
        }
        Top::Logout { server } => remote::logout(&server),
        Top::Completion { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "berth", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Top::Manpages { dir } => {
            manpages(&dir)?;
            Ok(ExitCode::SUCCESS)
        }
        Top::Object(words) => {
            let obj = match ObjectCli::try_parse_from(&words) {
                Ok(o) => o,
                Err(e) => {
                    let _ = e.print();
                    return Ok(ExitCode::from(if e.use_stderr() { 2 } else { 0 }));
                }
            };
            let merged = merge(&obj.common, &common);
            commands::object(&Ctx::from(&merged), &obj.selector, obj.cmd).await
        }
    }
}
