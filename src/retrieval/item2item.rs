//! Item-to-item source: the learned item-item model (EASE on small catalogues, item-kNN on large
//! ones, fitted in `train`). A candidate's score is the sum of the neighbour weights that point
//! to it from the user's recent history, online events and session items, in
//! O(seeds × K): the production form of "people who consumed these also consumed". Serves known
//! users, users known only by their online history, and anonymous sessions alike. Under a
//! deadline it looks at the clock every [`NEIGHBOURS_PER_CHECK`] neighbour weights and, once past
//! it, scores with the seeds added so far.

use super::sums::{DenseSums, keep_top};
use super::{Deadline, Eligibility, Found, SourceList, UserProfile};
use crate::bundle::Model;
use std::cell::RefCell;

/// Neighbour weights added between two looks at the deadline (a clock read per few thousand
/// additions; none at all for a profile with fewer).
pub const NEIGHBOURS_PER_CHECK: usize = 4_096;

thread_local! {
    static SUMS: RefCell<DenseSums> = RefCell::new(DenseSums::default());
}

pub fn candidates(
    model: &Model,
    profile: &UserProfile,
    elig: &Eligibility,
    k: usize,
    deadline: Deadline,
) -> Found {
    if k == 0 || model.item2item_k == 0 || profile.seeds.is_empty() {
        return Found::default();
    }
    SUMS.with(|s| match s.try_borrow_mut() {
        Ok(mut sums) => score(model, profile, elig, k, deadline, &mut sums),
        Err(_) => score(model, profile, elig, k, deadline, &mut DenseSums::default()),
    })
}

fn score(
    model: &Model,
    profile: &UserProfile,
    elig: &Eligibility,
    k: usize,
    deadline: Deadline,
    sums: &mut DenseSums,
) -> Found {
    sums.begin(model.n_items());
    let mut cut = false;
    let mut since_check = 0;
    for &seed in &profile.seeds {
        if since_check >= NEIGHBOURS_PER_CHECK {
            since_check = 0;
            if deadline.expired() {
                cut = true;
                break;
            }
        }
        let (ids, weights) = model.item2item(seed);
        since_check += ids.len();
        for (&j, &w) in ids.iter().zip(weights) {
            let Ok(j) = u32::try_from(j) else {
                break; // -1 pads the end of a row
            };
            sums.add(j, w);
        }
    }
    // The seeds themselves are never proposed.
    for &seed in &profile.seeds {
        sums.replace(seed, f32::NEG_INFINITY);
    }
    let mut out: SourceList = Vec::with_capacity(4 * k);
    sums.drain(|j, v| {
        if v.is_finite() && elig.allows(model, j) {
            out.push((j, v));
        }
    });
    keep_top(&mut out, k);
    Found { list: out, cut }
}
