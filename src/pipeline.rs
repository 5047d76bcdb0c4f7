//! Stage orchestration: profile → sources (in parallel, each under its own budget) → merge and
//! dedupe → filters → ranker (under its budget) → fallback chain (ranker → blend → popularity) →
//! top-up. Callable without HTTP: the server, the trainer, the evaluator and the benches use it.
//! Never panics on request data and never returns an empty list while eligible items exist.

use crate::bandit::BlendWeights;
use crate::bundle::Model;
use crate::config::ServingConfig;
use crate::ranking::Ranker;
use crate::ranking::features::{Candidate, N_SOURCES, Source, UserProfile, build_rows};
use crate::retrieval::index::{IndexConfig, VectorIndex};
use crate::retrieval::{Eligibility, SourceList, cf, content, popular, session};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Bundle(#[from] crate::bundle::BundleError),
    #[error("building the {name} index failed: {message}")]
    Index { name: &'static str, message: String },
}

/// Candidate counts per source (a variant's or an arm's treatment).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SourceCounts {
    pub cf: usize,
    pub content: usize,
    pub session: usize,
    pub popular: usize,
}

impl Default for SourceCounts {
    fn default() -> Self {
        Self {
            cf: 200,
            content: 200,
            session: 100,
            popular: 50,
        }
    }
}

impl SourceCounts {
    /// Scales each count by its source's weight relative to the largest weight, keeping at
    /// least a tenth of the base count for sources with any weight (the bandit's candidate mix).
    pub fn weighted(&self, w: &BlendWeights) -> SourceCounts {
        let max = [w.cf, w.content, w.session, w.popular]
            .into_iter()
            .fold(0f32, f32::max);
        let scale = |base: usize, weight: f32| {
            if max <= 0.0 || weight <= 0.0 {
                return 0;
            }
            let share = (weight / max).clamp(0.1, 1.0);
            ((base as f32 * share).round() as usize).max(1)
        };
        SourceCounts {
            cf: scale(self.cf, w.cf),
            content: scale(self.content, w.content),
            session: scale(self.session, w.session),
            popular: scale(self.popular, w.popular),
        }
    }

    pub fn get(&self, s: Source) -> usize {
        match s {
            Source::Cf => self.cf,
            Source::Content => self.content,
            Source::Session => self.session,
            Source::Popular => self.popular,
        }
    }
}

/// How one request is treated: which sources with how many candidates, whether the ranker runs,
/// and the blend weights used by the blend stage (the fallback, or the bandit's arm).
#[derive(Debug, Clone)]
pub struct Treatment {
    pub counts: SourceCounts,
    pub weights: BlendWeights,
    pub use_ranker: bool,
}

