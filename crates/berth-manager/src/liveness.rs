//! Node liveness and the failover lease: the timing that keeps a failover
//! service from running on two nodes at once (`design/failover.md`).
//!
//! Times are `Duration`s since an arbitrary monotonic origin of the side
//! that reads them; the two sides never compare clocks.

use std::collections::BTreeMap;
use std::time::Duration;

/// The timing knobs, shared by managers and workers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// How often a worker heartbeats to the leader.
    pub heartbeat: Duration,
    /// Silence after which the leader reports a node down.
    pub down_after: Duration,
    /// How long a heartbeat the manager quorum acknowledged keeps a worker
    /// entitled to run its failover instances, counted from when it was sent.
    pub lease: Duration,
    /// Time a worker gets to stop its failover instances once its lease is
    /// gone, before managers may start them elsewhere.
    pub stop_grace: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            heartbeat: Duration::from_secs(1),
            down_after: Duration::from_secs(3),
            lease: Duration::from_secs(2),
            stop_grace: Duration::from_secs(1),
        }
    }
}

/// Heartbeat and node-down settings that cannot be made safe.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TimingError {
    #[error("--heartbeat ({heartbeat:?}) must be shorter than --down-after ({down_after:?})")]
    HeartbeatNotShorter {
        heartbeat: Duration,
        down_after: Duration,
    },
    #[error("--heartbeat must be longer than zero")]
    ZeroHeartbeat,
}

impl Timing {
    /// The whole timing from the two operator settings. A node tolerates
    /// one lost heartbeat period before it fences (`lease = down_after -
    /// heartbeat`), and is fenced by the time the leader calls it down;
    /// the stop grace is at most 1 s and a third of `down_after`. With the
    /// defaults (1 s, 3 s) failover waits exactly `down_after`.
    pub fn derive(heartbeat: Duration, down_after: Duration) -> Result<Timing, TimingError> {
        if heartbeat.is_zero() {
            return Err(TimingError::ZeroHeartbeat);
        }
        if heartbeat >= down_after {
            return Err(TimingError::HeartbeatNotShorter {
                heartbeat,
                down_after,
            });
        }
        Ok(Timing {
            heartbeat,
            down_after,
            lease: down_after.saturating_sub(heartbeat).max(heartbeat),
            stop_grace: Duration::from_secs(1).min(down_after / 3),
        })
    }

