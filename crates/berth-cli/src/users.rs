//! `berth user`, `berth group`, `berth token` and `berth whoami`.

use crate::args::{GroupCmd, LdapCmd, TokenCmd, UserCmd};
use crate::catalog::{print_json, table};
use crate::Ctx;
use anyhow::Context;
use berth_api_types::auth::*;
use berth_api_types::bodies::{Empty, MessageReply};
use berth_api_types::*;
use std::process::ExitCode;

/// The first line of standard input, without its end.
fn password_from_stdin() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let p = line.trim_end_matches(['\n', '\r']).to_string();
    if p.is_empty() {
        anyhow::bail!("no password on standard input");
    }
    Ok(p)
}

fn message(ctx: &Ctx, m: &MessageReply) -> anyhow::Result<ExitCode> {
    if ctx.json() {
        print_json(m)?;
    } else {
        println!("{}", m.message);
    }
    Ok(ExitCode::SUCCESS)
}

fn grants_out(ctx: &Ctx, r: &GrantsReply) -> anyhow::Result<ExitCode> {
    if ctx.json() {
        print_json(r)?;
    } else {
        println!("{}: {}", r.name, r.grants.join(" "));
    }
    Ok(ExitCode::SUCCESS)
}

async fn change_grants(
    ctx: &Ctx,
    name: String,
    group: bool,
    grants: Vec<String>,
    revoke: bool,
) -> anyhow::Result<ExitCode> {
    let body = GrantRequest {
        name,
        group,
        grants,
        revoke,
    };
    let r = ctx.client().call::<GrantChange>(&Empty {}, &body).await?;
    grants_out(ctx, &r)
}

