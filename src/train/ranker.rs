//! Ranker training on the question the ranker answers at serving time: "of the candidates the
//! sources propose for this user now, which will the user interact with next?" Part of each user's
//! interactions is held out (latest ones, or a random share), the sources are fitted without them,
//! the real stage-1 code proposes candidates (the user's other known items excluded), and a
//! candidate is labelled 1 when it is one of the held-out items. Rows come from the one feature
//! definition. Validation on held-out users compares the ranker with every single source.

use super::Holdout;
use crate::bandit::BlendWeights;
use crate::data::dataset::Interaction;
use crate::pipeline::{Deadline, Engine, Query, SourceCounts};
use crate::ranking::bootstrap::{BOOTSTRAP_RESAMPLES, DiffCi, paired_bootstrap_ci};
use crate::ranking::features::{N_FEATURES, build_rows};
use crate::ranking::{FirstPhase, blend_scores, top_n};
use crate::retrieval::{Candidate, N_SOURCES, Source, UserProfile, merge};
use rand::{RngExt, SeedableRng, rngs::StdRng, seq::SliceRandom};
use rayon::prelude::*;
use rustc_hash::FxHashSet;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RankerConfig {
    pub holdout: Holdout,
    /// Share of each user's interactions held out as targets, per fold.
    pub holdout_share: f64,
    /// Holdout folds: the sources are refitted per fold and every fold's labelled candidate
    /// lists are pooled, so the ranker sees `folds` times the groups (see [`holdout_split`]).
    #[serde(default = "one")]
    pub folds: usize,
    /// Above this many interactions training uses one fold whatever `folds` says: each fold
    /// is a full refit of the sources (1M interactions on 2 cores: ~100 s per fold).
    #[serde(default = "default_folds_max_interactions")]
    pub folds_max_interactions: usize,
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
    /// Cold cases: this share of the ranker's users lose their whole history from every fold's
    /// fit (known only by their features; all their interactions become targets), so the
    /// ranker learns how far to trust feature-built vectors and segment popularity.
    #[serde(default = "default_cold_user_share")]
    pub cold_user_share: f64,
    /// This share of the items with interactions lose them all from every fold's fit (their
    /// vectors come from features alone; their interactions become targets).
    #[serde(default = "default_cold_item_share")]
    pub cold_item_share: f64,
}

fn default_cold_user_share() -> f64 {
    0.1
}

fn default_cold_item_share() -> f64 {
    0.05
}

/// The cold cases of a training run: which ranker users and which items are hidden from every
/// fold's fit. Chosen once (seeded) so a user or item is cold in every fold or in none.
#[derive(Debug, Clone, Default)]
pub struct ColdCases {
    pub users: FxHashSet<u32>,
    pub items: FxHashSet<u32>,
}

impl ColdCases {
    /// `cold_user_share` × |`users`| cold users, taken first from `spare` (eligible users the
    /// ranker's sample left out, so the cold groups come on top of the warm ones) and then from
    /// `users`; and `cold_item_share` of the items that have interactions in `inter`.
    pub fn pick(
        users: &[u32],
        spare: &[u32],
        inter: &[Interaction],
        cfg: &RankerConfig,
        seed: u64,
    ) -> Self {
        let mut rng = StdRng::seed_from_u64(seed ^ 0xC01D);
        let share = |n: usize, s: f64| ((n as f64) * s.clamp(0.0, 1.0)).round() as usize;
        let want = share(users.len(), cfg.cold_user_share);
        let mut u = spare.to_vec();
        u.shuffle(&mut rng);
        let mut sampled = users.to_vec();
        sampled.shuffle(&mut rng);
        u.extend(sampled);
        u.truncate(want);
        let mut items: Vec<u32> = inter.iter().map(|x| x.item).collect();
        items.sort_unstable();
        items.dedup();
        items.shuffle(&mut rng);
        items.truncate(share(items.len(), cfg.cold_item_share));
        Self {
            users: u.into_iter().collect(),
            items: items.into_iter().collect(),
        }
    }

