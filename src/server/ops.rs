//! Operations routes: liveness, readiness, metrics, the OpenAPI document and the admin reload
//! (bearer token, constant-time comparison).

use super::error::ApiError;
use super::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use subtle::ConstantTimeEq;

#[utoipa::path(get, path = "/healthz", summary = "Liveness",
    responses((status = 200, description = "The process is alive", body = super::openapi::Alive)))]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "alive" }))
}

/// Ready when a bundle is loaded, the event log replay is done and the log accepts appends
/// (after a disk error it is not ready until the log has reopened).
#[utoipa::path(get, path = "/readyz", summary = "Readiness: a bundle is loaded and warmed up",
    responses(
        (status = 200, description = "Ready", body = super::openapi::Ready),
        (status = 503, description = "Not ready", body = super::openapi::ErrorBody),
    ))]
pub async fn readyz(State(st): State<Arc<AppState>>) -> Response {
    let feedback = match st.feedback.get() {
        None => Err("opening the event log"),
        Some(fb) if !fb.is_ready() => Err("replaying the event log"),
        Some(fb) if !fb.log_healthy() => Err("event log unavailable (disk error); retrying"),
        Some(_) => Ok(()),
    };
    if let Err(reason) = feedback {
        return ApiError::FeedbackNotReady(reason).into_response();
    }
    match st.engine.load_full() {
        Some(e) => Json(json!({
            "status": "ready",
            "model_version": e.version(),
            "items": e.model.n_items(),
            "users": e.model.n_users(),
            "ranker": e.ranker.as_ref().map(|r| r.backend()),
            "ranker_error": e.ranker_error,
            "index": { "cf": e.cf_index.kind(), "content": e.content_index.kind() },
        }))
        .into_response(),
        None => ApiError::NotReady.into_response(),
    }
}

#[utoipa::path(get, path = "/metrics", summary = "Prometheus metrics (text exposition format)",
    responses((status = 200, description = "Metrics", body = String, content_type = "text/plain")))]
pub async fn metrics(State(st): State<Arc<AppState>>) -> Result<Response, ApiError> {
    if let Some(fb) = st.feedback.get() {
        fb.refresh_gauges();
    }
    let text = st
        .metrics
        .render()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

#[utoipa::path(get, path = "/openapi.json", summary = "This document",
    responses((status = 200, description = "OpenAPI 3.1 document", body = Object)))]
pub async fn openapi(State(st): State<Arc<AppState>>) -> Json<serde_json::Value> {
    Json(super::openapi::document(&st.cfg))
}

/// An admin route's guard, as an extractor: the request carries `server.admin_token` as its
/// bearer token, else the route answers 401 before reading anything else.
pub struct Admin;

impl axum::extract::FromRequestParts<Arc<AppState>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        st: &Arc<AppState>,
    ) -> Result<Self, ApiError> {
        if authorized(&parts.headers, &st.cfg.server.admin_token) {
            Ok(Admin)
        } else {
            Err(ApiError::Unauthorized)
        }
    }
}

/// True when `headers` carry `Authorization: Bearer <token>` equal to the configured token
/// (compared in constant time; an empty token authorizes nothing).
pub fn authorized(headers: &HeaderMap, token: &str) -> bool {
    if token.is_empty() {
        return false;
    }
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(given) = given.strip_prefix("Bearer ") else {
        return false;
    };
    bool::from(given.trim().as_bytes().ct_eq(token.as_bytes()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReloadBody {
    bundle: Option<std::path::PathBuf>,
    /// With the Redis state backend, announce the bundle to the other replicas (default true).
    announce: Option<bool>,
}

#[utoipa::path(
    post,
    path = "/admin/reload",
    summary = "Load a bundle beside the serving one and swap it in atomically",
    security(("bearer" = [])),
    request_body(content = Option<super::openapi::ReloadRequest>, content_type = "application/json"),
    responses(
        (status = 200, description = "Reloaded", body = Object),
        (status = 400, description = "Invalid body", body = super::openapi::ErrorBody),
        (status = 401, description = "Missing or wrong token", body = super::openapi::ErrorBody),
        (status = 409, description = "A reload is running", body = super::openapi::ErrorBody),
        (status = 422, description = "Bundle refused; the old one keeps serving", body = super::openapi::ErrorBody),
    )
)]
pub async fn reload(
    State(st): State<Arc<AppState>>,
    _: Admin,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (dir, announce) = if body.iter().all(u8::is_ascii_whitespace) {
        (None, true)
    } else {
        let b: ReloadBody = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad("invalid_json", format!("reload body: {e}")))?;
        (b.bundle, b.announce.unwrap_or(true))
    };
    let version = st.reload(dir).await?;
    let announced = announce && super::rollout::announce(&st, &version).await;
    Ok((
        StatusCode::OK,
        Json(json!({ "status": "reloaded", "model_version": version, "announced": announced })),
    )
        .into_response())
}

pub async fn not_found() -> ApiError {
    ApiError::NotFound
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
