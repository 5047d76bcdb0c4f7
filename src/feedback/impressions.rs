//! The served lists feedback is attributed to, held compactly and bounded by bytes: the
//! impression id (server-issued), a hash of the user it was served to, the variant and bandit
//! arm that chose it, and 64-bit hashes of the item ids shown (stable across reloads and
//! replicas). Attribution rules live here, as pure functions of this state, so the live
//! service, the replay at start and `export-events` judge an event the same way.

use rustc_hash::{FxHashMap, FxHasher};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::hash::{Hash, Hasher};

/// A stable 64-bit hash of an id (item, user, impression): FxHash, deterministic across
/// processes and builds of the same version.
pub fn id_hash(id: &str) -> u64 {
    let mut h = FxHasher::default();
    id.hash(&mut h);
    h.finish()
}

/// Bandit decision as an impression keeps it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct ArmTag {
    pub context: u16,
    pub arm: u8,
}

/// One served list, as attribution needs it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Served {
    /// `id_hash` of the user it was served to; `None` for an anonymous (session) request,
    /// which any user id may then claim.
    pub user: Option<u64>,
    /// The variant that served it.
    pub variant: String,
    pub arm: Option<ArmTag>,
    /// `id_hash` of each item shown, in position order.
    pub items: Vec<u64>,
    /// Positions the new-item exposure policy filled.
    #[serde(default)]
    pub exposure: Vec<u16>,
    /// (position, `id_hash` of the event type) pairs already credited.
    pub credited: Vec<(u16, u32)>,
    /// Reward credited to the list so far (configured reward units).
    pub reward: f64,
    /// Reward credited per position so far, only for positions that earned some.
    pub item_reward: Vec<(u16, f64)>,
    /// Server time it was served (Unix seconds).
    pub ts: i64,
}

impl Served {
    /// A list as shown: `arm` is the bandit's (context, arm) when it chose.
    pub fn shown(
        user_id: Option<&str>,
        variant: &str,
        arm: Option<(usize, usize)>,
        items: &[super::events::ServedItem],
        ts: i64,
    ) -> Self {
        Self {
            user: user_id.map(id_hash),
            variant: variant.to_string(),
            arm: arm.and_then(|(context, arm)| {
                Some(ArmTag {
                    context: u16::try_from(context).ok()?,
                    arm: u8::try_from(arm).ok()?,
                })
            }),
            items: items.iter().map(|i| id_hash(&i.item_id)).collect(),
            exposure: items
                .iter()
                .enumerate()
                .filter(|(_, i)| i.exposure_propensity.is_some())
                .map(|(p, _)| p.min(u16::MAX as usize) as u16)
                .collect(),
            credited: Vec::new(),
            reward: 0.0,
            item_reward: Vec::new(),
            ts,
        }
    }

    /// What the entry costs in memory, in bytes (the key and map slot included).
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + 8 * self.items.capacity()
            + 2 * self.exposure.capacity()
            + 8 * self.credited.capacity()
            + 16 * self.item_reward.capacity()
            + self.variant.capacity()
            + ENTRY_OVERHEAD
    }
}

/// Per entry beyond the struct and its buffers: the key, the order-queue slot, the hash-map
/// slot's share at average load and malloc's headers of the three buffers.
const ENTRY_OVERHEAD: usize = 96 + std::mem::size_of::<Served>() / 2;

/// Why an event was or was not attributed (the `result` label of the attribution metric).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Attribution {
    /// First time this (item, event) pair arrives for a list that showed the item to this
    /// user: it counts, and earns `credit` for the bandit (possibly 0 once a cap is reached).
    Attributed { credit: f64 },
    /// The same (item, event) pair was already attributed for this list.
    Duplicate,
    /// The list was served to another user.
    UserMismatch,
    /// The list did not show the item.
    NotShown,
    /// No such impression (never issued, or forgotten: evicted, expired, or before a reset).
    UnknownImpression,
}

impl Attribution {
    pub fn label(self) -> &'static str {
        match self {
            Attribution::Attributed { .. } => "attributed",
            Attribution::Duplicate => "duplicate",
            Attribution::UserMismatch => "user_mismatch",
            Attribution::NotShown => "not_shown",
            Attribution::UnknownImpression => "unknown_impression",
        }
    }

    pub fn is_attributed(self) -> bool {
        matches!(self, Attribution::Attributed { .. })
    }
}

/// The list an event was judged against.
#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    pub variant: String,
    pub arm: Option<ArmTag>,
    /// The event's item sat in a new-item exposure slot.
    pub exposure: bool,
}

/// Caps on what one list (and one item in it) can earn.
#[derive(Debug, Clone, Copy)]
pub struct CreditCaps {
    pub per_impression: f64,
    pub per_item: f64,
}

