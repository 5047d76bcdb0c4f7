//! Model rollout across the fleet and the fleet view. A replica that reloaded through
//! `/admin/reload` announces the bundle (`model:announce`: id, version, bundle path); every
//! other replica polls the key every `rollout_poll_ms`, loads the bundle the way a reload does
//! (validate, warm up, swap; a bundle it cannot load is refused and the old one keeps
//! serving) and reports the outcome in the fleet view (`replicas`: replica id → status,
//! entries older than `replica_ttl_secs` are dropped). The loading itself belongs to the HTTP
//! edge, which owns the engine; this module only reads and writes the keys.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Family, Redis, RedisError};

/// A bundle announced to the fleet.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Announcement {
    /// Unique per announcement (a re-announced version is a new rollout).
    pub id: String,
    pub model_version: String,
    /// The bundle directory, as the announcing replica loaded it (the same path on every node).
    pub bundle: String,
    pub by: String,
    pub at: i64,
}

/// What a replica did with an announcement.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RolloutOutcome {
    pub announcement: String,
    pub model_version: String,
    /// `loaded`, `already_serving`, `announced` (the replica announced it) or `refused`.
    pub result: String,
    /// Why a refused bundle was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub at: i64,
}

/// One replica's entry in the fleet view.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReplicaStatus {
    pub replica: String,
    pub model_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rollout: Option<RolloutOutcome>,
    /// Unix seconds of this entry.
    pub updated_at: i64,
}

impl Redis {
    /// Announces `a` to the fleet (the key expires with the stream's TTL).
    pub async fn announce(self: &Arc<Self>, a: &Announcement) -> Result<(), RedisError> {
        let key = self.keys.rollout();
        let json = serde_json::to_string(a).map_err(|e| RedisError::Reply(e.to_string()))?;
        let ttl = self.cfg.stream_ttl_secs;
        self.run(Family::Rollout, self.command_budget(), |mut c| async move {
            redis::cmd("SET")
                .arg(&key)
                .arg(&json)
                .arg("EX")
                .arg(ttl)
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    /// The current announcement, if any (an unreadable one counts as none).
    pub async fn announcement(&self) -> Result<Option<Announcement>, RedisError> {
        let key = self.keys.rollout();
        let v: Option<String> = self
            .run(Family::Rollout, self.command_budget(), |mut c| async move {
                redis::cmd("GET").arg(&key).query_async(&mut c).await
            })
            .await?;
        Ok(v.and_then(|s| serde_json::from_str(&s).ok()))
    }

    /// Writes this replica's entry in the fleet view.
    pub async fn report(&self, s: &ReplicaStatus) -> Result<(), RedisError> {
        let key = self.keys.replicas();
        let json = serde_json::to_string(s).map_err(|e| RedisError::Reply(e.to_string()))?;
        let field = s.replica.clone();
        let ttl = self.cfg.replica_ttl_secs.max(1) * 10;
        self.run(Family::Rollout, self.command_budget(), |mut c| async move {
            redis::pipe()
                .cmd("HSET")
                .arg(&key)
                .arg(&field)
                .arg(&json)
                .ignore()
                .cmd("EXPIRE")
                .arg(&key)
                .arg(ttl)
                .ignore()
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    /// Every replica's entry not older than `replica_ttl_secs` (older ones are removed).
    pub async fn fleet(&self) -> Result<Vec<ReplicaStatus>, RedisError> {
        let key = self.keys.replicas();
        let all: Vec<(String, String)> = self
            .run(Family::Rollout, self.command_budget(), |mut c| {
                let key = key.clone();
                async move { redis::cmd("HGETALL").arg(&key).query_async(&mut c).await }
            })
            .await?;
        let now = crate::clock::now_unix();
        let ttl = self.cfg.replica_ttl_secs as i64;
        let mut live = Vec::new();
        let mut stale = Vec::new();
        for (field, json) in all {
            match serde_json::from_str::<ReplicaStatus>(&json) {
                Ok(s) if now - s.updated_at <= ttl => live.push(s),
                _ => stale.push(field),
            }
        }
        if !stale.is_empty() {
            let _ = self
                .run(Family::Rollout, self.command_budget(), |mut c| async move {
                    redis::cmd("HDEL")
                        .arg(&key)
                        .arg(&stale)
                        .query_async::<()>(&mut c)
                        .await
                })
                .await;
        }
        live.sort_by(|a, b| a.replica.cmp(&b.replica));
        Ok(live)
    }
}
