//! Online user history (the feature store's real-time role): feedback updates a user's recent
//! items at once so `exclude_seen`, the session source and history features see them on the next
//! request. A small trait so a shared store (Redis, …) can replace the embedded one later.

use parking_lot::RwLock;
use rustc_hash::FxHashMap;
use std::collections::VecDeque;

/// Every user's recent items (oldest first), as a snapshot holds them.
pub type HistoryExport = Vec<(String, Vec<(String, i64)>)>;

pub trait UserHistoryStore: Send + Sync {
    /// The user's items recorded since training, oldest first: (item id, unix ts).
    fn recent(&self, user: &str) -> Vec<(String, i64)>;
    fn record(&self, user: &str, item: &str, ts: i64);
    fn users(&self) -> usize;
    /// Every user's recent items, for a snapshot; `None` when the store is not embedded (a
    /// shared store keeps its own state).
    fn export(&self) -> Option<HistoryExport> {
        None
    }
}

/// Embedded store: a bounded deque per user, sharded to keep lock hold times tiny.
/// One shard: user id → their recent (item id, ts), oldest first.
type Shard = RwLock<FxHashMap<String, VecDeque<(String, i64)>>>;

pub struct InMemoryHistory {
    shards: Vec<Shard>,
    per_user: usize,
}

const SHARDS: usize = 64;

impl InMemoryHistory {
    pub fn new(per_user: usize) -> Self {
        Self {
            shards: (0..SHARDS)
                .map(|_| RwLock::new(FxHashMap::default()))
                .collect(),
            per_user: per_user.max(1),
        }
    }

    fn shard(&self, user: &str) -> &Shard {
        use std::hash::BuildHasher;
        let h = rustc_hash::FxBuildHasher.hash_one(user);
        &self.shards[(h as usize) % SHARDS]
    }
}

impl UserHistoryStore for InMemoryHistory {
    fn recent(&self, user: &str) -> Vec<(String, i64)> {
        self.shard(user)
            .read()
            .get(user)
            .map(|d| d.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn record(&self, user: &str, item: &str, ts: i64) {
        let mut shard = self.shard(user).write();
        let d = shard.entry(user.to_string()).or_default();
        // One entry per item: a repeat moves it to the most recent position.
        d.retain(|(i, _)| i != item);
        d.push_back((item.to_string(), ts));
        while d.len() > self.per_user {
            d.pop_front();
        }
    }

    fn users(&self) -> usize {
        self.shards.iter().map(|s| s.read().len()).sum()
    }

    fn export(&self) -> Option<HistoryExport> {
        let mut out = Vec::with_capacity(self.users());
        for shard in &self.shards {
            for (user, items) in shard.read().iter() {
                out.push((user.clone(), items.iter().cloned().collect()));
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_ordered_and_deduplicated() {
        let h = InMemoryHistory::new(3);
        for (i, item) in ["a", "b", "c", "a", "d"].iter().enumerate() {
            h.record("u", item, i as i64);
        }
        let got: Vec<String> = h.recent("u").into_iter().map(|(i, _)| i).collect();
        assert_eq!(got, vec!["c", "a", "d"]);
        assert!(h.recent("nobody").is_empty());
        assert_eq!(h.users(), 1);
    }
}
