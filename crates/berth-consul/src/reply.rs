//! Answers in Consul's style: JSON bodies with the query meta headers,
//! and errors as plain text with Consul's status codes.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(400, message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(500, message)
    }
}

impl From<std::io::Error> for ApiError {
    fn from(e: std::io::Error) -> ApiError {
        ApiError::internal(e.to_string())
    }
}

impl From<berth_store::StoreError> for ApiError {
    fn from(e: berth_store::StoreError) -> ApiError {
        ApiError::internal(e.to_string())
    }
}

impl From<berth_cluster::ClusterError> for ApiError {
    fn from(e: berth_cluster::ClusterError) -> ApiError {
        ApiError::new(e.http_status(), e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = Response::new(Body::from(self.message));
        *r.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        r
    }
}

/// What a read's headers say about it.
#[derive(Clone, Copy, Debug)]
pub struct Meta {
    pub index: u64,
    pub known_leader: bool,
    pub last_contact_ms: u64,
}

impl Meta {
    pub fn apply(&self, r: &mut Response) {
        let h = r.headers_mut();
        h.insert("X-Consul-Index", HeaderValue::from(self.index.max(1)));
        h.insert(
            "X-Consul-KnownLeader",
            HeaderValue::from_static(if self.known_leader { "true" } else { "false" }),
        );
        h.insert(
            "X-Consul-LastContact",
            HeaderValue::from(self.last_contact_ms),
        );
    }
}

pub fn json<T: Serialize>(v: &T) -> Response {
    match serde_json::to_vec(v) {
        Ok(body) => {
            let mut r = Response::new(Body::from(body));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        }
        Err(e) => ApiError::internal(e.to_string()).into_response(),
    }
}

pub fn json_meta<T: Serialize>(v: &T, meta: Meta) -> Response {
    let mut r = json(v);
    meta.apply(&mut r);
    r
}

/// A 404 that still carries the index, so a client can block on the key.
pub fn not_found(meta: Meta) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::NOT_FOUND;
    meta.apply(&mut r);
    r
}

pub type ApiResult = Result<Response, ApiError>;
