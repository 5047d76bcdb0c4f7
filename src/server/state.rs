//! Shared server state: the current engine behind an `ArcSwapOption` (each request takes one
//! consistent snapshot; reload prepares a new engine beside the old one and swaps it whole, so
//! requests never wait on a reload), the config, variants and metrics.

use super::ServiceConfig;
use super::error::ApiError;
use super::metrics::Metrics;
use super::variants::Variants;
use crate::pipeline::Engine;
use arc_swap::ArcSwapOption;
use parking_lot::Mutex as PlMutex;
use std::path::PathBuf;
use std::sync::Arc;

pub struct AppState {
    pub engine: ArcSwapOption<Engine>,
    pub cfg: Arc<ServiceConfig>,
    pub variants: Arc<Variants>,
    pub metrics: Arc<Metrics>,
    /// The bundle directory the next plain reload reads.
    pub bundle_dir: PlMutex<PathBuf>,
    /// Serialises reloads (a second concurrent reload gets 409).
    pub reload_lock: tokio::sync::Mutex<()>,
    /// Set once the event log has opened (in the background after the listener starts).
    pub feedback: std::sync::OnceLock<Arc<crate::feedback::service::FeedbackService>>,
    /// The one in-flight limit of the business routes and its bounded queue
    /// (`server.max_concurrency`, `admission_queue`, `admission_queue_timeout_ms`). A
    /// recommendation's permit moves into its pipeline task, so it is held until the CPU work
    /// really ends, even when the answer has already gone out as a budget fallback.
    pub admission: super::admission::AdmissionControl,
    /// The threads every request's pipeline runs on (`server.pipeline_threads`); it outlives
    /// reloads.
    pub pool: crate::pipeline::PipelinePool,
    /// The live state shared with the other replicas (`state.backend = "redis"`); `None` when
    /// embedded.
    pub fleet: Option<Arc<crate::state::Fleet>>,
    /// The runtime catalogue overlay over the serving engine (`catalogue.rs`).
    pub overlay: arc_swap::ArcSwap<super::catalogue::LiveOverlay>,
    pub(super) overlay_lock: PlMutex<()>,
}

impl AppState {
    pub fn new(
        cfg: ServiceConfig,
        variants: Variants,
        metrics: Arc<Metrics>,
        bundle_dir: PathBuf,
    ) -> std::io::Result<Self> {
        let admission = super::admission::AdmissionControl::new(
            cfg.server.in_flight_limit(),
            cfg.server.admission_queue,
            std::time::Duration::from_millis(cfg.server.admission_queue_timeout_ms),
            &metrics,
        );
        let abandoned = metrics.pipeline_abandoned.clone();
        let pool = crate::pipeline::PipelinePool::new(cfg.server.pipeline_threads, move || {
            abandoned.inc()
        })?;
        Ok(Self {
            engine: ArcSwapOption::empty(),
            cfg: Arc::new(cfg),
            variants: Arc::new(variants),
            metrics,
            bundle_dir: PlMutex::new(bundle_dir),
            reload_lock: tokio::sync::Mutex::new(()),
            feedback: std::sync::OnceLock::new(),
            admission,
            pool,
            fleet: None,
            overlay: arc_swap::ArcSwap::from_pointee(Default::default()),
            overlay_lock: PlMutex::new(()),
        })
    }

    pub fn current(&self) -> Result<Arc<Engine>, ApiError> {
        self.engine.load_full().ok_or(ApiError::NotReady)
    }

    pub fn install(&self, engine: Arc<Engine>) {
        let backend = engine.ranker.as_ref().map_or("none", |r| r.backend());
        self.metrics.set_model(engine.version(), backend);
        // The overlay for the new engine first, so no request sees the engine without it
        // (taken-down items stay down across the swap).
        self.rebuild_overlay(&engine);
        self.engine.store(Some(engine));
    }

    /// Loads `dir` (or the configured bundle) beside the serving engine and swaps it in. A bundle
    /// that fails validation, or whose ranker does not load while an engine is serving, is
    /// refused and the old engine keeps serving.
    pub async fn reload(self: &Arc<Self>, dir: Option<PathBuf>) -> Result<String, ApiError> {
        let _guard = self
            .reload_lock
            .try_lock()
            .map_err(|_| ApiError::ReloadInProgress)?;
        let dir = dir.unwrap_or_else(|| self.bundle_dir.lock().clone());
        let state = Arc::clone(self);
        let dir2 = dir.clone();
        let span = tracing::Span::current();
        let has_engine = self.engine.load().is_some();
        let built = tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let engine = Arc::new(Engine::load(
                &dir2,
                state.cfg.serving.clone(),
                &state.cfg.index,
            )?);
            // A replacement bundle that says it has a ranker must bring one that loads: swapping
            // it in would silently drop all traffic to the blend while the old engine ranks. (At
            // start-up there is nothing better: it serves the blend and says `ranker:unavailable`.)
            if has_engine
                && engine.model.manifest.has_ranker
                && let Some(reason) = &engine.ranker_error
            {
                return Err(crate::pipeline::EngineError::RankerUnavailable(
                    reason.clone(),
                ));
            }
            engine.warm_up(state.cfg.server.warmup_requests);
            // The runtime catalogue over the new engine, here off the async threads (the swap
            // below then finds it built).
            state.rebuild_overlay(&engine);
            Ok::<_, crate::pipeline::EngineError>(engine)
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
            Err(e) => {
                let reason = e.to_string();
                self.metrics.reloads.with_label_values(&["refused"]).inc();
                tracing::error!(bundle = %dir.display(), reason = %reason, "bundle refused; the old engine keeps serving");
                Err(ApiError::BundleRefused(reason))
            }
        }
    }
}

/// The feedback loop's view of the catalogue: the serving engine's items and users (the engine
/// that is loaded when the question is asked). Holds the state weakly: the state owns the
/// feedback service that holds this.
pub struct EngineCatalogue(pub std::sync::Weak<AppState>);

impl crate::feedback::catalogue::Catalogue for EngineCatalogue {
    /// The bundle's items; items added at runtime are known to the feedback service itself.
    fn knows_item(&self, item: &str) -> Option<bool> {
        let st = self.0.upgrade()?;
        let engine = st.engine.load();
        engine
            .as_ref()
            .map(|e| e.model.item_index.contains_key(item))
    }

    fn knows_user(&self, user: &str) -> Option<bool> {
        let st = self.0.upgrade()?;
        let engine = st.engine.load();
        engine
            .as_ref()
            .map(|e| e.model.user_index.contains_key(user))
    }
}