/// How much the served-list store keeps (`feedback.impressions_*`).
#[derive(Debug, Clone, Copy)]
pub struct ImpressionBounds {
    pub max_count: usize,
    pub max_bytes: usize,
    pub ttl_secs: u64,
}

impl ImpressionBounds {
    pub fn of(cfg: &super::FeedbackConfig) -> Self {
        Self {
            max_count: cfg.impressions_capacity.max(1),
            max_bytes: cfg.impressions_max_bytes,
            ttl_secs: cfg.impressions_ttl_secs,
        }
    }
}

/// Bounded impression id → served list map; the oldest entries go first, when there are more
/// than `max_count`, when the total passes `max_bytes` or when they are older than `ttl_secs`
/// (measured against the newest impression's server time, so replay forgets exactly what the
/// live service forgot).
pub struct Impressions {
    bounds: ImpressionBounds,
    map: FxHashMap<u64, Served>,
    order: VecDeque<u64>,
    bytes: usize,
    newest_ts: i64,
    evicted: u64,
}

impl Impressions {
    pub fn new(bounds: ImpressionBounds) -> Self {
        Self {
            bounds,
            map: FxHashMap::default(),
            order: VecDeque::new(),
            bytes: 0,
            newest_ts: 0,
            evicted: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Entries dropped by the bounds so far.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    pub fn get(&self, id: &str) -> Option<&Served> {
        self.map.get(&id_hash(id))
    }

    /// Remembers a list under its impression id. Ids are server-issued and unique, so a
    /// repeated id (a replayed record) replaces nothing that was credited: the first wins.
    pub fn insert(&mut self, id: &str, s: Served) {
        let key = id_hash(id);
        self.newest_ts = self.newest_ts.max(s.ts);
        if self.map.contains_key(&key) {
            return;
        }
        self.bytes += s.bytes();
        self.map.insert(key, s);
        self.order.push_back(key);
        self.evict();
    }

    fn evict(&mut self) {
        let ImpressionBounds {
            max_count,
            max_bytes,
            ttl_secs,
        } = self.bounds;
        let oldest_kept = self
            .newest_ts
            .saturating_sub(ttl_secs.min(i64::MAX as u64) as i64);
        while let Some(&front) = self.order.front() {
            let expired = self.map.get(&front).is_none_or(|s| s.ts < oldest_kept);
            if self.bytes <= max_bytes && self.map.len() <= max_count.max(1) && !expired {
                break;
            }
            self.order.pop_front();
            if let Some(s) = self.map.remove(&front) {
                self.bytes = self.bytes.saturating_sub(s.bytes());
                self.evicted += 1;
            }
        }
    }

    /// Judges one event against the list it names and records its credit. `reward` is the
    /// event type's configured reward (0 for events that earn nothing).
    pub fn attribute(
        &mut self,
        id: &str,
        user: &str,
        item: &str,
        event: &str,
        reward: f64,
        caps: CreditCaps,
    ) -> (Attribution, Option<Origin>) {
        let Some(s) = self.map.get_mut(&id_hash(id)) else {
            return (Attribution::UnknownImpression, None);
        };
        let item_h = id_hash(item);
        let found = s.items.iter().position(|&i| i == item_h);
        let pos = found.map_or(u16::MAX, |p| p.min(u16::MAX as usize) as u16);
        let origin = Some(Origin {
            variant: s.variant.clone(),
            arm: s.arm,
            exposure: found.is_some() && s.exposure.contains(&pos),
        });
        if s.user.is_some_and(|u| u != id_hash(user)) {
            return (Attribution::UserMismatch, origin);
        }
        if found.is_none() {
            return (Attribution::NotShown, origin);
        }
        let ev = id_hash(event) as u32;
        if s.credited.contains(&(pos, ev)) {
            return (Attribution::Duplicate, origin);
        }
        let before = s.bytes();
        s.credited.push((pos, ev));
        let item_so_far = s
            .item_reward
            .iter()
            .find(|(p, _)| *p == pos)
            .map_or(0.0, |(_, r)| *r);
        let credit = reward
            .max(0.0)
            .min((caps.per_item - item_so_far).max(0.0))
            .min((caps.per_impression - s.reward).max(0.0));
        if credit > 0.0 {
            s.reward += credit;
            match s.item_reward.iter_mut().find(|(p, _)| *p == pos) {
                Some((_, r)) => *r += credit,
                None => s.item_reward.push((pos, credit)),
            }
        }
        let after = s.bytes();
        self.bytes = self.bytes + after - before.min(after);
        (Attribution::Attributed { credit }, origin)
    }

    /// Every entry, oldest first (for a snapshot).
    pub fn export(&self) -> Vec<(u64, Served)> {
        self.order
            .iter()
            .filter_map(|k| Some((*k, self.map.get(k)?.clone())))
            .collect()
    }

    /// Restores entries exported by [`Self::export`], in their order.
    pub fn restore(&mut self, entries: Vec<(u64, Served)>) {
        for (key, s) in entries {
            self.newest_ts = self.newest_ts.max(s.ts);
            if self.map.contains_key(&key) {
                continue;
            }
            self.bytes += s.bytes();
            self.map.insert(key, s);
            self.order.push_back(key);
        }
        self.evict();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(max_count: usize, max_bytes: usize) -> Impressions {
        Impressions::new(ImpressionBounds {
            max_count,
            max_bytes,
            ttl_secs: 3600,
        })
    }

    const CAPS: CreditCaps = CreditCaps {
        per_impression: 1.0,
        per_item: 1.0,
    };

    fn served(user: Option<&str>, items: &[&str], ts: i64) -> Served {
        Served {
            user: user.map(id_hash),
            variant: "control".into(),
            arm: Some(ArmTag { context: 3, arm: 1 }),
            items: items.iter().map(|i| id_hash(i)).collect(),
            exposure: Vec::new(),
            credited: Vec::new(),
            reward: 0.0,
            item_reward: Vec::new(),
            ts,
        }
    }

    #[test]
    fn attribution_rules() {
        let mut imps = store(100, 1 << 20);
        imps.insert("a", served(Some("u1"), &["i1", "i2", "i3"], 10));
        let attr = |imps: &mut Impressions, user, item, ev, r| {
            imps.attribute("a", user, item, ev, r, CAPS).0
        };
        assert_eq!(
            attr(&mut imps, "u1", "i2", "click", 0.5),
            Attribution::Attributed { credit: 0.5 }
        );
        assert_eq!(
            attr(&mut imps, "u1", "i2", "click", 0.5),
            Attribution::Duplicate
        );
        assert_eq!(
            attr(&mut imps, "u2", "i3", "click", 0.5),
            Attribution::UserMismatch
        );
        assert_eq!(
            attr(&mut imps, "u1", "i9", "click", 0.5),
            Attribution::NotShown
        );
        assert_eq!(
            imps.attribute("zz", "u1", "i1", "click", 0.5, CAPS).0,
            Attribution::UnknownImpression
        );
        // Per item: a purchase after the click on i2 earns only what is left of the item cap.
        assert_eq!(
            attr(&mut imps, "u1", "i2", "purchase", 1.0),
            Attribution::Attributed { credit: 0.5 }
        );
        // Per impression: the list has earned 1.0, so another item's click earns nothing,
        // but still counts as attributed (a real click on a shown item).
        assert_eq!(
            attr(&mut imps, "u1", "i3", "click", 0.5),
            Attribution::Attributed { credit: 0.0 }
        );
        assert!(
            imps.get("a")
                .is_some_and(|s| s.reward <= CAPS.per_impression)
        );
    }

    #[test]
    fn anonymous_lists_accept_any_user_and_repeated_ids_reset_nothing() {
        let mut imps = store(100, 1 << 20);
        imps.insert("s", served(None, &["i1"], 10));
        assert!(
            imps.attribute("s", "whoever", "i1", "click", 1.0, CAPS)
                .0
                .is_attributed()
        );
        // The same id again (a replayed record) does not replace the credited entry.
        imps.insert("s", served(None, &["i1"], 11));
        assert_eq!(
            imps.attribute("s", "whoever", "i1", "click", 1.0, CAPS).0,
            Attribution::Duplicate
        );
    }

    #[test]
    fn bounded_by_bytes_and_age_oldest_first() {
        let one = served(Some("u"), &["a", "b", "c", "d"], 0).bytes();
        let cap = one * 10;
        let mut imps = store(1000, cap);
        for i in 0..100 {
            imps.insert(
                &format!("r{i}"),
                served(Some("u"), &["a", "b", "c", "d"], 0),
            );
            assert!(imps.bytes() <= cap);
        }
        assert_eq!(imps.len(), 10);
        assert!(imps.get("r89").is_none() && imps.get("r90").is_some());
        assert_eq!(imps.evicted(), 90);
        // Age: an impression an hour and a second newer expires every older one.
        imps.insert("late", served(Some("u"), &["a"], 3601));
        assert_eq!(imps.len(), 1);
        // Export and restore keep the entries and their order.
        let mut again = store(1000, cap);
        again.restore(imps.export());
        assert_eq!(again.export(), imps.export());
        assert_eq!(again.bytes(), imps.bytes());
        // Count: at most max_count entries, oldest first.
        let mut few = store(3, usize::MAX);
        for i in 0..5 {
            few.insert(&format!("c{i}"), served(Some("u"), &["a"], 0));
        }
        assert_eq!(few.len(), 3);
        assert!(few.get("c1").is_none() && few.get("c2").is_some());
    }
}