    /// Moves every fitted interaction of a cold user or a cold item into the targets (both
    /// stay sorted by user and time).
    pub fn apply(
        &self,
        fit: Vec<Interaction>,
        mut targets: Vec<Interaction>,
    ) -> (Vec<Interaction>, Vec<Interaction>) {
        if self.users.is_empty() && self.items.is_empty() {
            return (fit, targets);
        }
        let (hidden, kept): (Vec<Interaction>, Vec<Interaction>) = fit
            .into_iter()
            .partition(|x| self.users.contains(&x.user) || self.items.contains(&x.item));
        targets.extend(hidden);
        targets.sort_by_key(|x| (x.user, x.ts, x.item));
        (kept, targets)
    }
}

fn one() -> usize {
    1
}

fn default_folds_max_interactions() -> usize {
    500_000
}

/// Splits interactions (sorted by user, ts) into (fit, targets) per the holdout policy, for
/// holdout fold `fold` (0-based, `< cfg.folds`). Each user eligible for a holdout (at least
/// `min_history` interactions) gets `k = round(n × holdout_share)` targets per fold:
/// - temporal: a rolling origin — fold 0 holds out the latest `k`, fold 1 the `k` before them,
///   and so on; a fold's fit keeps only what came before its targets (never the future);
/// - random: disjoint shares of one per-user shuffle (K-fold), so folds label different items.
///
/// A user too short for fold `fold` keeps what the fold's origin allows for fitting.
pub fn holdout_split(
    inter: &[Interaction],
    cfg: &RankerConfig,
    seed: u64,
    fold: usize,
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
                // Targets [end - k, end), fit [0, end - k), with end = n - fold × k.
                let end = n.saturating_sub(fold * k);
                if end < k + 1 {
                    fit.extend_from_slice(&user_rows[..end.min(n)]);
                    continue;
                }
                fit.extend_from_slice(&user_rows[..end - k]);
                targets.extend_from_slice(&user_rows[end - k..end]);
            }
            Holdout::Random => {
                // One shuffle per user (the same for every fold: same seed, same order), of
                // which fold f takes the f-th block of k; folds past n/k hold nothing out.
                let mut idx: Vec<usize> = (0..n).collect();
                idx.shuffle(&mut rng);
                let lo = (fold * k).min(n);
                let hi = ((fold + 1) * k).min(n - 1).max(lo);
                let held: FxHashSet<usize> = idx[lo..hi].iter().copied().collect();
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

/// One user's candidate list with labels and, once cut, feature rows.
#[derive(Clone)]
pub struct Group {
    pub user: u32,
    pub cands: Vec<Candidate>,
    pub lists: [Vec<(u32, f32)>; N_SOURCES],
    /// Feature rows of `cands` (row-major); empty until [`cut_group`] builds them for the
    /// candidates the ranker sees (most of a full list never reaches it).
    pub rows: Vec<f32>,
    /// The fold's engine the candidates came from, which the rows are built from.
    pub engine: Arc<Engine>,
    pub labels: Vec<f32>,
    pub targets: FxHashSet<u32>,
    pub profile: UserProfile,
    /// The first-phase (learned blend) score of each candidate, which the ranker boosts from;
    /// empty until [`cut_group`] sets it.
    pub base: Vec<f64>,
}

/// Runs the real stage-1 sources for each user with targets and labels the candidates (feature
/// rows come later, from [`cut_group`]).
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
            let profile = Arc::try_unwrap(profile).unwrap_or_else(|p| (*p).clone());
            Some(Group {
                user: u,
                cands,
                lists,
                rows: Vec::new(),
                engine: Arc::clone(engine),
                labels,
                targets: tset,
                profile,
                base: Vec::new(),
            })
        })
        .collect()
}

