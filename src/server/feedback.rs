//! `POST /feedback` and `POST /feedback/batch`: validate, make durable, then answer 202. A 202
//! means the event is on disk (fsync'd, group-committed with concurrent requests).

use super::error::ApiError;
use super::state::AppState;
use crate::feedback::events::FeedbackIn;
use crate::feedback::service::{FeedbackError, FeedbackService};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// Reads a JSON body with errors in the API's format (415, 413, 400).
fn json_body<T: DeserializeOwned>(
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

fn service(st: &AppState) -> Result<&Arc<FeedbackService>, ApiError> {
    st.feedback
        .get()
        .ok_or(ApiError::FeedbackNotReady("opening the event log"))
}

fn map_err(e: FeedbackError) -> ApiError {
    match e {
        FeedbackError::Invalid(m) => ApiError::bad("invalid_event", m),
        FeedbackError::Storage(m) => ApiError::Storage(m),
        FeedbackError::Replaying => ApiError::NotReady,
    }
}

pub async fn post_one(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let ev: FeedbackIn = json_body(&headers, body)?;
    let ack = service(&st)?.ingest(vec![ev]).await.map_err(map_err)?;
    Ok((StatusCode::ACCEPTED, Json(ack)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch {
    events: Vec<FeedbackIn>,
}

pub async fn post_batch(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let batch: Batch = json_body(&headers, body)?;
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
pub async fn bandit_stats(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !super::ops::authorized(&headers, &st.cfg.server.admin_token) {
        return Err(ApiError::Unauthorized);
    }
    let stats = service(&st)?.bandit_stats();
    Ok(Json(serde_json::json!({ "arms": stats })).into_response())
}
