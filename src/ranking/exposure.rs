//! New-item exposure: a configured share of a list's slots goes to items with few or no
//! interactions, so a new item reaches people and collects the feedback that warms it up. The
//! position policy is explicit (one slot per block of `round(1 / share)` positions, fixed or
//! drawn per request, in the `traffic_share` of requests drawn for exposure), the item for a
//! slot is the user's best new item by the feature/content model (or, for the evaluation's
//! baseline, a uniformly random one), and every slot's exact
//! propensity is known, so an impression log can record it. All randomness is seeded by the
//! request, so a request always gets the same list.
//!
//! It never removes an item the chain decided for reasons other than making room: the list is
//! the chain's list with the exposure items inserted at their slots and its tail cut back to `n`.

use super::RecItem;
use crate::bundle::Model;
use crate::catalogue::Overlay;
use crate::retrieval::{Candidate, Eligibility, UserProfile};
use serde::{Deserialize, Serialize};

/// Where a block's exposure slot goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// Position `offset` of every block.
    Fixed,
    /// A position drawn uniformly from `offset..block` of every block, per request (seeded).
    Random,
}

/// Which new item fills a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pick {
    /// The user's best new items by the hybrid model (user vector · item vector, the item's
    /// vector built from its features) or, without a user vector, by content similarity to
    /// the session/profile; newest first when neither exists.
    Model,
    /// Uniformly random eligible new items (seeded per request): the baseline that tells
    /// whether the model's choice beats exposure alone.
    Random,
}

/// One treatment's exposure policy (`[serving.exposure]`, or a variant's `exposure = {…}`).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExposurePolicy {
    /// Share of the slots for new items, in [0, 0.5]; 0 = off (the list is the chain's list).
    pub share: f64,
    pub placement: Placement,
    /// First position of a block that may hold the slot (0-based, below the block length).
    pub offset: usize,
    pub pick: Pick,
    /// Share of requests whose list gets the slots (the exploration budget), in [0, 1]; drawn
    /// per request (seeded), so the slots' share of all served slots is `share × traffic_share`.
    pub traffic_share: f64,
}