/// A validated request, ids already resolved where they exist.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub user_id: Option<String>,
    pub n: usize,
    pub recent: Vec<String>,
    pub exclude: Vec<String>,
    pub exclude_seen: bool,
    pub category: Option<String>,
    pub ts: Option<i64>,
    /// Interactions recorded for the user since training (online history), oldest first.
    pub online: Vec<(u32, i64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    Ranked,
    Blend,
    Popular,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Ranked => "ranked",
            Strategy::Blend => "blend",
            Strategy::Popular => "popular",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecItem {
    pub item: u32,
    pub score: f32,
    /// Bit i set when `Source::ALL[i]` proposed the item.
    pub sources: u8,
}

/// Wall time of each stage, for metrics and the evaluator's latency report.
#[derive(Debug, Clone, Default)]
pub struct StageTimings {
    pub profile: Duration,
    pub sources: [Option<Duration>; N_SOURCES],
    pub retrieval: Duration,
    pub merge: Duration,
    pub rank: Duration,
    pub total: Duration,
}

#[derive(Debug, Clone)]
pub struct Recommendation {
    pub items: Vec<RecItem>,
    pub strategy: Strategy,
    /// Why a source or stage was skipped, e.g. `cf:over_budget`, `ranker:error`.
    pub degraded: Vec<String>,
    pub candidates: [usize; N_SOURCES],
    pub timings: StageTimings,
    pub profile_history_len: usize,
}

/// Everything needed to serve, built once from a bundle and never mutated: swapped whole on reload.
pub struct Engine {
    pub model: Model,
    pub cf_index: VectorIndex,
    pub content_index: VectorIndex,
    pub ranker: Option<Ranker>,
    /// Why the bundle's ranker could not be loaded, when it could not.
    pub ranker_error: Option<String>,
    pub cfg: ServingConfig,
}

impl Engine {
    /// Builds the indexes (or loads them from the bundle's `index/`) and the ranker.
    pub fn new(
        mut model: Model,
        cfg: ServingConfig,
        index_cfg: &IndexConfig,
        bundle_dir: Option<&std::path::Path>,
    ) -> Result<Self, EngineError> {
        // The hybrid model's feature embeddings are kept in the bundle for tooling and
        // retraining; serving never reads them, so they do not stay resident.
        model.user_feature_emb = Vec::new();
        model.item_feature_emb = Vec::new();
        let index_dir = bundle_dir.map(|d| d.join("index"));
        let cf_index = crate::retrieval::index_for(
            "cf",
            index_dir.as_deref(),
            Arc::clone(&model.item_cf),
            Some(model.item_bias.clone()),
            model.cf_dim,
            index_cfg,
        )
        .map_err(|message| EngineError::Index {
            name: "cf",
            message,
        })?;
        let content_index = crate::retrieval::index_for(
            "content",
            index_dir.as_deref(),
            Arc::clone(&model.item_content),
            None,
            model.content_dim,
            index_cfg,
        )
        .map_err(|message| EngineError::Index {
            name: "content",
            message,
        })?;
        let (ranker, ranker_error) = match &model.ranker_text {
            None => (None, Some("bundle has no ranker".to_string())),
            Some(text) => match Ranker::load(
                text,
                cfg.ranker_backend,
                crate::ranking::features::N_FEATURES,
            ) {
                Ok(r) => (Some(r), None),
                Err(e) => (None, Some(e.to_string())),
            },
        };
        Ok(Self {
            model,
            cf_index,
            content_index,
            ranker,
            ranker_error,
            cfg,
        })
    }

    pub fn version(&self) -> &str {
        &self.model.manifest.model_version
    }

    /// Resolves ids and builds the user profile and eligibility for `q`.
    pub fn prepare(&self, q: &Query) -> (UserProfile, Eligibility) {
        let m = &self.model;
        let user = q
            .user_id
            .as_deref()
            .and_then(|u| m.user_index.get(u).copied());
        let recent: Vec<u32> = q
            .recent
            .iter()
            .filter_map(|i| m.item_index.get(i.as_str()).copied())
            .collect();
        let profile = UserProfile::build(m, user, &q.online, &recent, q.ts, self.cfg.profile_items);
        let mut excluded: FxHashSet<u32> = q
            .exclude
            .iter()
            .filter_map(|i| m.item_index.get(i.as_str()).copied())
            .collect();
        if q.exclude_seen {
            // Seen = training history + everything recorded since + the session's items.
            if let Some(u) = user {
                excluded.extend(m.history(u).0.iter().copied());
            }
            excluded.extend(q.online.iter().map(|&(i, _)| i));
            excluded.extend(recent.iter().copied());
        }
        // A category the bundle does not know matches no item (never "no filter").
        let category = q.category.as_deref().map(|c| {
            m.category_index
                .get(c)
                .copied()
                .unwrap_or(crate::retrieval::NO_SUCH_CATEGORY)
        });
        (profile, Eligibility { excluded, category })
    }

    fn run_source(
        &self,
        s: Source,
        profile: &UserProfile,
        elig: &Eligibility,
        k: usize,
    ) -> SourceList {
        match s {
            Source::Cf => cf::candidates(self, profile, elig, k),
            Source::Content => content::candidates(self, profile, elig, k),
            Source::Session => session::candidates(self, profile, elig, k),
            Source::Popular => popular::candidates(&self.model, profile, elig, k),
        }
    }

    fn budget(&self, s: Source) -> Duration {
        let b = &self.cfg.source_budget_ms;
        Duration::from_millis(match s {
            Source::Cf => b.cf,
            Source::Content => b.content,
            Source::Session => b.session,
            Source::Popular => b.popular,
        })
    }

    /// Stage 1: runs the sources with a positive count, in parallel on the rayon pool when
    /// configured, and drops (and reports) any that overran its budget. `enforce_budgets = false`
    /// is for offline use (training labels, evaluation) where completeness beats latency.
    pub fn retrieve(
        self: &Arc<Self>,
        profile: &Arc<UserProfile>,
        elig: &Arc<Eligibility>,
        counts: &SourceCounts,
        enforce_budgets: bool,
        degraded: &mut Vec<String>,
        timings: &mut StageTimings,
    ) -> [SourceList; N_SOURCES] {
        let mut out: [SourceList; N_SOURCES] = Default::default();
        let active: Vec<Source> = Source::ALL
            .into_iter()
            .filter(|&s| counts.get(s) > 0)
            .collect();
        let start = Instant::now();
        if self.cfg.parallel_sources && enforce_budgets && active.len() > 1 {
            let (tx, rx) = std::sync::mpsc::channel::<(Source, Option<SourceList>, Duration)>();
            for &s in &active {
                let (engine, profile, elig, tx) = (
                    Arc::clone(self),
                    Arc::clone(profile),
                    Arc::clone(elig),
                    tx.clone(),
                );
                let k = counts.get(s);
                rayon::spawn(move || {
                    let t = Instant::now();
                    // A panic must not abort the process (rayon's default for `spawn`): it
                    // becomes a failed source, reported as `<source>:error`.
                    let list = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        engine.run_source(s, &profile, &elig, k)
                    }))
                    .ok();
                    // The receiver may have given up on us (over budget): that is fine.
                    let _ = tx.send((s, list, t.elapsed()));
                });
            }
            drop(tx);
            let deadline = start
                + active
                    .iter()
                    .map(|&s| self.budget(s))
                    .max()
                    .unwrap_or_default();
            let mut pending: Vec<Source> = active.clone();
            while !pending.is_empty() {
                let now = Instant::now();
                let Some(wait) = deadline.checked_duration_since(now) else {
                    break;
                };
                match rx.recv_timeout(wait) {
                    Ok((s, list, took)) => {
                        pending.retain(|&p| p != s);
                        timings.sources[s as usize] = Some(took);
                        match list {
                            None => degraded.push(format!("{}:error", s.as_str())),
                            Some(_) if start.elapsed() > self.budget(s) => {
                                degraded.push(format!("{}:over_budget", s.as_str()))
                            }
                            Some(list) => out[s as usize] = list,
                        }
                    }
                    Err(_) => break,
                }
            }
            for s in pending {
                degraded.push(format!("{}:over_budget", s.as_str()));
            }
        } else {
            for &s in &active {
                let t = Instant::now();
                let list = self.run_source(s, profile, elig, counts.get(s));
                let took = t.elapsed();
                timings.sources[s as usize] = Some(took);
                if enforce_budgets && took > self.budget(s) {
                    degraded.push(format!("{}:over_budget", s.as_str()));
                } else {
                    out[s as usize] = list;
                }
            }
        }
        timings.retrieval = start.elapsed();
        out
    }

    /// The full two-stage path for one request.
    pub fn recommend(self: &Arc<Self>, q: &Query, t: &Treatment) -> Recommendation {
        self.recommend_with(q, t, true)
    }

    /// `enforce_budgets = false` runs every stage to completion (offline evaluation).
    pub fn recommend_with(
        self: &Arc<Self>,
        q: &Query,
        t: &Treatment,
        enforce_budgets: bool,
    ) -> Recommendation {
        let start = Instant::now();
        let mut timings = StageTimings::default();
        let mut degraded = Vec::new();
        let (profile, elig) = self.prepare(q);
        timings.profile = start.elapsed();
        if elig.category == Some(crate::retrieval::NO_SUCH_CATEGORY) {
            degraded.push("category:unknown".into());
        }
        let (profile, elig) = (Arc::new(profile), Arc::new(elig));
        let lists = self.retrieve(
            &profile,
            &elig,
            &t.counts,
            enforce_budgets,
            &mut degraded,
            &mut timings,
        );
        let candidates: [usize; N_SOURCES] = std::array::from_fn(|i| lists[i].len());

        let t_merge = Instant::now();
        let cands = merge(&lists);
        timings.merge = t_merge.elapsed();

        let n = q.n.max(1);
        let t_rank = Instant::now();
        let (mut items, strategy) = if cands.is_empty() {
            degraded.push("retrieval:no_candidates".into());
            (Vec::new(), Strategy::Popular)
        } else {
            self.rank_or_blend(&profile, &cands, t, n, enforce_budgets, &mut degraded)
        };
        timings.rank = t_rank.elapsed();

        // Top up from popularity so the list is n long whenever the catalogue allows it.
        if items.len() < n {
            let taken: FxHashSet<u32> = items.iter().map(|r: &RecItem| r.item).collect();
            let floor = items.last().map_or(f32::INFINITY, |r| r.score);
            for (k, (item, pct)) in popular::fill(&self.model, &elig, &taken, n - items.len())
                .into_iter()
                .enumerate()
            {
                // Keep scores non-increasing: appended items score below everything ranked above them.
                let score = if floor.is_finite() {
                    floor - 1.0 - k as f32
                } else {
                    pct
                };
                items.push(RecItem {
                    item,
                    score,
                    sources: 1 << Source::Popular as u8,
                });
            }
        }
        timings.total = start.elapsed();
        Recommendation {
            items,
            strategy,
            degraded,
            candidates,
            timings,
            profile_history_len: profile.history_len,
        }
    }

    /// The last step of the fallback chain on its own: eligible items by popularity. Cheap
    /// (a walk down a precomputed list), so it is safe to run when every budget is spent.
    pub fn popular_only(&self, q: &Query) -> Recommendation {
        let start = Instant::now();
        let (profile, elig) = self.prepare(q);
        let items = popular::fill(&self.model, &elig, &FxHashSet::default(), q.n.max(1))
            .into_iter()
            .map(|(item, score)| RecItem {
                item,
                score,
                sources: 1 << Source::Popular as u8,
            })
            .collect();
        let timings = StageTimings {
            total: start.elapsed(),
            ..Default::default()
        };
        Recommendation {
            items,
            strategy: Strategy::Popular,
            degraded: Vec::new(),
            candidates: [0; N_SOURCES],
            timings,
            profile_history_len: profile.history_len,
        }
    }

    /// Stage 2 with its fallback: the ranker under its budget, else the weighted blend.
    pub fn rank_or_blend(
        &self,
        profile: &UserProfile,
        cands: &[Candidate],
        t: &Treatment,
        n: usize,
        enforce_budgets: bool,
        degraded: &mut Vec<String>,
    ) -> (Vec<RecItem>, Strategy) {
        if t.use_ranker {
            match &self.ranker {
                None => degraded.push("ranker:unavailable".into()),
                Some(ranker) => {
                    let start = Instant::now();
                    match self.score(ranker, profile, cands) {
                        Ok(_)
                            if enforce_budgets
                                && start.elapsed()
                                    > Duration::from_millis(self.cfg.ranker_budget_ms) =>
                        {
                            degraded.push("ranker:over_budget".into());
                        }
                        Ok(scores) => return (top_n(cands, &scores, n), Strategy::Ranked),
                        Err(e) => {
                            tracing::warn!(error = %e, "ranker failed; falling back to blend");
                            degraded.push("ranker:error".into());
                        }
                    }
                }
            }
        }
        let scores = blend_scores(cands, &t.weights);
        (top_n(cands, &scores, n), Strategy::Blend)
    }

    /// Ranker scores for `cands`, rows from the one feature definition.
    pub fn score(
        &self,
        ranker: &Ranker,
        profile: &UserProfile,
        cands: &[Candidate],
    ) -> Result<Vec<f64>, crate::ranking::gbdt::RankerError> {
        let mut rows = Vec::new();
        build_rows(&self.model, profile, cands, &mut rows);
        ranker.score_batch(&rows, crate::ranking::features::N_FEATURES)
    }
}