    /// Silence after which a lost node's failover instances may restart
    /// elsewhere: the node is down, and its lease plus the stop grace has
    /// run out whatever the message delays were.
    pub fn failover_after(&self) -> Duration {
        self.down_after.max(self.lease + self.stop_grace)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeState {
    /// Never heard from since this manager became leader.
    Unknown,
    Up,
    /// Silent since `since` (the last heartbeat received).
    Down {
        since: Duration,
    },
}

/// The leader's view: when each node's last heartbeat arrived.
#[derive(Clone, Debug, Default)]
pub struct Liveness {
    timing: Timing,
    last: BTreeMap<String, Duration>,
}

impl Liveness {
    pub fn new(timing: Timing) -> Liveness {
        Liveness {
            timing,
            last: BTreeMap::new(),
        }
    }

    /// A heartbeat from `node` arrived at `now`.
    pub fn observe(&mut self, node: &str, now: Duration) {
        let e = self.last.entry(node.to_string()).or_insert(now);
        if now > *e {
            *e = now;
        }
    }

    pub fn state(&self, node: &str, now: Duration) -> NodeState {
        match self.last.get(node) {
            None => NodeState::Unknown,
            Some(t) if now.saturating_sub(*t) < self.timing.down_after => NodeState::Up,
            Some(t) => NodeState::Down { since: *t },
        }
    }

    /// How long ago `node`'s last heartbeat arrived.
    pub fn last_seen(&self, node: &str, now: Duration) -> Option<Duration> {
        self.last.get(node).map(|t| now.saturating_sub(*t))
    }

    /// The state `cluster status` shows for `node`: a node this leader has
    /// not heard from since `led_since` (when the leadership, or the last
    /// lease the previous leader could have granted, began), at least
    /// `down_after` ago, is as good as down.
    pub fn shown_state(
        &self,
        node: &str,
        now: Duration,
        led_since: Option<Duration>,
    ) -> berth_model::cluster::NodeState {
        use berth_model::cluster::NodeState as Shown;
        match self.state(node, now) {
            NodeState::Up => Shown::Up,
            NodeState::Down { .. } => Shown::Down,
            NodeState::Unknown if led_since.is_some_and(|t| now >= t + self.timing.down_after) => {
                Shown::Down
            }
            NodeState::Unknown => Shown::Unknown,
        }
    }

    /// Forgets every node: a new leader starts from nothing.
    pub fn clear(&mut self) {
        self.last.clear();
    }

    /// Whether `node`'s failover instances may be started elsewhere at `now`.
    /// A node never heard from gives no such right: a new leader first waits
    /// a full failover period (see `design/failover.md`).
    pub fn failover_allowed(&self, node: &str, now: Duration, leader_since: Duration) -> bool {
        now >= self.failover_at(node, leader_since)
    }

    /// From when `node`'s failover instances may be started elsewhere, if
    /// it stays silent.
    pub fn failover_at(&self, node: &str, leader_since: Duration) -> Duration {
        let since = self
            .last
            .get(node)
            .copied()
            .unwrap_or(leader_since)
            .max(leader_since);
        since + self.timing.failover_after()
    }
}

/// The worker's lease: renewed when the manager quorum acknowledges a
/// heartbeat, valid for `lease` from when that heartbeat was sent.
#[derive(Clone, Debug)]
pub struct Lease {
    timing: Timing,
    valid_until: Option<Duration>,
}

impl Lease {
    pub fn new(timing: Timing) -> Lease {
        Lease {
            timing,
            valid_until: None,
        }
    }

    /// The heartbeat sent at `sent_at` was acknowledged by the quorum.
    pub fn renewed(&mut self, sent_at: Duration) {
        let until = sent_at + self.timing.lease;
        if self.valid_until.is_none_or(|v| until > v) {
            self.valid_until = Some(until);
        }
    }

    /// Whether the worker may keep its failover instances running at `now`.
    /// When false it must stop them, within `stop_grace`.
    pub fn valid(&self, now: Duration) -> bool {
        self.valid_until.is_some_and(|v| now < v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn default_timing_fails_over_within_five_seconds() {
        let t = Timing::default();
        assert!(
            t.failover_after() <= Duration::from_millis(3000),
            "{:?}",
            t.failover_after()
        );
        assert!(t.heartbeat < t.down_after);
    }

    #[test]
    fn derived_timing_is_the_documented_one_and_stays_safe() {
        let s = Duration::from_secs;
        assert_eq!(Timing::derive(s(1), s(3)), Ok(Timing::default()));
        assert!(Timing::derive(s(3), s(3)).is_err());
        assert!(Timing::derive(Duration::ZERO, s(3)).is_err());
        for (hb, down) in [(100, 350), (500, 1_000), (1_000, 10_000), (2_000, 3_000)] {
            let t = Timing::derive(Duration::from_millis(hb), Duration::from_millis(down))
                .expect("valid");
            // The node fences before the leader calls it down, and gets
            // at least one heartbeat's worth of lease.
            assert!(t.lease < t.down_after, "{t:?}");
            assert!(t.lease >= t.heartbeat, "{t:?}");
            assert!(t.stop_grace <= t.down_after / 3, "{t:?}");
        }
    }

    #[test]
    fn a_node_silent_for_a_whole_leadership_shows_down() {
        use berth_model::cluster::NodeState as Shown;
        let t = Timing::default();
        let mut l = Liveness::new(t);
        let s = Duration::from_secs;
        assert_eq!(l.shown_state("n1", s(12), None), Shown::Unknown);
        assert_eq!(l.shown_state("n1", s(12), Some(s(10))), Shown::Unknown);
        assert_eq!(l.shown_state("n1", s(13), Some(s(10))), Shown::Down);
        l.observe("n1", s(12));
        assert_eq!(l.shown_state("n1", s(13), Some(s(10))), Shown::Up);
        assert_eq!(l.shown_state("n1", s(15), Some(s(10))), Shown::Down);
    }

    #[test]
    fn states_follow_heartbeats() {
        let t = Timing::default();
        let mut l = Liveness::new(t);
        let s = Duration::from_secs;
        assert_eq!(l.state("n1", s(0)), NodeState::Unknown);
        l.observe("n1", s(10));
        assert_eq!(l.state("n1", s(12)), NodeState::Up);
        assert_eq!(l.state("n1", s(13)), NodeState::Down { since: s(10) });
        let free = s(10) + t.failover_after();
        assert_eq!(l.failover_at("n1", s(0)), free);
        assert!(!l.failover_allowed("n1", free - Duration::from_millis(1), s(0)));
        assert!(l.failover_allowed("n1", free, s(0)));
        // A new leader counts from when it took over, if later.
        assert_eq!(l.failover_at("n1", s(20)), s(20) + t.failover_after());
        // A late, older heartbeat does not move time back.
        l.observe("n1", s(9));
        assert_eq!(l.state("n1", s(13)), NodeState::Down { since: s(10) });
    }

    proptest! {
        /// The split-brain invariant: whenever a manager may restart a
        /// node's failover instances elsewhere, that node's lease ran out at
        /// least `stop_grace` earlier, whatever the network delays were.
        /// Both sides' clocks are modelled on one real-time axis; the worker
        /// sends at `sent`, the manager receives at `sent + delay`.
        #[test]
        fn no_failover_before_the_old_owner_fenced(
            sent_ms in 0u64..10_000,
            delay_ms in 0u64..2_000,
            later_ms in 0u64..20_000,
            leader_since_ms in 0u64..10_000,
        ) {
            let t = Timing::default();
            let ms = Duration::from_millis;
            let mut lease = Lease::new(t);
            lease.renewed(ms(sent_ms));
            let mut live = Liveness::new(t);
            live.observe("n1", ms(sent_ms + delay_ms));
            let now = ms(sent_ms + delay_ms + later_ms);
            if live.failover_allowed("n1", now, ms(leader_since_ms)) {
                prop_assert!(!lease.valid(now.saturating_sub(t.stop_grace)),
                    "lease still valid {:?} before a failover at {:?}", t.stop_grace, now);
            }
        }
    }
}
