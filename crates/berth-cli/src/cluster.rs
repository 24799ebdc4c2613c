//! `berth cluster ...` and `berth node ...`.

use crate::args::{ClusterCmd, Common, NodeCli, NodeCmd, NodeLsCli};
use crate::Ctx;
use berth_api_types as api;
use berth_api_types::bodies::{
    AutolockOp, AutolockRequest, Empty, InitRequest, JoinRequest, NodeOpRequest, TokenRequest,
    UnlockRequest,
};
use berth_model::cluster::{ClusterView, NodeOp, NodeRole, NodeState};
use comfy_table::{presets::NOTHING, Table};
use std::io::IsTerminal;
use std::process::ExitCode;

fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub async fn run(ctx: &Ctx, cmd: ClusterCmd) -> anyhow::Result<ExitCode> {
    let client = ctx.client();
    match cmd {
        ClusterCmd::Init { advertise, name } => {
            let s = client
                .call::<api::ClusterInit>(&Empty {}, &InitRequest { advertise, name })
                .await?;
            if ctx.json() {
                return print_json(&s).map(|_| ExitCode::SUCCESS);
            }
            println!(
                "cluster {} ({}) initialized; {} is its first manager, listening on {}",
                s.cluster, s.cluster_id, s.node, s.advertise
            );
            if let Some(t) = &s.worker_token {
                println!(
                    "\nTo add a worker, run on it:\n  berth cluster join {} --token {t}",
                    s.advertise
                );
            }
            if let Some(t) = &s.manager_token {
                println!(
                    "\nTo add a manager, run on it:\n  berth cluster join {} --token {t}",
                    s.advertise
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ClusterCmd::Join {
            addr,
            token,
            advertise,
        } => {
            let req = JoinRequest {
                addr,
                token,
                advertise,
            };
            let s = client.call::<api::ClusterJoin>(&Empty {}, &req).await?;
            if ctx.json() {
                return print_json(&s).map(|_| ExitCode::SUCCESS);
            }
            println!(
                "{} joined cluster {} as {} (node id {}), listening on {}",
                s.node,
                s.cluster,
                s.role.as_str(),
                s.node_id,
                s.advertise
            );
            Ok(ExitCode::SUCCESS)
        }
        ClusterCmd::Token { manager, rotate } => {
            let role = if manager {
                NodeRole::Manager
            } else {
                NodeRole::Worker
            };
            let t = client
                .call::<api::ClusterToken>(&Empty {}, &TokenRequest { role, rotate })
                .await?;
            if ctx.json() {
                return print_json(&t).map(|_| ExitCode::SUCCESS);
            }
            println!("{}", t.token);
            Ok(ExitCode::SUCCESS)
        }
        ClusterCmd::Ca {
            cmd: crate::args::CaCmd::Rotate,
        } => {
            let s = client
                .call::<api::ClusterCaRotate>(&Empty {}, &Empty {})
                .await?;
            if ctx.json() {
                return print_json(&s).map(|_| ExitCode::SUCCESS);
            }
            println!(
                "cluster {} has a new CA; nodes are renewing their certificates (see `berth cluster status`)",
                s.cluster
            );
            if let Some(t) = &s.worker_token {
                println!("new worker token:  {t}");
            }
            if let Some(t) = &s.manager_token {
                println!("new manager token: {t}");
            }
            Ok(ExitCode::SUCCESS)
        }
        ClusterCmd::Autolock { cmd } => {
            use crate::args::AutolockCmd;
            let op = match cmd {
                AutolockCmd::Enable => AutolockOp::Enable,
                AutolockCmd::Rotate => AutolockOp::Rotate,
                AutolockCmd::Disable => AutolockOp::Disable,
            };
            let r = client
                .call::<api::ClusterAutolock>(&Empty {}, &AutolockRequest { op })
                .await?;
            if ctx.json() {
                return print_json(&r).map(|_| ExitCode::SUCCESS);
            }
            match &r.unlock_key {
                Some(k) => {
                    println!("{k}");
                    eprintln!("This unlock key is shown once. Keep it safe: a restarted manager needs it (`berth cluster unlock`).");
                }
                None => println!("autolock disabled"),
            }
            Ok(ExitCode::SUCCESS)
        }
        ClusterCmd::Unlock => {
            if std::io::stdin().is_terminal() {
                eprint!("Unlock key: ");
            }
            let mut key = String::new();
            std::io::stdin().read_line(&mut key)?;
            let r = client
                .call::<api::ClusterUnlock>(
                    &Empty {},
                    &UnlockRequest {
                        key: key.trim().to_string(),
                    },
                )
                .await?;
            if ctx.json() {
                return print_json(&r).map(|_| ExitCode::SUCCESS);
            }
            println!("{}", r.message);
            Ok(ExitCode::SUCCESS)
        }
        ClusterCmd::Leave => {
            let r = client
                .call::<api::ClusterLeave>(&Empty {}, &Empty {})
                .await?;
            if ctx.json() {
                return print_json(&r).map(|_| ExitCode::SUCCESS);
            }
            println!("{}", r.message);
            Ok(ExitCode::SUCCESS)
        }
        ClusterCmd::Status => {
            let v = client
                .call::<api::ClusterStatus>(&Empty {}, &Empty {})
                .await?;
            if ctx.json() {
                return print_json(&v).map(|_| ExitCode::SUCCESS);
            }
            match (&v.cluster, &v.cluster_id) {
                (Some(name), Some(id)) => println!(
                    "cluster {name} ({id}), leader {}, term {}{}",
                    v.leader.as_deref().unwrap_or("unknown"),
                    v.term,
                    if v.ca_rotating {
                        ", CA rotation under way"
                    } else {
                        ""
                    }
                ),
                _ => println!("standalone node (not in a cluster)"),
            }
            if !v.nodes.is_empty() {
                println!();
                println!("{}", nodes_table(&v));
            }
            for n in v.nodes.iter().filter(|n| n.fence_problem.is_some()) {
                println!(
                    "{}: runs no failover instance: {}",
                    n.record.name,
                    n.fence_problem.as_deref().unwrap_or_default()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn nodes_table(v: &ClusterView) -> Table {
    let mut t = Table::new();
    t.load_preset(NOTHING);
    t.set_header(vec![
        "NODE", "ID", "ROLE", "STATE", "ADDRESS", "LEADER", "FLAGS", "LABELS",
    ]);
    for n in &v.nodes {
        let mut flags = Vec::new();
        if n.record.drain {
            flags.push("drained");
        }
        if n.record.frozen {
            flags.push("frozen");
        }
        if n.fence_problem.is_some() {
            flags.push("unfenced");
        }
        t.add_row(vec![
            n.record.name.clone(),
            n.record.id.to_string(),
            n.record.role.as_str().to_string(),
            match n.state {
                NodeState::Up => "up",
                NodeState::Down => "down",
                NodeState::Unknown => "unknown",
            }
            .to_string(),
            n.record.addr.clone(),
            if n.leader { "*".into() } else { String::new() },
            flags.join(","),
            n.record
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(","),
        ]);
    }
    t
}

fn parse_or_exit<T: clap::Parser>(words: &[String]) -> Result<T, ExitCode> {
    T::try_parse_from(words).map_err(|e| {
        let _ = e.print();
        ExitCode::from(if e.use_stderr() { 2 } else { 0 })
    })
}

pub async fn node(outer: &Common, words: Vec<String>) -> anyhow::Result<ExitCode> {
    if words.first().map(String::as_str) == Some("ls") {
        let ls = match parse_or_exit::<NodeLsCli>(&words[1..]) {
            Ok(c) => c,
            Err(code) => return Ok(code),
        };
        let ctx = Ctx::from(&crate::merge(&ls.common, outer));
        let client = ctx.client();
        let v = client
            .call::<api::ClusterStatus>(&Empty {}, &Empty {})
            .await?;
        if ctx.json() {
            return print_json(&v.nodes).map(|_| ExitCode::SUCCESS);
        }
        if v.nodes.is_empty() {
            println!("standalone node (not in a cluster)");
        } else {
            println!("{}", nodes_table(&v));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let cli = match parse_or_exit::<NodeCli>(&words) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let ctx = Ctx::from(&crate::merge(&cli.common, outer));
    let client = ctx.client();
    let op = match cli.cmd {
        NodeCmd::Label { kw, unset } => {
            if kw.is_empty() && unset.is_empty() {
                eprintln!("berth: node label needs --kw key=value or --unset key");
                return Ok(ExitCode::from(2));
            }
            NodeOp::Label { set: kw, unset }
        }
        NodeCmd::Drain => NodeOp::Drain,
        NodeCmd::Undrain => NodeOp::Undrain,
        NodeCmd::Freeze => NodeOp::Freeze,
        NodeCmd::Thaw => NodeOp::Thaw,
        NodeCmd::Promote => NodeOp::Promote,
        NodeCmd::Demote => NodeOp::Demote,
        NodeCmd::Remove => NodeOp::Remove,
    };
    let membership = matches!(op, NodeOp::Promote | NodeOp::Demote | NodeOp::Remove);
    let rec = client
        .call::<api::NodeOperation>(&Empty {}, &NodeOpRequest { node: cli.name, op })
        .await?;
    if membership {
        if let Ok(v) = client
            .call::<api::ClusterStatus>(&Empty {}, &Empty {})
            .await
        {
            if let Some(w) = manager_count_warning(v.nodes.iter().filter(|n| n.voter).count()) {
                eprintln!("warning: {w}");
            }
        }
    }
    if ctx.json() {
        return print_json(&rec).map(|_| ExitCode::SUCCESS);
    }
    println!(
        "{}: {}{}{}",
        rec.name,
        rec.role.as_str(),
        if rec.drain { ", drained" } else { "" },
        if rec.frozen { ", frozen" } else { "" }
    );
    Ok(ExitCode::SUCCESS)
}

/// Managers come in odd numbers: an even group survives no more manager
/// losses than the odd group one smaller, and splits in halves more easily.
fn manager_count_warning(managers: usize) -> Option<String> {
    (managers >= 2 && managers.is_multiple_of(2)).then(|| {
        let quorum = managers / 2 + 1;
        format!(
            "{managers} managers need {quorum} for a quorum and survive the loss of {} manager(s), as {} would; promote or demote one more node",
            managers - quorum,
            managers - 1
        )
    })
}

#[cfg(test)]
mod tests {
    use super::manager_count_warning;

    #[test]
    fn even_manager_counts_are_warned_about() {
        for odd in [1, 3, 5, 7] {
            assert_eq!(manager_count_warning(odd), None, "{odd}");
        }
        let w = manager_count_warning(4).unwrap_or_default();
        assert!(w.contains("need 3") && w.contains("loss of 1"), "{w}");
        assert!(manager_count_warning(2).is_some());
    }
}
