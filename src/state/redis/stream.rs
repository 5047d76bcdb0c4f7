//! The feedback stream: every acknowledged feedback event goes to one Redis Stream (`events`,
//! exact `MAXLEN` cap, TTL refreshed on write) as `{replica, seq, event}`, and each positive
//! event to its user's history set, in one script per batch. Exactly once: the script skips
//! entries whose log sequence number is not above this replica's shipped position
//! (`events:shipped:<replica>`) and advances it in the same atomic step, and events are shipped
//! in log order: live from the feedback service's in-order hook, or, after an outage, a full
//! queue or a restart, from the local log itself (catch-up), so a lost reply or a retry never
//! appends twice and nothing acknowledged is skipped. A post waits (bounded by
//! `feedback_wait_ms`) for its events only while shipping is live; its 202 rests on the log.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use redis::Script;
use rustc_hash::FxHashMap;

use super::{Family, Redis, RedisError};
use crate::feedback::events::Record;
use crate::feedback::replication::Replication;
use crate::feedback::service::FeedbackService;

/// KEYS = stream, shipped position, then the batch's history keys. ARGV = maxlen, stream TTL,
/// history cap, history TTL, replica, n, then per event: seq, payload, history key index
/// (0 = none), ts, item. Returns {new position, entries appended}.
const SHIP_LUA: &str = r#"
local pos = tonumber(redis.call('GET', KEYS[2]) or '0')
local added = 0
local n = tonumber(ARGV[6])
for i = 0, n - 1 do
  local b = 7 + i * 5
  local seq = tonumber(ARGV[b])
  if seq > pos then
    redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], '*', 'replica', ARGV[5], 'seq', ARGV[b], 'event', ARGV[b + 1])
    local h = tonumber(ARGV[b + 2])
    if h > 0 then
      local k = KEYS[h]
      redis.call('ZADD', k, 'GT', ARGV[b + 3], ARGV[b + 4])
      redis.call('ZREMRANGEBYRANK', k, 0, -(tonumber(ARGV[3]) + 1))
      redis.call('EXPIRE', k, ARGV[4])
    end
    pos = seq
    added = added + 1
  end
end
redis.call('SET', KEYS[2], pos, 'EX', ARGV[2])
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return {pos, added}
"#;

#[derive(Default)]
struct Queue {
    items: VecDeque<(u64, Record)>,
    /// Events were dropped because the queue was full: ship from the log instead.
    overflowed: bool,
}

/// Follows the feedback service and ships its acknowledged events to Redis.
pub struct Shipper {
    redis: Arc<Redis>,
    rewards: BTreeMap<String, f64>,
    history_cap: usize,
    queue: Mutex<Queue>,
    wake: tokio::sync::Notify,
    shipped: tokio::sync::watch::Sender<u64>,
    /// Caught up and Redis answering: posts wait (bounded) for their events.
    live: AtomicBool,
    /// A live batch is between the queue and Redis's reply.
    in_flight: AtomicBool,
    script: Script,
}

/// How a live phase ended.
enum Interrupted {
    /// A command failed; shipping resumes from the log once Redis answers.
    Error(RedisError),
    /// The in-memory queue overflowed.
    Overflow,
}

impl Shipper {
    pub fn new(redis: Arc<Redis>, rewards: BTreeMap<String, f64>, history_cap: usize) -> Self {
        Self {
            redis,
            rewards,
            history_cap: history_cap.max(1),
            queue: Mutex::new(Queue::default()),
            wake: tokio::sync::Notify::new(),
            shipped: tokio::sync::watch::channel(0).0,
            live: AtomicBool::new(false),
            in_flight: AtomicBool::new(false),
            script: Script::new(SHIP_LUA),
        }
    }

    /// This replica's position in the stream as last confirmed by Redis.
    pub fn shipped_seq(&self) -> u64 {
        *self.shipped.borrow()
    }

    /// Shipping is live (caught up with the log, Redis answering).
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    /// Live, nothing queued and nothing in flight: every event acknowledged so far is in Redis.
    pub fn caught_up(&self) -> bool {
        let q = self.queue.lock();
        self.is_live()
            && q.items.is_empty()
            && !q.overflowed
            && !self.in_flight.load(Ordering::Acquire)
    }

