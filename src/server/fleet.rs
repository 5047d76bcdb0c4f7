//! The HTTP edge's side of the shared state: building it at start (`state.backend`), the
//! request path's read of the online history (embedded: the local store, as before; Redis:
//! under `history_read_budget_ms`, and on failure served without it, `history:unavailable`),
//! and the admin routes `POST /admin/state/sync` (flush and refresh now: the test hook) and
//! `GET /admin/fleet` (every replica's model version and last rollout).

use super::ServiceConfig;
use super::StartError;
use super::error::ApiError;
use super::state::AppState;
use crate::state::Fleet;
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Duration;

/// The shared state for `cfg` (`None` when embedded); connects lazily.
pub fn build(
    cfg: &ServiceConfig,
    registry: &prometheus::Registry,
) -> Result<Option<Arc<Fleet>>, StartError> {
    if cfg.state.backend != crate::state::Backend::Redis {
        return Ok(None);
    }
    let replica =
        crate::state::replica_id::resolve(&cfg.state.redis.replica_id, &cfg.feedback.log.dir)
            .map_err(|e| StartError::State(e.to_string()))?;
    Fleet::new(
        &cfg.state,
        replica,
        registry,
        cfg.bandit.rewards.clone(),
        cfg.feedback.history_per_user,
    )
    .map_err(|e| StartError::State(e.to_string()))
}

/// The user's online history for the request path; `true` when it was unavailable.
pub async fn online_history(st: &AppState, user: Option<&str>) -> (Vec<(String, i64)>, bool) {
    let (Some(fb), Some(user)) = (st.feedback.get(), user) else {
        return (Vec::new(), false);
    };
    match &st.fleet {
        None => (fb.history.recent(user), false),
        Some(fleet) => match fleet.history.recent_within(user).await {
            Ok(h) => (h, false),
            Err(e) => {
                tracing::debug!(error = %e, "online history unavailable; serving without it");
                (Vec::new(), true)
            }
        },
    }
}

fn shared(st: &AppState) -> Result<Arc<Fleet>, ApiError> {
    st.fleet.clone().ok_or(ApiError::NotShared)
}

/// `POST /admin/state/sync`.
#[utoipa::path(
    post,
    path = "/admin/state/sync",
    summary = "Flush the bandit's counters to Redis and install the fleet's totals, wait for the stream to hold every acknowledged event, and check for an announced model, now",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "What was synced", body = Object),
        (status = 401, description = "Missing or wrong token", body = super::openapi::ErrorBody),
        (status = 409, description = "The state backend is embedded", body = super::openapi::ErrorBody),
        (status = 503, description = "The feedback service is not open yet", body = super::openapi::ErrorBody),
    )
)]
pub async fn sync(
    State(st): State<Arc<AppState>>,
    _: super::ops::Admin,
) -> Result<Response, ApiError> {
    let fleet = shared(&st)?;
    let fb = super::feedback::service(&st)?;
    let within = Duration::from_millis(st.cfg.state.redis.command_timeout_ms.max(1) * 5);
    let report = fleet.sync_now(fb, within).await;
    let rollout = super::rollout::check(&st, &fleet).await;
    let catalogue = match super::catalogue::sync_fleet(&st, true).await {
        Ok(merged) => serde_json::json!({ "synced": true, "merged": merged }),
        Err(e) => serde_json::json!({ "synced": false, "error": e }),
    };
    Ok(
        Json(serde_json::json!({ "sync": report, "rollout": rollout, "catalogue": catalogue }))
            .into_response(),
    )
}

/// `GET /admin/fleet`.
#[utoipa::path(
    get,
    path = "/admin/fleet",
    summary = "Every replica's model version and last rollout outcome, from Redis",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The fleet", body = Object),
        (status = 401, description = "Missing or wrong token", body = super::openapi::ErrorBody),
        (status = 409, description = "The state backend is embedded", body = super::openapi::ErrorBody),
        (status = 503, description = "Redis unavailable", body = super::openapi::ErrorBody),
    )
)]
pub async fn view(
    State(st): State<Arc<AppState>>,
    _: super::ops::Admin,
) -> Result<Response, ApiError> {
    let fleet = shared(&st)?;
    super::rollout::report(&st, &fleet).await;
    let replicas = fleet
        .redis
        .fleet()
        .await
        .map_err(|e| ApiError::Storage(e.to_string()))?;
    Ok(
        Json(serde_json::json!({ "replica": fleet.redis.replica, "replicas": replicas }))
            .into_response(),
    )
}
