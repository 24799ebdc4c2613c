//! `berth catalog` and `berth ingress`: the catalog and the ingress's
//! routes through the daemon's API.

use crate::args::{CatalogCmd, IngressCmd};
use crate::Ctx;
use berth_api_types::bodies::Empty;
use berth_api_types::catalog::*;
use berth_api_types::{CatalogService, CatalogServices, IngressRoutes};
use std::process::ExitCode;

pub(crate) fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::NOTHING);
    t.set_header(header.to_vec());
    for r in rows {
        t.add_row(r);
    }
    t.to_string()
}

pub(crate) fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub async fn run(ctx: &Ctx, cmd: CatalogCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        CatalogCmd::Services => {
            let list = ctx
                .client()
                .call::<CatalogServices>(&Empty {}, &Empty {})
                .await?;
            if ctx.json() {
                print_json(&list)?;
            } else {
                let rows = list
                    .services
                    .iter()
                    .map(|s| {
                        vec![
                            s.name.clone(),
                            format!("{}/{}", s.passing, s.instances),
                            s.tags.join(" "),
                        ]
                    })
                    .collect();
                println!("{}", table(&["SERVICE", "PASSING", "TAGS"], rows));
            }
        }
        CatalogCmd::Service { name, tag } => {
            let q = ServiceQuery { name, tag };
            let found = ctx.client().call::<CatalogService>(&q, &Empty {}).await?;
            if ctx.json() {
                print_json(&found)?;
            } else {
                let rows = found
                    .instances
                    .iter()
                    .map(|i| {
                        vec![
                            i.node.clone(),
                            format!("{}:{}", i.address, i.port),
                            i.health.clone(),
                            i.tags.join(" "),
                            i.path.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                println!(
                    "{}",
                    table(&["NODE", "ADDRESS", "HEALTH", "TAGS", "OBJECT"], rows)
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn ingress(ctx: &Ctx, cmd: IngressCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        IngressCmd::Routes => {
            let t = ctx
                .client()
                .call::<IngressRoutes>(&Empty {}, &Empty {})
                .await?;
            if ctx.json() {
                print_json(&t)?;
                return Ok(ExitCode::SUCCESS);
            }
            if t.listening.is_none() {
                println!(
                    "(this node's ingress is off: --ingress-http ADDR or --ingress-https ADDR)"
                );
            }
            let mut rows = Vec::new();
            for r in &t.routes {
                for b in &r.backends {
                    rows.push(vec![
                        format!("{}{}", r.host, if r.path == "/" { "" } else { &r.path }),
                        r.service.clone(),
                        b.addr.clone(),
                        b.node.clone(),
                        if b.in_rotation {
                            b.health.clone()
                        } else {
                            format!("{} (out)", b.health)
                        },
                        b.requests.to_string(),
                        b.errors.to_string(),
                        b.inflight.to_string(),
                    ]);
                }
            }
            println!(
                "{}",
                table(
                    &[
                        "ROUTE", "SERVICE", "BACKEND", "NODE", "HEALTH", "REQUESTS", "ERRORS",
                        "INFLIGHT",
                    ],
                    rows
                )
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
