//! `berth kv`: the KV store through the daemon's API.

use crate::args::KvCmd;
use crate::Ctx;
use anyhow::{bail, Context};
use base64::Engine as _;
use berth_api_types::bodies::Empty;
use berth_api_types::kv::*;
use berth_api_types::{KvDelete, KvGet, KvKeysList, KvPut, KvWatch};
use std::io::{Read, Write};
use std::process::ExitCode;

pub async fn run(ctx: &Ctx, cmd: KvCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        KvCmd::Put {
            key,
            value,
            flags,
            cas,
        } => put(ctx, key, value, flags, cas).await,
        KvCmd::Get { key, recurse } => {
            let found = ctx
                .client()
                .call::<KvGet>(&KvQuery { key, recurse }, &Empty {})
                .await?;
            show(ctx, &found, recurse)?;
            Ok(ExitCode::SUCCESS)
        }
        KvCmd::Del { key, recurse, cas } => {
            let r = ctx
                .client()
                .call::<KvDelete>(
                    &Empty {},
                    &KvDeleteRequest {
                        key: key.clone(),
                        recurse,
                        cas,
                    },
                )
                .await?;
            written(ctx, &r, &key, "deleted", cas)
        }
        KvCmd::Ls { prefix, separator } => {
            let q = KvKeysQuery {
                prefix,
                separator: Some(separator),
            };
            let found = ctx.client().call::<KvKeysList>(&q, &Empty {}).await?;
            if ctx.json() {
                println!("{}", serde_json::to_string_pretty(&found)?);
            } else {
                for k in &found.keys {
                    println!("{k}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        KvCmd::Watch { key, recurse } => {
            let json = ctx.json();
            let mut err = None;
            ctx.client()
                .stream::<KvWatch>(&KvQuery { key, recurse }, |found| {
                    let r = if json {
                        serde_json::to_string(&found)
                            .map(|t| println!("{t}"))
                            .map_err(anyhow::Error::from)
                    } else {
                        show(ctx, &found, recurse).map(|()| {
                            if recurse {
                                println!();
                            }
                        })
                    };
                    if let Err(e) = r {
                        err.get_or_insert(e);
                    }
                })
                .await?;
            match err {
                Some(e) => Err(e),
                None => Ok(ExitCode::SUCCESS),
            }
        }
    }
}

fn value_arg(value: Option<String>) -> anyhow::Result<Option<Vec<u8>>> {
    Ok(match value.as_deref() {
        None => None,
        Some("-") => {
            let mut b = Vec::new();
            std::io::stdin()
                .read_to_end(&mut b)
                .context("reading standard input")?;
            Some(b)
        }
        Some(v) => match v.strip_prefix('@') {
            Some(path) => Some(std::fs::read(path).with_context(|| format!("reading {path}"))?),
            None => Some(v.as_bytes().to_vec()),
        },
    }
    .filter(|v| !v.is_empty()))
}

async fn put(
    ctx: &Ctx,
    key: String,
    value: Option<String>,
    flags: u64,
    cas: Option<u64>,
) -> anyhow::Result<ExitCode> {
    let value = value_arg(value)?;
    if value.as_ref().is_some_and(|v| v.len() > 512 * 1024) {
        bail!("{key}: the value is over 512 KiB, the store's limit");
    }
    let body = KvPutRequest {
        key: key.clone(),
        value: value.map(|v| base64::engine::general_purpose::STANDARD.encode(v)),
        flags,
        cas,
    };
    let r = ctx.client().call::<KvPut>(&Empty {}, &body).await?;
    written(ctx, &r, &key, "written", cas)
}

fn written(
    ctx: &Ctx,
    r: &KvWritten,
    key: &str,
    what: &str,
    cas: Option<u64>,
) -> anyhow::Result<ExitCode> {
    if ctx.json() {
        println!("{}", serde_json::to_string(r)?);
    } else if r.ok {
        println!("{what}: {key}");
    } else {
        match cas {
            Some(0) => eprintln!("berth: {key}: not {what}: the key exists (--cas 0)"),
            Some(i) => eprintln!("berth: {key}: not {what}: its ModifyIndex is not {i}"),
            None => eprintln!("berth: {key}: not {what}"),
        }
    }
    Ok(if r.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn decode(item: &KvItem) -> anyhow::Result<Vec<u8>> {
    match &item.value {
        None => Ok(Vec::new()),
        Some(v) => base64::engine::general_purpose::STANDARD
            .decode(v)
            .with_context(|| format!("{}: the daemon sent a value that is not base64", item.key)),
    }
}

/// One key: its value as is. Several: `key:value` lines, as `consul kv
/// get -recurse` prints them.
fn show(ctx: &Ctx, found: &KvEntries, recurse: bool) -> anyhow::Result<()> {
    if ctx.json() {
        println!("{}", serde_json::to_string_pretty(found)?);
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    for item in &found.entries {
        let v = decode(item)?;
        if recurse {
            out.write_all(item.key.as_bytes())?;
            out.write_all(b":")?;
        }
        out.write_all(&v)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}
