//! Segment popularity source (cold start): for a user known by features and with little or no
//! history, the items popular among users who share their feature values (summed over the
//! user's segments: ln(1 + decayed count) per segment, the "popular among people like you" list).
//! Warmer users get nothing from it: their own history says more, and the request stays lean.

use super::{Eligibility, SourceList, UserProfile};
use crate::bundle::Model;
use rustc_hash::FxHashMap;

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
    let mut acc: FxHashMap<u32, f32> =
        FxHashMap::with_capacity_and_hasher(seg.k * profile.segments.len(), Default::default());
    for &s in &profile.segments {
        let (ids, scores) = seg.top(s);
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
    // Only the top k are kept: select them, then sort those (the order is total, ids are
    // unique, so the list is the one a full sort would give).
    let order = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if out.len() > k {
        out.select_nth_unstable_by(k - 1, order);
        out.truncate(k);
    }
    out.sort_unstable_by(order);
    out
}
