//! What the watchdog knows and decides, without I/O: the kill deadline, the
//! guarded containers, and when it may exit.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// A container id the watchdog accepts: 64 lowercase hex digits. Anything
/// shorter could match unrelated cgroup paths.
pub fn valid_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// One line from the agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Msg {
    /// The lease was renewed: kill guarded containers at `kill_at_ns`
    /// (CLOCK_BOOTTIME) unless renewed again. Deadlines only move forward.
    Lease { kill_at_ns: u64 },
    /// A failover container is about to start (or runs) here.
    Guard { id: String },
    /// The node left its cluster: nothing is fenced any more.
    Disarm,
}

/// The watchdog's answer to one message: whether it took it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl From<Result<(), String>> for Ack {
    fn from(r: Result<(), String>) -> Ack {
        match r {
            Ok(()) => Ack {
                ok: true,
                error: None,
            },
            Err(e) => Ack {
                ok: false,
                error: Some(e),
            },
        }
    }
}

impl Ack {
    pub fn line(&self) -> String {
        let mut s = serde_json::to_string(self).unwrap_or_else(|_| r#"{"ok":false}"#.into());
        s.push('\n');
        s
    }
}

/// Guarded ids with no process, last guarded this long ago, are forgotten.
pub const FORGET_AFTER: Duration = Duration::from_secs(30);
/// With no agent connected and nothing left to enforce, the watchdog exits
/// after this long.
pub const IDLE_EXIT: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
pub struct State {
    kill_at: Option<Duration>,
    /// Container id -> when it was last guarded.
    guarded: BTreeMap<String, Duration>,
    agents: usize,
    /// Since when no agent is connected.
    alone_since: Option<Duration>,
}

impl State {
    pub fn new(now: Duration) -> State {
        State {
            alone_since: Some(now),
            ..Default::default()
        }
    }

    /// Applies one message; an invalid container id is refused.
    pub fn apply(&mut self, msg: Msg, now: Duration) -> Result<(), String> {
        match msg {
            Msg::Lease { kill_at_ns } => {
                let at = Duration::from_nanos(kill_at_ns);
                if self.kill_at.is_none_or(|k| at > k) {
                    self.kill_at = Some(at);
                }
            }
            Msg::Guard { id } => {
                if !valid_id(&id) {
                    return Err(format!("refused container id {id:?}"));
                }
                self.guarded.insert(id, now);
            }
            Msg::Disarm => {
                self.kill_at = None;
                self.guarded.clear();
            }
        }
        Ok(())
    }

    pub fn connected(&mut self) {
        self.agents += 1;
        self.alone_since = None;
    }

    pub fn disconnected(&mut self, now: Duration) {
        self.agents = self.agents.saturating_sub(1);
        if self.agents == 0 {
            self.alone_since = Some(now);
        }
    }

    /// The containers to kill now: every guarded one once the deadline
    /// passed. They are forgotten; a renewed agent guards again what it
    /// restarts.
    pub fn due(&mut self, now: Duration) -> Vec<String> {
        match self.kill_at {
            Some(at) if now >= at && !self.guarded.is_empty() => {
                std::mem::take(&mut self.guarded).into_keys().collect()
            }
            _ => Vec::new(),
        }
    }

    /// Forgets guarded ids that have no process (`alive` says which do)
    /// and were not guarded recently: stopped or removed containers.
    pub fn forget_dead(&mut self, now: Duration, alive: impl Fn(&str) -> bool) {
        self.guarded
            .retain(|id, at| alive(id) || now.saturating_sub(*at) < FORGET_AFTER);
    }

    pub fn guarded(&self) -> impl Iterator<Item = &str> {
        self.guarded.keys().map(String::as_str)
    }

    pub fn kill_at(&self) -> Option<Duration> {
        self.kill_at
    }

