//! Item-to-item source: the learned item-item model (EASE on small catalogues, item-kNN on large
//! ones, fitted in `train`). A candidate's score is the sum of the neighbour weights that point
//! to it from the user's recent history, online events and session items, in
//! O(seeds × K): the production form of "people who consumed these also consumed". Serves known
//! users, users known only by their online history, and anonymous sessions alike. Under a
//! deadline it looks at the clock every [`NEIGHBOURS_PER_CHECK`] neighbour weights and, once past
//! it, scores with the seeds added so far.

use super::{Deadline, Eligibility, Found, SourceList, UserProfile};
use crate::bundle::Model;
use std::cell::RefCell;

/// Per-thread accumulator: a dense score per item and the items touched, reused across requests.
#[derive(Default)]
struct Scratch {
    score: Vec<f32>,
    touched: Vec<u32>,
}

/// Neighbour weights added between two looks at the deadline (a clock read per few thousand
/// additions; none at all for a profile with fewer).
pub const NEIGHBOURS_PER_CHECK: usize = 4_096;

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
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
    SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut scratch) => score(model, profile, elig, k, deadline, &mut scratch),
        Err(_) => score(model, profile, elig, k, deadline, &mut Scratch::default()),
    })
}

fn score(
    model: &Model,
    profile: &UserProfile,
    elig: &Eligibility,
    k: usize,
    deadline: Deadline,
    s: &mut Scratch,
) -> Found {
    let n = model.n_items();
    if s.score.len() != n {
        s.score = vec![0.0; n];
    }
    s.touched.clear();
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
            let Some(slot) = s.score.get_mut(j as usize) else {
                continue;
            };
            if *slot == 0.0 {
                s.touched.push(j);
            }
            *slot += w;
            if *slot == 0.0 {
                // Keep "touched" exact even when weights cancel out.
                *slot = f32::MIN_POSITIVE;
            }
        }
    }
    // The seeds themselves are never proposed: mark them (only touched slots are reset below).
    for &seed in &profile.seeds {
        if let Some(slot) = s.score.get_mut(seed as usize)
            && *slot != 0.0
        {
            *slot = f32::NEG_INFINITY;
        }
    }
    let mut out: SourceList = Vec::with_capacity(s.touched.len().min(4 * k));
    for &j in &s.touched {
        let v = std::mem::take(&mut s.score[j as usize]);
        if v.is_finite() && elig.allows(model, j) {
            out.push((j, v));
        }
    }
    let cmp = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if out.len() > k {
        out.select_nth_unstable_by(k, cmp);
        out.truncate(k);
    }
    out.sort_unstable_by(cmp);
    Found { list: out, cut }
}
