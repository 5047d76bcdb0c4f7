//! The HTTP edge: router, layers (request id, metrics, load shedding, body limit, panic guard),
//! start-up (listen first, load and warm the engine, then report ready), SIGHUP reload and
//! graceful shutdown. Handlers stay thin; the pipeline lives in `crate::pipeline`.

pub mod admission;
pub mod catalogue;
pub mod config;
pub mod demo;
pub mod error;
pub mod feedback;
pub mod fleet;
pub mod listener;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod ops;
pub mod params;
pub mod recommend;
pub mod rollout;
pub mod state;
pub mod variants;

pub use config::{ServerConfig, ServiceConfig};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use error::ApiError;
use state::AppState;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The request id of the current request (echoed from `X-Request-Id` or generated).
#[derive(Debug, Clone)]
pub struct RequestId(pub String, pub bool);

impl RequestId {
    /// True when the id came from the client's `X-Request-Id`.
    pub fn from_client(&self) -> bool {
        self.1
    }
}

/// Bounded labels a handler reports for the request metrics.
#[derive(Debug, Clone)]
pub struct RouteLabels {
    pub variant: String,
    pub strategy: &'static str,
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    ApiError::Internal("handler panicked".into()).into_response()
}

/// The business routes (they share the in-flight limit), each with its OpenAPI operation.
fn api_routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(recommend::recommend))
        .routes(routes!(feedback::post_one))
        .routes(routes!(feedback::post_batch))
}

/// Operations and admin routes, each with its OpenAPI operation.
fn ops_routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(ops::reload))
        .routes(routes!(feedback::bandit_stats))
        .routes(routes!(fleet::sync))
        .routes(routes!(catalogue::change, catalogue::view))
        .routes(routes!(fleet::view))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .routes(routes!(ops::openapi))
        .routes(routes!(demo::page))
        .routes(routes!(demo::items))
}

/// Every route with its OpenAPI operation: what [`router`] serves and [`openapi`] documents.
pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    api_routes().merge(ops_routes())
}

/// The full router over `state`. Business routes share one in-flight limit ([`admission`]);
/// operations and admin routes (health, readiness, metrics, reload) do not, so ops can still see
/// and fix an overloaded server.
pub fn router(state: Arc<AppState>) -> Router {
    let api = api_routes().route_layer(axum::middleware::from_fn_with_state(
        Arc::clone(&state),
        admission::admit,
    ));
    let (app, _) = api.merge(ops_routes()).split_for_parts();
    app.fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(DefaultBodyLimit::max(state.cfg.server.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            middleware::observe,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ))
        .with_state(state)
}

/// Installs the JSON (or pretty) tracing subscriber; `RUST_LOG` filters (default `info`).
pub fn init_logging(format: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let _ = if format == "pretty" {
        builder.try_init()
    } else {
        builder.json().with_current_span(true).try_init()
    };
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("variants: {0}")]
    Variants(String),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("feedback: {0}")]
    Feedback(#[from] crate::feedback::service::OpenError),
    #[error("cannot start the pipeline threads: {0}")]
    PipelinePool(std::io::Error),
    #[error("state: {0}")]
    State(String),
}

/// A bound, not yet running server (zero-to-production's `Application`): tests build it on port 0.
pub struct Application {
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
}

