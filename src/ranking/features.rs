//! The ONE definition of the ranker's feature rows. Training builds its LightGBM rows with
//! `build_rows`, serving scores the rows `build_rows` gives it; there is no second implementation.
//! Missing values are NaN (LightGBM routes them down the learned default branch).
//!
//! The list only grows at its end: a bundle trained on an older, shorter prefix (the first
//! [`LEGACY_FEATURES`], before segment popularity and the warmth flags) gets rows of exactly
//! its own names, so it keeps serving unchanged.

use crate::bundle::Model;
use crate::retrieval::{Candidate, UserProfile};

/// Ordered feature names; the manifest and the ranker file must list exactly these.
pub const FEATURE_NAMES: [&str; 26] = [
    "cf_score",
    "cf_rank",
    "content_score",
    "content_rank",
    "session_score",
    "session_rank",
    "popular_score",
    "popular_rank",
    "item2item_score",
    "item2item_rank",
    "n_sources",
    "mf_dot",
    "content_sim_profile",
    "item_log_count",
    "item_pop_pct",
    "item_trend",
    "item_age_days",
    "user_log_history",
    "user_days_since_last",
    "cat_match",
    "cat_match_max",
    "session_len",
    "segment_score",
    "segment_rank",
    // Warmth: 1 when the user has no interactions (known only by features, or anonymous) /
    // when the item has none in training (its vectors come from its features alone).
    "user_cold",
    "item_cold",
];
pub const N_FEATURES: usize = FEATURE_NAMES.len();
/// The feature list before segment popularity and the warmth flags (bundles trained then).
pub const LEGACY_FEATURES: usize = 22;

/// The number of leading [`FEATURE_NAMES`] that `names` lists, when it is one of the supported
/// versions (the legacy prefix or the whole list); `None` for anything else.
pub fn supported_prefix(names: &[String]) -> Option<usize> {
    let n = names.len();
    let is_prefix = n <= N_FEATURES && names.iter().zip(FEATURE_NAMES).all(|(a, b)| a == b);
    (is_prefix && (n == LEGACY_FEATURES || n == N_FEATURES)).then_some(n)
}

/// How many features the rows for `model` hold: the length of its manifest's list (checked
/// against [`supported_prefix`] when the engine is built), at most [`N_FEATURES`].
pub fn n_features(model: &Model) -> usize {
    model.manifest.feature_names.len().min(N_FEATURES)
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Appends one row of [`n_features`]`(model)` values per candidate to `out` (row-major).
pub fn build_rows(model: &Model, profile: &UserProfile, cands: &[Candidate], out: &mut Vec<f32>) {
    let nf = n_features(model);
    out.reserve(cands.len() * nf);
    let user_cold = if profile.history_len == 0 { 1.0 } else { 0.0 };
    let user_vec = profile.user.map(|u| model.user_cf(u));
    let user_log_history = (profile.history_len as f32).ln_1p();
    // Online events may be newer than the reference time: clamp, never negative (as in training).
    let days_since_last = profile
        .last_ts
        .map_or(f32::NAN, |t| (profile.now - t).max(0) as f32 / 86_400.0);
    for c in cands {
        let i = c.item;
        let stat = model.item_stats[i as usize];
        let n_sources = c.score.iter().filter(|s| !s.is_nan()).count() as f32;
        let mf_dot = user_vec.map_or(f32::NAN, |u| {
            dot(u, model.item_cf(i)) + model.item_bias[i as usize]
        });
        let content_sim = if profile.content_profile.is_empty() {
            f32::NAN
        } else {
            dot(&profile.content_profile, model.item_content(i))
        };
        let (mut cat_sum, mut cat_max) = (0f32, 0f32);
        for c in model.item_categories(i) {
            let s = profile.cat_share.get(c).copied().unwrap_or(0.0);
            cat_sum += s;
            cat_max = cat_max.max(s);
        }
        let row: [f32; N_FEATURES] = [
            c.score[0],
            c.rank[0],
            c.score[1],
            c.rank[1],
            c.score[2],
            c.rank[2],
            c.score[3],
            c.rank[3],
            c.score[4],
            c.rank[4],
            n_sources,
            mf_dot,
            content_sim,
            stat.count.ln_1p(),
            model.popularity_pct[i as usize],
            stat.trend,
            stat.age_days,
            user_log_history,
            days_since_last,
            cat_sum,
            cat_max,
            profile.recent.len() as f32,
            c.score[5],
            c.rank[5],
            user_cold,
            if stat.count > 0.0 { 0.0 } else { 1.0 },
        ];
        out.extend_from_slice(&row[..nf]);
    }
}
