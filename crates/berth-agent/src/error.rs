use berth_cluster::ClusterError;
use berth_engine::EngineError;
use berth_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{0}: no such object")]
    NotFound(String),
    #[error("{0}: no such key")]
    NoKey(String),
    #[error("selector {0:?} matches no object")]
    NoMatch(String),
    #[error("{0}: object already exists")]
    Exists(String),
    /// A config that failed validation; each line is `file:line: reason`.
    #[error("invalid configuration:\n  {}", .0.join("\n  "))]
    Invalid(Vec<String>),
    #[error("{0}")]
    BadInput(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A file berth could not write, full disk included: not bad input.
    #[error("writing {}: {source}", path.display())]
    Write {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("the daemon is shutting down")]
    ShuttingDown,
    /// Everything the cluster refuses or cannot do, no leader included.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

impl AgentError {
    /// HTTP status the API maps this error to.
    pub fn http_status(&self) -> u16 {
        match self {
            AgentError::NotFound(_) | AgentError::NoKey(_) | AgentError::NoMatch(_) => 404,
            AgentError::Exists(_) => 409,
            AgentError::Invalid(_) | AgentError::BadInput(_) => 400,
            AgentError::ShuttingDown => 503,
            AgentError::Cluster(e) => e.http_status(),
            AgentError::Write { source, .. } if source.raw_os_error() == Some(libc_enospc()) => 507,
            AgentError::Store(_)
            | AgentError::Engine(_)
            | AgentError::Io(_)
            | AgentError::Write { .. } => 500,
        }
    }

    /// The error of writing `path`.
    pub fn write(path: &std::path::Path, source: std::io::Error) -> AgentError {
        AgentError::Write {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Seconds after which a retry may succeed, for a `Retry-After` header.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            AgentError::Cluster(ClusterError::NoLeader(_)) | AgentError::ShuttingDown => Some(1),
            _ => None,
        }
    }
}

/// ENOSPC, without a libc dependency for one constant.
const fn libc_enospc() -> i32 {
    28
}