    /// No agent for `IDLE_EXIT`, and nothing a deadline still protects.
    pub fn may_exit(&self, now: Duration) -> bool {
        let alone = self
            .alone_since
            .is_some_and(|t| now.saturating_sub(t) >= IDLE_EXIT);
        alone && (self.guarded.is_empty() || self.kill_at.is_none())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(c: char) -> String {
        std::iter::repeat_n(c, 64).collect()
    }
    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }
    fn lease(at: u64) -> Msg {
        Msg::Lease {
            kill_at_ns: s(at).as_nanos() as u64,
        }
    }

    #[test]
    fn kills_guarded_containers_once_the_deadline_passes() {
        let mut st = State::new(s(0));
        st.apply(lease(10), s(1)).unwrap();
        st.apply(Msg::Guard { id: id('a') }, s(1)).unwrap();
        assert!(st.due(s(9)).is_empty());
        assert_eq!(st.due(s(10)), vec![id('a')]);
        assert!(st.due(s(11)).is_empty(), "killed once, then forgotten");
    }

    #[test]
    fn renewals_only_extend_and_disarm_clears() {
        let mut st = State::new(s(0));
        st.apply(lease(10), s(0)).unwrap();
        st.apply(lease(5), s(0)).unwrap();
        assert_eq!(st.kill_at(), Some(s(10)));
        st.apply(Msg::Guard { id: id('b') }, s(0)).unwrap();
        st.apply(Msg::Disarm, s(1)).unwrap();
        assert!(st.due(s(20)).is_empty());
        assert_eq!(st.kill_at(), None);
    }

    #[test]
    fn a_guard_after_expiry_is_killed_at_once() {
        let mut st = State::new(s(0));
        st.apply(lease(2), s(0)).unwrap();
        st.apply(Msg::Guard { id: id('c') }, s(3)).unwrap();
        assert_eq!(st.due(s(3)), vec![id('c')]);
    }

    #[test]
    fn refuses_ids_that_could_match_other_cgroups() {
        let mut st = State::new(s(0));
        for bad in ["", "abc", &id('A'), &format!("{}/", &id('a')[..63])] {
            assert!(
                st.apply(Msg::Guard { id: bad.into() }, s(0)).is_err(),
                "{bad:?}"
            );
        }
        assert_eq!(st.guarded().count(), 0);
    }

    #[test]
    fn forgets_only_dead_and_old_ids() {
        let mut st = State::new(s(0));
        st.apply(Msg::Guard { id: id('a') }, s(0)).unwrap();
        st.apply(Msg::Guard { id: id('b') }, s(0)).unwrap();
        st.apply(Msg::Guard { id: id('c') }, s(100)).unwrap();
        let a = id('a');
        st.forget_dead(s(100), |x| x == a);
        let left: Vec<&str> = st.guarded().collect();
        assert_eq!(left, vec![id('a').as_str(), id('c').as_str()]);
    }

    #[test]
    fn exits_only_when_alone_and_nothing_is_protected() {
        let mut st = State::new(s(0));
        st.connected();
        st.apply(lease(100), s(0)).unwrap();
        st.apply(Msg::Guard { id: id('a') }, s(0)).unwrap();
        st.disconnected(s(1));
        assert!(!st.may_exit(s(50)), "a deadline still protects a container");
        assert_eq!(st.due(s(100)).len(), 1);
        assert!(st.may_exit(s(100)));
        st.connected();
        assert!(!st.may_exit(s(200)));
    }

    #[test]
    fn answers_are_one_json_line() {
        assert_eq!(Ack::from(Ok(())).line(), "{\"ok\":true}\n");
        let refused: Ack = serde_json::from_str(&Ack::from(Err("bad id".into())).line()).unwrap();
        assert_eq!(refused.error.as_deref(), Some("bad id"));
        assert!(!refused.ok);
    }

    #[test]
    fn messages_are_one_json_line() {
        let line = serde_json::to_string(&lease(1)).unwrap();
        assert_eq!(line, r#"{"op":"lease","kill_at_ns":1000000000}"#);
        let back: Msg = serde_json::from_str(r#"{"op":"disarm"}"#).unwrap();
        assert_eq!(back, Msg::Disarm);
    }
}
