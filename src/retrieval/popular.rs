//! Popularity source (cold start, always available): half from the most popular items of the
//! user's favourite categories (their segment), the rest globally; score = popularity percentile.

use super::{Eligibility, SourceList, UserProfile};
use crate::bundle::Model;
use rustc_hash::FxHashSet;

/// Favourite categories consulted for the per-segment half.
const TOP_CATEGORIES: usize = 2;

pub fn candidates(
    model: &Model,
    profile: &UserProfile,
    elig: &Eligibility,
    k: usize,
) -> SourceList {
    let mut out: SourceList = Vec::with_capacity(k);
    if k == 0 {
        return out;
    }
    let mut taken: FxHashSet<u32> = FxHashSet::default();
    let mut push = |out: &mut SourceList, i: u32| {
        if elig.allows(model, i) && taken.insert(i) {
            out.push((i, model.popularity_pct[i as usize]));
        }
    };
    let mut cats: Vec<(u32, f32)> = profile.cat_share.iter().map(|(&c, &s)| (c, s)).collect();
    cats.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let per_cat = (k / 2).div_ceil(TOP_CATEGORIES.max(1));
    for &(c, _) in cats.iter().take(TOP_CATEGORIES) {
        let before = out.len();
        for &i in model
            .popular_by_category
            .get(c as usize)
            .map_or(&[][..], |v| v.as_slice())
        {
            if out.len() - before >= per_cat {
                break;
            }
            push(&mut out, i);
        }
    }
    for &i in popularity_order(model, elig) {
        if out.len() >= k {
            break;
        }
        push(&mut out, i);
    }
    out.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

/// The last resort of the fallback chain: eligible items by global popularity, skipping `taken`.
pub fn fill(model: &Model, elig: &Eligibility, taken: &FxHashSet<u32>, n: usize) -> SourceList {
    popularity_order(model, elig)
        .iter()
        .filter(|&&i| !taken.contains(&i) && elig.allows(model, i))
        .take(n)
        .map(|&i| (i, model.popularity_pct[i as usize]))
        .collect()
}

/// [`fill`] that also skips items `keep` refuses (called once per eligible item, in
/// popularity order, until `n` are kept): the top-up under a per-category cap.
pub fn fill_where(
    model: &Model,
    elig: &Eligibility,
    taken: &FxHashSet<u32>,
    n: usize,
    mut keep: impl FnMut(u32) -> bool,
) -> SourceList {
    popularity_order(model, elig)
        .iter()
        .filter(|&&i| !taken.contains(&i) && elig.allows(model, i) && keep(i))
        .take(n)
        .map(|&i| (i, model.popularity_pct[i as usize]))
        .collect()
}

/// Items by descending popularity: the requested category's list, or the global one.
fn popularity_order<'a>(model: &'a Model, elig: &Eligibility) -> &'a [u32] {
    match elig.category {
        Some(c) => model
            .popular_by_category
            .get(c as usize)
            .map_or(&[][..], |v| v.as_slice()),
        None => &model.popular_order,
    }
}