impl Application {
    /// Binds the listener and prepares the state; the engine loads in `run_until_stopped`.
    pub async fn build(cfg: ServiceConfig) -> Result<Self, StartError> {
        let variants =
            variants::Variants::load(&cfg.variants_file).map_err(StartError::Variants)?;
        let metrics = Arc::new(metrics::Metrics::new()?);
        let addr = cfg.server.addr.clone();
        let bundle: PathBuf = cfg.server.bundle.clone();
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        let fleet = fleet::build(&cfg, &metrics.registry)?;
        let mut st = AppState::new(cfg, variants, Arc::clone(&metrics), bundle)
            .map_err(StartError::PipelinePool)?;
        st.fleet = fleet;
        Ok(Self {
            listener,
            state: Arc::new(st),
        })
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    pub fn port(&self) -> u16 {
        self.local_addr().map_or(0, |a| a.port())
    }

    pub fn state(&self) -> Arc<AppState> {
        Arc::clone(&self.state)
    }

    /// Serves until `shutdown` resolves, then drains in-flight requests for at most
    /// `server.shutdown_timeout_ms`. The engine loads in the background; `/readyz` says when.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let state = Arc::clone(&self.state);
        // The event log (recovery, snapshot, replay) opens while the listener already serves:
        // `/healthz` answers at once, `/readyz` and feedback wait. A log that refuses to open
        // (damage to acknowledged records) stops the server with the error.
        let (fail_tx, fail_rx) = tokio::sync::oneshot::channel::<String>();
        let opener = Arc::clone(&state);
        tokio::spawn(async move {
            match open_feedback(&opener).await {
                Ok(fb) => fb.run_snapshots().await,
                Err(e) => {
                    tracing::error!(error = %e, "feedback event log did not open; stopping");
                    let _ = fail_tx.send(e);
                }
            }
        });
        let loader = Arc::clone(&state);
        tokio::spawn(async move {
            let t = std::time::Instant::now();
            match loader.reload(None).await {
                Ok(v) => {
                    tracing::info!(model_version = %v, seconds = t.elapsed().as_secs_f64(), "engine ready")
                }
                Err(e) => {
                    tracing::error!(error = %e, "initial bundle load failed; /readyz stays 503 until a reload succeeds")
                }
            }
        });
        if state.fleet.is_some() {
            tokio::spawn(rollout::follow(Arc::clone(&state)));
            tokio::spawn(catalogue::follow(Arc::clone(&state)));
        }
        #[cfg(unix)]
        {
            let hup = Arc::clone(&state);
            tokio::spawn(async move {
                use tokio::signal::unix::{SignalKind, signal};
                let Ok(mut s) = signal(SignalKind::hangup()) else {
                    return;
                };
                while s.recv().await.is_some() {
                    tracing::info!("SIGHUP: reloading the bundle");
                    let _ = hup.reload(None).await;
                }
            });
        }
        let grace = Duration::from_millis(state.cfg.server.shutdown_timeout_ms);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = router(Arc::clone(&state));
        let failure = Arc::new(parking_lot::Mutex::new(None::<String>));
        let failed = Arc::clone(&failure);
        let srv = &state.cfg.server;
        let limits = listener::EdgeLimits {
            max_connections: srv.max_connections,
            header_read_timeout: Duration::from_millis(srv.header_read_timeout_ms),
        };
        let server = listener::serve(self.listener, app, limits, async move {
            tokio::select! {
                _ = shutdown => {}
                Ok(e) = fail_rx => { *failed.lock() = Some(e); }
            }
            tracing::info!("shutdown requested; draining in-flight requests");
            let _ = tx.send(());
        });
        let mut server = std::pin::pin!(server);
        let drained = tokio::select! {
            _ = &mut server => true,
            _ = async { let _ = rx.await; tokio::time::sleep(grace).await } => {
                tracing::warn!("drain timeout reached; exiting with requests still in flight");
                false
            }
        };
        if let Some(fb) = state.feedback.get() {
            fb.close(drained).await;
            // The fleet gets this replica's last bandit deltas (best effort, one round trip).
            if let Some(b) = state.fleet.as_ref().and_then(|f| f.bandit.get())
                && let Err(e) = b.sync(&fb.bandit).await
            {
                tracing::warn!(error = %e, "last bandit flush to redis failed");
            }
        }
        match failure.lock().take() {
            Some(e) => Err(std::io::Error::other(format!("feedback: {e}"))),
            None => Ok(()),
        }
    }
}

/// Opens the feedback service (log recovery, snapshot), publishes it in the state and
/// replays the log after the snapshot.
async fn open_feedback(
    state: &Arc<AppState>,
) -> Result<Arc<crate::feedback::service::FeedbackService>, String> {
    let fb = crate::feedback::service::FeedbackService::open_deferred(
        &state.cfg.feedback,
        &state.cfg.bandit,
        &state.metrics.registry,
    )
    .await
    .map_err(|e| e.to_string())?;
    let mut fb = fb;
    if let Some(fleet) = &state.fleet {
        fleet.attach(&mut fb);
    }
    let fb = Arc::new(fb);
    fb.set_catalogue(Arc::new(state::EngineCatalogue(Arc::downgrade(state))));
    let _ = state.feedback.set(Arc::clone(&fb));
    // The replay keeps history only for catalogue items: it waits for the first engine.
    while state.engine.load().is_none() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let replay = Arc::clone(&fb);
    tokio::task::spawn_blocking(move || replay.replay_pending())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    if let Some(fleet) = &state.fleet {
        fleet.start(&fb);
    }
    Ok(fb)
}

/// Resolves on SIGTERM or ctrl-c.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
