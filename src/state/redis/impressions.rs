//! Served lists in Redis, so feedback posted to any replica is attributed to the list any
//! replica served: `imp:<impression id>` → the compact list (hashes of the user and the items,
//! variant, arm, exposure slots; ~250 bytes for 10 items), written before the response under
//! `impression_budget_ms` and expiring after `impressions_ttl_secs`. A replica that gets feedback
//! for a list it does not hold reads it (same budget) and logs a copy before the feedback, so its
//! replay attributes the same way. Credit caps and duplicates are judged per replica.

use std::sync::Arc;
use std::time::Duration;

use super::{Family, Redis, RedisError};
use crate::feedback::impressions::Served;
use crate::feedback::replication::{Fetched, SharedImpressions};

pub struct RedisImpressions {
    redis: Arc<Redis>,
}

impl RedisImpressions {
    pub fn new(redis: Arc<Redis>) -> Self {
        Self { redis }
    }

    fn budget(&self) -> Duration {
        Duration::from_millis(self.redis.cfg.impression_budget_ms)
    }

    /// Writes a served list (before the response goes out).
    pub async fn put(&self, id: &str, served: &Served) -> Result<(), RedisError> {
        let value = serde_json::to_vec(served).map_err(|e| RedisError::Reply(e.to_string()))?;
        let key = self.redis.keys.impression(id);
        let ttl = self.redis.cfg.impressions_ttl_secs;
        self.redis
            .run(Family::Impressions, self.budget(), |mut c| async move {
                redis::cmd("SET")
                    .arg(&key)
                    .arg(value)
                    .arg("EX")
                    .arg(ttl)
                    .query_async::<()>(&mut c)
                    .await
            })
            .await
    }

    /// Reads served lists by id; missing and unreadable ones are left out.
    pub async fn get(&self, ids: &[String]) -> Result<Vec<(String, Served)>, RedisError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|i| self.redis.keys.impression(i)).collect();
        let values: Vec<Option<Vec<u8>>> = self
            .redis
            .run(Family::Impressions, self.budget(), |mut c| async move {
                redis::cmd("MGET").arg(&keys).query_async(&mut c).await
            })
            .await?;
        Ok(ids
            .iter()
            .zip(values)
            .filter_map(|(id, v)| {
                let served = serde_json::from_slice::<Served>(&v?).ok()?;
                Some((id.clone(), served))
            })
            .collect())
    }
}

impl SharedImpressions for RedisImpressions {
    fn fetch<'a>(&'a self, ids: Vec<String>) -> Fetched<'a> {
        Box::pin(async move {
            match self.get(&ids).await {
                Ok(found) => found,
                Err(e) => {
                    tracing::debug!(error = %e, "served lists not read from redis; feedback attributed locally only");
                    Vec::new()
                }
            }
        })
    }
}
