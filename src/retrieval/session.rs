//! "More like this": neighbours of the session's recent items by their CF item vectors (what was
//! consumed together), the most recent item weighted highest; works for anonymous requests.

use super::{Eligibility, SearchEligible, SourceList};
use crate::pipeline::Engine;
use crate::ranking::features::UserProfile;
use rustc_hash::FxHashMap;

/// Items of `recent` used as seeds, most recent first.
const MAX_SEEDS: usize = 3;
/// Weight of the i-th most recent seed: DECAY^i.
const DECAY: f32 = 0.7;

pub fn candidates(
    engine: &Engine,
    profile: &UserProfile,
    elig: &Eligibility,
    k: usize,
) -> SourceList {
    if k == 0 || profile.recent.is_empty() {
        return Vec::new();
    }
    let model = &engine.model;
    let seeds: Vec<u32> = profile
        .recent
        .iter()
        .rev()
        .take(MAX_SEEDS)
        .copied()
        .collect();
    let mut acc: FxHashMap<u32, f32> = FxHashMap::default();
    for (pos, &seed) in seeds.iter().enumerate() {
        let w = DECAY.powi(pos as i32);
        let q = model.item_cf(seed);
        // Cosine over CF item vectors: normalise the seed, score by the neighbour's dot product.
        let norm = q.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm == 0.0 {
            continue;
        }
        let qn: Vec<f32> = q.iter().map(|v| v / norm).collect();
        let found = engine
            .cf_index
            .search_eligible(&qn, k, |i| i != seed && elig.allows(model, i));
        for (item, score) in found {
            *acc.entry(item).or_default() += w * score;
        }
    }
    let mut out: SourceList = acc.into_iter().collect();
    out.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out.truncate(k);
    out
}
