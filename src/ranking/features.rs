//! The ONE definition of the ranker's feature rows. Training builds its LightGBM rows with
//! `build_rows`, serving scores the rows `build_rows` gives it; there is no second implementation.
//! Missing values are NaN (LightGBM routes them down the learned default branch).

use crate::bundle::Model;
use crate::retrieval::{Candidate, UserProfile};

/// Ordered feature names; the manifest and the ranker file must list exactly these.
pub const FEATURE_NAMES: [&str; 22] = [
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
];
pub const N_FEATURES: usize = FEATURE_NAMES.len();

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Appends one row of `N_FEATURES` values per candidate to `out` (row-major).
pub fn build_rows(model: &Model, profile: &UserProfile, cands: &[Candidate], out: &mut Vec<f32>) {
    out.reserve(cands.len() * N_FEATURES);
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
        out.extend_from_slice(&[
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
        ]);
    }
}
