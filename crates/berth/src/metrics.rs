//! The daemon's `/metrics` page (`--metrics-addr`): a few facts of the
//! node (Raft, instances) and whatever the ingress counts.

use berth_agent::Agent;
use berth_metrics::{Gather, Kind, Text};
use berth_model::status::Avail;
use std::collections::BTreeMap;
use std::sync::Arc;

pub fn gather(agent: Arc<Agent>, ingress: Option<Arc<berth_ingress::Ingress>>) -> Gather {
    Arc::new(move || {
        let mut t = Text::default();
        node(&mut t, &agent);
        if let Some(i) = &ingress {
            i.write_metrics(&mut t);
        }
        t.into_string()
    })
}

fn node(t: &mut Text, agent: &Agent) {
    let d = agent.cluster().desired();
    t.family(
        "berth_raft_term",
        Kind::Gauge,
        "The Raft term this node is in.",
    );
    t.sample("berth_raft_term", &[], d.current_term() as f64);
    t.family(
        "berth_raft_applied_index",
        Kind::Gauge,
        "The last Raft log index this node's replica applied.",
    );
    t.sample("berth_raft_applied_index", &[], d.applied_index() as f64);
    t.family(
        "berth_raft_leader",
        Kind::Gauge,
        "1 when this node is the Raft leader.",
    );
    t.sample("berth_raft_leader", &[], f64::from(u8::from(d.is_leader())));
    let mut by_avail: BTreeMap<&'static str, u64> =
        [Avail::Up, Avail::Down, Avail::Warn, Avail::NotApplicable]
            .into_iter()
            .map(|a| (a.as_str(), 0))
            .collect();
    for st in agent.status_bus().instances() {
        *by_avail.entry(st.avail.as_str()).or_default() += 1;
    }
    t.family(
        "berth_instances",
        Kind::Gauge,
        "Instances on this node, by availability.",
    );
    for (avail, n) in by_avail {
        t.sample("berth_instances", &[("avail", avail)], n as f64);
    }
}
