//! Online user history (the feature store's real-time role): feedback updates a user's recent
//! items at once so `exclude_seen`, the session source and history features see them on the next
//! request. A small trait so a shared store (Redis, …) can replace the embedded one.
//!
//! The embedded store is bounded: users the bundle knows keep their recent items (their count
//! is the catalogue's), every other user id lives in a least-recently-used tier bounded by bytes
//! and by idle time, so unauthenticated feedback with fresh user ids cannot grow memory.

use parking_lot::RwLock;
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::sync::Arc;

/// Every user's recent items (oldest first), as a snapshot holds them.
pub type HistoryExport = Vec<(String, Vec<(String, i64)>)>;

pub trait UserHistoryStore: Send + Sync {
    /// The user's items recorded since training, oldest first: (item id, unix ts).
    fn recent(&self, user: &str) -> Vec<(String, i64)>;
    fn record(&self, user: &str, item: &str, ts: i64);
    /// [`Self::record`], telling the store whether the bundle knows the user (the embedded
    /// store bounds unknown users separately).
    fn record_user(&self, user: &str, item: &str, ts: i64, known_user: bool) {
        let _ = known_user;
        self.record(user, item, ts);
    }
    fn users(&self) -> usize;
    /// Every user's recent items, for a snapshot; `None` when the store is not embedded (a
    /// shared store keeps its own state).
    fn export(&self) -> Option<HistoryExport> {
        None
    }
    /// Memory held (bytes) and entries evicted by the bounds, for metrics.
    fn usage(&self) -> HistoryUsage {
        HistoryUsage::default()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistoryUsage {
    pub known_users: usize,
    pub guest_users: usize,
    pub guest_bytes: usize,
    pub guest_evicted: u64,
}

/// The embedded store's bounds.
#[derive(Debug, Clone, Copy)]
pub struct HistoryBounds {
    /// Items kept per user.
    pub per_user: usize,
    /// Memory for users the bundle does not know, all shards together.
    pub guest_max_bytes: usize,
    /// A user the bundle does not know is forgotten after this long without an event
    /// (measured in event time, against the newest event the shard has seen).
    pub guest_ttl_secs: u64,
}

impl HistoryBounds {
    pub fn per_user(per_user: usize) -> Self {
        Self {
            per_user,
            guest_max_bytes: 64 << 20,
            guest_ttl_secs: 7 * 86_400,
        }
    }
}

/// Bytes a guest entry costs beyond its strings and its item buffer, measured rather than
/// guessed: the hash-map slot at its average load, the shared user id's allocation header,
/// the order-queue slot and malloc's per-allocation overhead.
const GUEST_OVERHEAD: usize = 288;
/// Bytes per remembered item beyond its slot in the buffer: the id's allocation and header.
const ITEM_OVERHEAD: usize = 24;
/// Bytes per slot of a guest's item buffer: `(String, i64)`.
const ITEM_SLOT: usize = std::mem::size_of::<(String, i64)>();

struct Guest {
    items: VecDeque<(String, i64)>,
    /// Position of the user's live entry in the shard's order queue.
    stamp: u64,
    touched: i64,
    bytes: usize,
}

#[derive(Default)]
struct Shard {
    known: FxHashMap<String, VecDeque<(String, i64)>>,
    guests: FxHashMap<Arc<str>, Guest>,
    /// Guests by last touch, oldest first; entries whose stamp is not the guest's are stale.
    order: VecDeque<(u64, Arc<str>)>,
    next_stamp: u64,
    bytes: usize,
    newest: i64,
    evicted: u64,
}

pub struct InMemoryHistory {
    shards: Vec<RwLock<Shard>>,
    bounds: HistoryBounds,
}

const SHARDS: usize = 64;

fn push_item(d: &mut VecDeque<(String, i64)>, item: &str, ts: i64, per_user: usize) {
    // One entry per item: a repeat moves it to the most recent position.
    d.retain(|(i, _)| i != item);
    d.push_back((item.to_string(), ts));
    while d.len() > per_user {
        d.pop_front();
    }
}

fn guest_bytes(user: &str, items: &VecDeque<(String, i64)>) -> usize {
    GUEST_OVERHEAD
        + user.len()
        + ITEM_SLOT * items.capacity()
        + items
            .iter()
            .map(|(i, _)| i.len().max(8) + ITEM_OVERHEAD)
            .sum::<usize>()
}

impl Shard {
    fn record_guest(&mut self, user: &str, item: &str, ts: i64, b: &HistoryBounds, cap: usize) {
        self.newest = self.newest.max(ts);
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        let (key, old_bytes, new_bytes) = match self.guests.get_key_value(user) {
            Some((k, _)) => {
                let k = Arc::clone(k);
                let g = self.guests.get_mut(&k).map(|g| {
                    let old = g.bytes;
                    push_item(&mut g.items, item, ts, b.per_user);
                    g.stamp = stamp;
                    g.touched = g.touched.max(ts);
                    g.bytes = guest_bytes(user, &g.items);
                    (old, g.bytes)
                });
                let (o, n) = g.unwrap_or((0, 0));
                (k, o, n)
            }
            None => {
                let k: Arc<str> = Arc::from(user);
                let mut items = VecDeque::new();
                push_item(&mut items, item, ts, b.per_user);
                let bytes = guest_bytes(user, &items);
                self.guests.insert(
                    Arc::clone(&k),
                    Guest {
                        items,
                        stamp,
                        touched: ts,
                        bytes,
                    },
                );
                (k, 0, bytes)
            }
        };
        self.bytes = self.bytes + new_bytes - old_bytes.min(new_bytes);
        self.order.push_back((stamp, key));
        self.evict(b, cap);
        // Stale order entries of busy users: compact once they outnumber the live ones.
        if self.order.len() > 2 * self.guests.len() + 64 {
            let guests = &self.guests;
            self.order
                .retain(|(s, k)| guests.get(k).is_some_and(|g| g.stamp == *s));
        }
    }

    fn evict(&mut self, b: &HistoryBounds, cap: usize) {
        let oldest_kept = self
            .newest
            .saturating_sub(b.guest_ttl_secs.min(i64::MAX as u64) as i64);
        while let Some((stamp, key)) = self.order.front() {
            let live = self.guests.get(key).filter(|g| g.stamp == *stamp);
            let Some(g) = live else {
                self.order.pop_front();
                continue;
            };
            if self.bytes <= cap && g.touched >= oldest_kept {
                break;
            }
            let bytes = g.bytes;
            if let Some((_, key)) = self.order.pop_front() {
                self.guests.remove(&key);
            }
            self.bytes = self.bytes.saturating_sub(bytes);
            self.evicted += 1;
        }
    }
}

impl InMemoryHistory {
    pub fn new(per_user: usize) -> Self {
        Self::with_bounds(HistoryBounds::per_user(per_user))
    }

    pub fn with_bounds(bounds: HistoryBounds) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| RwLock::new(Shard::default())).collect(),
            bounds: HistoryBounds {
                per_user: bounds.per_user.max(1),
                ..bounds
            },
        }
    }

    fn shard(&self, user: &str) -> &RwLock<Shard> {
        use std::hash::BuildHasher;
        let h = rustc_hash::FxBuildHasher.hash_one(user);
        &self.shards[(h as usize) % SHARDS]
    }

    fn shard_cap(&self) -> usize {
        self.bounds.guest_max_bytes / SHARDS
    }
}

