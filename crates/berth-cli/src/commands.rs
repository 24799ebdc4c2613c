//! Object commands and the other API-backed commands.

use crate::args::{ActionArgs, ConfigWhat, ObjCmd, PrintWhat};
use crate::render;
use crate::Ctx;
use anyhow::Context;
use berth_api_types::bodies::{
    ActionRequest, CreateRequest, EditRequest, Empty, EventsQuery, KeywordQuery, KeywordValue,
    PathQuery, SelectorQuery, SwitchRequest,
};
use berth_api_types::{self as api};
use berth_model::cluster::ClusterView;
use berth_model::status::ObjectStatus;
use berth_model::{ActionKind, ActionOutcome, ObjectInfo};
use futures_util::stream::{self, StreamExt};
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

/// Requests in flight at once for bulk actions; the daemon bounds Docker work itself.
const BULK_CONCURRENCY: usize = 32;

fn code(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub async fn create(
    ctx: &Ctx,
    path: &str,
    kw: &[String],
    config: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let config = match config {
        Some(p) => {
            let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            let text = String::from_utf8(bytes).map_err(|e| {
                crate::Usage(format!(
                    "{}: not UTF-8 text (invalid byte at offset {})",
                    p.display(),
                    e.utf8_error().valid_up_to()
                ))
            })?;
            Some((text, p.display().to_string()))
        }
        None => None,
    };
    let (config, config_name) = config.unzip();
    let req = CreateRequest {
        path: path.to_string(),
        kws: kw.to_vec(),
        config,
        config_name,
    };
    let info = ctx
        .client()
        .call::<api::CreateObject>(&Empty {}, &req)
        .await?;
    if ctx.json() {
        print_json(&info)?;
    } else {
        println!("{}: created", info.path);
    }
    Ok(ExitCode::SUCCESS)
}

fn selection(selector: &str, allow_empty: bool) -> SelectorQuery {
    SelectorQuery {
        selector: selector.to_string(),
        allow_empty,
    }
}

pub(crate) async fn select(ctx: &Ctx, selector: &str) -> anyhow::Result<Vec<ObjectInfo>> {
    Ok(ctx
        .client()
        .call::<api::ListObjects>(&selection(selector, false), &Empty {})
        .await?)
}

/// The cluster as this node sees it; empty (one node) when unavailable.
async fn view(ctx: &Ctx) -> ClusterView {
    ctx.client()
        .call::<api::ClusterStatus>(&Empty {}, &Empty {})
        .await
        .unwrap_or_default()
}

async fn statuses(ctx: &Ctx, selector: &str) -> anyhow::Result<Vec<ObjectStatus>> {
    Ok(ctx
        .client()
        .call::<api::ObjectStatuses>(&selection(selector, false), &Empty {})
        .await?)
}

pub async fn ls(ctx: &Ctx, selector: &str) -> anyhow::Result<ExitCode> {
    // With no selector, an empty node lists nothing, successfully.
    let objs = ctx
        .client()
        .call::<api::ListObjects>(&selection(selector, selector == "*"), &Empty {})
        .await?;
    if ctx.json() {
        print_json(&objs)?;
    } else {
        for o in objs {
            println!("{}", o.path);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn draw(ctx: &Ctx, st: &[ObjectStatus], view: &ClusterView, clear: bool) -> anyhow::Result<()> {
    if ctx.json() {
        print_json(&st)?;
    } else {
        if clear && std::io::stdout().is_terminal() {
            print!("\x1b[2J\x1b[H");
        }
        print!("{}", render::mon_grid(st, view));
    }
    Ok(())
}

/// The services grid; with `watch`, redrawn at every status change the
/// daemon's status bus reports (and every few seconds for the cluster
/// columns), until interrupted.
pub async fn mon(ctx: &Ctx, selector: &str, watch: bool) -> anyhow::Result<ExitCode> {
    // With no selector, an empty node is an empty grid, not an error.
    let q = selection(selector, selector == "*");
    if !watch {
        let st = ctx
            .client()
            .call::<api::ObjectStatuses>(&q, &Empty {})
            .await?;
        draw(ctx, &st, &view(ctx).await, false)?;
        return Ok(ExitCode::SUCCESS);
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let client = ctx.client();
    let feed = tokio::spawn(async move {
        client
            .stream::<api::WatchStatuses>(&q, move |st| {
                let _ = tx.send(st);
            })
            .await
    });
    let mut last = Vec::new();
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        tokio::select! {
            got = rx.recv() => match got {
                Some(st) => last = st,
                None => {
                    return match feed.await {
                        Ok(Err(e)) => Err(e.into()),
                        _ => Ok(ExitCode::SUCCESS),
                    };
                }
            },
            _ = tick.tick() => {}
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        }
        draw(ctx, &last, &view(ctx).await, true)?;
    }
}

pub async fn events(ctx: &Ctx, last: usize, follow: bool) -> anyhow::Result<ExitCode> {
    let json = ctx.json();
    let q = EventsQuery {
        since: None,
        last,
        follow,
    };
    ctx.client()
        .stream::<api::Events>(&q, |ev| {
            if json {
                println!("{}", serde_json::to_string(&ev).unwrap_or_default());
            } else {
                println!("{}", render::event_line(&ev));
            }
        })
        .await?;
    Ok(ExitCode::SUCCESS)
}

pub fn doc(ctx: &Ctx, keyword: Option<&str>) -> anyhow::Result<ExitCode> {
    let reg = berth_drivers::registry();
    match keyword {
        None => {
            if ctx.json() {
                print_json(&reg.json_schema())?;
            } else {
                for t in &reg.tables {
                    print!("{}", render::doc_table(t));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(k) => {
            if let Some((t, kw)) = reg.lookup(k) {
                if ctx.json() {
                    print_json(&render::keyword_json(t, kw))?;
                } else {
                    print!("{}", render::doc_keyword(t, kw));
                }
                return Ok(ExitCode::SUCCESS);
            }
            let family: Vec<_> = reg.tables.iter().filter(|t| t.family == k).collect();
            if family.is_empty() {
                return Err(crate::Usage(format!(
                    "no keyword or section {k:?}; try `berth doc` for the full list"
                ))
                .into());
            }
            for t in family {
                print!("{}", render::doc_table(t));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub async fn object(ctx: &Ctx, selector: &str, cmd: ObjCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        ObjCmd::Create { kw, config } => create(ctx, selector, &kw, config.as_deref()).await,
        ObjCmd::Set(k) => edit(ctx, selector, k.kw, vec![]).await,
        ObjCmd::Unset(k) => edit(ctx, selector, vec![], k.kw).await,
        ObjCmd::Get { kw, eval } => get(ctx, selector, &kw, eval).await,
        ObjCmd::Print {
            what: PrintWhat::Config,
            version: Some(v),
        } => crate::deploy::print_config_version(ctx, selector, v).await,
        ObjCmd::Print {
            what: PrintWhat::Config,
            version: None,
        }
        | ObjCmd::Config {
            what: ConfigWhat::Show,
        } => print_config(ctx, selector).await,
        ObjCmd::Diff {
            version,
            to,
            exit_code,
        } => crate::deploy::diff(ctx, selector, version, to, exit_code).await,
        ObjCmd::Print {
            what: PrintWhat::Status,
            version: Some(_),
        } => Err(crate::Usage("--version goes with print config".into()).into()),
        ObjCmd::Print {
            what: PrintWhat::Status,
            version: None,
        }
        | ObjCmd::Status => print_status(ctx, selector).await,
        ObjCmd::Deploy {
            parallelism,
            delay,
            order,
        } => {
            let o = crate::deploy::DeployOpts {
                parallelism,
                delay,
                order,
            };
            crate::deploy::deploy(ctx, selector, o).await
        }
        ObjCmd::Rollback => crate::deploy::rollback(ctx, selector).await,
        ObjCmd::History => crate::deploy::history(ctx, selector).await,
        ObjCmd::Start(a) => action(ctx, selector, ActionKind::Start, a).await,
        ObjCmd::Stop(a) => action(ctx, selector, ActionKind::Stop, a).await,
        ObjCmd::Restart(a) => action(ctx, selector, ActionKind::Restart, a).await,
        ObjCmd::Freeze => {
            action(
                ctx,
                selector,
                ActionKind::Freeze,
                ActionArgs { local: false },
            )
            .await
        }
        ObjCmd::Thaw => action(ctx, selector, ActionKind::Thaw, ActionArgs { local: false }).await,
        ObjCmd::Clear => action(ctx, selector, ActionKind::Clear, ActionArgs { local: true }).await,
        ObjCmd::Delete => {
            action(
                ctx,
                selector,
                ActionKind::Delete,
                ActionArgs { local: false },
            )
            .await
        }
        ObjCmd::Scale { instances } => scale(ctx, selector, instances).await,
        ObjCmd::Switch { to } => switch(ctx, selector, Some(to)).await,
        ObjCmd::Takeover => {
            let info = ctx
                .client()
                .call::<api::DaemonStatus>(&Empty {}, &Empty {})
                .await?;
            switch(ctx, selector, Some(info.nodename)).await
        }
        ObjCmd::Giveback => switch(ctx, selector, None).await,
        ObjCmd::Docker { args } => docker(ctx, selector, &args).await,
        ObjCmd::Ls => ls(ctx, selector).await,
        ObjCmd::Add(v) => crate::secrets::put(ctx, selector, v, false).await,
        ObjCmd::Change(v) => crate::secrets::put(ctx, selector, v, true).await,
        ObjCmd::Keys => crate::secrets::keys(ctx, selector).await,
        ObjCmd::Decode { key } => crate::secrets::decode(ctx, selector, &key).await,
        ObjCmd::Remove { key } => crate::secrets::remove(ctx, selector, &key).await,
    }
}

async fn edit(
    ctx: &Ctx,
    selector: &str,
    set: Vec<String>,
    unset: Vec<String>,
) -> anyhow::Result<ExitCode> {
    let req = EditRequest {
        selector: selector.to_string(),
        set,
        unset,
    };
    let out = ctx
        .client()
        .call::<api::EditObjects>(&Empty {}, &req)
        .await?;
    if ctx.json() {
        print_json(&out)?;
    } else {
        for o in out {
            println!(
                "{}: {}",
                o.path,
                if o.changed {
                    "config updated"
                } else {
                    "unchanged"
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn get(ctx: &Ctx, selector: &str, kw: &str, eval: bool) -> anyhow::Result<ExitCode> {
    let bare = kw.split_once('@').map_or(kw, |(k, _)| k);
    if berth_drivers::registry().lookup(bare).is_none() {
        return Err(crate::Usage(format!(
            "unknown keyword {kw:?}; try `berth doc` for the full list"
        ))
        .into());
    }
    let mut all = Vec::new();
    for o in select(ctx, selector).await? {
        let q = KeywordQuery {
            path: o.path.clone(),
            kw: kw.to_string(),
            eval,
        };
        let v: KeywordValue = ctx
            .client()
            .call::<api::ObjectKeyword>(&q, &Empty {})
            .await?;
        all.push(v);
    }
    let ok = all.iter().all(|v| v.value.is_some());
    if ctx.json() {
        print_json(&all)?;
    } else {
        let many = all.len() > 1;
        for v in &all {
            match (&v.value, many) {
                (Some(val), false) => println!("{val}"),
                (Some(val), true) => println!("{}: {val}", v.path),
                (None, _) => eprintln!("{}: {} is not set", v.path, v.keyword),
            }
        }
    }
    Ok(code(ok))
}

async fn print_config(ctx: &Ctx, selector: &str) -> anyhow::Result<ExitCode> {
    let objs = select(ctx, selector).await?;
    let mut texts = Vec::new();
    for o in &objs {
        let q = PathQuery {
            path: o.path.clone(),
        };
        let f = ctx
            .client()
            .call::<api::ObjectConfig>(&q, &Empty {})
            .await?;
        texts.push((f.path, f.text));
    }
    if ctx.json() {
        let v: Vec<_> = texts
            .iter()
            .map(|(p, t)| serde_json::json!({"path": p, "config": t}))
            .collect();
        print_json(&v)?;
    } else {
        render::print_texts(&texts);
    }
    Ok(ExitCode::SUCCESS)
}

/// `print status --format json`: the object's status, and each node's
/// instance of it.
#[derive(serde::Serialize)]
struct StatusOut<'a> {
    #[serde(flatten)]
    status: &'a ObjectStatus,
    instances: Vec<crate::instances::InstanceView>,
}

async fn print_status(ctx: &Ctx, selector: &str) -> anyhow::Result<ExitCode> {
    let st = statuses(ctx, selector).await?;
    let view = view(ctx).await;
    // The deploy histories (for the versions instances run), a few at a
    // time rather than one after the other.
    let histories: Vec<_> = stream::iter(&st)
        .map(|s| async move {
            crate::deploy::history_of(ctx, &s.path)
                .await
                .unwrap_or_default()
        })
        .buffered(8)
        .collect()
        .await;
    let out: Vec<StatusOut> = st
        .iter()
        .zip(&histories)
        .map(|(s, history)| StatusOut {
            status: s,
            instances: crate::instances::of(s, &view, history),
        })
        .collect();
    if ctx.json() {
        print_json(&out)?;
    } else {
        for o in &out {
            print!("{}", render::status_tree(o.status, &view, &o.instances));
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn action(
    ctx: &Ctx,
    selector: &str,
    kind: ActionKind,
    a: ActionArgs,
) -> anyhow::Result<ExitCode> {
    let objs = select(ctx, selector).await?;
    let tty = std::io::stdout().is_terminal() && !ctx.json();
    let bar = (tty && objs.len() > 1).then(|| render::progress_bar(objs.len() as u64, kind));
    let verbose = !ctx.json() && (a.local || objs.len() == 1);
    let client = ctx.client();
    let mut results: Vec<ActionOutcome> = stream::iter(objs.into_iter().map(|o| {
        let client = client.clone();
        let bar = bar.clone();
        async move {
            let req = ActionRequest {
                path: o.path.clone(),
                action: kind,
                local: a.local,
            };
            let out = match client.call::<api::ObjectAction>(&Empty {}, &req).await {
                Ok(out) => out,
                Err(e) => ActionOutcome::failed(&o.path, e),
            };
            match &bar {
                Some(b) => {
                    b.inc(1);
                    b.println(render::outcome_line(&out));
                }
                None if !verbose && !ctx.json() => println!("{}", render::outcome_line(&out)),
                None => {}
            }
            out
        }
    }))
    .buffer_unordered(BULK_CONCURRENCY)
    .collect()
    .await;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    results.sort_by(|x, y| x.path.cmp(&y.path));
    let ok = results.iter().all(|r| r.ok);
    if ctx.json() {
        print_json(&results)?;
    } else if verbose {
        for r in &results {
            for l in &r.lines {
                println!("{:<28} {l}", r.path);
            }
            println!("{}", render::outcome_line(r));
        }
    }
    Ok(code(ok))
}

async fn docker(ctx: &Ctx, selector: &str, args: &[String]) -> anyhow::Result<ExitCode> {
    let mut ok = true;
    for s in statuses(ctx, selector).await? {
        let Some(sock) = s.docker_socket.clone() else {
            eprintln!(
                "{}: docker socket unknown (status not evaluated yet)",
                s.path
            );
            ok = false;
            continue;
        };
        if !berth_engine::ping_socket(Path::new(&sock)).await {
            eprintln!(
                "{}: no docker daemon answers on {sock} (is the service started?)",
                s.path
            );
            ok = false;
            continue;
        }
        let st = tokio::process::Command::new("docker")
            .arg("-H")
            .arg(format!("unix://{sock}"))
            .args(args)
            .status()
            .await
            .context("running docker")?;
        ok &= st.success();
    }
    Ok(code(ok))
}

/// `scale N`: sets `flex_target` on flex services, refusing other topologies.
async fn scale(ctx: &Ctx, selector: &str, instances: u32) -> anyhow::Result<ExitCode> {
    let objs = select(ctx, selector).await?;
    for o in &objs {
        let q = KeywordQuery {
            path: o.path.clone(),
            kw: "topology".into(),
            eval: true,
        };
        let v: KeywordValue = ctx
            .client()
            .call::<api::ObjectKeyword>(&q, &Empty {})
            .await?;
        if v.value.as_deref() != Some("flex") {
            eprintln!(
                "berth: {}: scale needs topology=flex (it is {}); set it with `berth {} set --kw topology=flex`",
                o.path,
                v.value.as_deref().unwrap_or("unset"),
                o.path
            );
            return Ok(ExitCode::from(2));
        }
    }
    edit(
        ctx,
        selector,
        vec![format!("flex_target={instances}")],
        vec![],
    )
    .await
}

async fn switch(ctx: &Ctx, selector: &str, to: Option<String>) -> anyhow::Result<ExitCode> {
    let objs = select(ctx, selector).await?;
    let mut ok = true;
    let mut outs = Vec::new();
    for o in objs {
        let req = SwitchRequest {
            path: o.path.clone(),
            to: to.clone(),
        };
        let out: ActionOutcome = match ctx
            .client()
            .call::<api::SwitchObject>(&Empty {}, &req)
            .await
        {
            Ok(out) => out,
            Err(e) => ActionOutcome::failed(&o.path, e),
        };
        ok &= out.ok;
        if !ctx.json() {
            for l in &out.lines {
                println!("{}: {l}", out.path);
            }
            println!("{}", render::outcome_line(&out));
        }
        outs.push(out);
    }
    if ctx.json() {
        print_json(&outs)?;
    }
    Ok(code(ok))
}