/// Flattens groups into LightGBM inputs; `max_group` > 0 keeps every positive plus sampled negatives.
/// LightGBM inputs: row-major features, labels, group sizes and each row's base score.
pub struct Flat {
    pub rows: Vec<f32>,
    pub labels: Vec<f32>,
    pub sizes: Vec<i32>,
    pub base: Vec<f64>,
}

pub fn flatten(groups: &[&Group], max_group: usize, seed: u64) -> Flat {
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut rows, mut labels, mut sizes, mut base) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
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
            base.push(g.base.get(i).copied().unwrap_or(0.0));
        }
        sizes.push(keep.len() as i32);
    }
    Flat {
        rows,
        labels,
        sizes,
        base,
    }
}

/// NDCG@k on the report users (never the ones that drove early stopping) of: the ranker over
/// the first-phase cut (what serving does), the learned blend, the hand-set default blend, and
/// each single source in its own order; averaged over users with at least one target (targets
/// outside the candidates count as misses).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RankerEval {
    pub users: usize,
    pub ranker_ndcg: f64,
    pub source_ndcg: std::collections::BTreeMap<String, f64>,
    /// The learned blend (the first phase and the fallback).
    pub blend_ndcg: f64,
    /// The hand-set default blend, for comparison.
    pub default_blend_ndcg: f64,
    pub best_source: String,
    pub best_source_ndcg: f64,
    pub candidate_recall: f64,
    /// Share of the targets among the candidates that survive the first-phase cut.
    pub cut_recall: f64,
    /// Paired bootstrap 95% CI of `ranker − learned blend` on the report users.
    pub ranker_vs_blend: Option<DiffCi>,
    /// Paired bootstrap 95% CI of `ranker − best single source`.
    pub ranker_vs_best_source: Option<DiffCi>,
    /// Paired bootstrap 95% CI of `best single source − learned blend`.
    pub best_source_vs_blend: Option<DiffCi>,
}

