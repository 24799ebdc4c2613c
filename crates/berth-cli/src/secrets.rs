//! `berth <ns>/sec/<name> add|change|keys|decode|remove` (and `cfg`).

use crate::args::SecretValueArgs;
use crate::Ctx;
use anyhow::{bail, Context};
use base64::Engine;
use berth_api_types::auth::*;
use berth_api_types::bodies::Empty;
use berth_api_types::*;
use std::io::{Read, Write};
use std::process::ExitCode;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// Read at most this much: the daemon refuses more than 500 KiB anyway,
/// and says so.
const READ_LIMIT: u64 = 512 * 1024 + 1;

/// The one object a key command names: a path, not a glob.
fn one_path(selector: &str) -> anyhow::Result<&str> {
    if selector.contains(['*', '?', '[', ',', '+', '!', '=']) {
        bail!("{selector}: name one sec or cfg object (<ns>/sec/<name>), not a selection");
    }
    Ok(selector)
}

fn read_value(v: &SecretValueArgs) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    match (&v.from, &v.value) {
        (Some(p), _) if p.as_os_str() == "-" => {
            std::io::stdin()
                .take(READ_LIMIT)
                .read_to_end(&mut buf)
                .context("reading the value from standard input")?;
        }
        (Some(p), _) => {
            std::fs::File::open(p)
                .and_then(|f| f.take(READ_LIMIT).read_to_end(&mut buf))
                .with_context(|| format!("reading {}", p.display()))?;
        }
        (None, Some(v)) => buf = v.as_bytes().to_vec(),
        (None, None) => bail!("give the value: --from FILE, --from - (standard input) or --value"),
    }
    Ok(buf)
}

pub async fn put(
    ctx: &Ctx,
    selector: &str,
    v: SecretValueArgs,
    change: bool,
) -> anyhow::Result<ExitCode> {
    let path = one_path(selector)?.to_string();
    let value = read_value(&v)?;
    let body = SecretPutRequest {
        path,
        key: v.key,
        value: B64.encode(value),
        change,
    };
    let w = ctx.client().call::<SecretPut>(&Empty {}, &body).await?;
    if ctx.json() {
        println!("{}", serde_json::to_string_pretty(&w)?);
    } else {
        println!("{}: key {} at version {}", w.path, w.key, w.version);
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn keys(ctx: &Ctx, selector: &str) -> anyhow::Result<ExitCode> {
    let q = SecretQuery {
        path: one_path(selector)?.to_string(),
        key: String::new(),
    };
    let keys = ctx.client().call::<SecretKeys>(&q, &Empty {}).await?;
    if ctx.json() {
        println!("{}", serde_json::to_string_pretty(&keys)?);
    } else {
        for k in keys {
            println!("{}\tversion {}\t{} bytes", k.key, k.version, k.size);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn decode(ctx: &Ctx, selector: &str, key: &str) -> anyhow::Result<ExitCode> {
    let q = SecretQuery {
        path: one_path(selector)?.to_string(),
        key: key.to_string(),
    };
    let v = ctx.client().call::<SecretDecode>(&q, &Empty {}).await?;
    if ctx.json() {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let raw = B64
            .decode(&v.value)
            .context("the daemon sent a value that is not base64")?;
        std::io::stdout().write_all(&raw)?;
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn remove(ctx: &Ctx, selector: &str, key: &str) -> anyhow::Result<ExitCode> {
    let body = SecretRemoveRequest {
        path: one_path(selector)?.to_string(),
        key: key.to_string(),
    };
    let m = ctx.client().call::<SecretRemove>(&Empty {}, &body).await?;
    if ctx.json() {
        println!("{}", serde_json::to_string_pretty(&m)?);
    } else {
        println!("{}", m.message);
    }
    Ok(ExitCode::SUCCESS)
}