impl Default for ExposurePolicy {
    /// The shipped default: in a quarter of the requests, one slot in ten, drawn uniformly from
    /// positions 7–9 of each block of ten (0-based), filled by the model's best new item for the
    /// user: 2.5% of all slots (README, Cold start, for what every list paid at 10%).
    fn default() -> Self {
        Self {
            share: 0.1,
            placement: Placement::Random,
            offset: 7,
            pick: Pick::Model,
            traffic_share: 0.25,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExposureError {
    #[error("exposure share must be in [0, 0.5], got {0}")]
    Share(f64),
    #[error("exposure traffic_share must be in [0, 1], got {0}")]
    TrafficShare(f64),
    #[error("exposure offset {offset} must be below the block length {block}")]
    Offset { offset: usize, block: usize },
}

/// An exposure slot of a served list.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ExposureSlot {
    /// 0-based position in the served list.
    pub position: usize,
    /// The probability, under the policy, that this position was an exposure slot.
    pub propensity: f64,
}

impl ExposurePolicy {
    /// Off: no slot, the list unchanged.
    pub const OFF: ExposurePolicy = ExposurePolicy {
        share: 0.0,
        placement: Placement::Fixed,
        offset: 0,
        pick: Pick::Model,
        traffic_share: 0.0,
    };

    pub fn is_off(&self) -> bool {
        // NaN counts as off (validation refuses it anyway).
        !(self.share > 0.0 && self.traffic_share > 0.0)
    }

    /// Positions per block (one exposure slot each): `round(1 / share)`; 0 when off.
    pub fn block(&self) -> usize {
        if self.is_off() {
            0
        } else {
            (1.0 / self.share).round().max(1.0) as usize
        }
    }

    pub fn validate(&self) -> Result<(), ExposureError> {
        if !(0.0..=0.5).contains(&self.share) {
            return Err(ExposureError::Share(self.share));
        }
        if !(0.0..=1.0).contains(&self.traffic_share) {
            return Err(ExposureError::TrafficShare(self.traffic_share));
        }
        let block = self.block();
        if block > 0 && self.offset >= block {
            return Err(ExposureError::Offset {
                offset: self.offset,
                block,
            });
        }
        Ok(())
    }

    /// The exact probability that `position` is an exposure slot under this policy (what an
    /// impression log records for off-policy evaluation): `traffic_share` × (1 or 0 for fixed
    /// placement, `1 / (block − offset)` inside a block's window for random placement).
    pub fn slot_propensity(&self, position: usize) -> f64 {
        let block = self.block();
        if block == 0 {
            return 0.0;
        }
        let within = position % block;
        let in_list = match self.placement {
            Placement::Fixed => f64::from(u8::from(within == self.offset)),
            Placement::Random if within >= self.offset => 1.0 / (block - self.offset) as f64,
            Placement::Random => 0.0,
        };
        in_list * self.traffic_share
    }

    /// Whether the request seeded `seed` is one of the `traffic_share` drawn for exposure (its
    /// own stream: the positions' draws do not depend on it).
    pub fn exposes(&self, seed: u64) -> bool {
        if self.traffic_share >= 1.0 {
            return true;
        }
        let draw = crate::splitmix::SplitMix64(seed ^ TRAFFIC_SALT).next_u64();
        ((draw >> 11) as f64 / (1u64 << 53) as f64) < self.traffic_share
    }

    /// The exposure positions of a list of `n` for the request seeded `seed`, ascending.
    pub fn slots(&self, n: usize, seed: u64) -> Vec<usize> {
        let block = self.block();
        if block == 0 || self.offset >= block || !self.exposes(seed) {
            return Vec::new();
        }
        let mut rng = crate::splitmix::SplitMix64(seed);
        (0..n.div_ceil(block))
            .map(|b| {
                let within = match self.placement {
                    Placement::Fixed => self.offset,
                    Placement::Random => {
                        self.offset + (rng.next_u64() % (block - self.offset) as u64) as usize
                    }
                };
                b * block + within
            })
            .filter(|&p| p < n)
            .collect()
    }
}

/// Salts the per-request exposure draw apart from the position draws.
const TRAFFIC_SALT: u64 = 0xD1B5_4A32_D192_ED03;

/// The items exposure may choose from: few or no training interactions, newest first, bounded
/// so a request scores at most `cap` of them. Built once per engine.
#[derive(Debug, Clone, Default)]
pub struct NewItems {
    pub items: Vec<u32>,
    flags: Vec<bool>,
}

impl NewItems {
    /// Items with at most `max_interactions` training interactions; without an age (never
    /// interacted) first, then youngest first; at most `cap`.
    pub fn new(model: &Model, max_interactions: u32, cap: usize) -> Self {
        let mut items: Vec<u32> = (0..model.n_items() as u32)
            .filter(|&i| model.item_stats[i as usize].count <= max_interactions as f32)
            .collect();
        let age = |i: u32| {
            let a = model.item_stats[i as usize].age_days;
            if a.is_nan() { f32::NEG_INFINITY } else { a }
        };
        items.sort_by(|&a, &b| age(a).total_cmp(&age(b)).then(a.cmp(&b)));
        items.truncate(cap);
        let mut flags = vec![false; model.n_items()];
        for &i in &items {
            flags[i as usize] = true;
        }
        Self { items, flags }
    }

    /// Whether `item` is one of the new items exposure picks from.
    pub fn contains(&self, item: u32) -> bool {
        self.flags.get(item as usize).copied().unwrap_or(false)
    }
}

/// The name an exposure item's `sources` list and its explanation carry beside the candidate
/// sources that proposed it (if any).
pub const EXPOSURE_SOURCE: &str = "exposure";

/// Items added at runtime (the catalogue overlay), as candidates for the exposure slots: the
/// newest items of all. `excluded` holds the added items this request must not get (its
/// `exclude=`, and what the user has already seen), ascending.
#[derive(Clone, Copy)]
pub struct AddedItems<'a> {
    pub overlay: &'a Overlay,
    pub excluded: &'a [usize],
}

/// Inserts exposure items into `items` (the chain's final list, at most `n` long; its length
/// is kept) and returns the slots used. A slot is used only when an eligible new item outside
/// the list is left. `ahead` are the items the chain ranked just below the list, best first:
/// with the model pick, the new items among them go first (the ranker judged those inside its
/// cut with every feature, including the content and category ones the hybrid model's dot
/// product lacks; below the cut, or without a ranker, the learned blend's order), then the
/// hybrid model's best.
#[allow(clippy::too_many_arguments)]
pub fn apply(
    policy: &ExposurePolicy,
    model: &Model,
    pool: &NewItems,
    added: Option<AddedItems<'_>>,
    profile: &UserProfile,
    elig: &Eligibility,
    items: &mut Vec<RecItem>,
    cands: &[Candidate],
    ahead: &[u32],
    n: usize,
    seed: u64,
) -> Vec<ExposureSlot> {
    let len = n.min(items.len());
    let slots = policy.slots(len, seed);
    let added = added.filter(|a| a.overlay.n_added() > 0);
    if slots.is_empty() || (pool.items.is_empty() && added.is_none()) {
        return Vec::new();
    }
    let mut picks: Vec<u32> = Vec::with_capacity(slots.len());
    if policy.pick == Pick::Model {
        for &i in ahead {
            if picks.len() == slots.len() {
                break;
            }
            if pool.contains(i)
                && elig.allows(model, i)
                && !items.iter().any(|r| r.item == i)
                && !picks.contains(&i)
            {
                picks.push(i);
            }
        }
    }
    if picks.len() < slots.len() {
        let rest = choose(
            policy.pick,
            model,
            pool,
            added,
            profile,
            elig,
            items,
            slots.len(),
            seed,
        );
        for i in rest {
            if picks.len() == slots.len() {
                break;
            }
            if !picks.contains(&i) {
                picks.push(i);
            }
        }
    }
    let mut out = Vec::with_capacity(picks.len());
    for (&pos, item) in slots.iter().zip(picks) {
        // The item keeps the score of the one it moves down, so scores stay non-increasing.
        let score = items.get(pos).map_or(f32::NAN, |r| r.score);
        // The sources that proposed it too, when it was a candidate.
        let sources = cands
            .iter()
            .find(|c| c.item == item)
            .map_or(0u8, |c| c.source_bits());
        items.insert(
            pos,
            RecItem {
                item,
                score,
                sources,
            },
        );
        out.push(ExposureSlot {
            position: pos,
            propensity: policy.slot_propensity(pos),
        });
    }
    // The list keeps its length: exposure takes slots, it never lengthens a short list.
    items.truncate(len);
    out.retain(|s| s.position < items.len());
    out
}

/// Up to `m` eligible new items outside `items`, best first by `pick`.
#[allow(clippy::too_many_arguments)]
fn choose(
    pick: Pick,
    model: &Model,
    pool: &NewItems,
    added: Option<AddedItems<'_>>,
    profile: &UserProfile,
    elig: &Eligibility,
    items: &[RecItem],
    m: usize,
    seed: u64,
) -> Vec<u32> {
    // The list's items, sorted: one binary search per pool item, not a walk of the list.
    let mut listed: Vec<u32> = items.iter().map(|r| r.item).collect();
    listed.sort_unstable();
    let open = |i: u32| elig.allows(model, i) && listed.binary_search(&i).is_err();
    let dot = crate::retrieval::index::dot;
    let mut rng = crate::splitmix::SplitMix64(seed ^ 0x9E37_79B9_7F4A_7C15);
    let mut scored: Vec<(f32, u32)> = pool
        .items
        .iter()
        .enumerate()
        .filter(|&(_, &i)| open(i))
        .map(|(rank, &i)| {
            let s = match pick {
                Pick::Random => rng.next_u64() as f32,
                Pick::Model => match (profile.user, profile.content_profile.is_empty()) {
                    (Some(u), _) => {
                        dot(model.user_cf(u), model.item_cf(i)) + model.item_bias[i as usize]
                    }
                    (None, false) => dot(&profile.content_profile, model.item_content(i)),
                    // Nothing to personalise with: the pool's order (newest first).
                    (None, true) => -(rank as f32),
                },
            };
            (s, i)
        })
        .collect();
    if let Some(a) = added {
        scored.extend(choose_added(pick, model, a, profile, elig, m, &mut rng));
    }
    let m = m.min(scored.len());
    if m == 0 {
        return Vec::new();
    }
    let cmp = |a: &(f32, u32), b: &(f32, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
    scored.select_nth_unstable_by(m - 1, cmp);
    scored.truncate(m);
    scored.sort_unstable_by(cmp);
    scored.into_iter().map(|(_, i)| i).collect()
}

/// Up to `m` added items by `pick`, as (score, id) on the same scale as the pool's scores: an
/// exact scan of the overlay's vectors by the user's hybrid vector (or the session's content
/// profile), excluding what the request may not get.
fn choose_added(
    pick: Pick,
    model: &Model,
    a: AddedItems<'_>,
    profile: &UserProfile,
    elig: &Eligibility,
    m: usize,
    rng: &mut crate::splitmix::SplitMix64,
) -> Vec<(f32, u32)> {
    use crate::retrieval::SearchEligible;
    use crate::retrieval::index::ExcludedIds;
    let ov = a.overlay;
    let in_category = |k: u32| {
        elig.category
            .is_none_or(|c| ov.categories(k as usize).contains(&c))
    };
    let open = |k: usize| a.excluded.binary_search(&k).is_err() && in_category(k as u32);
    let scan = |index: Option<&crate::retrieval::index::VectorIndex>, query: &[f32]| {
        let excluded = ExcludedIds::new(a.excluded.iter().map(|&k| k as u32));
        index.map_or_else(Vec::new, |ix| {
            ix.search_eligible(
                query,
                m,
                &excluded,
                None,
                in_category,
                crate::deadline::Deadline::NONE,
            )
            .list
        })
    };
    let found: Vec<(u32, f32)> = match (pick, profile.user, profile.content_profile.is_empty()) {
        (Pick::Random, _, _) => (0..ov.n_added())
            .filter(|&k| open(k))
            .map(|k| (k as u32, rng.next_u64() as f32))
            .collect(),
        (Pick::Model, Some(u), _) => scan(ov.cf_index.as_ref(), model.user_cf(u)),
        (Pick::Model, None, false) => scan(ov.content_index.as_ref(), &profile.content_profile),
        // Newest first: items added at runtime before the bundle's new items (scores ≥ 1).
        (Pick::Model, None, true) => (0..ov.n_added())
            .filter(|&k| open(k))
            .take(m)
            .map(|k| (k as u32, (ov.n_added() - k) as f32))
            .collect(),
    };
    found
        .into_iter()
        .map(|(k, s)| (s, ov.id_of(k as usize)))
        .collect()
}

/// A request's exposure seed from what identifies it (the server passes its request id; the
/// evaluator the user): FNV-1a, stable across runs and builds.
pub fn seed_of(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in *p {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(share: f64, placement: Placement, offset: usize) -> ExposurePolicy {
        ExposurePolicy {
            share,
            placement,
            offset,
            pick: Pick::Model,
            traffic_share: 1.0,
        }
    }

    // Cost: arithmetic over a few thousand seeds, milliseconds.
    #[test]
    fn slots_follow_the_policy_and_the_propensities_are_exact() {
        let fixed = policy(0.1, Placement::Fixed, 9);
        assert_eq!(fixed.slots(20, 1), vec![9, 19]);
        assert_eq!(fixed.slots(15, 1), vec![9]);
        assert_eq!(fixed.slot_propensity(9), 1.0);
        assert_eq!(fixed.slot_propensity(8), 0.0);
        assert!(ExposurePolicy::OFF.slots(50, 1).is_empty() && ExposurePolicy::OFF.is_off());

        // Random placement: the empirical frequency of each position matches the propensity.
        let random = policy(0.1, Placement::Random, 5);
        let mut hits = [0usize; 20];
        let runs = 20_000;
        for seed in 0..runs as u64 {
            let s = random.slots(20, seed_of(&[&seed.to_le_bytes()]));
            assert_eq!(s.len(), 2, "one slot per block of ten");
            assert_eq!(
                s,
                random.slots(20, seed_of(&[&seed.to_le_bytes()])),
                "seeded"
            );
            for p in s {
                hits[p] += 1;
            }
        }
        for (p, &h) in hits.iter().enumerate() {
            let want = random.slot_propensity(p);
            let got = h as f64 / runs as f64;
            assert!((got - want).abs() < 0.015, "position {p}: {got} vs {want}");
        }
        assert_eq!(random.slot_propensity(4), 0.0);
        assert!((random.slot_propensity(17) - 0.2).abs() < 1e-12);
        // Validation.
        assert!(policy(0.6, Placement::Fixed, 0).validate().is_err());
        assert!(policy(0.25, Placement::Fixed, 4).validate().is_err());
        assert!(ExposurePolicy::default().validate().is_ok());
        let over = ExposurePolicy {
            traffic_share: 1.5,
            ..ExposurePolicy::default()
        };
        assert!(over.validate().is_err());
    }

    // Cost: 40,000 seeded draws, milliseconds.
    #[test]
    fn a_traffic_share_of_requests_gets_the_slots_and_the_propensity_says_so() {
        let always = policy(0.1, Placement::Random, 7);
        let some = ExposurePolicy {
            traffic_share: 0.25,
            ..always
        };
        let runs = 40_000;
        let mut exposed = 0;
        let mut hits = [0usize; 10];
        for seed in 0..runs as u64 {
            let seed = seed_of(&[&seed.to_le_bytes()]);
            let s = some.slots(10, seed);
            if !s.is_empty() {
                exposed += 1;
                // An exposed request's slots are the ones it gets with exposure always on.
                assert_eq!(s, always.slots(10, seed));
            }
            for p in s {
                hits[p] += 1;
            }
        }
        let got = exposed as f64 / runs as f64;
        assert!((got - 0.25).abs() < 0.01, "exposed share {got}");
        for (p, &h) in hits.iter().enumerate() {
            let want = some.slot_propensity(p);
            assert!(
                (h as f64 / runs as f64 - want).abs() < 0.006,
                "position {p}"
            );
        }
        assert!((some.slot_propensity(8) - 0.25 / 3.0).abs() < 1e-12);
        let none = ExposurePolicy {
            traffic_share: 0.0,
            ..always
        };
        assert!(none.is_off() && none.slots(10, 1).is_empty());
    }
}
