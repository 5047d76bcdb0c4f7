//! The whole fallback chain for one request: profile → fan-out → merge → ranker (under its
//! budget) → else the weighted blend → popularity top-up so the list is full; and, around it, the
//! request budget: past it the request is answered from popularity and says why. Every failure
//! is kept in `degraded`; the chain never answers empty while eligible items exist.

use super::explain::Decided;
use super::{
    Deadline, Degraded, Engine, PipelinePool, Query, Recommendation, StageTimings, Strategy,
    Treatment,
};
use crate::ranking::diversity::{self, CategoryCap, Diversity};
use crate::ranking::exposure;
use crate::ranking::{FirstPhase, RecItem, blend_scores, top_n};
use crate::retrieval::{
    Candidate, Eligibility, N_SOURCES, Source, SourceList, UserProfile, merge, popular,
};
use rustc_hash::FxHashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// With exposure on, the chain ranks this many items (at least), so the exposure slots can take
/// the best new items just below the list in the chain's own order (past the ranker's cut,
/// the first phase's order continues).
const EXPOSURE_LOOKAHEAD: usize = 100;

impl Engine {
    /// The full two-stage path for one request, under `deadline` ([`Deadline::NONE`] offline:
    /// every stage runs to completion).
    pub fn recommend(
        self: &Arc<Self>,
        q: &Query,
        t: &Treatment,
        deadline: Deadline,
    ) -> Recommendation {
        let start = Instant::now();
        let mut timings = StageTimings::default();
        let mut degraded = Vec::new();
        let (profile, elig) = self.prepare(q);
        timings.profile = start.elapsed();
        if elig.category == Some(crate::retrieval::NO_SUCH_CATEGORY) {
            degraded.push(Degraded::CategoryUnknown);
        }
        let (profile, elig) = (Arc::new(profile), Arc::new(elig));
        let retrieved = self.retrieve(&profile, &elig, &t.counts, deadline);
        degraded.extend(retrieved.degraded);
        timings.sources = retrieved.source_times;
        timings.retrieval = retrieved.elapsed;
        let lists = retrieved.lists;
        let candidates: [usize; N_SOURCES] = std::array::from_fn(|i| lists[i].len());

        let t_merge = Instant::now();
        let cands = merge(&lists);
        timings.merge = t_merge.elapsed();

        let n = q.n.max(1);
        let div = q.diversity;
        let policy = t.exposure.unwrap_or_else(|| self.cfg.exposure.policy());
        // A hard per-category cap wins: capped requests get no exposure slots. Only the
        // requests drawn for exposure (`serving.exposure.traffic_share`) order past the list.
        let seed = if policy.is_off() {
            0
        } else {
            exposure_seed(q, n)
        };
        let exposing = !policy.is_off() && div.max_per_category.is_none() && policy.exposes(seed);
        let t_rank = Instant::now();
        // With diversity on, the chain orders a larger pool for MMR to choose from. With
        // exposure on (and no diversity), it orders past the list, so exposure can prefer the
        // new items it would have shown lower down.
        let pool = div.pool(n);
        let ranked = if exposing && div.is_off() {
            pool.max(EXPOSURE_LOOKAHEAD)
        } else {
            pool
        };
        let (mut items, strategy) = if cands.is_empty() {
            degraded.push(Degraded::NoCandidates);
            (Vec::new(), Strategy::Popular)
        } else {
            self.rank_or_blend(&profile, &cands, t, ranked, deadline, &mut degraded)
        };
        // The new items ranked below the list (allocates only when there are some).
        let ahead: Vec<u32> = items
            .get(pool..)
            .unwrap_or_default()
            .iter()
            .map(|r| r.item)
            .filter(|&i| self.new_items.contains(i))
            .collect();
        items.truncate(pool);
        if !div.is_off() {
            items = diversity::rerank(&self.model, &items, n, &div);
        }
        timings.rank = t_rank.elapsed();

        // Top up from popularity so the list is n long whenever the catalogue (and the
        // category cap) allows it.
        let top_up_from = items.len();
        if items.len() < n {
            let taken: FxHashSet<u32> = items.iter().map(|r: &RecItem| r.item).collect();
            let floor = if div.is_off() {
                items.last().map_or(f32::INFINITY, |r| r.score)
            } else {
                // MMR's order need not follow the scores: stay below all of them.
                items.iter().map(|r| r.score).fold(f32::INFINITY, f32::min)
            };
            let fill = match div.max_per_category {
                None => popular::fill(&self.model, &elig, &taken, n - items.len()),
                Some(_) => self.capped_fill(&elig, &taken, &items, n - items.len(), &div),
            };
            for (k, (item, pct)) in fill.into_iter().enumerate() {
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
        // Off by default; the only cost of the default path is this test.
        let mut explanations = q.explain.then(|| {
            let decided = Decided {
                profile: &profile,
                cands: &cands,
                strategy,
                top_up_from,
            };
            self.explain(&decided, &items)
        });
        let exposure = if !exposing {
            Vec::new()
        } else {
            let overlay = q.overlay.as_deref().filter(|o| o.n_added() > 0);
            let excluded_added: Vec<usize> = overlay.map_or_else(Vec::new, |o| {
                let seen = q.exclude_seen.then(|| q.recent.iter().chain(&q.seen_added));
                let mut v: Vec<usize> = q
                    .exclude
                    .iter()
                    .chain(seen.into_iter().flatten())
                    .filter_map(|id| o.added(id))
                    .collect();
                v.sort_unstable();
                v
            });
            let added = overlay.map(|overlay| exposure::AddedItems {
                overlay,
                excluded: &excluded_added,
            });
            let slots = exposure::apply(
                &policy,
                &self.model,
                &self.new_items,
                added,
                &profile,
                &elig,
                &mut items,
                &cands,
                &ahead,
                n,
                seed,
            );
            if let Some(ex) = explanations.as_mut() {
                self.explain_exposure(ex, &items, &slots, &cands, n);
            }
            slots
        };
        timings.total = start.elapsed();
        Recommendation {
            items,
            strategy,
            degraded,
            candidates,
            timings,
            profile_history_len: profile.history_len,
            explanations,
            exposure,
        }
    }

    /// The last step of the fallback chain on its own: eligible items by popularity. Cheap
    /// (a walk down a precomputed list), so it is safe to run when every budget is spent.
    pub fn popular_only(&self, q: &Query) -> Recommendation {
        let start = Instant::now();
        let (profile, elig) = self.prepare(q);
        let none = FxHashSet::default();
        let fill = match q.diversity.max_per_category {
            None => popular::fill(&self.model, &elig, &none, q.n.max(1)),
            Some(_) => self.capped_fill(&elig, &none, &[], q.n.max(1), &q.diversity),
        };
        let items: Vec<RecItem> = fill
            .into_iter()
            .map(|(item, score)| RecItem {
                item,
                score,
                sources: 1 << Source::Popular as u8,
            })
            .collect();
        let explanations = q.explain.then(|| {
            items
                .iter()
                .enumerate()
                .map(|(k, r)| self.popular_explanation(r.item, k))
                .collect()
        });
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
            explanations,
            exposure: Vec::new(),
        }
    }

    /// Up to `k` popular eligible items outside `taken` that keep `items` plus themselves
    /// within the per-category cap.
    fn capped_fill(
        &self,
        elig: &Eligibility,
        taken: &FxHashSet<u32>,
        items: &[RecItem],
        k: usize,
        div: &Diversity,
    ) -> SourceList {
        let mut cap = CategoryCap::new(div.max_per_category);
        for r in items {
            cap.add(&self.model, r.item);
        }
        popular::fill_where(&self.model, elig, taken, k, |i| {
            let ok = cap.allows(&self.model, i);
            if ok {
                cap.add(&self.model, i);
            }
            ok
        })
    }

    /// Stage 2 with its fallback: the ranker under its budget, else the weighted blend.
    pub fn rank_or_blend(
        &self,
        profile: &UserProfile,
        cands: &[Candidate],
        t: &Treatment,
        n: usize,
        deadline: Deadline,
        degraded: &mut Vec<Degraded>,
    ) -> (Vec<RecItem>, Strategy) {
        if t.use_ranker {
            match &self.ranker {
                None => degraded.push(Degraded::RankerUnavailable),
                Some(_) if !self.plan.ranker_serves(profile) => {
                    degraded.push(Degraded::RankerGated)
                }
                Some(ranker) => {
                    let start = Instant::now();
                    let budget = deadline.stage(start, self.cfg.ranker_budget());
                    // Phase 1: the learned blend picks the cut; phase 2: the ranker orders it.
                    // Ordered past the cut when the list is longer than the cut.
                    let phase1 = FirstPhase::run_deep(
                        cands,
                        self.plan.first_phase_for(profile),
                        self.cfg.rerank_depth,
                        n.saturating_sub(self.cfg.rerank_depth),
                    );
                    let cut = phase1.cut(cands);
                    let phase2: &[Candidate] = cut.as_deref().unwrap_or(cands);
                    match ranker.score_candidates(&self.model, profile, phase2) {
                        Ok(_) if !budget.met_by(Instant::now()) => {
                            degraded.push(Degraded::RankerOverBudget);
                        }
                        Ok(mut scores) => {
                            if self.plan.ranker_adds_first_phase {
                                phase1.add_base(&mut scores);
                            }
                            let mut items = top_n(phase2, &scores, n);
                            if items.len() < n && cut.is_some() {
                                extend_below(&mut items, cands, phase1.below(), n);
                            }
                            return (items, Strategy::Ranked);
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "ranker failed; falling back to blend");
                            degraded.push(Degraded::RankerError);
                        }
                    }
                }
            }
        }
        let weights = t.weights.unwrap_or(*self.plan.fallback_for(profile));
        let scores = blend_scores(cands, &weights);
        (top_n(cands, &scores, n), Strategy::Blend)
    }
}

