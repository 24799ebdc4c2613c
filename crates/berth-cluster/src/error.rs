use berth_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// What is missing, in a phrase: "app/web: no such object".
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadInput(String),
    /// A cluster operation that does not fit this node's state.
    #[error("{0}")]
    Conflict(String),
    /// Refused: a bad join token, or a node acting beyond its role.
    #[error("{0}")]
    Forbidden(String),
    /// A token that does not hold: tampered, expired, revoked, foreign.
    #[error("{0}")]
    Unauthenticated(String),
    /// No leader is known, or none accepted the write in time: an election
    /// is under way or the managers lost their quorum. Worth a retry.
    #[error("no cluster leader is available right now{}; retry in a moment", .0.as_deref().map(|w| format!(" ({w})")).unwrap_or_default())]
    NoLeader(Option<String>),
    /// Another node could not be reached.
    #[error("{0}")]
    Unreachable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Net(#[from] berth_net::NetError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the daemon is shutting down")]
    ShuttingDown,
}

impl ClusterError {
    /// HTTP status the node listener and the API answer this error with.
    pub fn http_status(&self) -> u16 {
        match self {
            ClusterError::NotFound(_) => 404,
            ClusterError::BadInput(_) => 400,
            ClusterError::Conflict(_) => 409,
            ClusterError::Forbidden(_) => 403,
            ClusterError::Unauthenticated(_) => 401,
            ClusterError::NoLeader(_) | ClusterError::ShuttingDown => 503,
            ClusterError::Unreachable(_) => 502,
            ClusterError::Store(_) | ClusterError::Net(_) | ClusterError::Io(_) => 500,
        }
    }

    /// Whether a retry may succeed without anything else changing.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            ClusterError::NoLeader(_) | ClusterError::Unreachable(_)
        )
    }

    /// From a failed node-to-node call: the peer's own answer when it gave
    /// one, so a 403 stays a 403 across a forward.
    pub(crate) fn from_call(e: berth_raft::CallError) -> ClusterError {
        match e {
            berth_raft::CallError::Refused { status, message } => match status {
                400 => ClusterError::BadInput(message),
                403 => ClusterError::Forbidden(message),
                401 => ClusterError::Unauthenticated(message),
                404 => ClusterError::NotFound(message),
                409 => ClusterError::Conflict(message),
                503 => ClusterError::NoLeader(Some(message)),
                _ => ClusterError::Unreachable(message),
            },
            other => ClusterError::Unreachable(other.to_string()),
        }
    }
}
