//! Query parameters, read as Consul reads them (Go's `url.Values`: a flag
//! counts when present, whatever its value), and the options every read
//! takes: blocking (`index`, `wait`) and consistency (`stale`,
//! `consistent`).

use crate::reply::ApiError;
use std::time::Duration;

/// Consul's default and longest blocking wait.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(300);
pub const MAX_WAIT: Duration = Duration::from_secs(600);

#[derive(Clone, Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(query: Option<&str>) -> Result<Params, ApiError> {
        match query {
            None | Some("") => Ok(Params::default()),
            Some(q) => serde_urlencoded::from_str::<Vec<(String, String)>>(q)
                .map(Params)
                .map_err(|e| ApiError::bad(format!("Invalid query: {e}"))),
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A number parameter; `what` names it in the error.
    pub fn u64(&self, name: &str, what: &str) -> Result<Option<u64>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad(format!("Invalid {what}: {v:?}"))),
        }
    }

    /// A 400 naming the parameters when more than one of `flags` is given.
    pub fn conflicting(&self, flags: &[&str]) -> Result<(), ApiError> {
        if flags.iter().filter(|f| self.has(f)).count() > 1 {
            let given: Vec<String> = self
                .0
                .iter()
                .map(|(k, v)| {
                    if v.is_empty() {
                        k.clone()
                    } else {
                        format!("{k}={v}")
                    }
                })
                .collect();
            return Err(ApiError::bad(format!(
                "Conflicting flags: {}",
                given.join("&")
            )));
        }
        Ok(())
    }

    pub fn read_opts(&self) -> Result<ReadOpts, ApiError> {
        let stale = self.has("stale");
        let consistent = self.has("consistent");
        if stale && consistent {
            return Err(ApiError::bad(
                "Cannot specify ?stale with ?consistent, conflicting semantics.",
            ));
        }
        let index = self.u64("index", "index")?;
        let wait = match self.get("wait") {
            None => DEFAULT_WAIT,
            Some(w) => crate::duration::parse(w)
                .ok_or_else(|| ApiError::bad(format!("Invalid wait time: {w:?}")))?,
        };
        Ok(ReadOpts {
            index: index.filter(|i| *i > 0),
            wait: wait.min(MAX_WAIT),
            mode: if stale {
                Mode::Stale
            } else if consistent {
                Mode::Consistent
            } else {
                Mode::Default
            },
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Any node that knows a leader answers from its replica.
    Default,
    /// Linearizable: a read barrier at the leader first.
    Consistent,
    /// Answered locally, leader or not.
    Stale,
}

#[derive(Clone, Copy, Debug)]
pub struct ReadOpts {
    /// Block until the result's index passes this one.
    pub index: Option<u64>,
    pub wait: Duration,
    pub mode: Mode,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_count_when_present() {
        let p = Params::parse(Some("recurse&keys=&separator=%2F")).unwrap();
        assert!(p.has("recurse") && p.has("keys"));
        assert_eq!(p.get("separator"), Some("/"));
        assert!(p.conflicting(&["recurse", "keys"]).is_err());
        assert!(p.conflicting(&["recurse", "raw"]).is_ok());
    }

    #[test]
    fn read_options_are_checked() {
        let o = Params::parse(Some("index=7&wait=2s"))
            .unwrap()
            .read_opts()
            .unwrap();
        assert_eq!((o.index, o.wait), (Some(7), Duration::from_secs(2)));
        let o = Params::parse(Some("wait=1h")).unwrap().read_opts().unwrap();
        assert_eq!(o.wait, MAX_WAIT);
        for bad in [
            "index=x",
            "index=-1",
            "wait=5",
            "wait=abc",
            "stale&consistent",
        ] {
            let e = Params::parse(Some(bad)).unwrap().read_opts().unwrap_err();
            assert_eq!(e.status, 400, "{bad}");
        }
    }
}
