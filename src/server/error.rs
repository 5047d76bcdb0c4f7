//! The one mapping from failures to HTTP: every error a handler can return becomes a JSON body
//! `{"error":{"code","message"}}` with a stable code. Internal details are logged, never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A parameter or body the client sent is invalid; `code` is stable, e.g. `invalid_n`.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// The trust model refused a feedback event (a missing or wrong `impression_token`).
    #[error("{0}")]
    Forbidden(String),
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("query string too long")]
    UriTooLong,
    #[error("the request body did not arrive in time")]
    RequestTimeout,
    #[error("unsupported media type: send application/json")]
    UnsupportedMediaType,
    #[error("server overloaded, retry later")]
    Overloaded,
    #[error("no model is loaded yet")]
    NotReady,
    /// The feedback state is not serving yet (log replay) or the log is failing (disk error).
    #[error("{0}")]
    FeedbackNotReady(&'static str),
    /// A bundle given to reload was refused; the old engine keeps serving.
    #[error("bundle refused: {0}")]
    BundleRefused(String),
    #[error("a reload is already running")]
    ReloadInProgress,
    /// Storage failure (feedback log): the event was NOT acknowledged.
    #[error("storage unavailable")]
    Storage(String),
    #[error("internal error")]
    Internal(String),
    /// A shared-state route on a replica whose state backend is embedded.
    #[error("this replica's state backend is embedded (state.backend = \"embedded\")")]
    NotShared,
}

impl ApiError {
    pub fn bad(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }

    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::UriTooLong => (StatusCode::URI_TOO_LONG, "uri_too_long"),
            ApiError::RequestTimeout => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            ApiError::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            ApiError::NotReady | ApiError::FeedbackNotReady(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "not_ready")
            }
            ApiError::BundleRefused(_) => (StatusCode::UNPROCESSABLE_ENTITY, "bundle_refused"),
            ApiError::ReloadInProgress => (StatusCode::CONFLICT, "reload_in_progress"),
            ApiError::Storage(_) => (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            ApiError::NotShared => (StatusCode::CONFLICT, "state_not_shared"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        let message = match &self {
            ApiError::Storage(detail) | ApiError::Internal(detail) => {
                tracing::error!(error = %detail, code, "request failed");
                self.to_string()
            }
            ApiError::BundleRefused(detail) => format!("bundle refused: {detail}"),
            other => other.to_string(),
        };
        let mut resp = (
            status,
            axum::Json(json!({ "error": { "code": code, "message": message } })),
        )
            .into_response();
        if matches!(
            self,
            ApiError::Overloaded
                | ApiError::NotReady
                | ApiError::FeedbackNotReady(_)
                | ApiError::Storage(_)
        ) {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if matches!(self, ApiError::Unauthorized) {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}