/// Merges source lists by item, keeping every source's score and 0-based rank; order: first seen.
pub fn merge(lists: &[SourceList; N_SOURCES]) -> Vec<Candidate> {
    let total: usize = lists.iter().map(Vec::len).sum();
    let mut pos: FxHashMap<u32, usize> =
        FxHashMap::with_capacity_and_hasher(total, Default::default());
    let mut out: Vec<Candidate> = Vec::with_capacity(total);
    for (s, list) in lists.iter().enumerate() {
        for (rank, &(item, score)) in list.iter().enumerate() {
            let idx = *pos.entry(item).or_insert_with(|| {
                out.push(Candidate::new(item));
                out.len() - 1
            });
            let c = &mut out[idx];
            if c.score[s].is_nan() {
                c.score[s] = score;
                c.rank[s] = rank as f32;
            }
        }
    }
    out
}

/// Weighted blend of per-source min-max normalised scores (a missing source contributes 0).
pub fn blend_scores(cands: &[Candidate], w: &BlendWeights) -> Vec<f64> {
    let weights = [w.cf, w.content, w.session, w.popular];
    let mut lo = [f32::INFINITY; N_SOURCES];
    let mut hi = [f32::NEG_INFINITY; N_SOURCES];
    for c in cands {
        for s in 0..N_SOURCES {
            let v = c.score[s];
            if !v.is_nan() {
                lo[s] = lo[s].min(v);
                hi[s] = hi[s].max(v);
            }
        }
    }
    cands
        .iter()
        .map(|c| {
            (0..N_SOURCES)
                .filter(|&s| !c.score[s].is_nan())
                .map(|s| {
                    let span = hi[s] - lo[s];
                    let norm = if span > 0.0 {
                        (c.score[s] - lo[s]) / span
                    } else {
                        1.0
                    };
                    f64::from(weights[s] * norm)
                })
                .sum()
        })
        .collect()
}

