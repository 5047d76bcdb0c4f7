//! Ranker training on the question the ranker answers at serving time: "of the candidates the
//! sources propose for this user now, which will the user interact with next?" Part of each user's
//! interactions is held out (latest ones, or a random share), the sources are fitted without them,
//! the real stage-1 code proposes candidates (the user's other known items excluded), and a
//! candidate is labelled 1 when it is one of the held-out items. Rows come from the one feature
//! definition. Validation on held-out users compares the ranker with every single source.

use super::Holdout;
use crate::data::dataset::Interaction;
use crate::pipeline::{Deadline, Engine, Query, SourceCounts};
use crate::ranking::features::{N_FEATURES, build_rows};
use crate::ranking::{blend_scores, top_n};
use crate::retrieval::{Candidate, N_SOURCES, Source, UserProfile, merge};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use rayon::prelude::*;
use rustc_hash::FxHashSet;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RankerConfig {
    pub holdout: Holdout,
    /// Share of each user's interactions held out as targets.
    pub holdout_share: f64,
    /// Users with fewer interactions keep them all for fitting.
    pub min_history: usize,
    /// Users sampled for ranker training + validation.
    pub max_users: usize,
    pub valid_share: f64,
    /// Rows per training group: every positive plus sampled negatives up to this size.
    pub max_group: usize,
    pub counts: SourceCounts,
    pub num_iterations: usize,
    pub learning_rate: f64,
    pub num_leaves: usize,
    pub min_data_in_leaf: usize,
    pub early_stopping_rounds: usize,
    pub ndcg_at: usize,
}

/// Splits interactions (sorted by user, ts) into (fit, targets) per the holdout policy.
pub fn holdout_split(
    inter: &[Interaction],
    cfg: &RankerConfig,
    seed: u64,
) -> (Vec<Interaction>, Vec<Interaction>) {
    let mut fit = Vec::with_capacity(inter.len());
    let mut targets = Vec::new();
    let mut rng = StdRng::seed_from_u64(seed);
    for user_rows in inter.chunk_by(|a, b| a.user == b.user) {
        let n = user_rows.len();
        if n < cfg.min_history.max(2) {
            fit.extend_from_slice(user_rows);
            continue;
        }
        let k = ((n as f64 * cfg.holdout_share).round() as usize).clamp(1, n - 1);
        match cfg.holdout {
            Holdout::Temporal => {
                fit.extend_from_slice(&user_rows[..n - k]);
                targets.extend_from_slice(&user_rows[n - k..]);
            }
            Holdout::Random => {
                let mut idx: Vec<usize> = (0..n).collect();
                for i in 0..k {
                    let j = rng.random_range(i..n);
                    idx.swap(i, j);
                }
                let held: FxHashSet<usize> = idx[..k].iter().copied().collect();
                for (i, x) in user_rows.iter().enumerate() {
                    if held.contains(&i) {
                        targets.push(*x)
                    } else {
                        fit.push(*x)
                    }
                }
            }
        }
    }
    (fit, targets)
}

/// One user's candidate list with labels and feature rows.
pub struct Group {
    pub user: u32,
    pub cands: Vec<Candidate>,
    pub lists: [Vec<(u32, f32)>; N_SOURCES],
    pub rows: Vec<f32>,
    pub labels: Vec<f32>,
    pub targets: FxHashSet<u32>,
    pub profile: UserProfile,
}

/// Runs the real stage-1 sources for each user with targets and labels the candidates.
pub fn build_groups(
    engine: &Arc<Engine>,
    targets: &[Interaction],
    users: &[u32],
    counts: &SourceCounts,
) -> Vec<Group> {
    let mut by_user: rustc_hash::FxHashMap<u32, FxHashSet<u32>> = Default::default();
    for x in targets {
        by_user.entry(x.user).or_default().insert(x.item);
    }
    users
        .par_iter()
        .filter_map(|&u| {
            let tset = by_user.get(&u)?.clone();
            let q = Query {
                user_id: Some(engine.model.user_ids[u as usize].clone()),
                n: 10,
                exclude_seen: true,
                ..Default::default()
            };
            let (profile, elig) = engine.prepare(&q);
            let (profile, elig) = (Arc::new(profile), Arc::new(elig));
            let lists = engine
                .retrieve(&profile, &elig, counts, Deadline::NONE)
                .lists;
            let cands = merge(&lists);
            let labels: Vec<f32> = cands
                .iter()
                .map(|c| if tset.contains(&c.item) { 1.0 } else { 0.0 })
                .collect();
            let mut rows = Vec::with_capacity(cands.len() * N_FEATURES);
            build_rows(&engine.model, &profile, &cands, &mut rows);
            let profile = Arc::try_unwrap(profile).unwrap_or_else(|p| (*p).clone());
            Some(Group {
                user: u,
                cands,
                lists,
                rows,
                labels,
                targets: tset,
                profile,
            })
        })
        .collect()
}