    /// Waits (up to `within`) until [`Self::caught_up`].
    pub async fn wait_caught_up(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if self.caught_up() {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Waits until everything acknowledged up to `seq` is in the stream, at most `within`.
    pub async fn wait_shipped(&self, seq: u64, within: Duration) -> bool {
        let mut rx = self.shipped.subscribe();
        matches!(
            tokio::time::timeout(within, rx.wait_for(|s| *s >= seq)).await,
            Ok(Ok(_))
        )
    }

    /// Ships until the process ends: find the position, catch up from the log, then live.
    pub async fn run(self: Arc<Self>, fb: Arc<FeedbackService>) {
        let mut backoff = Duration::from_millis(100);
        let mut pos: Option<u64> = None;
        let mut first = true;
        loop {
            let from = match pos {
                Some(p) => p,
                None => match self.read_position().await {
                    Ok(p) if first && p > fb.log_stats().durable_seq.unwrap_or(0) => {
                        // The position belongs to another log: this one was replaced while the
                        // id stayed (or two replicas share an id). Its events would be skipped.
                        tracing::error!(
                            replica = %self.redis.replica,
                            position = p,
                            log_end = fb.log_stats().durable_seq.unwrap_or(0),
                            "redis stream: this replica id's position is ahead of its event log; starting it again from 0 (give every replica its own state.redis.replica_id)"
                        );
                        match self.reset_position().await {
                            Ok(()) => {
                                first = false;
                                0
                            }
                            Err(_) => {
                                tokio::time::sleep(backoff).await;
                                continue;
                            }
                        }
                    }
                    Ok(p) => {
                        first = false;
                        p
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "redis stream: position unknown; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                        continue;
                    }
                },
            };
            let caught = match self.catch_up(&fb, from).await {
                Ok(Some(p)) => p,
                // The queue overflowed meanwhile: catch up again.
                Ok(None) => {
                    pos = None;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "redis stream: catch-up interrupted; retrying");
                    pos = None;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
            };
            backoff = Duration::from_millis(100);
            tracing::info!(
                position = caught,
                "redis stream: caught up with the event log"
            );
            self.live.store(true, Ordering::Release);
            let why = self.live_phase(caught).await;
            self.live.store(false, Ordering::Release);
            match why {
                Interrupted::Error(e) => {
                    tracing::warn!(error = %e, "redis stream: shipping failed; will catch up from the event log")
                }
                Interrupted::Overflow => {
                    tracing::warn!("redis stream: queue full; catching up from the event log")
                }
            }
            // Redis may have applied the last batch before the error: ask it.
            pos = None;
        }
    }

    async fn reset_position(&self) -> Result<(), RedisError> {
        let key = self.redis.keys.shipped(&self.redis.replica);
        self.redis
            .run(
                Family::Stream,
                self.redis.command_budget(),
                |mut c| async move { redis::cmd("DEL").arg(&key).query_async::<()>(&mut c).await },
            )
            .await?;
        self.shipped.send_replace(0);
        Ok(())
    }

    async fn read_position(&self) -> Result<u64, RedisError> {
        let key = self.redis.keys.shipped(&self.redis.replica);
        let v: Option<u64> = self
            .redis
            .run(
                Family::Stream,
                self.redis.command_budget(),
                |mut c| async move { redis::cmd("GET").arg(&key).query_async(&mut c).await },
            )
            .await?;
        let p = v.unwrap_or(0);
        self.shipped.send_replace(p);
        Ok(p)
    }

    /// Ships every acknowledged event after `from` from the local log. `Ok(None)` when the
    /// in-memory queue overflowed meanwhile (so the live phase could miss events).
    async fn catch_up(
        &self,
        fb: &Arc<FeedbackService>,
        from: u64,
    ) -> Result<Option<u64>, RedisError> {
        self.queue.lock().overflowed = false;
        let end = fb.log_stats().durable_seq.unwrap_or(0);
        let mut pos = from;
        if end > from {
            self.redis
                .metrics()
                .stream_behind
                .set(end.saturating_sub(from) as i64);
            let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<(u64, Record)>>(4);
            let reader = Arc::clone(fb);
            let batch = self.redis.cfg.ship_batch;
            let producer =
                tokio::task::spawn_blocking(move || read_log(&reader, from + 1, end, batch, &tx));
            while let Some(chunk) = rx.recv().await {
                pos = self.ship(pos, chunk).await?;
                self.redis
                    .metrics()
                    .stream_behind
                    .set(end.saturating_sub(pos) as i64);
            }
            match producer.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(RedisError::Reply(format!("reading the event log: {e}"))),
                Err(e) => return Err(RedisError::Reply(format!("log reader task: {e}"))),
            }
            // Everything acknowledged up to `end` is shipped, whatever the position says.
            pos = pos.max(end);
        }
        let mut q = self.queue.lock();
        if q.overflowed {
            return Ok(None);
        }
        q.items.retain(|(s, _)| *s > pos);
        drop(q);
        self.shipped.send_replace(pos);
        Ok(Some(pos))
    }

    async fn live_phase(&self, mut pos: u64) -> Interrupted {
        loop {
            let batch: Vec<(u64, Record)> = {
                let mut q = self.queue.lock();
                if q.overflowed {
                    return Interrupted::Overflow;
                }
                let n = q.items.len().min(self.redis.cfg.ship_batch);
                self.in_flight.store(n > 0, Ordering::Release);
                q.items.drain(..n).filter(|(s, _)| *s > pos).collect()
            };
            if batch.is_empty() {
                self.in_flight.store(false, Ordering::Release);
                self.redis.metrics().stream_behind.set(0);
                let _ = tokio::time::timeout(Duration::from_secs(1), self.wake.notified()).await;
                continue;
            }
            let shipped = self.ship(pos, batch).await;
            self.in_flight.store(false, Ordering::Release);
            match shipped {
                Ok(p) => pos = p,
                Err(e) => return Interrupted::Error(e),
            }
            let behind = self
                .queue
                .lock()
                .items
                .back()
                .map_or(0, |(s, _)| s.saturating_sub(pos));
            self.redis.metrics().stream_behind.set(behind as i64);
        }
    }

    /// Appends one batch (in log order) with one script call; returns the new position.
    async fn ship(&self, pos: u64, batch: Vec<(u64, Record)>) -> Result<u64, RedisError> {
        let r = &self.redis;
        let cfg = &r.cfg;
        let mut inv = self.script.prepare_invoke();
        inv.key(r.keys.stream()).key(r.keys.shipped(&r.replica));
        let mut user_key: FxHashMap<String, usize> = FxHashMap::default();
        let mut args: Vec<String> = Vec::with_capacity(batch.len() * 5);
        let mut n = 0usize;
        let mut last = pos;
        for (seq, record) in &batch {
            let Record::Feedback { event, received_at } = record else {
                continue;
            };
            let payload = serde_json::to_string(record)
                .map_err(|e| RedisError::Reply(format!("event not serialisable: {e}")))?;
            let reward = self.rewards.get(&event.event).copied().unwrap_or(0.0);
            let h = if reward > 0.0 {
                let next = user_key.len() + 3;
                *user_key.entry(event.user_id.clone()).or_insert_with(|| {
                    inv.key(r.keys.history(&event.user_id));
                    next
                })
            } else {
                0
            };
            let ts = event.ts.unwrap_or(*received_at);
            args.extend([
                seq.to_string(),
                payload,
                h.to_string(),
                ts.to_string(),
                event.item_id.clone(),
            ]);
            n += 1;
            last = last.max(*seq);
        }
        if n == 0 {
            return Ok(pos);
        }
        inv.arg(cfg.stream_maxlen)
            .arg(cfg.stream_ttl_secs)
            .arg(self.history_cap)
            .arg(cfg.history_ttl_secs)
            .arg(&r.replica)
            .arg(n);
        for a in &args {
            inv.arg(a);
        }
        let (new_pos, added): (u64, u64) = r
            .run(Family::Stream, r.command_budget(), |mut c| async move {
                inv.invoke_async(&mut c).await
            })
            .await?;
        r.metrics().stream_events.inc_by(added);
        let new_pos = new_pos.max(last);
        self.shipped.send_replace(new_pos);
        Ok(new_pos)
    }
}

/// Reads acknowledged feedback with `from <= seq <= end` from the log in chunks (blocking).
fn read_log(
    fb: &FeedbackService,
    from: u64,
    end: u64,
    batch: usize,
    tx: &tokio::sync::mpsc::Sender<Vec<(u64, Record)>>,
) -> Result<(), String> {
    let mut chunk = Vec::with_capacity(batch);
    for rec in fb.acknowledged_from(from).map_err(|e| e.to_string())? {
        let (seq, payload) = rec.map_err(|e| e.to_string())?;
        if seq > end {
            break;
        }
        if let Ok(r @ Record::Feedback { .. }) = serde_json::from_slice::<Record>(&payload) {
            chunk.push((seq, r));
        }
        if chunk.len() >= batch && tx.blocking_send(std::mem::take(&mut chunk)).is_err() {
            return Ok(());
        }
    }
    if !chunk.is_empty() {
        let _ = tx.blocking_send(chunk);
    }
    Ok(())
}

impl Replication for Shipper {
    fn applied(&self, seqs: Vec<u64>, records: Vec<Record>) {
        {
            let mut q = self.queue.lock();
            if q.items.len() + records.len() > self.redis.cfg.ship_queue {
                q.overflowed = true;
            } else {
                q.items.extend(seqs.into_iter().zip(records));
            }
        }
        self.wake.notify_one();
    }

    fn settle(&self, last_seq: u64) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            if self.is_live() {
                let within = Duration::from_millis(self.redis.cfg.feedback_wait_ms);
                self.wait_shipped(last_seq, within).await;
            }
        })
    }
}
