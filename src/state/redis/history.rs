//! The online history in Redis: one sorted set per user (`h:<user>`, member = item id, score =
//! event time), capped at `feedback.history_per_user` items and expiring `history_ttl_secs`
//! after the user's last positive event. Written by the stream shipper in the same script as
//! the stream entry (so both are exactly once); read on the request path under its own small
//! budget. This replica keeps no copy: memory per replica stays bounded with the user count.

use std::sync::Arc;
use std::time::Duration;

use super::{Family, Redis, RedisError};
use crate::feedback::history::UserHistoryStore;

pub struct RedisHistory {
    redis: Arc<Redis>,
}

impl RedisHistory {
    pub fn new(redis: Arc<Redis>) -> Self {
        Self { redis }
    }

    /// The user's items, oldest first, within `history_read_budget_ms`.
    pub async fn recent_within(&self, user: &str) -> Result<Vec<(String, i64)>, RedisError> {
        let key = self.redis.keys.history(user);
        let budget = Duration::from_millis(self.redis.cfg.history_read_budget_ms);
        let rows: Vec<(String, f64)> = self
            .redis
            .run(Family::History, budget, |mut c| async move {
                redis::cmd("ZRANGE")
                    .arg(&key)
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES")
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(rows.into_iter().map(|(i, ts)| (i, ts as i64)).collect())
    }
}

/// What the feedback service sees in place of its embedded store: nothing is kept locally
/// (the shipper writes Redis, the request path reads it), and a snapshot holds no history.
impl UserHistoryStore for RedisHistory {
    fn recent(&self, _user: &str) -> Vec<(String, i64)> {
        Vec::new()
    }

    fn record(&self, _user: &str, _item: &str, _ts: i64) {}

    fn users(&self) -> usize {
        0
    }
}
