//! The `[state]` section: the backend switch and `[state.redis]` (URL, timeouts, key prefix,
//! and the TTL and cap of every key family, so Redis memory stays bounded).

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// Everything in this process (the default).
    #[default]
    Embedded,
    /// Online history, bandit statistics, the feedback stream and rollouts shared in Redis.
    Redis,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    pub backend: Backend,
    pub redis: RedisConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port/db` (or `rediss://` with TLS support built in).
    pub url: String,
    /// Prefix of every key this service writes, so several deployments can share one Redis.
    pub key_prefix: String,
    /// This replica's name in the stream and the fleet view; empty = a random id generated
    /// once and kept beside the event log (`replica.id`), so it follows the log's sequence
    /// numbers across restarts.
    pub replica_id: String,
    /// Opening a connection gives up after this.
    pub connect_timeout_ms: u64,
    /// A background command (stream, bandit flush, rollout) gives up after this.
    pub command_timeout_ms: u64,
    /// The request path's read of the online history gives up after this: the request is
    /// served without online history and `degraded` says `history:unavailable`.
    pub history_read_budget_ms: u64,
    /// A feedback post waits at most this long, after its fsync, for its events to reach Redis
    /// (history and stream); past it the 202 rests on the local log alone and the events are
    /// shipped when Redis answers again.
    pub feedback_wait_ms: u64,
    /// A user's history list expires this long after their last positive event.
    pub history_ttl_secs: u64,
    /// Writing a served list to Redis before the response (and reading one another replica
    /// served, when feedback names it) gives up after this: the list is then attributable only
    /// on the replica that served it.
    #[serde(default = "default_impression_budget_ms")]
    pub impression_budget_ms: u64,
    /// A served list in Redis expires after this (feedback later than that is unattributed on
    /// other replicas).
    #[serde(default = "default_impressions_ttl_secs")]
    pub impressions_ttl_secs: u64,
    /// Length cap of the feedback stream (exact trimming: it never holds more).
    pub stream_maxlen: u64,
    /// The stream (and each replica's shipped position) expires after this long without a write.
    pub stream_ttl_secs: u64,
    /// Events per shipping round trip.
    pub ship_batch: usize,
    /// Acknowledged events waiting to be shipped at most; beyond it they are shipped from the
    /// local log (catch-up) instead of from memory.
    pub ship_queue: usize,
    /// Bandit counters are flushed (atomic increments) and the local snapshot refreshed this often.
    pub bandit_flush_ms: u64,
    /// The bandit hash expires after this long without a flush.
    pub bandit_ttl_secs: u64,
    /// Followers check for an announced model this often (and refresh their fleet status).
    pub rollout_poll_ms: u64,
    /// A replica's fleet status entry is dropped when older than this.
    pub replica_ttl_secs: u64,
    /// Replicas check for runtime catalogue changes made elsewhere this often: the bound on
    /// how long a takedown on one replica takes to reach the others (plus one command).
    #[serde(default = "default_catalogue_poll_ms")]
    pub catalogue_poll_ms: u64,
}

fn default_catalogue_poll_ms() -> u64 {
    1000
}

fn default_impression_budget_ms() -> u64 {
    5
}

fn default_impressions_ttl_secs() -> u64 {
    3600
}

#[derive(Debug, thiserror::Error)]
pub enum StateConfigError {
    #[error("state.redis.{0} must be > 0")]
    Zero(&'static str),
    #[error("state.redis.url {0:?} is not a redis:// or rediss:// URL")]
    Url(String),
    #[error(
        "bandit.discount is not supported with state.backend = \"redis\": discounted statistics are not sums that replicas can add up"
    )]
    Discount,
}

impl StateConfig {
    /// `discounted` = the bandit discounts its statistics (which fleet sums cannot express).
    pub fn validate(&self, discounted: bool) -> Result<(), StateConfigError> {
        if self.backend != Backend::Redis {
            return Ok(());
        }
        let r = &self.redis;
        if !(r.url.starts_with("redis://") || r.url.starts_with("rediss://")) {
            return Err(StateConfigError::Url(r.url.clone()));
        }
        for (name, v) in [
            ("connect_timeout_ms", r.connect_timeout_ms),
            ("command_timeout_ms", r.command_timeout_ms),
            ("history_read_budget_ms", r.history_read_budget_ms),
            ("history_ttl_secs", r.history_ttl_secs),
            ("impression_budget_ms", r.impression_budget_ms),
            ("impressions_ttl_secs", r.impressions_ttl_secs),
            ("stream_maxlen", r.stream_maxlen),
            ("stream_ttl_secs", r.stream_ttl_secs),
            ("ship_batch", r.ship_batch as u64),
            ("ship_queue", r.ship_queue as u64),
            ("bandit_flush_ms", r.bandit_flush_ms),
            ("bandit_ttl_secs", r.bandit_ttl_secs),
            ("rollout_poll_ms", r.rollout_poll_ms),
            ("replica_ttl_secs", r.replica_ttl_secs),
            ("catalogue_poll_ms", r.catalogue_poll_ms),
        ] {
            if v == 0 {
                return Err(StateConfigError::Zero(name));
            }
        }
        if discounted {
            return Err(StateConfigError::Discount);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn load(env: &[(&str, &str)]) -> Result<Config, String> {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Config::load_with_env(None, env).map_err(|e| e.to_string())
    }

    #[test]
    fn the_backend_switch_and_its_env_overrides() {
        let cfg = load(&[]).unwrap();
        assert_eq!(
            cfg.state.backend,
            super::Backend::Embedded,
            "embedded by default"
        );
        let cfg = load(&[
            ("RECSERVE_STATE__BACKEND", "redis"),
            ("RECSERVE_STATE__REDIS__URL", "redis://cache:6380/2"),
            ("RECSERVE_STATE__REDIS__HISTORY_READ_BUDGET_MS", "3"),
        ])
        .unwrap();
        assert_eq!(cfg.state.backend, super::Backend::Redis);
        assert_eq!(cfg.state.redis.url, "redis://cache:6380/2");
        assert_eq!(cfg.state.redis.history_read_budget_ms, 3);
        let bad = |env: &[(&str, &str)], want: &str| {
            let err = load(env).unwrap_err();
            assert!(err.contains(want), "{err}");
        };
        bad(&[("RECSERVE_STATE__BACKEND", "memcached")], "memcached");
        bad(
            &[
                ("RECSERVE_STATE__BACKEND", "redis"),
                ("RECSERVE_STATE__REDIS__URL", "http://x"),
            ],
            "state.redis.url",
        );
        bad(
            &[
                ("RECSERVE_STATE__BACKEND", "redis"),
                ("RECSERVE_STATE__REDIS__STREAM_MAXLEN", "0"),
            ],
            "stream_maxlen",
        );
        bad(
            &[
                ("RECSERVE_STATE__BACKEND", "redis"),
                ("RECSERVE_BANDIT__DISCOUNT", "0.99"),
            ],
            "discount",
        );
        // The embedded backend does not care about the Redis section's values.
        assert!(load(&[("RECSERVE_STATE__REDIS__URL", "http://x")]).is_ok());
    }
}