/// The request's exposure seed: the caller's, or one derived from who asks for how many, so a
/// repeated request gets the same slots.
fn exposure_seed(q: &Query, n: usize) -> u64 {
    match q.exposure_seed {
        0 => {
            let recent: Vec<&[u8]> = q.recent.iter().map(|r| r.as_bytes()).collect();
            exposure::seed_of(&[
                q.user_id.as_deref().unwrap_or("").as_bytes(),
                &(n as u64).to_le_bytes(),
                &recent.concat(),
            ])
        }
        s => s,
    }
}

/// Appends the candidates just below the ranked cut (`below`, in first-phase order) until
/// `items` holds `n` (scores kept below the ranked part).
fn extend_below(items: &mut Vec<RecItem>, cands: &[Candidate], below: &[usize], n: usize) {
    let floor = items.last().map_or(0.0, |r| r.score);
    let need = n.saturating_sub(items.len());
    for (k, c) in below
        .iter()
        .filter_map(|&i| cands.get(i))
        .take(need)
        .enumerate()
    {
        items.push(RecItem {
            item: c.item,
            score: floor - 1.0 - k as f32,
            sources: c.source_bits(),
        });
    }
}

/// Runs the pipeline on the [`PipelinePool`] (the request's span follows it) under `budget`;
/// past the budget, or if the pipeline job dies, the request is answered from popularity and says
/// why.
/// An `explain=true` request may take `serving.explain_budget_ms` longer for its explanations.
///
/// `hold` (for example the caller's admission permit) lives in the pipeline job and is dropped
/// only when its CPU work ends, even if the answer went out earlier as a budget fallback. A job
/// still queued when its budget ran out is dropped unrun (and `hold` with it).
pub async fn recommend_within<H: Send + 'static>(
    engine: &Arc<Engine>,
    pool: &PipelinePool,
    q: Query,
    t: Treatment,
    budget: Duration,
    hold: H,
) -> Recommendation {
    let deadline = Deadline::after(budget);
    let e = Arc::clone(engine);
    let q2 = q.clone();
    let span = tracing::Span::current();
    let job = pool.run(move || {
        let _entered = span.enter();
        let rec = e.recommend(&q2, &t, deadline);
        drop(hold);
        rec
    });
    // The list keeps `budget` (the pipeline's deadline); explanations may add their own.
    let wait = if q.explain {
        budget + engine.cfg.explain_budget()
    } else {
        budget
    };
    let reason = match tokio::time::timeout(wait, job).await {
        Ok(Ok(rec)) => return rec,
        Ok(Err(_)) => {
            tracing::error!("pipeline job failed; serving popularity");
            Degraded::PipelineError
        }
        Err(_) => Degraded::RequestOverBudget,
    };
    let mut rec = engine.popular_only(&q);
    rec.degraded.push(reason);
    rec
}
