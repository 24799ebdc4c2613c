use berth_engine::EngineError;
use berth_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{0}: no such object")]
    NotFound(String),
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
    #[error("the daemon is shutting down")]
    ShuttingDown,
    /// A cluster operation that does not fit this node's state.
    #[error("{0}")]
    Conflict(String),
    /// Refused: a bad join token, or a node acting beyond its role.
    #[error("{0}")]
    Forbidden(String),
    /// Another node could not be reached or refused.
    #[error("{0}")]
    Cluster(String),
    #[error(transparent)]
    Net(#[from] berth_net::NetError),
}

impl AgentError {
    /// HTTP status the API maps this error to.
    pub fn http_status(&self) -> u16 {
        match self {
            AgentError::NotFound(_) | AgentError::NoMatch(_) => 404,
            AgentError::Exists(_) | AgentError::Conflict(_) => 409,
            AgentError::Cluster(_) => 503,
            AgentError::Forbidden(_) => 403,
            AgentError::Invalid(_) | AgentError::BadInput(_) => 400,
            AgentError::ShuttingDown => 503,
            _ => 500,
        }
    }
}
