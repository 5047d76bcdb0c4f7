//! Shared server state: the current engine behind an `ArcSwapOption` (each request takes one
//! consistent snapshot; reload prepares a new engine beside the old one and swaps it whole, so
//! requests never wait on a reload), the config, variants and metrics.

use super::error::ApiError;
use super::metrics::Metrics;
use super::variants::Variants;
use crate::bundle::Model;
use crate::config::Config;
use crate::pipeline::{Engine, Query, Treatment};
use arc_swap::ArcSwapOption;
use parking_lot::Mutex as PlMutex;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct AppState {
    pub engine: ArcSwapOption<Engine>,
    pub cfg: Arc<Config>,
    pub variants: Arc<Variants>,
    pub metrics: Arc<Metrics>,
    /// The bundle directory the next plain reload reads.
    pub bundle_dir: PlMutex<PathBuf>,
    /// Serialises reloads (a second concurrent reload gets 409).
    pub reload_lock: tokio::sync::Mutex<()>,
    pub feedback: Option<Arc<crate::feedback::service::FeedbackService>>,
}

/// Reads, validates and builds an engine from `dir` (blocking: call off the async threads).
pub fn load_engine(dir: &Path, cfg: &Config) -> Result<Engine, String> {
    let model = Model::read(dir).map_err(|e| e.to_string())?;
    let engine = Engine::new(model, cfg.serving.clone(), &cfg.index, Some(dir))
        .map_err(|e| e.to_string())?;
    if let Some(reason) = &engine.ranker_error {
        tracing::warn!(bundle = %dir.display(), reason = %reason, "ranker unavailable; serving with the blend fallback");
    }
    Ok(engine)
}

/// Runs a few internal requests so caches, pools and page faults are paid before traffic.
pub fn warm_up(engine: &Arc<Engine>, requests: usize) {
    let m = &engine.model;
    let t = Treatment::default();
    for k in 0..requests {
        let user = (m.n_users() > 0).then(|| m.user_ids[(k * 7919) % m.n_users()].clone());
        let q = Query {
            user_id: user,
            n: 10,
            exclude_seen: true,
            ..Default::default()
        };
        let _ = engine.recommend(&q, &t);
    }
    let recent = vec![m.item_ids[0].clone()];
    let _ = engine.recommend(
        &Query {
            recent,
            n: 10,
            exclude_seen: true,
            ..Default::default()
        },
        &t,
    );
}

impl AppState {
    pub fn new(
        cfg: Config,
        variants: Variants,
        metrics: Arc<Metrics>,
        bundle_dir: PathBuf,
    ) -> Self {
        Self {
            engine: ArcSwapOption::empty(),
            cfg: Arc::new(cfg),
            variants: Arc::new(variants),
            metrics,
            bundle_dir: PlMutex::new(bundle_dir),
            reload_lock: tokio::sync::Mutex::new(()),
            feedback: None,
        }
    }

    pub fn current(&self) -> Result<Arc<Engine>, ApiError> {
        self.engine.load_full().ok_or(ApiError::NotReady)
    }

    pub fn install(&self, engine: Arc<Engine>) {
        let backend = engine.ranker.as_ref().map_or("none", |r| r.backend());
        self.metrics.set_model(engine.version(), backend);
        self.engine.store(Some(engine));
    }

    /// Loads `dir` (or the configured bundle) beside the serving engine and swaps it in. A bundle
    /// that fails validation is refused and the old engine keeps serving.
    pub async fn reload(self: &Arc<Self>, dir: Option<PathBuf>) -> Result<String, ApiError> {
        let _guard = self
            .reload_lock
            .try_lock()
            .map_err(|_| ApiError::ReloadInProgress)?;
        let dir = dir.unwrap_or_else(|| self.bundle_dir.lock().clone());
        let state = Arc::clone(self);
        let dir2 = dir.clone();
        let built = tokio::task::spawn_blocking(move || {
            let engine = Arc::new(load_engine(&dir2, &state.cfg)?);
            warm_up(&engine, state.cfg.server.warmup_requests);
            Ok::<_, String>(engine)
        })
        .await
        .map_err(|e| ApiError::Internal(format!("reload task failed: {e}")))?;
        match built {
            Ok(engine) => {
                let version = engine.version().to_string();
                self.install(engine);
                *self.bundle_dir.lock() = dir.clone();
                self.metrics.reloads.with_label_values(&["ok"]).inc();
                tracing::info!(bundle = %dir.display(), model_version = %version, "bundle reloaded");
                Ok(version)
            }
            Err(reason) => {
                self.metrics.reloads.with_label_values(&["refused"]).inc();
                tracing::error!(bundle = %dir.display(), reason = %reason, "bundle refused; the old engine keeps serving");
                Err(ApiError::BundleRefused(reason))
            }
        }
    }
}
