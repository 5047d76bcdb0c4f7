//! Sparse per-item sums over the catalogue, for the sources that add up weights from several
//! lists (item-to-item neighbours, segment top items): a dense score per item plus the items
//! touched, reused across requests on one thread, so a request costs O(additions), not a hash
//! map or a pass over the catalogue.

use super::SourceList;

#[derive(Default)]
pub(crate) struct DenseSums {
    score: Vec<f32>,
    seen: Vec<bool>,
    touched: Vec<u32>,
}

impl DenseSums {
    /// Starts a new sum over `n` items (all zero: [`DenseSums::drain`] resets what it touched).
    pub fn begin(&mut self, n: usize) {
        if self.score.len() != n {
            self.score = vec![0.0; n];
            self.seen = vec![false; n];
        }
        self.touched.clear();
    }

    /// Adds `w` to item `i`'s sum (ids outside the catalogue are ignored).
    #[inline]
    pub fn add(&mut self, i: u32, w: f32) {
        let (Some(score), Some(seen)) = (
            self.score.get_mut(i as usize),
            self.seen.get_mut(i as usize),
        ) else {
            return;
        };
        if !*seen {
            *seen = true;
            self.touched.push(i);
        }
        *score += w;
    }

    /// Overwrites the sum of `i` when it was touched.
    pub fn replace(&mut self, i: u32, v: f32) {
        if self.seen.get(i as usize) == Some(&true)
            && let Some(score) = self.score.get_mut(i as usize)
        {
            *score = v;
        }
    }

    /// Every touched item's sum, in first-touched order; leaves the table zeroed.
    pub fn drain(&mut self, mut f: impl FnMut(u32, f32)) {
        for &i in &self.touched {
            let i_ = i as usize;
            if let (Some(score), Some(seen)) = (self.score.get_mut(i_), self.seen.get_mut(i_)) {
                *seen = false;
                f(i, std::mem::take(score));
            }
        }
        self.touched.clear();
    }
}

/// Keeps the `k` best of `list` by score (`f32::total_cmp`, ties by item id), best first: a
/// selection, then a sort of those (the order is total and ids are unique, so this is the list
/// a full sort would give). Both run over packed integer keys in a per-thread buffer, so each
/// comparison is one integer compare instead of a float comparator and a tie-break.
pub(crate) fn keep_top(list: &mut SourceList, k: usize) {
    thread_local! {
        static KEYS: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    if k == 0 {
        list.clear();
        return;
    }
    KEYS.with_borrow_mut(|keys| {
        keys.clear();
        keys.extend(list.iter().map(|&(id, score)| ascending_key(id, score)));
        if keys.len() > k {
            keys.select_nth_unstable(k - 1);
            keys.truncate(k);
        }
        keys.sort_unstable();
        list.clear();
        list.extend(keys.iter().map(|&key| from_key(key)));
    });
}

/// `score`'s bits mapped so that unsigned order is `f32::total_cmp`'s order (negative values
/// have every bit flipped, the rest gain the sign bit): reversible, so scores come back exact.
fn total_order_bits(score: f32) -> u32 {
    let b = score.to_bits();
    if b >> 31 == 1 { !b } else { b | 0x8000_0000 }
}

/// A key whose ascending order is score descending, then id ascending.
fn ascending_key(id: u32, score: f32) -> u64 {
    (u64::from(!total_order_bits(score)) << 32) | u64::from(id)
}

fn from_key(key: u64) -> (u32, f32) {
    let o = !((key >> 32) as u32);
    let bits = if o >> 31 == 1 { o & 0x7FFF_FFFF } else { !o };
    (key as u32, f32::from_bits(bits))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    proptest! {
        /// Sums equal a map's, zeros and cancellations included, and the table is clean after.
        #[test]
        fn sums_match_a_map_and_reset(adds in proptest::collection::vec((0u32..30, prop_oneof![Just(0.0f32), Just(1.0f32), Just(-1.0f32), -2.0f32..2.0]), 0..80), k in 0usize..40) {
            let mut s = DenseSums::default();
            for round in 0..2 {
                s.begin(25);
                let mut want: BTreeMap<u32, f32> = BTreeMap::new();
                for &(i, w) in &adds {
                    s.add(i, w);
                    if i < 25 {
                        *want.entry(i).or_default() += w;
                    }
                }
                let mut got: SourceList = Vec::new();
                s.drain(|i, v| got.push((i, v)));
                let mut want: SourceList = want.into_iter().collect();
                let bits = |l: &SourceList| { let mut l: Vec<(u32, u32)> = l.iter().map(|x| (x.0, x.1.to_bits())).collect(); l.sort_unstable(); l };
                prop_assert_eq!(bits(&got), bits(&want), "round {}", round);
                let mut full = want.clone();
                full.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                full.truncate(k);
                keep_top(&mut want, k);
                prop_assert_eq!(bits(&want), bits(&full));
            }
        }

        /// The packed-key selection gives exactly a full sort's list, in order and bit for
        /// bit, over every kind of f32: ±0, ±inf, NaNs of both signs, subnormals, ties.
        #[test]
        fn keep_top_is_a_full_sort_in_order(
            raw in proptest::collection::vec((0u32..2000, prop_oneof![
                3 => any::<u32>(),
                1 => prop_oneof![Just(0u32), Just(0x8000_0000), Just(0x7F80_0000), Just(0xFF80_0000),
                                 Just(0x7FC0_0000), Just(0xFFC0_0001), Just(1), Just(0x8000_0001),
                                 Just(0x3F80_0000)],
            ]), 0..300),
            k in 0usize..320,
        ) {
            let mut seen = std::collections::HashSet::new();
            let mut list: SourceList = raw
                .into_iter()
                .filter(|(id, _)| seen.insert(*id))
                .map(|(id, b)| (id, f32::from_bits(b)))
                .collect();
            let mut full = list.clone();
            full.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            full.truncate(k);
            keep_top(&mut list, k);
            let exact = |l: &SourceList| l.iter().map(|x| (x.0, x.1.to_bits())).collect::<Vec<_>>();
            prop_assert_eq!(exact(&list), exact(&full));
        }
    }
}
