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

    /// What the list costs held in [`Impressions`], in bytes: its entry, its item hashes in
    /// the shared ring, its share of the index and, once it has any, its side record.
    pub fn bytes(&self) -> usize {
        let has_extra = !self.exposure.is_empty() || !self.credited.is_empty();
        let lens = [
            self.exposure.len(),
            self.credited.len(),
            self.item_reward.len(),
        ];
        entry_bytes(
            self.items.len().min(u16::MAX as usize),
            has_extra.then_some(lens),
        )
    }
}

/// The cost of one held entry with `n_items` items and, if it has one, a side record holding
/// `[exposure positions, credited pairs, per-item rewards]`.
fn entry_bytes(n_items: usize, extra: Option<[usize; 3]>) -> usize {
    let extra = extra.map_or(0, |[exposure, credited, item_reward]| {
        std::mem::size_of::<Extra>()
            + 2 * exposure
            + 8 * credited
            + 16 * item_reward
            + 3 * MALLOC_HEADER
    });
    std::mem::size_of::<Held>() + 8 * n_items + INDEX_SLOT + extra
}

/// One held list: fixed size, no allocation of its own. Its item hashes sit in the store's ring
/// (`items_at..items_at + n_items`); exposure positions and credit, which most lists never get,
/// in a side record allocated on first use.
#[derive(Debug)]
struct Held {
    key: u64,
    user: u64,
    ts: i64,
    items_at: u64,
    extra: Option<Box<Extra>>,
    n_items: u16,
    variant: u16,
    context: u16,
    arm: u8,
    flags: u8,
}

const ANONYMOUS: u8 = 1;
const HAS_ARM: u8 = 2;

/// What a list gains beyond what it was served with: exposure positions, and its credit.
#[derive(Debug, Default, Clone)]
struct Extra {
    exposure: Vec<u16>,
    credited: Vec<(u16, u32)>,
    reward: f64,
    item_reward: Vec<(u16, f64)>,
}

/// The index's cost per entry: key and sequence number, its control byte, at the hash map's
/// lowest load after growth (7/16).
const INDEX_SLOT: usize = 17 * 16 / 7;
/// malloc's header and rounding per allocation, for the side record's buffers.
const MALLOC_HEADER: usize = 16;
/// Distinct variant names the store interns; names past it are held as [`OTHER_VARIANT`]
/// (variants come from the configuration, so only a corrupt or foreign log reaches it).
const MAX_VARIANTS: usize = 4096;
const OTHER_VARIANT: &str = "other";

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
///
/// Entries are evicted in the order they arrived, so they live in rings: `held` (fixed-size
/// entries) and `items` (every list's item hashes, back to back). A 10-item list costs ~165 bytes
/// and no allocation of its own ([`Served::bytes`]); the index maps the impression id's hash to
/// the entry's sequence number.
pub struct Impressions {
    bounds: ImpressionBounds,
    index: FxHashMap<u64, u64>,
    /// `held[i]` has sequence number `first_seq + i`.
    held: VecDeque<Held>,
    first_seq: u64,
    /// `items[j]` is at offset `items_base + j`.
    items: VecDeque<u64>,
    items_base: u64,
    variants: Vec<String>,
    bytes: usize,
    newest_ts: i64,
    evicted: u64,
}

