//! "More like this": nearest items to the session's recent items by their CF item vectors (what
//! was consumed together), the most recent item weighted highest, in one index search; works for
//! anonymous requests.

use super::{Catalog, Deadline, Eligibility, Found, SearchEligible, UserProfile};

/// Items of `recent` used as seeds, most recent first.
const MAX_SEEDS: usize = 3;
/// Weight of the i-th most recent seed: DECAY^i.
const DECAY: f32 = 0.7;

pub fn candidates(
    catalog: &Catalog<'_>,
    profile: &UserProfile,
    elig: &Eligibility,
    k: usize,
    deadline: Deadline,
) -> Found {
    if k == 0 || profile.recent.is_empty() {
        return Found::default();
    }
    let model = catalog.model;
    let seeds: Vec<u32> = profile
        .recent
        .iter()
        .rev()
        .take(MAX_SEEDS)
        .copied()
        .collect();
    // One query: the decayed sum of the seeds' normalised vectors (a session centroid), so the
    // source costs one index search however many seeds it has.
    let mut query = vec![0f32; model.cf_dim];
    for (pos, &seed) in seeds.iter().enumerate() {
        let v = model.item_cf(seed);
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm == 0.0 {
            continue;
        }
        let w = DECAY.powi(pos as i32) / norm;
        for (q, x) in query.iter_mut().zip(v) {
            *q += w * x;
        }
    }
    if query.iter().all(|&x| x == 0.0) {
        return Found::default();
    }
    catalog.cf_index.search_eligible(
        &query,
        k,
        &elig.excluded,
        elig.members(catalog.model),
        |i| !seeds.contains(&i) && elig.in_category(model, i),
        deadline,
    )
}
