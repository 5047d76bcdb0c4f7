//! Segment popularity: per value of the users' features (a categorical value or a numeric bin,
//! never a text token), the items most interacted with by that segment's users, time-decayed like
//! global popularity. What a team gets from "popular among people like you", and the cold-start
//! source for users known only by their features.

use super::featurize::FeatureSpace;
use crate::bundle::Segments;
use crate::data::dataset::Interaction;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

/// `[train.segments]`: which feature values become segments and how many items each keeps.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SegmentConfig {
    /// Items kept per segment (the source's reach and the feature's coverage); 0 = no segments.
    pub top_k: usize,
    /// A feature value with fewer users is not a segment (its counts would be noise).
    pub min_users: usize,
}

impl Default for SegmentConfig {
    fn default() -> Self {
        Self {
            top_k: 300,
            min_users: 20,
        }
    }
}

/// Builds the segments of `space` (the users' features) from `inter`, with the popularity decay
/// of global popularity (`half_life_days`, 0 = plain counts) relative to `reference_ts`.
pub fn fit(
    space: &FeatureSpace,
    n_users: usize,
    inter: &[Interaction],
    reference_ts: i64,
    half_life_days: f64,
    cfg: &SegmentConfig,
) -> Segments {
    if cfg.top_k == 0 {
        return Segments::default();
    }
    // Candidate segments: non-text features with enough users.
    let mut users_per: FxHashMap<u32, usize> = FxHashMap::default();
    for row in space.rows.iter().take(n_users) {
        for &(f, _) in row {
            if !space.names[f as usize].starts_with("text=") {
                *users_per.entry(f).or_default() += 1;
            }
        }
    }
    let mut kept: Vec<u32> = users_per
        .into_iter()
        .filter(|&(_, n)| n >= cfg.min_users)
        .map(|(f, _)| f)
        .collect();
    kept.sort_unstable();
    if kept.is_empty() {
        return Segments::default();
    }
    let seg_of: FxHashMap<u32, u32> = kept
        .iter()
        .enumerate()
        .map(|(s, &f)| (f, s as u32))
        .collect();
    let mut user_indptr = Vec::with_capacity(n_users + 1);
    let mut user_seg = Vec::new();
    user_indptr.push(0);
    for u in 0..n_users {
        if let Some(row) = space.rows.get(u) {
            let mut segs: Vec<u32> = row
                .iter()
                .filter_map(|(f, _)| seg_of.get(f).copied())
                .collect();
            segs.sort_unstable();
            segs.dedup();
            user_seg.extend(segs);
        }
        user_indptr.push(user_seg.len());
    }
    let mut counts: Vec<FxHashMap<u32, f64>> = vec![FxHashMap::default(); kept.len()];
    for x in inter {
        let u = x.user as usize;
        let (Some(&a), Some(&b)) = (user_indptr.get(u), user_indptr.get(u + 1)) else {
            continue;
        };
        let age = (reference_ts - x.ts).max(0) as f64 / 86_400.0;
        let decay = if half_life_days > 0.0 {
            (-std::f64::consts::LN_2 * age / half_life_days).exp()
        } else {
            1.0
        };
        let w = decay * f64::from(x.count.max(1));
        for &s in &user_seg[a..b] {
            *counts[s as usize].entry(x.item).or_default() += w;
        }
    }
    let k = cfg.top_k;
    let mut ids = Vec::with_capacity(kept.len() * k);
    let mut scores = Vec::with_capacity(kept.len() * k);
    for c in counts {
        let mut v: Vec<(u32, f64)> = c.into_iter().collect();
        v.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        v.truncate(k);
        for j in 0..k {
            match v.get(j) {
                Some(&(i, w)) => {
                    ids.push(i as i32);
                    scores.push(w.ln_1p() as f32);
                }
                None => {
                    ids.push(-1);
                    scores.push(0.0);
                }
            }
        }
    }
    Segments {
        names: kept
            .iter()
            .map(|&f| space.names[f as usize].clone())
            .collect(),
        user_indptr,
        user_seg,
        k,
        ids,
        scores,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x(user: u32, item: u32) -> Interaction {
        Interaction::at0(user, item)
    }

    // Cost: a handful of interactions, microseconds.
    #[test]
    fn segments_rank_items_by_their_own_users_and_skip_rare_values_and_text() {
        let space = FeatureSpace {
            names: vec![
                "age=young".into(),
                "age=old".into(),
                "text=hi".into(),
                "rare=x".into(),
            ],
            rows: vec![
                vec![(0, 1.0), (2, 1.0)],
                vec![(0, 1.0), (3, 1.0)],
                vec![(1, 1.0), (2, 1.0)],
                vec![(1, 1.0)],
            ],
        };
        let cfg = SegmentConfig {
            top_k: 2,
            min_users: 2,
        };
        // The young like item 5, the old item 7; item 9 once each.
        let inter = [x(0, 5), x(1, 5), x(0, 9), x(2, 7), x(3, 7), x(3, 9)];
        let s = fit(&space, 4, &inter, 0, 0.0, &cfg);
        assert_eq!(
            s.names,
            vec!["age=young", "age=old"],
            "text and rare values are no segments"
        );
        assert_eq!(s.of_user(1), &[0]);
        assert_eq!(s.of_user(3), &[1]);
        let (ids, sc) = s.top(0);
        assert_eq!(ids, &[5, 9]);
        assert!((sc[0] - 2f32.ln_1p()).abs() < 1e-6 && (sc[1] - 1f32.ln_1p()).abs() < 1e-6);
        assert_eq!(s.top(1).0, &[7, 9]);
    }
}
