//! The object-wide settings the cluster acts on, read from an object's
//! effective config (where keyword defaults are applied) by the driver
//! that owns their keywords (`berth-drivers`, `default/`).

use serde::{Deserialize, Serialize};

/// `topology`: how many instances run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Topology {
    /// One instance at a time, fenced by the node's lease in a cluster.
    Failover,
    /// Several instances, each on its own node.
    Flex,
}

/// `orchestrate`: what the scheduler does on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Orchestrate {
    No,
    Start,
    Ha,
}

macro_rules! keyword_enum {
    ($t:ty, $kw:literal, $($v:ident = $s:literal),+) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),+ }
            }
        }
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl std::str::FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($s => Ok(Self::$v),)+
                    other => Err(format!(concat!($kw, ": {:?} is not one of {}"), other,
                        [$($s),+].join(", "))),
                }
            }
        }
    };
}

pub(crate) use keyword_enum;

keyword_enum!(Topology, "topology", Failover = "failover", Flex = "flex");
keyword_enum!(
    Orchestrate,
    "orchestrate",
    No = "no",
    Start = "start",
    Ha = "ha"
);

/// What placement and fencing need from an object's config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectSettings {
    pub topology: Topology,
    pub orchestrate: Orchestrate,
    /// Names, globs and `key=value` label selectors of eligible nodes.
    pub nodes: Vec<String>,
    pub flex_target: usize,
    pub priority: i64,
    pub hard_anti_affinity: Vec<String>,
    pub soft_anti_affinity: Vec<String>,
    /// How a change rolls out (`update_*`).
    pub update: crate::deploy::UpdatePolicy,
}

impl ObjectSettings {
    pub fn is_failover(&self) -> bool {
        self.topology == Topology::Failover
    }

    /// How many instances the object wants.
    pub fn instances(&self) -> usize {
        match self.topology {
            Topology::Failover => 1,
            Topology::Flex => self.flex_target,
        }
    }
}

/// A /16 of IPv4 addresses, `10.213.0.0/16` by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BridgePool(pub [u8; 2]);

impl Default for BridgePool {
    fn default() -> Self {
        BridgePool([10, 213])
    }
}

impl std::str::FromStr for BridgePool {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a /16 network such as 10.213.0.0/16");
        let (net, len) = s.split_once('/').ok_or_else(bad)?;
        let ip: core::net::Ipv4Addr = net.parse().map_err(|_| bad())?;
        let o = ip.octets();
        if len != "16" || o[2] != 0 || o[3] != 0 {
            return Err(bad());
        }
        Ok(BridgePool([o[0], o[1]]))
    }
}

impl std::fmt::Display for BridgePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.0.0/16", self.0[0], self.0[1])
    }
}

impl BridgePool {
    /// `10.213`, the first two octets.
    pub fn prefix(&self) -> String {
        format!("{}.{}", self.0[0], self.0[1])
    }
}
