//! One replica's handle on the shared state: the Redis connection and every key family's
//! worker (history reads, the stream shipper, the bandit's fleet sync, the rollout memory),
//! plugged into the feedback service through its hooks. `None` for the embedded backend, so
//! the embedded request path does exactly what it did before.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::Serialize;

use super::redis::bandit::FleetBandit;
use super::redis::catalogue::RedisCatalogue;
use super::redis::history::RedisHistory;
use super::redis::impressions::RedisImpressions;
use super::redis::rollout::RolloutOutcome;
use super::redis::stream::Shipper;
use super::redis::{Redis, RedisError, SetupError};
use super::{Backend, StateConfig};
use crate::feedback::service::FeedbackService;

/// What a replica remembers of rollouts.
#[derive(Debug, Default, Clone)]
pub struct RolloutMemory {
    /// The last announcement handled (loaded, refused or announced by us).
    pub seen: Option<String>,
    pub last: Option<RolloutOutcome>,
}

pub struct Fleet {
    pub redis: Arc<Redis>,
    pub history: Arc<RedisHistory>,
    pub impressions: Arc<RedisImpressions>,
    pub shipper: Arc<Shipper>,
    pub catalogue: Arc<RedisCatalogue>,
    pub bandit: OnceLock<Arc<FleetBandit>>,
    pub rollout: parking_lot::Mutex<RolloutMemory>,
}

/// The answer of a forced sync (`POST /admin/state/sync`).
#[derive(Debug, Serialize)]
pub struct SyncReport {
    pub replica: String,
    pub redis_up: bool,
    /// The bandit flushed its deltas and installed the fleet's totals.
    pub bandit_synced: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bandit_error: Option<String>,
    /// Every acknowledged event is in the stream.
    pub stream_caught_up: bool,
    pub stream_shipped_seq: u64,
    pub log_durable_seq: u64,
}

impl Fleet {
    /// The shared state for `cfg`, or `None` for the embedded backend. Connects lazily.
    pub fn new(
        cfg: &StateConfig,
        replica: String,
        registry: &prometheus::Registry,
        rewards: BTreeMap<String, f64>,
        history_cap: usize,
    ) -> Result<Option<Arc<Self>>, SetupError> {
        if cfg.backend != Backend::Redis {
            return Ok(None);
        }
        let redis = Redis::new(&cfg.redis, replica, registry)?;
        Ok(Some(Arc::new(Self {
            history: Arc::new(RedisHistory::new(Arc::clone(&redis))),
            impressions: Arc::new(RedisImpressions::new(Arc::clone(&redis))),
            shipper: Arc::new(Shipper::new(Arc::clone(&redis), rewards, history_cap)),
            catalogue: Arc::new(RedisCatalogue::new(Arc::clone(&redis))),
            redis,
            bandit: OnceLock::new(),
            rollout: parking_lot::Mutex::new(RolloutMemory::default()),
        })))
    }

    /// Plugs into a feedback service that is not shared yet: its history lives in Redis (no
    /// local copy) and acknowledged feedback is handed to the stream shipper in log order.
    pub fn attach(&self, fb: &mut FeedbackService) {
        fb.history = Arc::clone(&self.history) as _;
        fb.set_replication(Arc::clone(&self.shipper) as _);
        fb.set_shared_impressions(Arc::clone(&self.impressions) as _);
    }

    /// Starts the stream shipper and the bandit's fleet sync for `fb`.
    pub fn start(self: &Arc<Self>, fb: &Arc<FeedbackService>) {
        tokio::spawn(Arc::clone(&self.shipper).run(Arc::clone(fb)));
        let bandit = Arc::new(FleetBandit::new(Arc::clone(&self.redis), &fb.bandit));
        if self.bandit.set(Arc::clone(&bandit)).is_ok() {
            tokio::spawn(bandit.run(Arc::downgrade(fb)));
        }
    }

    /// Flushes and refreshes the bandit now and waits (up to `within`) until the stream holds
    /// every event acknowledged so far: the test hook and ops' "make it visible now".
    pub async fn sync_now(&self, fb: &FeedbackService, within: Duration) -> SyncReport {
        let bandit = match self.bandit.get() {
            Some(b) => b.sync(&fb.bandit).await,
            None => Err(RedisError::Reply(
                "the feedback service is not open yet".into(),
            )),
        };
        let durable = fb.log_stats().durable_seq.unwrap_or(0);
        let caught = self.shipper.wait_caught_up(within).await;
        SyncReport {
            replica: self.redis.replica.clone(),
            redis_up: self.redis.is_up(),
            bandit_synced: bandit.is_ok(),
            bandit_error: bandit.err().map(|e| e.to_string()),
            stream_caught_up: caught,
            stream_shipped_seq: self.shipper.shipped_seq(),
            log_durable_seq: durable,
        }
    }
}
