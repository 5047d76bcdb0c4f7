//! Segment popularity source (cold start): for a user known by features and with little or no
//! history, the items popular among users who share their feature values (summed over the
//! user's segments: ln(1 + decayed count) per segment, the "popular among people like you" list).
//! Warmer users get nothing from it: their own history says more, and the request stays lean.

use super::sums::{DenseSums, keep_top};
use super::{Eligibility, SourceList, UserProfile};
use crate::bundle::Model;
use std::cell::RefCell;

thread_local! {
    static SUMS: RefCell<DenseSums> = RefCell::new(DenseSums::default());
}

/// Users with more history than this (training + online) do not use the segment source.
pub const SEGMENT_MAX_HISTORY: usize = 20;

pub fn candidates(
    model: &Model,
    profile: &UserProfile,
    elig: &Eligibility,
    k: usize,
) -> SourceList {
    if k == 0 || profile.segments.is_empty() || profile.history_len > SEGMENT_MAX_HISTORY {
        return Vec::new();
    }
    let seg = &model.segments;
    let n = model.n_items();
    let mut out: SourceList = SUMS.with_borrow_mut(|sums| {
        sums.begin(n);
        for &seg_id in &profile.segments {
            let (ids, scores) = seg.top(seg_id);
            for (&i, &w) in ids.iter().zip(scores) {
                let Ok(i) = u32::try_from(i) else {
                    break; // -1 pads the end of a row
                };
                sums.add(i, w);
            }
        }
        let mut out = Vec::new();
        sums.drain(|i, v| out.push((i, v)));
        out
    });
    // Without a category filter at most `excluded.len()` of the best `k + excluded.len()` can
    // be ineligible, so only those are checked (the result is the same as checking all).
    if elig.category.is_none() {
        keep_top(&mut out, k.saturating_add(elig.excluded.len()));
    }
    out.retain(|&(i, _)| elig.allows(model, i));
    keep_top(&mut out, k);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::splitmix::SplitMix64;
    use rustc_hash::FxHashMap;

    /// The definition: a hash map of summed scores, filtered, fully sorted, cut at k.
    fn naive(model: &Model, segments: &[u32], elig: &Eligibility, k: usize) -> SourceList {
        let mut acc: FxHashMap<u32, f32> = FxHashMap::default();
        for &s in segments {
            let (ids, scores) = model.segments.top(s);
            for (&i, &w) in ids.iter().zip(scores) {
                if i < 0 {
                    break;
                }
                *acc.entry(i as u32).or_default() += w;
            }
        }
        let mut out: SourceList = acc
            .into_iter()
            .filter(|&(i, _)| elig.allows(model, i))
            .collect();
        out.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        out.truncate(k);
        out
    }

    // Cost: reads the demo bundle (~50 ms), 300 small requests.
    #[test]
    fn the_dense_accumulator_gives_the_hash_map_definition_bit_for_bit() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/demo");
        let model = Model::read(&dir).expect("demo bundle");
        let n_seg = model.segments.names.len() as u64;
        assert!(n_seg > 1, "the demo bundle has segments");
        let mut rng = SplitMix64(11);
        for round in 0..300 {
            let segments: Vec<u32> = (0..1 + rng.next_u64() % 4)
                .map(|_| (rng.next_u64() % n_seg) as u32)
                .collect();
            let excluded: Vec<u32> = (0..rng.next_u64() % 40)
                .map(|_| (rng.next_u64() % model.n_items() as u64) as u32)
                .collect();
            let category = (round % 3 == 0).then_some(round % model.categories.len() as u32);
            let elig = Eligibility::new(excluded, category);
            let profile = UserProfile {
                segments: segments.clone(),
                history_len: (rng.next_u64() % 5) as usize,
                ..Default::default()
            };
            let k = [1, 10, 50, 500][round as usize % 4];
            let got = candidates(&model, &profile, &elig, k);
            let want = naive(&model, &segments, &elig, k);
            assert_eq!(
                got.iter().map(|x| (x.0, x.1.to_bits())).collect::<Vec<_>>(),
                want.iter()
                    .map(|x| (x.0, x.1.to_bits()))
                    .collect::<Vec<_>>(),
                "segments {segments:?} k {k}"
            );
        }
    }
}