/// The `n` best candidates by score (ties by item id, for determinism).
pub fn top_n(cands: &[Candidate], scores: &[f64], n: usize) -> Vec<RecItem> {
    let mut order: Vec<usize> = (0..cands.len()).collect();
    let key = |i: usize| {
        if scores[i].is_nan() {
            f64::NEG_INFINITY
        } else {
            scores[i]
        }
    };
    let cmp = |a: &usize, b: &usize| {
        key(*b)
            .total_cmp(&key(*a))
            .then(cands[*a].item.cmp(&cands[*b].item))
    };
    if order.len() > n {
        order.select_nth_unstable_by(n, cmp);
        order.truncate(n);
    }
    order.sort_unstable_by(cmp);
    order
        .into_iter()
        .map(|i| {
            let c = &cands[i];
            let sources = c.sources().fold(0u8, |acc, s| acc | (1 << s as u8));
            RecItem {
                item: c.item,
                score: key(i) as f32,
                sources,
            }
        })
        .collect()
}

/// Source names for a `RecItem::sources` bit set.
pub fn source_names(bits: u8) -> Vec<&'static str> {
    Source::ALL
        .into_iter()
        .filter(|&s| bits & (1 << s as u8) != 0)
        .map(Source::as_str)
        .collect()
}

impl Default for Treatment {
    fn default() -> Self {
        Self {
            counts: SourceCounts::default(),
            weights: BlendWeights::default(),
            use_ranker: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cand(item: u32, scores: [f32; N_SOURCES]) -> Candidate {
        let mut c = Candidate::new(item);
        c.score = scores;
        c
    }

    #[test]
    fn merge_keeps_every_source_score_and_rank_once_per_item() {
        let lists: [SourceList; N_SOURCES] = [
            vec![(1, 0.9), (2, 0.5)],
            vec![(2, 0.7), (3, 0.1)],
            vec![],
            vec![(1, 0.3), (1, 0.2)],
        ];
        let m = merge(&lists);
        assert_eq!(m.iter().map(|c| c.item).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(m[0].score[0], 0.9);
        assert_eq!(m[0].rank[3], 0.0, "first occurrence wins");
        assert_eq!(m[0].score[3], 0.3);
        assert_eq!((m[1].rank[0], m[1].rank[1]), (1.0, 0.0));
        assert!(m[2].score[0].is_nan() && m[2].score[1] == 0.1);
    }

    #[test]
    fn blend_normalises_per_source_and_weights() {
        let cands = [
            cand(1, [1.0, f32::NAN, f32::NAN, 0.0]),
            cand(2, [3.0, f32::NAN, f32::NAN, 10.0]),
        ];
        let w = BlendWeights {
            cf: 1.0,
            content: 0.0,
            session: 0.0,
            popular: 0.5,
        };
        let s = blend_scores(&cands, &w);
        assert!(
            (s[0] - 0.0).abs() < 1e-9 && (s[1] - 1.5).abs() < 1e-9,
            "{s:?}"
        );
    }

    #[test]
    fn weighted_counts_follow_the_arm() {
        let base = SourceCounts::default();
        let w = BlendWeights {
            cf: 0.6,
            content: 0.15,
            session: 0.0,
            popular: 0.3,
        };
        let c = base.weighted(&w);
        assert_eq!(c.cf, 200);
        assert_eq!(c.content, 50);
        assert_eq!(c.session, 0, "a zero-weight source is off");
        assert_eq!(c.popular, 25);
    }

    proptest! {
        /// `top_n` equals a naive full sort (score desc, NaN last, ties by item id).
        #[test]
        fn top_n_matches_naive_sort(scores in proptest::collection::vec(prop_oneof![Just(f64::NAN), -5.0f64..5.0], 0..60), n in 1usize..70) {
            let cands: Vec<Candidate> = (0..scores.len() as u32).map(Candidate::new).collect();
            let got: Vec<u32> = top_n(&cands, &scores, n).iter().map(|r| r.item).collect();
            let mut naive: Vec<(f64, u32)> = scores.iter().enumerate()
                .map(|(i, &s)| (if s.is_nan() { f64::NEG_INFINITY } else { s }, i as u32)).collect();
            naive.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let want: Vec<u32> = naive.into_iter().take(n).map(|x| x.1).collect();
            prop_assert_eq!(got, want);
        }

        /// Merging never loses or duplicates an item, whatever the lists hold.
        #[test]
        fn merge_is_a_deduplicated_union(lists in proptest::collection::vec(proptest::collection::vec((0u32..40, -1.0f32..1.0), 0..30), N_SOURCES)) {
            let arr: [SourceList; N_SOURCES] = [lists[0].clone(), lists[1].clone(), lists[2].clone(), lists[3].clone()];
            let m = merge(&arr);
            let mut want: Vec<u32> = lists.iter().flatten().map(|x| x.0).collect();
            want.sort_unstable();
            want.dedup();
            let mut got: Vec<u32> = m.iter().map(|c| c.item).collect();
            got.sort_unstable();
            prop_assert_eq!(got, want);
        }
    }
}
