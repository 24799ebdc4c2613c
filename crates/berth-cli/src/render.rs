//! Text rendering: the status tree, the svcmon grid, docs, events.

use crate::instances::InstanceView;
use berth_model::cluster::ClusterView;
use berth_model::deploy::DeployHistory;
use berth_model::event::Event;
use berth_model::status::{Avail, ObjectStatus, Target};
use berth_model::{ActionKind, ActionOutcome};
use berth_model::{Keyword, KeywordTable};
use indicatif::{ProgressBar, ProgressStyle};
use std::fmt::Write;

pub fn progress_bar(len: u64, kind: ActionKind) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {elapsed}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(format!("{kind:?}").to_lowercase());
    bar
}

/// Config texts, one after the other, each under a `# path` line when
/// there are several.
pub fn print_texts(texts: &[(String, String)]) {
    let many = texts.len() > 1;
    for (p, t) in texts {
        if many {
            println!("# {p}");
        }
        print!("{t}");
        if !t.is_empty() && !t.ends_with('\n') {
            println!();
        }
    }
}

pub fn outcome_line(o: &ActionOutcome) -> String {
    match &o.error {
        None => format!("{}: ok", o.path),
        Some(e) => format!("{}: error: {e}", o.path),
    }
}

fn avail_char(a: Avail) -> char {
    match a {
        Avail::Up => 'O',
        Avail::Down => 'X',
        Avail::Warn => '!',
        Avail::NotApplicable => '/',
    }
}

/// `^`: the node is (one of) the object's placement; on a standalone node,
/// an object to run.
fn placed(s: &ObjectStatus, node: &str, view: &ClusterView) -> bool {
    if view.nodes.is_empty() {
        s.target == Target::Started
    } else {
        s.placement.iter().any(|p| p == node)
    }
}

/// The svcmon grid: one row per object, one column per node, cells in
/// OpenSVC's notation: `O` up, `X` down, `!` warn, `/` n/a, `^` placed
/// there, `*` frozen, `?` node unreachable.
pub fn mon_grid(st: &[ObjectStatus], view: &ClusterView) -> String {
    let none = DeployHistory::default();
    let instances = |s: &ObjectStatus| crate::instances::of(s, view, &none);
    let width = st
        .iter()
        .map(|s| s.path.len() + s.avail.as_str().len() + s.topology.as_str().len() + 3)
        .max()
        .unwrap_or(20)
        .max(20);
    let nodes: Vec<String> = match st.first() {
        Some(s) => instances(s).into_iter().map(|i| i.node).collect(),
        None => view.nodes.iter().map(|n| n.record.name.clone()).collect(),
    };
    let colw = nodes.iter().map(|n| n.len()).max().unwrap_or(4).max(4);
    let mut out = String::new();
    let header: Vec<String> = nodes.iter().map(|n| format!("{n:<colw$}")).collect();
    let _ = writeln!(
        out,
        "{:<width$} {}",
        "Services",
        header.join(" ").trim_end(),
        width = width + 2
    );
    for s in st {
        let left = format!(" {} {} {}", s.path, s.avail, s.topology);
        let mut cells = Vec::new();
        for i in instances(s) {
            let node = i.node.clone();
            let mut cell = String::new();
            cell.push(i.avail().map(avail_char).unwrap_or('?'));
            if placed(s, &node, view) {
                cell.push('^');
            }
            if s.frozen {
                cell.push('*');
            }
            if node == s.node && (s.resources.iter().any(|r| r.failed) || !s.log.is_empty()) {
                cell.push('!');
            }
            cells.push(format!("{cell:<colw$}"));
        }
        let _ = writeln!(
            out,
            "{left:<width$} | {}",
            cells.join(" ").trim_end(),
            width = width + 1
        );
    }
    out
}