pub async fn user(ctx: &Ctx, cmd: UserCmd) -> anyhow::Result<ExitCode> {
    let c = ctx.client();
    match cmd {
        UserCmd::Create {
            name,
            groups,
            grants,
            password_stdin,
        } => {
            let password = if password_stdin {
                Some(password_from_stdin()?)
            } else {
                None
            };
            let body = UserCreateRequest {
                name,
                password,
                groups,
                grants,
            };
            let u = c.call::<UserCreate>(&Empty {}, &body).await?;
            if ctx.json() {
                print_json(&u)?;
            } else {
                println!("user {} created", u.name);
            }
        }
        UserCmd::Ls => {
            let users = c.call::<UserList>(&Empty {}, &Empty {}).await?;
            if ctx.json() {
                print_json(&users)?;
            } else {
                let rows = users
                    .iter()
                    .map(|u| {
                        vec![
                            u.name.clone(),
                            u.source.clone(),
                            u.groups.join(","),
                            u.grants.join(" "),
                            if u.has_password { "yes" } else { "no" }.into(),
                        ]
                    })
                    .collect();
                println!(
                    "{}",
                    table(&["USER", "SOURCE", "GROUPS", "GRANTS", "PASSWORD"], rows)
                );
            }
        }
        UserCmd::Delete { name } => {
            let m = c
                .call::<UserDelete>(&Empty {}, &NameRequest { name })
                .await?;
            return message(ctx, &m);
        }
        UserCmd::Passwd { name } => {
            let password = password_from_stdin()?;
            let m = c
                .call::<UserPasswd>(&Empty {}, &PasswdRequest { name, password })
                .await?;
            return message(ctx, &m);
        }
        UserCmd::Grant { name, grants } => {
            return change_grants(ctx, name, false, grants, false).await
        }
        UserCmd::Revoke { name, grants } => {
            return change_grants(ctx, name, false, grants, true).await
        }
        UserCmd::Grants { name } => {
            let users = c.call::<UserList>(&Empty {}, &Empty {}).await?;
            let u = users
                .into_iter()
                .find(|u| u.name == name)
                .with_context(|| format!("user {name}: no such user"))?;
            let groups = c.call::<GroupList>(&Empty {}, &Empty {}).await?;
            let mut rows = vec![vec!["(own)".to_string(), u.grants.join(" ")]];
            for g in groups.iter().filter(|g| u.groups.contains(&g.name)) {
                rows.push(vec![format!("group {}", g.name), g.grants.join(" ")]);
            }
            if ctx.json() {
                let v: serde_json::Value = serde_json::json!({
                    "name": u.name,
                    "grants": u.grants,
                    "groups": groups.iter().filter(|g| u.groups.contains(&g.name)).collect::<Vec<_>>(),
                });
                print_json(&v)?;
            } else {
                println!("{}", table(&["FROM", "GRANTS"], rows));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn group(ctx: &Ctx, cmd: GroupCmd) -> anyhow::Result<ExitCode> {
    let c = ctx.client();
    match cmd {
        GroupCmd::Create {
            name,
            grants,
            ldap_groups,
            ldap_filter,
        } => {
            let body = GroupCreateRequest {
                name,
                grants,
                ldap_groups,
                ldap_filter,
            };
            let g = c.call::<GroupCreate>(&Empty {}, &body).await?;
            if ctx.json() {
                print_json(&g)?;
            } else {
                println!("group {} created", g.name);
            }
        }
        GroupCmd::Ls => {
            let groups = c.call::<GroupList>(&Empty {}, &Empty {}).await?;
            if ctx.json() {
                print_json(&groups)?;
            } else {
                let rows = groups
                    .iter()
                    .map(|g| {
                        let mut ldap = g.ldap_groups.clone();
                        ldap.extend(g.ldap_filter.clone());
                        vec![
                            g.name.clone(),
                            g.source.clone(),
                            g.grants.join(" "),
                            ldap.join(" "),
                        ]
                    })
                    .collect();
                println!("{}", table(&["GROUP", "SOURCE", "GRANTS", "LDAP"], rows));
            }
        }
        GroupCmd::Delete { name } => {
            let m = c
                .call::<GroupDelete>(&Empty {}, &NameRequest { name })
                .await?;
            return message(ctx, &m);
        }
        GroupCmd::Grant { name, grants } => {
            return change_grants(ctx, name, true, grants, false).await
        }
        GroupCmd::Revoke { name, grants } => {
            return change_grants(ctx, name, true, grants, true).await
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn token(ctx: &Ctx, cmd: TokenCmd) -> anyhow::Result<ExitCode> {
    let c = ctx.client();
    match cmd {
        TokenCmd::Create {
            user,
            ttl,
            grants,
            quiet,
        } => {
            let body = TokenCreateRequest {
                user,
                ttl_secs: ttl.as_secs().max(1),
                grants: (!grants.is_empty()).then_some(grants),
            };
            let t = c.call::<TokenCreate>(&Empty {}, &body).await?;
            if quiet {
                println!("{}", t.token);
            } else if ctx.json() {
                print_json(&t)?;
            } else {
                println!(
                    "token {} for {} (grants: {}), expires at {} (unix time):\n{}",
                    t.id,
                    t.user,
                    t.grants.join(" "),
                    t.expires,
                    t.token
                );
            }
        }
        TokenCmd::Revoke { token } => {
            let m = c
                .call::<TokenRevoke>(&Empty {}, &TokenRevokeRequest { token })
                .await?;
            return message(ctx, &m);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn ldap(ctx: &Ctx, cmd: LdapCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        LdapCmd::Sync => {
            let r = ctx.client().call::<LdapSync>(&Empty {}, &Empty {}).await?;
            if ctx.json() {
                print_json(&r)?;
                return Ok(ExitCode::SUCCESS);
            }
            let mut rows = Vec::new();
            for (what, list) in [("created", &r.created), ("updated", &r.updated)] {
                for c in list {
                    rows.push(vec![c.name.clone(), what.into(), c.groups.join(",")]);
                }
            }
            for name in &r.removed {
                rows.push(vec![name.clone(), "removed".into(), "(tokens void)".into()]);
            }
            if !rows.is_empty() {
                println!("{}", table(&["USER", "CHANGE", "GROUPS"], rows));
            }
            println!(
                "ldap sync: {} created, {} updated, {} removed, {} unchanged",
                r.created.len(),
                r.updated.len(),
                r.removed.len(),
                r.unchanged
            );
            for s in &r.skipped {
                eprintln!("skipped: {s}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn whoami(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let w = ctx
        .client()
        .call::<WhoAmIEndpoint>(&Empty {}, &Empty {})
        .await?;
    if ctx.json() {
        print_json(&w)?;
    } else {
        println!("{}: {}", w.user, w.grants.join(" "));
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn audit(ctx: &Ctx, q: AuditQuery, export: bool) -> anyhow::Result<ExitCode> {
    let records = ctx.client().call::<AuditList>(&q, &Empty {}).await?;
    if export {
        for r in &records {
            println!("{}", serde_json::to_string(r)?);
        }
    } else if ctx.json() {
        print_json(&records)?;
    } else {
        let rows = records
            .iter()
            .map(|r| {
                let time =
                    time::OffsetDateTime::from_unix_timestamp_nanos(r.time_ms as i128 * 1_000_000)
                        .ok()
                        .and_then(|t| {
                            t.format(&time::format_description::well_known::Rfc3339)
                                .ok()
                        })
                        .unwrap_or_else(|| r.time_ms.to_string());
                vec![
                    time,
                    r.user.clone(),
                    r.source.clone(),
                    r.action.clone(),
                    r.object.clone(),
                    match &r.reason {
                        Some(why) => format!("{}: {why}", r.outcome),
                        None => r.outcome.clone(),
                    },
                ]
            })
            .collect();
        println!(
            "{}",
            table(
                &["TIME", "USER", "SOURCE", "ACTION", "OBJECT", "OUTCOME"],
                rows
            )
        );
    }
    Ok(ExitCode::SUCCESS)
}
