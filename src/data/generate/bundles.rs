//! Bundles: small groups of items consumed together (sequels, series, accessories), drawn mostly
//! across categories, so that the co-consumption they cause is explained neither by categories
//! nor by content features. Derived from the seed alone (its own random stream); memory O(items).

use rand::RngExt;
use rand::rngs::StdRng;

use super::world::{NONE, Stream, rng_for};

/// A partition of some of the warm items into bundles of 2..=`max_size` members.
pub(super) struct Bundles {
    /// Bundle of each item, or [`NONE`].
    of_item: Vec<u32>,
    /// Members of bundle `b`: `members[offsets[b]..offsets[b + 1]]`, in drawing order.
    offsets: Vec<u32>,
    members: Vec<u32>,
}

/// What [`Bundles::build`] needs to know about the catalogue.
pub(super) struct BundleSpec<'a> {
    pub(super) seed: u64,
    /// Target share of the warm items that are bundle members.
    pub(super) share: f64,
    /// Probability that a member after the first is a random warm item of any category rather
    /// than one of the first member's primary category.
    pub(super) cross_share: f64,
    pub(super) max_size: usize,
    pub(super) n_categories: usize,
    pub(super) item_primary: &'a [u32],
    pub(super) item_cold: &'a [bool],
}

impl Bundles {
    /// Draws the bundles: the first member of each is a random unbundled warm item; every further
    /// member is, with probability `cross_share`, a random unbundled warm item of any category
    /// (so its category is drawn ∝ category size), else a random unbundled warm item of the first
    /// member's primary category (any category when that one is used up). Sizes are uniform in
    /// `2..=max_size`, cut so that the members are `round(share · warm)` (give or take one).
    pub(super) fn build(spec: &BundleSpec<'_>) -> Self {
        let mut rng = rng_for(spec.seed, Stream::Bundle, 0);
        let n_items = spec.item_primary.len();
        let mut order: Vec<u32> = (0..n_items as u32)
            .filter(|&i| !spec.item_cold[i as usize])
            .collect();
        shuffle(&mut order, &mut rng);
        let target = (spec.share * order.len() as f64).round() as usize;
        // Per category, the warm items in the same random order (drawn from the back).
        let mut by_category: Vec<Vec<u32>> = vec![Vec::new(); spec.n_categories];
        for &i in order.iter().rev() {
            by_category[spec.item_primary[i as usize] as usize].push(i);
        }
        let mut of_item = vec![NONE; n_items];
        let mut offsets = vec![0u32];
        let mut members: Vec<u32> = Vec::with_capacity(target);
        let mut next = 0usize;
        let next_any = |of_item: &[u32], next: &mut usize| {
            while let Some(&i) = order.get(*next) {
                *next += 1;
                if of_item[i as usize] == NONE {
                    return Some(i);
                }
            }
            None
        };
        while target - members.len() >= 2 {
            let b = (offsets.len() - 1) as u32;
            let size = rng
                .random_range(2..=spec.max_size)
                .min(target - members.len());
            let Some(first) = next_any(&of_item, &mut next) else {
                break;
            };
            of_item[first as usize] = b;
            members.push(first);
            let category = spec.item_primary[first as usize] as usize;
            for _ in 1..size {
                let member = if rng.random_bool(spec.cross_share) {
                    None
                } else {
                    let own = &mut by_category[category];
                    std::iter::from_fn(|| own.pop()).find(|&i| of_item[i as usize] == NONE)
                };
                let Some(member) = member.or_else(|| next_any(&of_item, &mut next)) else {
                    break;
                };
                of_item[member as usize] = b;
                members.push(member);
            }
            if members.len() - offsets[b as usize] as usize == 1 {
                // The warm items ran out: no bundle of one.
                of_item[first as usize] = NONE;
                members.pop();
                break;
            }
            offsets.push(members.len() as u32);
        }
        Self {
            of_item,
            offsets,
            members,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Items that belong to a bundle.
    pub(super) fn n_members(&self) -> usize {
        self.members.len()
    }

    /// The bundle of item `i`, if any.
    pub(super) fn of(&self, i: u32) -> Option<u32> {
        let b = self.of_item[i as usize];
        (b != NONE).then_some(b)
    }

    pub(super) fn members(&self, b: u32) -> &[u32] {
        &self.members[self.offsets[b as usize] as usize..self.offsets[b as usize + 1] as usize]
    }
}

/// Fisher–Yates shuffle.
pub(super) fn shuffle(v: &mut [u32], rng: &mut StdRng) {
    for i in (1..v.len()).rev() {
        v.swap(i, rng.random_range(0..=i));
    }
}
