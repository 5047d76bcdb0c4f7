//! The runtime catalogue in Redis, so every replica converges on the same items: two hashes
//! keyed by item id, `catalogue:features` (`<ms>|<origin>|<features JSON>`) and
//! `catalogue:status` (`<ms>|<origin>|<0 or 1>`), written by a script that keeps the newer
//! stamp per field (so a late or repeated write never undoes a newer change, and a full
//! re-publish is always safe), and `catalogue:version`, bumped on every change. Replicas read
//! the version every `catalogue_poll_ms` and the hashes only when it moved. No TTL: the
//! catalogue is state, not a cache; its size is the number of items changed since training.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use redis::Script;

use super::{Family, Redis, RedisError};
use crate::catalogue::{Change, ChangeSet, Entry, Features, Stamp, StampedChange};

const SET_NEWER_LUA: &str = r#"
local changed = 0
local i = 1
while i <= #ARGV do
  local hash = KEYS[tonumber(ARGV[i])]
  local id, ms, origin, value = ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3], ARGV[i + 4]
  local cur = redis.call('HGET', hash, id)
  local newer = true
  if cur then
    local cms, corg = string.match(cur, '^(%-?%d+)|([^|]*)|')
    cms = tonumber(cms)
    if cms ~= nil and (cms > ms or (cms == ms and corg >= origin)) then
      newer = false
    end
  end
  if newer then
    redis.call('HSET', hash, id, ARGV[i + 2] .. '|' .. origin .. '|' .. value)
    changed = changed + 1
  end
  i = i + 5
end
if changed > 0 then
  redis.call('INCR', KEYS[3])
end
return changed
"#;

pub struct RedisCatalogue {
    redis: Arc<Redis>,
    script: Script,
    /// The `catalogue:version` this replica last merged (u64::MAX = never).
    seen: AtomicU64,
    /// A publish failed: the next sync re-publishes every local entry.
    dirty: AtomicBool,
}

fn encode(stamp: &Stamp, value: &str) -> [String; 3] {
    [
        stamp.ms.to_string(),
        stamp.origin.clone(),
        value.to_string(),
    ]
}

fn decode(v: &str) -> Option<(Stamp, &str)> {
    let mut parts = v.splitn(3, '|');
    let ms = parts.next()?.parse().ok()?;
    let origin = parts.next()?.to_string();
    Some((Stamp { ms, origin }, parts.next()?))
}

impl RedisCatalogue {
    pub fn new(redis: Arc<Redis>) -> Self {
        Self {
            redis,
            script: Script::new(SET_NEWER_LUA),
            seen: AtomicU64::new(u64::MAX),
            dirty: AtomicBool::new(false),
        }
    }

    pub fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Release);
    }

    /// Writes changes (each field only if newer than what Redis holds).
    pub async fn publish(&self, changes: &[StampedChange]) -> Result<(), RedisError> {
        let mut fields: Vec<(u8, String, [String; 3])> = Vec::with_capacity(changes.len());
        for c in changes {
            match &c.change {
                Change::Upsert { item_id, features } => {
                    let json = serde_json::to_string(features)
                        .map_err(|e| RedisError::Reply(e.to_string()))?;
                    fields.push((1, item_id.clone(), encode(&c.stamp, &json)));
                }
                Change::TakeDown { item_id } => {
                    fields.push((2, item_id.clone(), encode(&c.stamp, "1")))
                }
                Change::Restore { item_id } => {
                    fields.push((2, item_id.clone(), encode(&c.stamp, "0")))
                }
            }
        }
        self.write(fields).await
    }

    /// Writes every entry of `set` (after a failed publish: safe, older fields are ignored).
    pub async fn publish_all(&self, set: &ChangeSet) -> Result<(), RedisError> {
        let mut fields = Vec::with_capacity(set.len() * 2);
        for (id, e) in &set.entries {
            if let Some(f) = &e.features {
                let json =
                    serde_json::to_string(f).map_err(|e| RedisError::Reply(e.to_string()))?;
                fields.push((1, id.clone(), encode(&e.features_stamp, &json)));
            }
            if e.status_stamp != Stamp::default() {
                let v = if e.taken_down { "1" } else { "0" };
                fields.push((2, id.clone(), encode(&e.status_stamp, v)));
            }
        }
        self.write(fields).await
    }

    async fn write(&self, fields: Vec<(u8, String, [String; 3])>) -> Result<(), RedisError> {
        let r = &self.redis;
        // Bounded script calls: a large batch goes in chunks.
        for chunk in fields.chunks(500) {
            let mut inv = self.script.prepare_invoke();
            inv.key(r.keys.catalogue_features())
                .key(r.keys.catalogue_status())
                .key(r.keys.catalogue_version());
            for (hash, id, [ms, origin, value]) in chunk {
                inv.arg(*hash).arg(id).arg(ms).arg(origin).arg(value);
            }
            r.run(Family::Catalogue, r.command_budget(), |mut c| async move {
                inv.invoke_async::<u64>(&mut c).await
            })
            .await?;
        }
        Ok(())
    }

    /// The fleet's entries, when `catalogue:version` moved since the last call (or `force`).
    pub async fn fetch_if_changed(
        &self,
        force: bool,
    ) -> Result<Option<Vec<(String, Entry)>>, RedisError> {
        let r = &self.redis;
        let key = r.keys.catalogue_version();
        let version: Option<u64> = r
            .run(Family::Catalogue, r.command_budget(), |mut c| async move {
                redis::cmd("GET").arg(&key).query_async(&mut c).await
            })
            .await?;
        let version = version.unwrap_or(0);
        if !force && self.seen.load(Ordering::Acquire) == version {
            return Ok(None);
        }
        let (fk, sk) = (r.keys.catalogue_features(), r.keys.catalogue_status());
        let (features, status): (
            std::collections::HashMap<String, String>,
            std::collections::HashMap<String, String>,
        ) = r
            .run(Family::Catalogue, r.command_budget(), |mut c| async move {
                redis::pipe()
                    .cmd("HGETALL")
                    .arg(&fk)
                    .cmd("HGETALL")
                    .arg(&sk)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        let mut set: std::collections::BTreeMap<String, Entry> = Default::default();
        for (id, v) in &features {
            if let Some((stamp, json)) = decode(v)
                && let Ok(f) = serde_json::from_str::<Features>(json)
            {
                let e = set.entry(id.clone()).or_default();
                e.features = Some(f);
                e.features_stamp = stamp;
            }
        }
        for (id, v) in &status {
            if let Some((stamp, flag)) = decode(v) {
                let e = set.entry(id.clone()).or_default();
                e.taken_down = flag == "1";
                e.status_stamp = stamp;
            }
        }
        self.seen.store(version, Ordering::Release);
        Ok(Some(set.into_iter().collect()))
    }

    /// One sync round: re-publish after a failure, then merge what the fleet holds into
    /// `merge` (the feedback service). Returns how many entries changed the local set.
    pub async fn sync(
        &self,
        local: impl Fn() -> Arc<ChangeSet>,
        merge: impl Fn(&[(String, Entry)]) -> usize,
        force: bool,
    ) -> Result<usize, RedisError> {
        if self.dirty.swap(false, Ordering::AcqRel)
            && let Err(e) = self.publish_all(&local()).await
        {
            self.dirty.store(true, Ordering::Release);
            return Err(e);
        }
        match self.fetch_if_changed(force).await? {
            Some(entries) => Ok(merge(&entries)),
            None => Ok(0),
        }
    }
}
