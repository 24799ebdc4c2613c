//! `deploy`, `rollback`, `history`, `diff --version N` and `print config --version N`.

use crate::commands::select;
use crate::render;
use crate::Ctx;
use berth_api_types::bodies::{DeployRequest, Empty, PathBody, PathQuery};
use berth_api_types::{self as api};
use berth_model::deploy::{DeployHistory, Outcome};
use berth_model::ActionOutcome;
use std::process::ExitCode;
use std::time::Duration;

/// `deploy`'s options, as typed.
pub struct DeployOpts {
    pub parallelism: Option<u32>,
    pub delay: Option<Duration>,
    pub order: Option<String>,
}

fn print_outcomes(ctx: &Ctx, outs: &[ActionOutcome]) -> anyhow::Result<ExitCode> {
    if ctx.json() {
        println!("{}", serde_json::to_string_pretty(outs)?);
    } else {
        for out in outs {
            for l in &out.lines {
                println!("{}: {l}", out.path);
            }
            println!("{}", render::outcome_line(out));
        }
    }
    Ok(if outs.iter().all(|o| o.ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub async fn deploy(ctx: &Ctx, selector: &str, o: DeployOpts) -> anyhow::Result<ExitCode> {
    let mut outs = Vec::new();
    for obj in select(ctx, selector).await? {
        let req = DeployRequest {
            path: obj.path.clone(),
            parallelism: o.parallelism,
            delay_ms: o
                .delay
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            order: o.order.clone(),
        };
        outs.push(
            ctx.client()
                .call::<api::DeployObject>(&Empty {}, &req)
                .await?,
        );
    }
    print_outcomes(ctx, &outs)
}

pub async fn rollback(ctx: &Ctx, selector: &str) -> anyhow::Result<ExitCode> {
    let mut outs = Vec::new();
    for obj in select(ctx, selector).await? {
        let req = PathBody {
            path: obj.path.clone(),
        };
        outs.push(
            ctx.client()
                .call::<api::RollbackObject>(&Empty {}, &req)
                .await?,
        );
    }
    print_outcomes(ctx, &outs)
}

pub(crate) async fn history_of(ctx: &Ctx, path: &str) -> anyhow::Result<DeployHistory> {
    let q = PathQuery {
        path: path.to_string(),
    };
    Ok(ctx
        .client()
        .call::<api::DeployHistory>(&q, &Empty {})
        .await?)
}

fn when(ms: u64) -> String {
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

pub async fn history(ctx: &Ctx, selector: &str) -> anyhow::Result<ExitCode> {
    let mut all = Vec::new();
    for obj in select(ctx, selector).await? {
        all.push((obj.path.clone(), history_of(ctx, &obj.path).await?));
    }
    if ctx.json() {
        let v: Vec<_> = all
            .iter()
            .map(|(p, h)| serde_json::json!({"path": p, "versions": h.versions}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    for (path, h) in &all {
        if h.versions.is_empty() {
            println!("{path}: no deployed version yet");
            continue;
        }
        for v in &h.versions {
            let why = match &v.outcome {
                Outcome::RolledBack { why } | Outcome::Paused { why } => format!(": {why}"),
                _ => String::new(),
            };
            let digests: Vec<String> = v.digests.iter().map(|(r, d)| format!("{r}={d}")).collect();
            println!(
                "{path} version {} {} by {} {}{why}{}",
                v.version,
                when(v.at_ms),
                v.by,
                v.outcome.word(),
                if digests.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", digests.join(" "))
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `print config --version N`: the config text that version deployed.
pub async fn print_config_version(
    ctx: &Ctx,
    selector: &str,
    version: u64,
) -> anyhow::Result<ExitCode> {
    let mut texts = Vec::new();
    for obj in select(ctx, selector).await? {
        let h = history_of(ctx, &obj.path).await?;
        let Some(v) = h.get(version) else {
            return Err(no_such_version(&obj.path, &h, version));
        };
        texts.push((obj.path.clone(), v.config.clone()));
    }
    if ctx.json() {
        let v: Vec<_> = texts
            .iter()
            .map(|(p, t)| serde_json::json!({"path": p, "version": version, "config": t}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        render::print_texts(&texts);
    }
    Ok(ExitCode::SUCCESS)
}

fn no_such_version(path: &str, h: &DeployHistory, version: u64) -> anyhow::Error {
    let kept: Vec<String> = h.versions.iter().map(|v| v.version.to_string()).collect();
    crate::Usage(format!(
        "{path}: no version {version}; kept: {}",
        if kept.is_empty() {
            "none".to_string()
        } else {
            kept.join(" ")
        }
    ))
    .into()
}

async fn current_config(ctx: &Ctx, path: &str) -> anyhow::Result<String> {
    let q = PathQuery {
        path: path.to_string(),
    };
    Ok(ctx
        .client()
        .call::<api::ObjectConfig>(&q, &Empty {})
        .await?
        .text)
}

/// `diff --version N [--to M]`: version N's config against version M's,
/// or against the current config.
pub async fn diff(
    ctx: &Ctx,
    selector: &str,
    version: u64,
    to: Option<u64>,
    exit_code: bool,
) -> anyhow::Result<ExitCode> {
    let mut diffs = Vec::new();
    for obj in select(ctx, selector).await? {
        let path = &obj.path;
        let h = history_of(ctx, path).await?;
        let old = h
            .get(version)
            .ok_or_else(|| no_such_version(path, &h, version))?;
        let (new_name, new_text) = match to {
            Some(m) => {
                let v = h.get(m).ok_or_else(|| no_such_version(path, &h, m))?;
                (format!("{path} version {m}"), v.config.clone())
            }
            None => (format!("{path} current"), current_config(ctx, path).await?),
        };
        let d = crate::textdiff::unified(
            &old.config,
            &new_text,
            &format!("{path} version {version}"),
            &new_name,
        );
        diffs.push((path.clone(), d));
    }
    let changed = diffs.iter().any(|(_, d)| !d.is_empty());
    if ctx.json() {
        let v: Vec<_> = diffs
            .iter()
            .map(|(p, d)| serde_json::json!({"path": p, "version": version, "to": to, "changed": !d.is_empty(), "diff": d}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for (_, d) in &diffs {
            print!("{d}");
        }
    }
    Ok(if exit_code && changed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_are_utc() {
        assert_eq!(super::when(951_782_400_500), "2000-02-29T00:00:00Z");
    }
}
