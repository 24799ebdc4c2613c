//! What a node does with its instance of an object: run it, hold it, or
//! stop it, from where the object is placed and whether the node's lease
//! lets it run failover instances (`design/imon.md`, `design/failover.md`).

/// Whether a node may run its failover instances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fence {
    /// Not in a cluster: nothing to fence against.
    Standalone,
    /// The lease is valid.
    Valid,
    /// Just started, no lease yet: keep what runs, start nothing.
    Starting,
    /// The lease is valid but this replica has not yet applied what the
    /// leader had when it granted it: keep what runs, start nothing.
    CatchingUp,
    /// The lease ran out: failover instances must stop.
    Fenced,
    /// The fencing watchdog did not take the lease: without it nothing
    /// could stop failover instances should the agent die, so they stop
    /// now and none starts (`why` says what failed).
    Unguarded { why: String },
}

impl Fence {
    /// Why failover instances may not start, if they may not.
    pub fn problem(&self) -> Option<String> {
        match self {
            Fence::Standalone | Fence::Valid => None,
            Fence::Starting => Some("waiting for the first lease from the managers".into()),
            Fence::CatchingUp => Some("catching up with the leader's desired state".into()),
            Fence::Fenced => {
                Some("failover lease lost (no contact with the manager quorum)".into())
            }
            Fence::Unguarded { why } => Some(format!("fencing watchdog unavailable: {why}")),
        }
    }
}

/// See [`duty`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Duty {
    Run,
    /// Neither start nor stop: a failover instance before the first lease,
    /// or while the replica catches up.
    Hold {
        why: String,
    },
    /// Stop the local instance; `urgent` for fencing, which must finish
    /// within the lease's stop grace.
    Stop {
        why: String,
        urgent: bool,
    },
}

/// The duty of `node` for an object placed on `placement`, target and
/// frozen aside. Outside a cluster (`fence` standalone) it always runs.
pub fn duty(placement: &[String], node: &str, failover: bool, fence: &Fence) -> Duty {
    if *fence == Fence::Standalone {
        return Duty::Run;
    }
    if !placement.iter().any(|n| n == node) {
        return Duty::Stop {
            why: "not placed on this node: stopping here".into(),
            urgent: false,
        };
    }
    if !failover {
        return Duty::Run;
    }
    match fence {
        Fence::Standalone | Fence::Valid => Duty::Run,
        Fence::Starting | Fence::CatchingUp => Duty::Hold {
            why: fence.problem().unwrap_or_default(),
        },
        Fence::Fenced | Fence::Unguarded { .. } => Duty::Stop {
            why: format!("{}: stopping here", fence.problem().unwrap_or_default()),
            urgent: true,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placed(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_standalone_node_runs_whatever_the_placement() {
        assert_eq!(duty(&[], "n1", true, &Fence::Standalone), Duty::Run);
    }

    #[test]
    fn an_instance_placed_elsewhere_stops_gently() {
        let d = duty(&placed(&["n2"]), "n1", false, &Fence::Valid);
        assert!(matches!(d, Duty::Stop { urgent: false, .. }), "{d:?}");
    }

    #[test]
    fn flex_instances_ignore_the_lease() {
        for f in [
            Fence::Fenced,
            Fence::Starting,
            Fence::Unguarded { why: "x".into() },
        ] {
            assert_eq!(duty(&placed(&["n1"]), "n1", false, &f), Duty::Run, "{f:?}");
        }
    }

    #[test]
    fn failover_instances_follow_the_fence() {
        let p = placed(&["n1"]);
        assert_eq!(duty(&p, "n1", true, &Fence::Valid), Duty::Run);
        for f in [Fence::Starting, Fence::CatchingUp] {
            assert!(
                matches!(duty(&p, "n1", true, &f), Duty::Hold { .. }),
                "{f:?}"
            );
        }
        for f in [Fence::Fenced, Fence::Unguarded { why: "gone".into() }] {
            let d = duty(&p, "n1", true, &f);
            assert!(matches!(d, Duty::Stop { urgent: true, .. }), "{d:?}");
        }
        let Duty::Stop { why, .. } = duty(&p, "n1", true, &Fence::Unguarded { why: "gone".into() })
        else {
            unreachable!()
        };
        assert!(why.contains("watchdog") && why.contains("gone"), "{why}");
    }
}
