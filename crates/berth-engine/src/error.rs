#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("docker daemon at {socket} is not answering: {reason}")]
    Unreachable { socket: String, reason: String },
    #[error("image {image} not found locally and could not be pulled: {reason}")]
    ImageUnavailable { image: String, reason: String },
    #[error("docker {op}: {message}")]
    Docker { op: String, message: String },
    #[error("private docker daemon: {0}")]
    PrivateDaemon(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl EngineError {
    pub(crate) fn docker(op: &str, e: bollard::errors::Error) -> EngineError {
        let message = match e {
            bollard::errors::Error::DockerResponseServerError { message, .. } => message,
            other => other.to_string(),
        };
        EngineError::Docker {
            op: op.to_string(),
            message,
        }
    }

    /// True when Docker answered 404 for the object.
    pub fn is_not_found(&self) -> bool {
        matches!(self, EngineError::Docker { message, .. } if message.contains("No such"))
    }
}
