//! `POST /feedback` and `POST /feedback/batch`: validate, make durable, then answer 202. A 202
//! means the event is on disk (fsync'd, group-committed with concurrent requests). The admission
//! slot (sized to CPU work) is given back once the body is parsed: the wait for the disk is
//! bounded by the event log's own queue, not by the CPU limit.

use super::admission::Admission;
use super::error::ApiError;
use super::state::AppState;
use crate::feedback::FeedbackAuth;
use crate::feedback::events::FeedbackIn;
use crate::feedback::service::{Ack, FeedbackError, FeedbackService};
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// Reads a JSON body with errors in the API's format (415, 413, 400).
pub(super) fn json_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/json") {
        return Err(ApiError::UnsupportedMediaType);
    }
    let body = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::bad("invalid_body", r.body_text())
        }
    })?;
    serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad("invalid_json", format!("invalid JSON body: {e}")))
}

pub(super) fn service(st: &AppState) -> Result<&Arc<FeedbackService>, ApiError> {
    st.feedback
        .get()
        .ok_or(ApiError::FeedbackNotReady("opening the event log"))
}

/// `feedback.auth = "token"`: the sender must present the shared bearer token.
fn admit(st: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    match st.cfg.feedback.auth {
        FeedbackAuth::Token if !super::ops::authorized(headers, &st.cfg.feedback.token) => {
            Err(ApiError::Unauthorized)
        }
        _ => Ok(()),
    }
}

/// Gives the admission slot back before the wait for the disk.
fn release(admission: Option<Extension<Admission>>) {
    if let Some(Extension(a)) = admission {
        drop(a.take());
    }
}

pub(super) fn map_err(e: FeedbackError) -> ApiError {
    match e {
        FeedbackError::Invalid(m) => ApiError::bad("invalid_event", m),
        FeedbackError::Unauthorized(m) => ApiError::Forbidden(m),
        FeedbackError::Storage(m) => ApiError::Storage(m),
        FeedbackError::Replaying => ApiError::NotReady,
    }
}

/// `POST /feedback`.
#[utoipa::path(
    post,
    path = "/feedback",
    summary = "Record one feedback event; 202 once it is durably on disk",
    request_body = FeedbackIn,
    responses(
        (status = 202, description = "Durably recorded", body = Ack),
        (status = 400, description = "Invalid event", body = super::openapi::ErrorBody),
        (status = 401, description = "feedback.auth = token: missing or wrong bearer token", body = super::openapi::ErrorBody),
        (status = 403, description = "feedback.auth = signed: missing or wrong impression_token", body = super::openapi::ErrorBody),
        (status = 408, description = "Body not received within server.body_read_timeout_ms", body = super::openapi::ErrorBody),
        (status = 413, description = "Body too large", body = super::openapi::ErrorBody),
        (status = 415, description = "Not JSON", body = super::openapi::ErrorBody),
        (status = 503, description = "Overloaded or storage unavailable", body = super::openapi::ErrorBody),
    )
)]
pub async fn post_one(
    State(st): State<Arc<AppState>>,
    admission: Option<Extension<Admission>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    admit(&st, &headers)?;
    let ev: FeedbackIn = json_body(&headers, body)?;
    release(admission);
    let ack = service(&st)?.ingest(vec![ev]).await.map_err(map_err)?;
    Ok((StatusCode::ACCEPTED, Json(ack)).into_response())
}

/// Several events in one durable write (1..=feedback.max_batch).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    #[schema(min_items = 1)]
    events: Vec<FeedbackIn>,
}

/// `POST /feedback/batch`.
#[utoipa::path(
    post,
    path = "/feedback/batch",
    summary = "Record several feedback events in one durable write",
    request_body = Batch,
    responses(
        (status = 202, description = "All events durably recorded", body = Ack),
        (status = 400, description = "Invalid event (none recorded)", body = super::openapi::ErrorBody),
        (status = 401, description = "feedback.auth = token: missing or wrong bearer token", body = super::openapi::ErrorBody),
        (status = 403, description = "feedback.auth = signed: missing or wrong impression_token (none recorded)", body = super::openapi::ErrorBody),
        (status = 408, description = "Body not received within server.body_read_timeout_ms", body = super::openapi::ErrorBody),
        (status = 413, description = "Body too large", body = super::openapi::ErrorBody),
        (status = 415, description = "Not JSON", body = super::openapi::ErrorBody),
        (status = 503, description = "Overloaded or storage unavailable", body = super::openapi::ErrorBody),
    )
)]
pub async fn post_batch(
    State(st): State<Arc<AppState>>,
    admission: Option<Extension<Admission>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    admit(&st, &headers)?;
    let batch: Batch = json_body(&headers, body)?;
    release(admission);
    let max = st.cfg.feedback.max_batch;
    if batch.events.is_empty() || batch.events.len() > max {
        return Err(ApiError::bad(
            "invalid_batch",
            format!("a batch holds 1..={max} events, got {}", batch.events.len()),
        ));
    }
    let ack = service(&st)?.ingest(batch.events).await.map_err(map_err)?;
    Ok((StatusCode::ACCEPTED, Json(ack)).into_response())
}

/// `GET /admin/bandit`: the bandit's statistics per context and arm (admin token required).
#[utoipa::path(
    get,
    path = "/admin/bandit",
    summary = "Bandit statistics per context and arm (pulls, rewards, means)",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Arm statistics", body = Object),
        (status = 401, description = "Missing or wrong token", body = super::openapi::ErrorBody),
        (status = 503, description = "Feedback is not configured", body = super::openapi::ErrorBody),
    )
)]
pub async fn bandit_stats(
    State(st): State<Arc<AppState>>,
    _: super::ops::Admin,
) -> Result<Response, ApiError> {
    let stats = service(&st)?.bandit_stats();
    Ok(Json(serde_json::json!({ "arms": stats })).into_response())
}