/// The `print status` tree, in the seed's shape.
pub fn status_tree(s: &ObjectStatus, view: &ClusterView, all: &[InstanceView]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{:<32} {}", s.path, s.avail);
    for l in &s.log {
        let _ = writeln!(out, "   warn: {l}");
    }
    for (node, why) in &s.unhealthy_on {
        let _ = writeln!(
            out,
            "   warn: kept off {node}, it stayed unhealthy there ({why}); `clear` on {node} allows it back"
        );
    }
    let _ = writeln!(out, "`- instances");
    let count = all.len();
    for (k, inst) in all.iter().enumerate() {
        let node = inst.node.clone();
        let held = inst.value_versions();
        let last = k + 1 == count;
        let (branch, cont) = if last { ("`-", "   ") } else { ("|-", "|  ") };
        let mut state = vec![];
        if node == s.node {
            state.push("idle".to_string());
        }
        state.push(s.target.as_str().to_string());
        if s.frozen {
            state.push("frozen".into());
        }
        if placed(s, &node, view) {
            state.push("placed".into());
        }
        if s.unhealthy_on.contains_key(&node) {
            state.push("unhealthy here".into());
        }
        if !held.is_empty() {
            state.push(format!("holds {}", held.join(" ")));
        }
        state.extend(inst.details());
        let avail = inst.avail().map(|a| a.as_str()).unwrap_or("unknown");
        let _ = writeln!(
            out,
            "   {branch} {:<26} {:<10} {}",
            node,
            avail,
            state.join(", ")
        );
        if node != s.node {
            continue;
        }
        let n = s.resources.len();
        for (i, r) in s.resources.iter().enumerate() {
            let rbranch = if i + 1 == n { "`-" } else { "|-" };
            let flags = if r.failed { "F......." } else { "........" };
            let _ = writeln!(
                out,
                "   {cont}   {rbranch} {:<13} {flags} {:<10} {}",
                r.rid,
                r.avail.as_str(),
                r.label
            );
            let rcont = if i + 1 == n { "   " } else { "|  " };
            if r.config_changed {
                let _ = writeln!(
                    out,
                    "   {cont}   {rcont}  {:<22} config changed: `deploy` rolls it out",
                    ""
                );
            }
            if let Some(h) = &r.health {
                let source = match h.source {
                    berth_model::health::HealthSource::Docker => "healthcheck",
                    berth_model::health::HealthSource::Berth => "check",
                };
                let _ = writeln!(
                    out,
                    "   {cont}   {rcont}  {:<22} {} ({source}): {}",
                    "",
                    h.state.as_str(),
                    h.output
                );
            }
            for l in &r.log {
                let _ = writeln!(out, "   {cont}   {rcont}  {:<22} {l}", "");
            }
        }
    }
    out
}

pub fn event_line(e: &Event) -> String {
    let mut s = format!("{} #{}", e.time, e.seq);
    if let Some(o) = &e.object {
        let _ = write!(s, " {o}");
    }
    if let Some(r) = &e.rid {
        let _ = write!(s, " {r}");
    }
    let _ = write!(s, " {}", e.what);
    if let Some(d) = &e.docker {
        let _ = write!(s, ": {d}");
    }
    s
}

fn section_name(t: &KeywordTable) -> String {
    match t.rtype {
        Some(r) => format!("{} (type={r})", t.family),
        None => t.family.to_string(),
    }
}

pub fn doc_keyword(t: &KeywordTable, k: &Keyword) -> String {
    let mut out = String::new();
    let prefix = if t.family == "DEFAULT" {
        String::new()
    } else {
        format!("{}.", t.family)
    };
    let _ = writeln!(out, "{prefix}{}", k.name);
    let _ = writeln!(out, "  section:   {}", section_name(t));
    let _ = writeln!(out, "  type:      {}", k.kind.name());
    let cands = k.kind.candidates();
    if !cands.is_empty() {
        let _ = writeln!(out, "  values:    {}", cands.join(", "));
    }
    let rule = k.rule.describe();
    if !rule.is_empty() {
        let _ = writeln!(out, "  rule:      {rule}");
    }
    if k.kind == berth_model::KwType::List {
        let _ = writeln!(out, "  quoting:   {}", berth_model::QUOTING_DOC);
    }
    let _ = writeln!(out, "  default:   {}", k.default.unwrap_or("-"));
    let _ = writeln!(out, "  required:  {}", k.required);
    if k.scopable {
        let _ = writeln!(
            out,
            "  scopable:  true ({}@<nodename> overrides it on that node)",
            k.name
        );
    } else {
        let _ = writeln!(out, "  scopable:  false");
    }
    if let Some(e) = k.example {
        let _ = writeln!(out, "  example:   {prefix}{}={e}", k.name);
    }
    let _ = writeln!(out, "\n  {}\n", k.text);
    out
}

pub fn keyword_json(t: &KeywordTable, k: &Keyword) -> serde_json::Value {
    serde_json::json!({
        "section": t.family,
        "type": t.rtype,
        "keyword": k.name,
        "kind": k.kind.name(),
        "values": k.kind.candidates(),
        "default": k.default,
        "required": k.required,
        "scopable": k.scopable,
        "example": k.example,
        "rule": k.rule.describe(),
        "text": k.text,
    })
}

pub fn doc_table(t: &KeywordTable) -> String {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_content_arrangement(comfy_table::ContentArrangement::Dynamic);
    if table.width().is_none() {
        table.set_width(120);
    }
    table.set_header(vec!["keyword", "type", "default", "req", "text"]);
    for k in t.keywords {
        table.add_row(vec![
            k.name.to_string(),
            k.kind.name().to_string(),
            k.default.unwrap_or("-").to_string(),
            if k.required { "yes" } else { "" }.to_string(),
            k.text.to_string(),
        ]);
    }
    format!("[{}] {}\n{table}\n\n", section_name(t), t.text)
}
