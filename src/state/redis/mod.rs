//! The Redis plumbing every key family shares: one multiplexed connection (redis-rs's
//! `ConnectionManager`, created lazily so a replica starts while Redis is down, reconnecting by
//! itself), a budget on every command, and the metrics (commands by family and result, their
//! latency, whether Redis answered last). One module per key family builds on [`Redis::run`]:
//! `history` (per-user capped sorted sets), `impressions` (served lists, with a TTL), `stream` (the feedback stream, shipped in log
//! order), `bandit` (fleet counters), `rollout` (model announcements and the fleet view), `catalogue`
//! (the runtime catalogue). A new
//! family is one more module and its key names in `keys`; it never opens its own connection.

pub mod bandit;
pub mod catalogue;
pub mod export;
pub mod history;
pub mod impressions;
pub mod keys;
mod metrics;
pub mod rollout;
pub mod stream;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::RedisConfig;
pub use keys::Keys;
pub use metrics::RedisMetrics;

/// The key families, as the metrics' bounded `family` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    History,
    Impressions,
    Stream,
    Bandit,
    Rollout,
    Catalogue,
}

impl Family {
    pub const ALL: [Family; 6] = [
        Family::History,
        Family::Impressions,
        Family::Stream,
        Family::Bandit,
        Family::Rollout,
        Family::Catalogue,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Family::History => "history",
            Family::Impressions => "impressions",
            Family::Stream => "stream",
            Family::Bandit => "bandit",
            Family::Rollout => "rollout",
            Family::Catalogue => "catalogue",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("redis: {0}")]
    Command(#[from] redis::RedisError),
    #[error("redis answered something unexpected: {0}")]
    Reply(String),
}

/// Why the Redis layer could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("state.redis.url: {0}")]
    Url(redis::RedisError),
    #[error("redis metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// The shared connection, config, key names and metrics.
pub struct Redis {
    conn: ConnectionManager,
    pub cfg: RedisConfig,
    pub keys: Keys,
    /// This replica's id (stream entries, fleet status, flush positions).
    pub replica: String,
    metrics: RedisMetrics,
    up: AtomicBool,
}

impl Redis {
    /// Prepares the connection without connecting (the first command connects).
    pub fn new(
        cfg: &RedisConfig,
        replica: String,
        registry: &prometheus::Registry,
    ) -> Result<Arc<Self>, SetupError> {
        let client = redis::Client::open(cfg.url.as_str()).map_err(SetupError::Url)?;
        let mcfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(cfg.connect_timeout_ms)))
            .set_response_timeout(Some(Duration::from_millis(cfg.command_timeout_ms)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(cfg.connect_timeout_ms));
        let conn =
            ConnectionManager::new_lazy_with_config(client, mcfg).map_err(SetupError::Url)?;
        Ok(Arc::new(Self {
            conn,
            keys: Keys::new(&cfg.key_prefix),
            cfg: cfg.clone(),
            replica,
            metrics: RedisMetrics::register(registry)?,
            up: AtomicBool::new(false),
        }))
    }

    /// Runs one command (or script, or pipeline) of `family` under `budget`, counting it.
    pub async fn run<T, F, Fut>(
        &self,
        family: Family,
        budget: Duration,
        f: F,
    ) -> Result<T, RedisError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let start = Instant::now();
        let out = match tokio::time::timeout(budget, f(self.conn.clone())).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(RedisError::Command(e)),
            Err(_) => Err(RedisError::Timeout(budget)),
        };
        let result = match &out {
            Ok(_) => "ok",
            Err(RedisError::Timeout(_)) => "timeout",
            Err(_) => "error",
        };
        self.metrics.observe(family, result, start.elapsed());
        self.up.store(out.is_ok(), Ordering::Relaxed);
        self.metrics.up.set(i64::from(out.is_ok()));
        out
    }

    /// The budget of background commands (`state.redis.command_timeout_ms`).
    pub fn command_budget(&self) -> Duration {
        Duration::from_millis(self.cfg.command_timeout_ms)
    }

    /// Whether the last command got an answer.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    pub fn metrics(&self) -> &RedisMetrics {
        &self.metrics
    }
}