impl UserHistoryStore for InMemoryHistory {
    fn recent(&self, user: &str) -> Vec<(String, i64)> {
        let shard = self.shard(user).read();
        if let Some(d) = shard.known.get(user) {
            return d.iter().cloned().collect();
        }
        let oldest_kept = shard
            .newest
            .saturating_sub(self.bounds.guest_ttl_secs.min(i64::MAX as u64) as i64);
        shard
            .guests
            .get(user)
            .filter(|g| g.touched >= oldest_kept)
            .map(|g| g.items.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn record(&self, user: &str, item: &str, ts: i64) {
        self.record_user(user, item, ts, false);
    }

    fn record_user(&self, user: &str, item: &str, ts: i64, known_user: bool) {
        let mut shard = self.shard(user).write();
        if known_user {
            let d = shard.known.entry(user.to_string()).or_default();
            push_item(d, item, ts, self.bounds.per_user);
        } else {
            shard.record_guest(user, item, ts, &self.bounds, self.shard_cap());
        }
    }

    fn users(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let s = s.read();
                s.known.len() + s.guests.len()
            })
            .sum()
    }

    /// Known users first, then each shard's guests least recently used first, so a restore
    /// that records them in this order rebuilds the same recency order.
    fn export(&self) -> Option<HistoryExport> {
        let mut out = Vec::with_capacity(self.users());
        for shard in &self.shards {
            let s = shard.read();
            for (user, items) in s.known.iter() {
                out.push((user.clone(), items.iter().cloned().collect()));
            }
            for (stamp, key) in &s.order {
                if let Some(g) = s.guests.get(key).filter(|g| g.stamp == *stamp) {
                    out.push((key.to_string(), g.items.iter().cloned().collect()));
                }
            }
        }
        Some(out)
    }

