//! The one health model of an instance (`design/health.md`): Docker's own
//! healthcheck or a check berth runs (`check=http://:8080/health`,
//! `check=tcp://:5432`), both read through the same timing keywords and
//! the same rule, which decides when a container turns unhealthy.
//! Pure: the agent runs the probes and reads the clock.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What berth probes, on the container's own address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckTarget {
    /// `http://:<port>[/path]`: a GET; an answer from 200 to 399 passes.
    Http { port: u16, path: String },
    /// `tcp://:<port>`: a connection that opens passes.
    Tcp { port: u16 },
}

impl CheckTarget {
    pub fn port(&self) -> u16 {
        match self {
            CheckTarget::Http { port, .. } | CheckTarget::Tcp { port } => *port,
        }
    }
}

/// Parses a `check` value. The host part stays empty (the container's
/// address is berth's to find); the port is required.
pub fn parse_check(v: &str) -> Result<CheckTarget, String> {
    let form = "http://:PORT[/path] or tcp://:PORT";
    let (scheme, rest) = v
        .split_once("://")
        .ok_or_else(|| format!("{v:?} is not {form}"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let port = match authority {
        "" | ":" => return Err(format!("{v:?} has no port: write {form}")),
        a if a.starts_with(':') => a[1..]
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("{v:?}: {:?} is not a port (1-65535)", &a[1..]))?,
        _ => {
            return Err(format!(
                "{v:?}: the host is the container's own address; write {form}"
            ))
        }
    };
    match scheme {
        "http" => {
            if path
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
            {
                return Err(format!("{v:?}: the path has a space or a control byte"));
            }
            Ok(CheckTarget::Http {
                port,
                path: if path.is_empty() {
                    "/".into()
                } else {
                    path.into()
                },
            })
        }
        "tcp" if path.is_empty() => Ok(CheckTarget::Tcp { port }),
        "tcp" => Err(format!("{v:?}: a tcp check has no path")),
        _ => Err(format!("{v:?}: unknown scheme {scheme:?}; write {form}")),
    }
}

/// The timing both kinds of check share, as Docker's healthcheck has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthTiming {
    pub interval: Duration,
    pub timeout: Duration,
    /// Failures in a row that make the container unhealthy.
    pub retries: u32,
    /// After a start, failures do not count until this has passed (a
    /// success ends it early).
    pub start_period: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthState {
    Starting,
    Healthy,
    Unhealthy,
}

impl HealthState {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Starting => "starting",
            HealthState::Healthy => "healthy",
            HealthState::Unhealthy => "unhealthy",
        }
    }

    /// Docker's word (`State.Health.Status`).
    pub fn from_docker(s: &str) -> Option<HealthState> {
        match s {
            "starting" => Some(HealthState::Starting),
            "healthy" => Some(HealthState::Healthy),
            "unhealthy" => Some(HealthState::Unhealthy),
            _ => None,
        }
    }
}

/// Who runs an instance's check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthSource {
    Docker,
    Berth,
}

/// An instance's health as its status, the catalog and the ingress see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceHealth {
    pub state: HealthState,
    pub source: HealthSource,
    /// The last check's output.
    #[serde(default)]
    pub output: String,
    /// When it entered this state, in milliseconds since the epoch.
    #[serde(default)]
    pub since_ms: u64,
}

/// What berth does with an instance that stays unhealthy past
/// `health_grace` (`on_unhealthy`), as om3's `monitor_action`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnUnhealthy {
    /// Only report.
    #[default]
    None,
    /// Restart the container; each counts against its `restart` budget.
    Restart,
    /// Move a failover service to another node; on one node, a restart.
    Failover,
}

impl OnUnhealthy {
    pub const WORDS: &'static [&'static str] = &["none", "restart", "failover"];

    pub fn parse(s: &str) -> Option<OnUnhealthy> {
        match s {
            "none" => Some(OnUnhealthy::None),
            "restart" => Some(OnUnhealthy::Restart),
            "failover" => Some(OnUnhealthy::Failover),
            _ => None,
        }
    }
}

