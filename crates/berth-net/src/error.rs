#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("certificate: {0}")]
    Cert(String),
    #[error("tls: {0}")]
    Tls(String),
    #[error("join token: {0}")]
    Token(String),
    #[error("sealed secret: {0}")]
    Seal(String),
}

impl From<rcgen::Error> for NetError {
    fn from(e: rcgen::Error) -> Self {
        NetError::Cert(e.to_string())
    }
}

impl From<rustls::Error> for NetError {
    fn from(e: rustls::Error) -> Self {
        NetError::Tls(e.to_string())
    }
}