impl Impressions {
    pub fn new(bounds: ImpressionBounds) -> Self {
        Self {
            bounds,
            index: FxHashMap::default(),
            held: VecDeque::new(),
            first_seq: 0,
            items: VecDeque::new(),
            items_base: 0,
            variants: Vec::new(),
            bytes: 0,
            newest_ts: 0,
            evicted: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Entries dropped by the bounds so far.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Whether a list is held under this impression id.
    pub fn contains(&self, id: &str) -> bool {
        self.index.contains_key(&id_hash(id))
    }

    /// The list held under an impression id, in its exchange form.
    pub fn get(&self, id: &str) -> Option<Served> {
        let seq = *self.index.get(&id_hash(id))?;
        self.served(self.entry(seq)?)
    }

    fn entry(&self, seq: u64) -> Option<&Held> {
        self.held
            .get(usize::try_from(seq.checked_sub(self.first_seq)?).ok()?)
    }

    fn items_of(&self, h: &Held) -> impl Iterator<Item = u64> + '_ {
        let from =
            usize::try_from(h.items_at.saturating_sub(self.items_base)).unwrap_or(usize::MAX);
        self.items
            .range(from.min(self.items.len())..)
            .take(h.n_items as usize)
            .copied()
    }

    fn served(&self, h: &Held) -> Option<Served> {
        let extra = h.extra.as_deref().cloned().unwrap_or_default();
        Some(Served {
            user: (h.flags & ANONYMOUS == 0).then_some(h.user),
            variant: self.variants.get(h.variant as usize)?.clone(),
            arm: (h.flags & HAS_ARM != 0).then_some(ArmTag {
                context: h.context,
                arm: h.arm,
            }),
            items: self.items_of(h).collect(),
            exposure: extra.exposure,
            credited: extra.credited,
            reward: extra.reward,
            item_reward: extra.item_reward,
            ts: h.ts,
        })
    }

    fn intern(&mut self, variant: &str) -> u16 {
        if let Some(i) = self.variants.iter().position(|v| v == variant) {
            return i as u16;
        }
        let name = if self.variants.len() < MAX_VARIANTS - 1 {
            variant
        } else {
            OTHER_VARIANT
        };
        match self.variants.iter().position(|v| v == name) {
            Some(i) => i as u16,
            None => {
                self.variants.push(name.to_owned());
                (self.variants.len() - 1) as u16
            }
        }
    }

    /// Remembers a list under its impression id. Ids are server-issued and unique, so a
    /// repeated id (a replayed record) replaces nothing that was credited: the first wins.
    pub fn insert(&mut self, id: &str, s: Served) {
        self.insert_keyed(id_hash(id), s);
        self.evict();
    }

    fn insert_keyed(&mut self, key: u64, s: Served) {
        self.newest_ts = self.newest_ts.max(s.ts);
        if self.index.contains_key(&key) {
            return;
        }
        let variant = self.intern(&s.variant);
        let n_items = s.items.len().min(u16::MAX as usize);
        let items_at = self.items_base + self.items.len() as u64;
        self.items.extend(&s.items[..n_items]);
        let has_extra = !s.exposure.is_empty() || !s.credited.is_empty();
        let seq = self.first_seq + self.held.len() as u64;
        self.held.push_back(Held {
            key,
            user: s.user.unwrap_or(0),
            ts: s.ts,
            items_at,
            extra: has_extra.then(|| {
                Box::new(Extra {
                    exposure: s.exposure,
                    credited: s.credited,
                    reward: s.reward,
                    item_reward: s.item_reward,
                })
            }),
            n_items: n_items as u16,
            variant,
            context: s.arm.map_or(0, |a| a.context),
            arm: s.arm.map_or(0, |a| a.arm),
            flags: if s.user.is_none() { ANONYMOUS } else { 0 }
                | if s.arm.is_some() { HAS_ARM } else { 0 },
        });
        self.index.insert(key, seq);
        self.bytes += self.held.back().map_or(0, Self::held_bytes);
    }

    /// What a held entry costs, as [`Served::bytes`] counts it.
    fn held_bytes(h: &Held) -> usize {
        let lens = h
            .extra
            .as_deref()
            .map(|e| [e.exposure.len(), e.credited.len(), e.item_reward.len()]);
        entry_bytes(h.n_items as usize, lens)
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
        while let Some(front) = self.held.front() {
            let expired = front.ts < oldest_kept;
            if self.bytes <= max_bytes && self.held.len() <= max_count.max(1) && !expired {
                break;
            }
            let gone = Self::held_bytes(front);
            let (key, n) = (front.key, front.n_items as usize);
            self.held.pop_front();
            self.first_seq += 1;
            let n = n.min(self.items.len());
            self.items.drain(..n);
            self.items_base += n as u64;
            self.index.remove(&key);
            self.bytes = self.bytes.saturating_sub(gone);
            self.evicted += 1;
        }
        // A burst that grew the rings past what the bounds now keep gives the memory back.
        if self.held.capacity() > 4 * self.held.len().max(1024) {
            self.held.shrink_to(2 * self.held.len());
            self.items.shrink_to(2 * self.items.len());
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
        let Some(&seq) = self.index.get(&id_hash(id)) else {
            return (Attribution::UnknownImpression, None);
        };
        let Some(h) = self.entry(seq) else {
            return (Attribution::UnknownImpression, None);
        };
        let item_h = id_hash(item);
        let found = self.items_of(h).position(|i| i == item_h);
        let pos = found.map_or(u16::MAX, |p| p.min(u16::MAX as usize) as u16);
        let origin = Some(Origin {
            variant: self
                .variants
                .get(h.variant as usize)
                .cloned()
                .unwrap_or_default(),
            arm: (h.flags & HAS_ARM != 0).then_some(ArmTag {
                context: h.context,
                arm: h.arm,
            }),
            exposure: found.is_some()
                && h.extra.as_ref().is_some_and(|e| e.exposure.contains(&pos)),
        });
        if h.flags & ANONYMOUS == 0 && h.user != id_hash(user) {
            return (Attribution::UserMismatch, origin);
        }
        if found.is_none() {
            return (Attribution::NotShown, origin);
        }
        let ev = id_hash(event) as u32;
        if h.extra
            .as_ref()
            .is_some_and(|e| e.credited.contains(&(pos, ev)))
        {
            return (Attribution::Duplicate, origin);
        }
        let before = Self::held_bytes(h);
        let first = self.first_seq;
        let Some(h) = usize::try_from(seq - first)
            .ok()
            .and_then(|i| self.held.get_mut(i))
        else {
            return (Attribution::UnknownImpression, None);
        };
        let e = h.extra.get_or_insert_with(Box::default);
        e.credited.push((pos, ev));
        let item_so_far = e
            .item_reward
            .iter()
            .find(|(p, _)| *p == pos)
            .map_or(0.0, |(_, r)| *r);
        let credit = reward
            .max(0.0)
            .min((caps.per_item - item_so_far).max(0.0))
            .min((caps.per_impression - e.reward).max(0.0));
        if credit > 0.0 {
            e.reward += credit;
            match e.item_reward.iter_mut().find(|(p, _)| *p == pos) {
                Some((_, r)) => *r += credit,
                None => e.item_reward.push((pos, credit)),
            }
        }
        let after = Self::held_bytes(h);
        self.bytes = self.bytes + after - before.min(after);
        (Attribution::Attributed { credit }, origin)
    }

    /// Every entry, oldest first (for a snapshot).
    pub fn export(&self) -> Vec<(u64, Served)> {
        self.held
            .iter()
            .filter_map(|h| Some((h.key, self.served(h)?)))
            .collect()
    }

    /// Restores entries exported by [`Self::export`], in their order.
    pub fn restore(&mut self, entries: Vec<(u64, Served)>) {
        for (key, s) in entries {
            self.insert_keyed(key, s);
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
                .is_some_and(|s| s.reward <= CAPS.per_impression && s.reward > 0.0)
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

    /// The rules on a plain list of (key, list) pairs, oldest first: the reference the rings
    /// must match.
    #[derive(Default)]
    struct Naive {
        entries: Vec<(u64, Served)>,
        newest_ts: i64,
    }

    impl Naive {
        fn insert(&mut self, b: ImpressionBounds, key: u64, s: Served) {
            self.newest_ts = self.newest_ts.max(s.ts);
            if !self.entries.iter().any(|(k, _)| *k == key) {
                self.entries.push((key, s));
            }
            let oldest = self.newest_ts - b.ttl_secs as i64;
            while self.entries.first().is_some_and(|(_, f)| {
                let bytes: usize = self.entries.iter().map(|(_, s)| s.bytes()).sum();
                bytes > b.max_bytes || self.entries.len() > b.max_count || f.ts < oldest
            }) {
                self.entries.remove(0);
            }
        }

        fn attribute(&mut self, key: u64, user: &str, item: &str, ev: &str, r: f64) -> Attribution {
            let Some((_, s)) = self.entries.iter_mut().find(|(k, _)| *k == key) else {
                return Attribution::UnknownImpression;
            };
            let Some(pos) = s.items.iter().position(|&i| i == id_hash(item)) else {
                return if s.user.is_some_and(|u| u != id_hash(user)) {
                    Attribution::UserMismatch
                } else {
                    Attribution::NotShown
                };
            };
            if s.user.is_some_and(|u| u != id_hash(user)) {
                return Attribution::UserMismatch;
            }
            let (pos, ev) = (pos as u16, id_hash(ev) as u32);
            if s.credited.contains(&(pos, ev)) {
                return Attribution::Duplicate;
            }
            s.credited.push((pos, ev));
            let so_far: f64 = s
                .item_reward
                .iter()
                .filter(|(p, _)| *p == pos)
                .map(|(_, r)| r)
                .sum();
            let credit = r
                .min(CAPS.per_item - so_far)
                .min(CAPS.per_impression - s.reward)
                .max(0.0);
            if credit > 0.0 {
                s.reward += credit;
                match s.item_reward.iter_mut().find(|(p, _)| *p == pos) {
                    Some((_, x)) => *x += credit,
                    None => s.item_reward.push((pos, credit)),
                }
            }
            Attribution::Attributed { credit }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Random inserts (with repeated ids, anonymous lists, exposure slots, time jumps) and
        /// events under tight bounds: the rings attribute, evict and export exactly like the
        /// plain list, and count the same bytes.
        #[test]
        fn rings_match_the_plain_list(
            ops in proptest::collection::vec((0u8..3, 0u32..40, 0u8..6, 0u8..8, 0i64..3), 1..300),
            max_count in 1usize..30,
            max_entries_by_bytes in 1usize..30,
        ) {
            let one = served(Some("u0"), &["i0", "i1", "i2", "i3"], 0).bytes();
            let bounds = ImpressionBounds { max_count, max_bytes: one * max_entries_by_bytes, ttl_secs: 50 };
            let mut rings = Impressions::new(bounds);
            let mut naive = Naive::default();
            let mut ts = 0i64;
            for (kind, id, user, item, step) in ops {
                let imp = format!("r{id}");
                let user = format!("u{user}");
                match kind {
                    0 => {
                        ts += step * 20;
                        let n = 1 + (id as usize % 6);
                        let items: Vec<String> = (0..n).map(|k| format!("i{}", (id as usize + k) % 8)).collect();
                        let refs: Vec<&str> = items.iter().map(String::as_str).collect();
                        let mut s = served((id % 5 != 0).then_some(user.as_str()), &refs, ts);
                        if id % 3 == 0 {
                            s.exposure = vec![0];
                        }
                        rings.insert(&imp, s.clone());
                        naive.insert(bounds, id_hash(&imp), s);
                    }
                    _ => {
                        let ev = if kind == 1 { "click" } else { "purchase" };
                        let reward = if kind == 1 { 0.5 } else { 1.0 };
                        let item = format!("i{item}");
                        let got = rings.attribute(&imp, &user, &item, ev, reward, CAPS).0;
                        proptest::prop_assert_eq!(got, naive.attribute(id_hash(&imp), &user, &item, ev, reward));
                    }
                }
                proptest::prop_assert_eq!(rings.export(), naive.entries.clone());
                let naive_bytes: usize = naive.entries.iter().map(|(_, s)| s.bytes()).sum();
                proptest::prop_assert_eq!(rings.bytes(), naive_bytes);
            }
        }
    }

    #[test]
    fn a_ten_item_list_costs_under_170_bytes_and_exposure_keeps_its_origin() {
        let items: Vec<String> = (0..10).map(|i| format!("i{i}")).collect();
        let refs: Vec<&str> = items.iter().map(String::as_str).collect();
        let plain = served(Some("u"), &refs, 0);
        assert!(plain.bytes() < 170, "{} bytes", plain.bytes());
        let mut imps = store(10, 1 << 20);
        let mut exposed = plain.clone();
        exposed.exposure = vec![3];
        imps.insert("x", exposed);
        let (a, origin) = imps.attribute("x", "u", "i3", "click", 0.5, CAPS);
        assert!(a.is_attributed());
        let origin = origin.expect("held");
        assert!(origin.exposure && origin.variant == "control");
        assert_eq!(origin.arm, Some(ArmTag { context: 3, arm: 1 }));
        let (_, origin) = imps.attribute("x", "u", "i4", "click", 0.5, CAPS);
        assert!(origin.is_some_and(|o| !o.exposure));
    }
}