    fn usage(&self) -> HistoryUsage {
        let mut u = HistoryUsage::default();
        for shard in &self.shards {
            let s = shard.read();
            u.known_users += s.known.len();
            u.guest_users += s.guests.len();
            u.guest_bytes += s.bytes;
            u.guest_evicted += s.evicted;
        }
        u
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_ordered_and_deduplicated() {
        let h = InMemoryHistory::new(3);
        for (i, item) in ["a", "b", "c", "a", "d"].iter().enumerate() {
            h.record_user("u", item, i as i64, true);
            h.record("g", item, i as i64);
        }
        for user in ["u", "g"] {
            let got: Vec<String> = h.recent(user).into_iter().map(|(i, _)| i).collect();
            assert_eq!(got, vec!["c", "a", "d"], "{user}");
        }
        assert!(h.recent("nobody").is_empty());
        assert_eq!(h.users(), 2);
    }

    #[test]
    fn guests_are_bounded_by_bytes_least_recently_used_first() {
        let bounds = HistoryBounds {
            per_user: 4,
            guest_max_bytes: 64 * 2048,
            guest_ttl_secs: u64::MAX,
        };
        let h = InMemoryHistory::with_bounds(bounds);
        for i in 0..50_000 {
            h.record(
                &format!("guest-{i}"),
                &format!("item-{}", i % 97),
                1_000 + i,
            );
            // Known users are never evicted by guests.
            if i % 1000 == 0 {
                h.record_user(&format!("member-{i}"), "item-1", 1_000 + i, true);
            }
        }
        let u = h.usage();
        assert!(u.guest_bytes <= bounds.guest_max_bytes, "{u:?}");
        assert!(u.guest_evicted > 40_000, "{u:?}");
        assert_eq!(u.known_users, 50);
        assert!(!h.recent("member-0").is_empty());
        // The most recent guests survive, the oldest are gone.
        assert!(!h.recent("guest-49999").is_empty());
        assert!(h.recent("guest-0").is_empty());
    }

    #[test]
    fn a_touch_keeps_a_guest_and_idle_guests_expire() {
        let bounds = HistoryBounds {
            per_user: 4,
            guest_max_bytes: usize::MAX,
            guest_ttl_secs: 100,
        };
        let h = InMemoryHistory::with_bounds(bounds);
        // All in one shard's view of time: expiry is checked against each shard's newest event,
        // so use enough users that every shard sees the late events.
        for i in 0..640 {
            h.record(&format!("old-{i}"), "x", 0);
        }
        for i in 0..640 {
            h.record(&format!("new-{i}"), "x", 500);
        }
        assert!((0..640).all(|i| h.recent(&format!("old-{i}")).is_empty()));
        assert!((0..640).all(|i| !h.recent(&format!("new-{i}")).is_empty()));
        assert!(h.usage().guest_users <= 640 + 64);
    }

    #[test]
    fn export_then_restore_rebuilds_the_same_order() {
        let bounds = HistoryBounds {
            per_user: 3,
            guest_max_bytes: 64 * 600,
            guest_ttl_secs: u64::MAX,
        };
        let h = InMemoryHistory::with_bounds(bounds);
        for i in 0..3000u32 {
            h.record(&format!("g{}", i % 700), &format!("i{}", i % 13), i as i64);
        }
        let restored = InMemoryHistory::with_bounds(bounds);
        for (user, items) in h.export().unwrap_or_default() {
            for (item, ts) in items {
                restored.record(&user, &item, ts);
            }
        }
        // Continue both the same way: they evict the same users.
        for i in 3000..4000u32 {
            let (u, it) = (format!("g{}", (i * 7) % 900), format!("i{}", i % 13));
            h.record(&u, &it, i as i64);
            restored.record(&u, &it, i as i64);
        }
        assert_eq!(h.export(), restored.export());
    }
}