/// Flattens groups into LightGBM inputs; `max_group` > 0 keeps every positive plus sampled negatives.
pub fn flatten(groups: &[&Group], max_group: usize, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<i32>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut rows, mut labels, mut sizes) = (Vec::new(), Vec::new(), Vec::new());
    for g in groups {
        let n = g.labels.len();
        let mut keep: Vec<usize> = (0..n).collect();
        if max_group > 0 && n > max_group {
            let (pos, mut neg): (Vec<usize>, Vec<usize>) =
                keep.into_iter().partition(|&i| g.labels[i] > 0.0);
            let want = max_group.saturating_sub(pos.len()).min(neg.len());
            for i in 0..want {
                let j = rng.random_range(i..neg.len());
                neg.swap(i, j);
            }
            keep = pos;
            keep.extend_from_slice(&neg[..want]);
            keep.sort_unstable();
        }
        for &i in &keep {
            rows.extend_from_slice(&g.rows[i * N_FEATURES..(i + 1) * N_FEATURES]);
            labels.push(g.labels[i]);
        }
        sizes.push(keep.len() as i32);
    }
    (rows, labels, sizes)
}

/// NDCG@k of the ranker and of each single source (its own order) on `groups`, averaged over
/// users with at least one target (targets outside the candidates count as misses).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RankerEval {
    pub users: usize,
    pub ranker_ndcg: f64,
    pub source_ndcg: std::collections::BTreeMap<String, f64>,
    pub blend_ndcg: f64,
    pub best_source: String,
    pub best_source_ndcg: f64,
    pub candidate_recall: f64,
}

pub fn evaluate(
    ranker: &crate::ranking::Ranker,
    groups: &[&Group],
    k: usize,
) -> Result<RankerEval, crate::ranking::gbdt::RankerError> {
    use crate::ranking::quality::ndcg_at_k;
    let mut ranker_sum = 0.0;
    let mut blend_sum = 0.0;
    let mut src_sum = [0f64; N_SOURCES];
    let mut recall_sum = 0.0;
    let weights = crate::bandit::BlendWeights::default();
    for g in groups {
        let scores = ranker.score_batch(&g.rows, N_FEATURES)?;
        let ranked: Vec<u32> = top_n(&g.cands, &scores, k).iter().map(|r| r.item).collect();
        ranker_sum += ndcg_at_k(&ranked, &g.targets, k);
        let blend = blend_scores(&g.cands, &weights);
        let ranked: Vec<u32> = top_n(&g.cands, &blend, k).iter().map(|r| r.item).collect();
        blend_sum += ndcg_at_k(&ranked, &g.targets, k);
        for (sum, list) in src_sum.iter_mut().zip(&g.lists) {
            let list: Vec<u32> = list.iter().take(k).map(|&(i, _)| i).collect();
            *sum += ndcg_at_k(&list, &g.targets, k);
        }
        recall_sum +=
            g.labels.iter().filter(|&&l| l > 0.0).count() as f64 / g.targets.len().max(1) as f64;
    }
    let n = groups.len().max(1) as f64;
    let source_ndcg: std::collections::BTreeMap<String, f64> = Source::ALL
        .iter()
        .map(|s| (s.as_str().to_string(), src_sum[*s as usize] / n))
        .collect();
    let (best_source, best_source_ndcg) = source_ndcg
        .iter()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(s, v)| (s.clone(), *v))
        .unwrap_or_default();
    Ok(RankerEval {
        users: groups.len(),
        ranker_ndcg: ranker_sum / n,
        source_ndcg,
        blend_ndcg: blend_sum / n,
        best_source,
        best_source_ndcg,
        candidate_recall: recall_sum / n,
    })
}

/// LightGBM parameters for lambdarank from the config.
pub fn lgbm_params(cfg: &RankerConfig, seed: u64) -> serde_json::Value {
    serde_json::json!({
        "objective": "lambdarank",
        "metric": "ndcg",
        "ndcg_eval_at": cfg.ndcg_at.to_string(),
        "num_iterations": cfg.num_iterations,
        "learning_rate": cfg.learning_rate,
        "num_leaves": cfg.num_leaves,
        "min_data_in_leaf": cfg.min_data_in_leaf,
        "feature_fraction": 0.9,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambdarank_truncation_level": 20,
        "seed": seed,
        "deterministic": true,
        "num_threads": 0,
        "verbosity": -1,
    })
}
