//! The `[DEFAULT]` section: object-wide keywords, and the typed settings
//! the cluster acts on. Their defaults come from the keyword table, applied
//! once by the effective config; nothing here supplies a default of its own.
pub mod keywords;

use berth_model::deploy::UpdatePolicy;
use berth_model::{EffectiveConfig, ObjectSettings, Section};

fn required<'a>(d: &'a Section, kw: &str) -> Result<&'a str, String> {
    d.get_str(kw)
        .ok_or_else(|| format!("[DEFAULT] {kw}: no value, and the keyword table gives none"))
}

fn int(d: &Section, kw: &str) -> Result<i64, String> {
    d.get_int(kw)?
        .ok_or_else(|| format!("[DEFAULT] {kw}: no value, and the keyword table gives none"))
}

/// The object's topology, orchestration and placement settings.
pub fn settings(eff: &EffectiveConfig) -> Result<ObjectSettings, String> {
    let d = &eff.default;
    let flex_target = int(d, "flex_target")?;
    Ok(ObjectSettings {
        topology: required(d, "topology")?.parse()?,
        orchestrate: required(d, "orchestrate")?.parse()?,
        nodes: d.get_list("nodes")?,
        flex_target: usize::try_from(flex_target)
            .map_err(|_| format!("[DEFAULT] flex_target: {flex_target} is negative"))?,
        priority: int(d, "priority")?,
        hard_anti_affinity: d.get_list("hard_anti_affinity")?,
        soft_anti_affinity: d.get_list("soft_anti_affinity")?,
        update: update_policy(d)?,
    })
}

fn update_policy(d: &Section) -> Result<UpdatePolicy, String> {
    let dur = |kw: &str| -> Result<std::time::Duration, String> {
        d.get_duration(kw)?
            .ok_or_else(|| format!("[DEFAULT] {kw}: no value, and the keyword table gives none"))
    };
    let parallelism = int(d, "update_parallelism")?;
    Ok(UpdatePolicy {
        mode: required(d, "update")?.parse()?,
        parallelism: u32::try_from(parallelism)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                format!("[DEFAULT] update_parallelism: {parallelism} is not 1 or more")
            })?,
        delay: dur("update_delay")?,
        order: required(d, "update_order")?.parse()?,
        monitor: dur("update_monitor")?,
        failure: required(d, "update_failure_action")?.parse()?,
    })
}

#[cfg(test)]
mod tests {
    use super::settings;
    use berth_model::{ConfigDoc, ObjectPath, Orchestrate, Topology};

    fn of(text: &str) -> Result<berth_model::ObjectSettings, String> {
        let doc = ConfigDoc::parse(text).map_err(|e| e.message)?;
        let path: ObjectPath = "ns/svc".parse().map_err(|e| format!("{e}"))?;
        let eff = berth_model::resolve(&doc, &crate::registry(), &path, "n1")
            .map_err(|e| format!("{e:?}"))?;
        settings(&eff)
    }

    #[test]
    fn an_empty_config_gets_the_keyword_tables_defaults() {
        let s = of("").unwrap();
        assert_eq!(s.topology, Topology::Failover);
        assert_eq!(s.orchestrate, Orchestrate::No);
        assert_eq!(s.flex_target, 1);
        assert_eq!(s.priority, 100);
        assert_eq!(s.nodes, vec!["*".to_string()]);
        assert_eq!(s.instances(), 1);
    }

    #[test]
    fn set_values_are_read_typed() {
        let s = of("[DEFAULT]\ntopology = flex\nflex_target = 3\norchestrate = ha\npriority = 5\n")
            .unwrap();
        assert_eq!(
            (s.topology, s.orchestrate, s.instances(), s.priority),
            (Topology::Flex, Orchestrate::Ha, 3, 5)
        );
    }
}
