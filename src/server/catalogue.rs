//! The runtime catalogue at the edge: `POST /admin/catalogue` (bearer: add or update items,
//! take them down, bring them back; 202 once durable, and the overlay the next request reads
//! already holds the change), `GET /admin/catalogue` (what the overlay holds), and the overlay
//! itself: derived from the feedback service's change set and the serving engine, rebuilt
//! when either changes and swapped whole, like the engine.

use super::error::ApiError;
use super::state::AppState;
use crate::catalogue::{Change, Overlay};
use crate::pipeline::Engine;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// The overlay one engine serves with, and which engine and change-set version it reflects.
pub struct LiveOverlay {
    engine: usize,
    version: u64,
    pub overlay: Option<Arc<Overlay>>,
}

impl Default for LiveOverlay {
    fn default() -> Self {
        Self {
            engine: 0,
            version: u64::MAX,
            overlay: None,
        }
    }
}

fn engine_key(engine: &Arc<Engine>) -> usize {
    Arc::as_ptr(engine) as usize
}

impl AppState {
    /// The overlay for `engine` (`None` when nothing was added or taken down): cached, and
    /// rebuilt here only if a change or a reload has not been folded in yet (the admin route
    /// and the reload rebuild it before they answer).
    pub fn overlay_for(&self, engine: &Arc<Engine>) -> Option<Arc<Overlay>> {
        let version = self.feedback.get().map_or(0, |fb| fb.catalogue_version());
        let live = self.overlay.load();
        if live.engine == engine_key(engine) && live.version == version {
            return live.overlay.clone();
        }
        drop(live);
        self.rebuild_overlay(engine)
    }

    /// Rebuilds the overlay for `engine` from the current change set and swaps it in.
    pub fn rebuild_overlay(&self, engine: &Arc<Engine>) -> Option<Arc<Overlay>> {
        let _guard = self.overlay_lock.lock();
        let fb = self.feedback.get();
        let version = fb.map_or(0, |fb| fb.catalogue_version());
        let live = self.overlay.load();
        if live.engine == engine_key(engine) && live.version == version {
            return live.overlay.clone();
        }
        let set = fb.map(|fb| fb.catalogue_snapshot()).unwrap_or_default();
        let overlay = (!set.is_empty())
            .then(|| Overlay::build(&engine.model, &engine.feature_vectors, &set, version))
            .filter(|o| !o.is_empty())
            .map(Arc::new);
        self.metrics.set_overlay(overlay.as_deref());
        self.overlay.store(Arc::new(LiveOverlay {
            engine: engine_key(engine),
            version,
            overlay: overlay.clone(),
        }));
        overlay
    }

    /// Rebuilds the overlay for the serving engine, off the async threads.
    pub async fn refresh_overlay(self: &Arc<Self>) {
        let Ok(engine) = self.current() else { return };
        let st = Arc::clone(self);
        let _ = tokio::task::spawn_blocking(move || st.rebuild_overlay(&engine)).await;
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CatalogueRequest {
    /// Applied in order; each is idempotent per item id.
    #[schema(value_type = Vec<Object>, min_items = 1)]
    changes: Vec<Change>,
}

/// `POST /admin/catalogue`.
#[utoipa::path(
    post,
    path = "/admin/catalogue",
    summary = "Add or update items (with features), take items down or restore them, without retraining; 202 once durable",
    security(("bearer" = [])),
    request_body = CatalogueRequest,
    responses(
        (status = 202, description = "Durably recorded; the next request sees it", body = Object),
        (status = 400, description = "Invalid change (none recorded)", body = super::openapi::ErrorBody),
        (status = 401, description = "Missing or wrong token", body = super::openapi::ErrorBody),
        (status = 413, description = "Body too large", body = super::openapi::ErrorBody),
        (status = 415, description = "Not JSON", body = super::openapi::ErrorBody),
        (status = 503, description = "Storage unavailable or not ready", body = super::openapi::ErrorBody),
    )
)]
pub async fn change(
    State(st): State<Arc<AppState>>,
    _: super::ops::Admin,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: CatalogueRequest = super::feedback::json_body(&headers, body)?;
    let fb = super::feedback::service(&st)?;
    let ack = fb
        .change_catalogue(req.changes)
        .await
        .map_err(|e| match e {
            crate::feedback::service::FeedbackError::Invalid(m) => {
                ApiError::bad("invalid_change", m)
            }
            other => super::feedback::map_err(other),
        })?;
    // The next request reads the new overlay: it is built before the 202.
    st.refresh_overlay().await;
    let shared = match &st.fleet {
        None => None,
        Some(fleet) => Some(match fleet.catalogue.publish(&ack.stamped).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "catalogue change not shared yet; the next sync retries");
                fleet.catalogue.mark_dirty();
                false
            }
        }),
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "accepted": ack.accepted,
            "changed": ack.changed,
            "last_seq": ack.last_seq,
            "shared": shared,
        })),
    )
        .into_response())
}

/// `GET /admin/catalogue`.
#[utoipa::path(
    get,
    path = "/admin/catalogue",
    summary = "What the runtime catalogue holds over the serving bundle",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Counts", body = Object),
        (status = 401, description = "Missing or wrong token", body = super::openapi::ErrorBody),
        (status = 503, description = "Not ready", body = super::openapi::ErrorBody),
    )
)]
pub async fn view(
    State(st): State<Arc<AppState>>,
    _: super::ops::Admin,
) -> Result<Response, ApiError> {
    let engine = st.current()?;
    let fb = super::feedback::service(&st)?;
    let set = fb.catalogue_snapshot();
    let overlay = st.overlay_for(&engine);
    let o = overlay.as_deref();
    Ok(Json(json!({
        "model_version": engine.version(),
        "version": fb.catalogue_version(),
        "entries": set.len(),
        "added_served": o.map_or(0, Overlay::n_added),
        "taken_down_bundle_items": o.map_or(0, |o| o.taken_down.len()),
        "covered_by_bundle": o.map_or(0, |o| o.covered),
        "retrain_advised_above": ADVISE_RETRAIN_ABOVE,
    }))
    .into_response())
}

/// Added items past which retraining is advised: they are exact-scanned per request for the
/// exposure slots, and none of them has learned vectors or ranker features.
pub const ADVISE_RETRAIN_ABOVE: usize = 10_000;

/// One catalogue sync with the fleet: merge what other replicas changed (and re-publish ours
/// after a failed write), then fold it into the overlay. `force` reads the hashes even if the
/// version did not move.
pub async fn sync_fleet(st: &Arc<AppState>, force: bool) -> Result<usize, String> {
    let (Some(fleet), Some(fb)) = (st.fleet.clone(), st.feedback.get().cloned()) else {
        return Ok(0);
    };
    if !fb.is_ready() {
        return Ok(0);
    }
    let merged = fleet
        .catalogue
        .sync(
            || fb.catalogue_snapshot(),
            |entries| fb.merge_catalogue(entries),
            force,
        )
        .await
        .map_err(|e| e.to_string())?;
    if merged > 0 {
        st.refresh_overlay().await;
    }
    Ok(merged)
}

/// Merges the fleet's catalogue changes every `state.redis.catalogue_poll_ms`.
pub async fn follow(st: Arc<AppState>) {
    let every = std::time::Duration::from_millis(st.cfg.state.redis.catalogue_poll_ms.max(1));
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = sync_fleet(&st, false).await {
            tracing::debug!(error = %e, "catalogue not synced with the fleet this round");
        }
    }
}