/// The learned blend: coordinate ascent on NDCG@k over a weight grid, starting from the
/// hand-set default, a few passes over the sources. Returns the weights and their NDCG.
///
/// Each trial scores every candidate of every group, so the columns are kept sparse (a
/// candidate is proposed by one or two sources) and the top k is an insertion into a k-slot
/// buffer: the same scores, summed in the same order, and the same order (score, then item
/// id) as [`blend_scores`] and [`top_indices`] give, at a fraction of the cost.
pub fn fit_blend(groups: &[&Group], k: usize) -> (BlendWeights, f64) {
    use crate::ranking::quality::ndcg_at_k;
    let columns: Vec<SparseColumns> = groups
        .par_iter()
        .map(|g| SparseColumns::new(&g.cands, k))
        .collect();
    let ndcg = |w: &[f32; N_SOURCES]| -> f64 {
        let w64: [f64; N_SOURCES] = w.map(f64::from);
        let sum: f64 = groups
            .par_iter()
            .zip(&columns)
            .map_init(Vec::new, |top, (g, cols)| {
                cols.top_k(&w64, k, top);
                ndcg_at_k(top, &g.targets, k)
            })
            .sum();
        sum / groups.len().max(1) as f64
    };
    const GRID: [f32; 8] = [0.0, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0];
    // Start from the best of the hand-set default and every single source (coordinate ascent
    // finds a local optimum; a strong source alone is a start the default may not reach).
    let starts = std::iter::once(BlendWeights::default().as_array())
        .chain(Source::ALL.map(|s| one_hot(s).as_array()));
    let (mut w, mut best) = starts
        .map(|w| (w, ndcg(&w)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or((BlendWeights::default().as_array(), 0.0));
    for _pass in 0..3 {
        let mut improved = false;
        for s in 0..N_SOURCES {
            for &v in &GRID {
                if v == w[s] {
                    continue;
                }
                let mut trial = w;
                trial[s] = v;
                if trial.iter().all(|&x| x == 0.0) {
                    continue;
                }
                let score = ndcg(&trial);
                if score > best + 1e-9 {
                    (best, w, improved) = (score, trial, true);
                }
            }
        }
        if !improved {
            break;
        }
    }
    (BlendWeights::from_array(w), best)
}

/// One group's normalised source scores (each source's one-hot [`blend_scores`]), without the
/// zeros and without the candidates no weighting can bring into the top `k`: kept candidate
/// `j`'s non-zero `(source, value)` pairs are `entries[start[j]..start[j + 1]]`, in source order.
struct SparseColumns {
    items: Vec<u32>,
    start: Vec<u32>,
    entries: Vec<(u8, f64)>,
    /// The `k` the pruning was done for; `top_k` is exact up to it.
    k: usize,
}

impl SparseColumns {
    fn new(cands: &[Candidate], k: usize) -> Self {
        let dense: [Vec<f64>; N_SOURCES] =
            std::array::from_fn(|s| blend_scores(cands, &one_hot(Source::ALL[s])));
        let dominated = dominated(cands, &dense, k);
        let mut start = Vec::with_capacity(cands.len() + 1);
        let mut entries = Vec::new();
        let mut items = Vec::with_capacity(cands.len());
        start.push(0);
        for i in (0..cands.len()).filter(|&i| !dominated[i]) {
            items.push(cands[i].item);
            for (s, col) in dense.iter().enumerate() {
                // A zero adds nothing to the sum (every term is ≥ +0.0), so dropping it keeps
                // the score bit for bit.
                if col[i] != 0.0 {
                    entries.push((s as u8, col[i]));
                }
            }
            start.push(entries.len() as u32);
        }
        Self {
            items,
            start,
            entries,
            k,
        }
    }

    /// The `k` best items by `Σ w[s] × column[s]` (ties by item id), best first, into `top`.
    fn top_k(&self, w: &[f64; N_SOURCES], k: usize, top: &mut Vec<u32>) {
        debug_assert!(k <= self.k, "pruned for the top {}, asked for {k}", self.k);
        // (score, item) pairs, best first; a candidate enters when it beats the last.
        let mut best: Vec<(f64, u32)> = Vec::with_capacity(k + 1);
        let better = |a: (f64, u32), b: (f64, u32)| match a.0.total_cmp(&b.0) {
            std::cmp::Ordering::Equal => a.1 < b.1,
            o => o == std::cmp::Ordering::Greater,
        };
        for (i, &item) in self.items.iter().enumerate() {
            let (lo, hi) = (self.start[i] as usize, self.start[i + 1] as usize);
            let score = self.entries[lo..hi]
                .iter()
                .fold(0.0f64, |acc, &(s, v)| acc + w[s as usize] * v);
            let x = (score, item);
            if best.len() == k && best.last().is_some_and(|&l| !better(x, l)) {
                continue;
            }
            let at = best.partition_point(|&b| better(b, x));
            best.insert(at, x);
            best.truncate(k);
        }
        top.clear();
        top.extend(best.iter().map(|&(_, item)| item));
    }
}

/// Candidates that rank below at least `k` others under every non-negative weighting, so never
/// reach a top `k`: candidate `i` with at most one non-zero column `s` is outranked by every `j`
/// with `column[s][j] ≥ column[s][i]` (its other columns are ≥ 0 too, so its score is ≥ under
/// any weights, in floating point as well: every term is ≥ 0 and rounding is monotone) and a
/// smaller item id (which wins a tie). Candidates with several non-zero columns are kept.
fn dominated(cands: &[Candidate], dense: &[Vec<f64>; N_SOURCES], k: usize) -> Vec<bool> {
    let n = cands.len();
    let mut out = vec![false; n];
    if k == 0 || n <= k {
        return out;
    }
    let nnz: Vec<usize> = (0..n)
        .map(|i| dense.iter().filter(|col| col[i] != 0.0).count())
        .collect();
    // The k smallest item ids among the candidates seen so far, ascending.
    let push = |smallest: &mut Vec<u32>, item: u32| {
        let at = smallest.partition_point(|&x| x < item);
        if at < k {
            smallest.insert(at, item);
            smallest.truncate(k);
        }
    };
    // All-zero candidates score 0 under any weights: outranked by k smaller ids anywhere.
    let mut smallest = Vec::with_capacity(k + 1);
    for c in cands {
        push(&mut smallest, c.item);
    }
    for i in (0..n).filter(|&i| nnz[i] == 0) {
        out[i] = smallest.len() == k && smallest[k - 1] < cands[i].item;
    }
    let mut order: Vec<usize> = Vec::with_capacity(n);
    for col in dense {
        order.clear();
        order.extend((0..n).filter(|&i| col[i] != 0.0));
        order.sort_unstable_by(|&a, &b| col[b].total_cmp(&col[a]));
        smallest.clear();
        let mut at = 0;
        while at < order.len() {
            // Every candidate of a run of equal values sees the whole run (ties are ≥ too).
            let v = col[order[at]];
            let end = at + order[at..].iter().take_while(|&&i| col[i] == v).count();
            for &i in &order[at..end] {
                push(&mut smallest, cands[i].item);
            }
            for &i in &order[at..end] {
                if nnz[i] == 1 && smallest.len() == k && smallest[k - 1] < cands[i].item {
                    out[i] = true;
                }
            }
            at = end;
        }
    }
    out
}

fn one_hot(s: Source) -> BlendWeights {
    let mut w = [0f32; N_SOURCES];
    w[s as usize] = 1.0;
    BlendWeights::from_array(w)
}

/// Weights that serve one source's own order (a one-hot blend).
pub fn single_source_weights(name: &str) -> Option<BlendWeights> {
    Source::ALL
        .into_iter()
        .find(|s| s.as_str() == name)
        .map(one_hot)
}

/// The group restricted to the first phase's top `depth` candidates by `weights` (what the
/// ranker sees at serving time), with their feature rows (the one definition, from the group's
/// engine and profile); the source lists and targets stay whole, so misses count.
pub fn cut_group(g: &Group, weights: &BlendWeights, depth: usize) -> Group {
    let phase1 = FirstPhase::run(&g.cands, weights, depth);
    let cands: Vec<Candidate> = match phase1.keep() {
        Some(keep) => keep.iter().map(|&i| g.cands[i]).collect(),
        None => g.cands.clone(),
    };
    let labels: Vec<f32> = match phase1.keep() {
        Some(keep) => keep.iter().map(|&i| g.labels[i]).collect(),
        None => g.labels.clone(),
    };
    let mut rows = Vec::with_capacity(cands.len() * N_FEATURES);
    build_rows(&g.engine.model, &g.profile, &cands, &mut rows);
    Group {
        user: g.user,
        cands,
        lists: g.lists.clone(),
        rows,
        engine: Arc::clone(&g.engine),
        labels,
        targets: g.targets.clone(),
        profile: g.profile.clone(),
        base: phase1.kept_scores(),
    }
}

/// `groups` are the report users' FULL candidate lists; the ranker is measured on their cut.
/// `cold` is the first phase of users known only by features, when training learned one.
pub fn evaluate(
    ranker: &crate::ranking::Ranker,
    groups: &[&Group],
    k: usize,
    learned: &BlendWeights,
    cold: Option<&BlendWeights>,
    depth: usize,
) -> Result<RankerEval, crate::ranking::gbdt::RankerError> {
    use crate::ranking::quality::ndcg_at_k;
    let mut ranker_sum = 0.0;
    let mut blend_sum = 0.0;
    let mut default_sum = 0.0;
    let mut src_sum = [0f64; N_SOURCES];
    let (mut per_ranker, mut per_blend) = (Vec::new(), Vec::new());
    let mut per_source: [Vec<f64>; N_SOURCES] = Default::default();
    let mut recall_sum = 0.0;
    let mut cut_recall_sum = 0.0;
    let default_weights = BlendWeights::default();
    for g in groups {
        let learned = first_phase_of(g, learned, cold);
        let cut = cut_group(g, learned, depth);
        // The trees correct the first phase: its score is added, as serving does.
        let mut scores = ranker.score_batch(&cut.rows, N_FEATURES)?;
        for (s, b) in scores.iter_mut().zip(&cut.base) {
            *s += b;
        }
        let ranked: Vec<u32> = top_n(&cut.cands, &scores, k)
            .iter()
            .map(|r| r.item)
            .collect();
        per_ranker.push(ndcg_at_k(&ranked, &g.targets, k));
        ranker_sum += per_ranker[per_ranker.len() - 1];
        cut_recall_sum +=
            cut.labels.iter().filter(|&&l| l > 0.0).count() as f64 / g.targets.len().max(1) as f64;
        let blend = blend_scores(&g.cands, learned);
        let ranked: Vec<u32> = top_n(&g.cands, &blend, k).iter().map(|r| r.item).collect();
        per_blend.push(ndcg_at_k(&ranked, &g.targets, k));
        blend_sum += per_blend[per_blend.len() - 1];
        let blend = blend_scores(&g.cands, &default_weights);
        let ranked: Vec<u32> = top_n(&g.cands, &blend, k).iter().map(|r| r.item).collect();
        default_sum += ndcg_at_k(&ranked, &g.targets, k);
        for ((sum, per), list) in src_sum.iter_mut().zip(&mut per_source).zip(&g.lists) {
            let list: Vec<u32> = list.iter().take(k).map(|&(i, _)| i).collect();
            per.push(ndcg_at_k(&list, &g.targets, k));
            *sum += per[per.len() - 1];
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
        default_blend_ndcg: default_sum / n,
        cut_recall: cut_recall_sum / n,
        ranker_vs_blend: paired_bootstrap_ci(&per_ranker, &per_blend, BOOTSTRAP_RESAMPLES, 7),
        ranker_vs_best_source: best_per(&per_source)
            .and_then(|b| paired_bootstrap_ci(&per_ranker, b, BOOTSTRAP_RESAMPLES, 7)),
        best_source_vs_blend: best_per(&per_source)
            .and_then(|b| paired_bootstrap_ci(b, &per_blend, BOOTSTRAP_RESAMPLES, 7)),
        best_source,
        best_source_ndcg,
        candidate_recall: recall_sum / n,
    })
}

/// The first-phase weights of group `g`: `cold` for a user known only by features (when given).
pub fn first_phase_of<'a>(
    g: &Group,
    learned: &'a BlendWeights,
    cold: Option<&'a BlendWeights>,
) -> &'a BlendWeights {
    match cold {
        Some(c) if crate::ranking::phase::is_features_only(&g.profile) => c,
        _ => learned,
    }
}