/// The rule that turns probe results into a state, as Docker's: failures
/// count only after the start period (or once a probe passed), and
/// `retries` of them in a row make the container unhealthy; one success
/// makes it healthy.
#[derive(Clone, Debug)]
pub struct Tracker {
    timing: HealthTiming,
    state: HealthState,
    failures: u32,
    passed_once: bool,
}

impl Tracker {
    pub fn new(timing: HealthTiming) -> Tracker {
        Tracker {
            timing,
            state: HealthState::Starting,
            failures: 0,
            passed_once: false,
        }
    }

    pub fn state(&self) -> HealthState {
        self.state
    }

    /// One probe's result, `since_start` after the container started.
    /// Returns the new state when it changed.
    pub fn observe(&mut self, passed: bool, since_start: Duration) -> Option<HealthState> {
        let next = if passed {
            self.passed_once = true;
            self.failures = 0;
            HealthState::Healthy
        } else if !self.passed_once && since_start < self.timing.start_period {
            self.state
        } else {
            self.failures = self.failures.saturating_add(1);
            if self.failures >= self.timing.retries.max(1) {
                HealthState::Unhealthy
            } else {
                self.state
            }
        };
        (next != self.state).then(|| {
            self.state = next;
            next
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(retries: u32, start_period: u64) -> HealthTiming {
        HealthTiming {
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            retries,
            start_period: Duration::from_secs(start_period),
        }
    }

    #[test]
    fn a_check_needs_a_port_and_a_known_scheme() {
        assert_eq!(
            parse_check("http://:8080/health"),
            Ok(CheckTarget::Http {
                port: 8080,
                path: "/health".into()
            })
        );
        assert_eq!(
            parse_check("http://:80"),
            Ok(CheckTarget::Http {
                port: 80,
                path: "/".into()
            })
        );
        assert_eq!(
            parse_check("tcp://:5432"),
            Ok(CheckTarget::Tcp { port: 5432 })
        );
        for bad in [
            "http:///health",
            "http://",
            "http://:/x",
            "tcp://",
            "http://:0/",
            "http://:70000/",
            "http://db:80/",
            "tcp://:5432/x",
            "ftp://:21",
            "/health",
            "http://:80/a b",
        ] {
            assert!(parse_check(bad).is_err(), "{bad} was taken");
        }
        assert!(parse_check("http:///health")
            .unwrap_err()
            .contains("no port"));
    }

    #[test]
    fn failures_turn_unhealthy_only_after_retries_in_a_row() {
        let mut t = Tracker::new(timing(3, 0));
        let s = Duration::from_secs(10);
        assert_eq!(t.observe(true, s), Some(HealthState::Healthy));
        assert_eq!(t.observe(false, s), None);
        assert_eq!(t.observe(false, s), None);
        assert_eq!(t.observe(true, s), None);
        assert_eq!(t.observe(false, s), None);
        assert_eq!(t.observe(false, s), None);
        assert_eq!(t.observe(false, s), Some(HealthState::Unhealthy));
        assert_eq!(t.observe(false, s), None);
        assert_eq!(t.observe(true, s), Some(HealthState::Healthy));
    }

    #[test]
    fn the_start_period_forgives_failures_until_a_first_success() {
        let mut t = Tracker::new(timing(1, 30));
        assert_eq!(t.observe(false, Duration::from_secs(5)), None);
        assert_eq!(t.state(), HealthState::Starting);
        assert_eq!(
            t.observe(false, Duration::from_secs(31)),
            Some(HealthState::Unhealthy)
        );
        let mut t = Tracker::new(timing(1, 30));
        t.observe(true, Duration::from_secs(1));
        assert_eq!(
            t.observe(false, Duration::from_secs(2)),
            Some(HealthState::Unhealthy)
        );
    }
}