/// The per-user scores of the source with the best mean.
fn best_per(per_source: &[Vec<f64>; N_SOURCES]) -> Option<&Vec<f64>> {
    let mean = |v: &Vec<f64>| v.iter().sum::<f64>() / v.len().max(1) as f64;
    per_source.iter().max_by(|a, b| mean(a).total_cmp(&mean(b)))
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

#[cfg(test)]
mod fold_tests {
    use super::*;

    fn cfg(holdout: Holdout) -> RankerConfig {
        RankerConfig {
            holdout,
            holdout_share: 0.2,
            folds: 3,
            folds_max_interactions: usize::MAX,
            min_history: 3,
            max_users: 100,
            valid_share: 0.25,
            max_group: 0,
            counts: SourceCounts::default(),
            num_iterations: 1,
            learning_rate: 0.1,
            num_leaves: 2,
            min_data_in_leaf: 1,
            early_stopping_rounds: 0,
            ndcg_at: 10,
            cold_user_share: 0.0,
            cold_item_share: 0.0,
        }
    }

    /// Users 0..4 with 10, 5, 2 and 20 interactions at increasing timestamps.
    fn data() -> Vec<Interaction> {
        let mut v = Vec::new();
        for (u, n) in [(0u32, 10usize), (1, 5), (2, 2), (3, 20)] {
            for t in 0..n {
                v.push(Interaction {
                    user: u,
                    item: t as u32,
                    ts: t as i64,
                    weight: 1.0,
                    count: 1,
                });
            }
        }
        v
    }

    #[test]
    fn temporal_folds_roll_the_origin_back_and_never_fit_on_the_future() {
        let data = data();
        let c = cfg(Holdout::Temporal);
        let mut seen_targets = FxHashSet::default();
        for fold in 0..3 {
            let (fit, targets) = holdout_split(&data, &c, 1, fold);
            for t in &targets {
                assert!(
                    seen_targets.insert((t.user, t.item)),
                    "folds hold out disjoint interactions"
                );
                // Every fitted interaction of the same user precedes every target.
                let last_fit = fit.iter().filter(|x| x.user == t.user).map(|x| x.ts).max();
                assert!(
                    last_fit.is_none_or(|l| l < t.ts),
                    "fold {fold}: fit sees the future"
                );
            }
            // User 0 (10 rows, k = 2): fold f holds out ts [8 - 2f, 10 - 2f).
            let u0: Vec<i64> = targets
                .iter()
                .filter(|x| x.user == 0)
                .map(|x| x.ts)
                .collect();
            let lo = 8 - 2 * fold as i64;
            assert_eq!(u0, vec![lo, lo + 1]);
            assert!(fit.iter().filter(|x| x.user == 0).all(|x| x.ts < lo));
            // User 2 is below min_history: always fitted, never a target.
            assert!(targets.iter().all(|x| x.user != 2));
            assert_eq!(fit.iter().filter(|x| x.user == 2).count(), 2);
        }
        // User 1 (5 rows, k = 1): folds 0..3 hold out ts 4, 3, 2.
        let (_, t2) = holdout_split(&data, &c, 1, 2);
        assert_eq!(
            t2.iter()
                .filter(|x| x.user == 1)
                .map(|x| x.ts)
                .collect::<Vec<_>>(),
            vec![2]
        );
    }

    // Cost: a few dozen interactions, microseconds.
    #[test]
    fn cold_cases_hide_whole_users_and_items_from_the_fit() {
        let data = data();
        let mut c = cfg(Holdout::Temporal);
        c.cold_user_share = 0.5;
        c.cold_item_share = 0.2;
        let cold = ColdCases::pick(&[0, 1, 3], &[], &data, &c, 4);
        assert_eq!(cold.users.len(), 2);
        assert_eq!(cold.items.len(), 4, "20% of the 20 items with interactions");
        let (fit, targets) = holdout_split(&data, &c, 1, 0);
        let n = fit.len() + targets.len();
        let (fit, targets) = cold.apply(fit, targets);
        assert_eq!(fit.len() + targets.len(), n, "nothing is lost");
        assert!(
            fit.iter()
                .all(|x| !cold.users.contains(&x.user) && !cold.items.contains(&x.item))
        );
        for &u in &cold.users {
            let all = data.iter().filter(|x| x.user == u).count();
            assert_eq!(
                targets.iter().filter(|x| x.user == u).count(),
                all,
                "user {u}: all targets"
            );
        }
        assert!(
            targets
                .windows(2)
                .all(|w| (w[0].user, w[0].ts) <= (w[1].user, w[1].ts))
        );
        // Deterministic per seed.
        let again = ColdCases::pick(&[0, 1, 3], &[], &data, &c, 4);
        // Spare users are taken first.
        let spare = ColdCases::pick(&[0, 1, 3], &[7, 8], &data, &c, 4);
        assert_eq!(spare.users, [7, 8].into_iter().collect());
        assert_eq!((again.users, again.items), (cold.users, cold.items));
    }

    // Cost: 300 random lists of up to 300 candidates, milliseconds.
    #[test]
    fn sparse_blend_top_k_is_the_dense_blend_order() {
        use crate::ranking::quality::ndcg_at_k;
        use crate::ranking::top_indices;
        let mut rng = StdRng::seed_from_u64(3);
        let mut pruned = 0;
        for case in 0..300 {
            let n = rng.random_range(1..300usize);
            let mut items: Vec<u32> = (0..1000).collect();
            items.shuffle(&mut rng);
            let cands: Vec<Candidate> = items[..n]
                .iter()
                .map(|&item| {
                    let mut c = Candidate::new(item);
                    // Mostly one source, some two or three, coarse scores so that ties happen.
                    for _ in 0..[1, 1, 1, 2, 3][rng.random_range(0..5)] {
                        let s = rng.random_range(0..N_SOURCES);
                        c.score[s] = rng.random_range(0..20) as f32 / 4.0;
                    }
                    c
                })
                .collect();
            let mut w = [0f32; N_SOURCES];
            for x in &mut w {
                *x = [0.0, 0.05, 0.35, 1.0][rng.random_range(0..4)];
            }
            // The dense reference: fit_blend's former per-trial scoring.
            let cols: [Vec<f64>; N_SOURCES] =
                std::array::from_fn(|s| blend_scores(&cands, &one_hot(Source::ALL[s])));
            let scores: Vec<f64> = (0..n)
                .map(|i| (0..N_SOURCES).map(|s| f64::from(w[s]) * cols[s][i]).sum())
                .collect();
            let k = 10;
            let want: Vec<u32> = top_indices(&cands, &scores, k)
                .into_iter()
                .map(|i| cands[i].item)
                .collect();
            let mut got = Vec::new();
            let sparse = SparseColumns::new(&cands, k);
            assert!(sparse.items.len() >= k.min(n));
            pruned += n - sparse.items.len();
            sparse.top_k(&w.map(f64::from), k, &mut got);
            assert_eq!(got, want, "case {case}, weights {w:?}");
            let targets: FxHashSet<u32> = items[..n].iter().copied().step_by(7).collect();
            assert_eq!(ndcg_at_k(&got, &targets, k), ndcg_at_k(&want, &targets, k));
        }
        assert!(pruned > 10_000, "the pruning prunes ({pruned})");
    }

    #[test]
    fn random_folds_are_disjoint_and_partition_each_user() {
        let data = data();
        let c = cfg(Holdout::Random);
        let mut seen = FxHashSet::default();
        for fold in 0..3 {
            let (fit, targets) = holdout_split(&data, &c, 9, fold);
            assert_eq!(
                fit.len() + targets.len(),
                data.len(),
                "a random fold drops nothing"
            );
            let t: FxHashSet<(u32, u32)> = targets.iter().map(|x| (x.user, x.item)).collect();
            assert!(fit.iter().all(|x| !t.contains(&(x.user, x.item))));
            for k in t {
                assert!(seen.insert(k), "fold {fold} repeats a target");
            }
            // User 3: 20 rows, k = 4 per fold; user 0: k = 2.
            assert_eq!(targets.iter().filter(|x| x.user == 3).count(), 4);
            assert_eq!(targets.iter().filter(|x| x.user == 0).count(), 2);
        }
        // Deterministic per seed.
        assert_eq!(
            holdout_split(&data, &c, 9, 1)
                .1
                .iter()
                .map(|x| x.item)
                .collect::<Vec<_>>(),
            holdout_split(&data, &c, 9, 1)
                .1
                .iter()
                .map(|x| x.item)
                .collect::<Vec<_>>()
        );
    }
}
