//! Why each item of a list was shown (`explain=true`): the sources that proposed it with their
//! scores and ranks, the path that placed it (ranker inside the first-phase cut, first-phase
//! order below it, blend, popularity), and for ranked items the ranker's raw score decomposed by
//! TreeSHAP into per-feature contributions plus the bias, beside the feature values.
//!
//! Built after the list is final and only when a request asks: the default path never enters
//! this module, so explanations cost nothing when off. It recomputes what the chain decided
//! (the first phase is deterministic) instead of making the hot path keep it.

use super::{Engine, Strategy};
use crate::ranking::features::{FEATURE_NAMES, build_rows, n_features};
use crate::ranking::{ExposureSlot, FirstPhase, RecItem, top_indices};
use crate::retrieval::{Candidate, N_SOURCES, Source, UserProfile};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

/// What placed an item at its position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServedPath {
    /// The ranker ordered it (it was inside the first-phase cut).
    Ranked,
    /// The ranker served the list, but this item came from below the cut in first-phase order.
    FirstPhase,
    /// The weighted blend ordered it (ranker off, gated, failing or over budget).
    Blend,
    /// Popularity: the top-up that fills the list, or the popularity fallback.
    Popular,
    /// New-item exposure: a slot the exposure policy gave to an item with few or no
    /// interactions (the response item's `exposure` holds the slot's propensity).
    Exposure,
}

/// One source's proposal of the item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SourceEvidence {
    pub source: String,
    /// The source's own score (inner product, similarity, popularity percentile, …).
    pub score: f32,
    /// 0-based rank in the source's list.
    pub rank: u32,
}

/// The item's place in the first phase (the learned blend that picks the ranker's cut).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FirstPhaseEvidence {
    pub score: f64,
    /// 0-based rank among all merged candidates.
    pub rank: u32,
    /// `serving.rerank_depth`: the ranker re-ranks the first phase's top this many (0 = all).
    pub rerank_depth: usize,
    /// Whether the item was inside the cut the ranker saw.
    pub in_cut: bool,
}

/// One feature of the ranker's row with its TreeSHAP contribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FeatureContribution {
    pub name: String,
    /// The feature value; `None` when missing (NaN, routed by the trees' default directions).
    pub value: Option<f32>,
    pub contribution: f64,
}

/// The ranker's raw score, decomposed: `raw_score = bias + Σ contribution`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RankerEvidence {
    pub raw_score: f64,
    /// The expected raw score over the ranker's training rows.
    pub bias: f64,
    /// When the ranker is a correction to the first phase, the first-phase score it was added
    /// to: the served score is `raw_score + first_phase_base`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_phase_base: Option<f64>,
    pub features: Vec<FeatureContribution>,
}

/// Why one item was shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Explanation {
    pub path: ServedPath,
    /// Every source that proposed the item (empty for a popularity top-up outside them).
    pub sources: Vec<SourceEvidence>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_phase: Option<FirstPhaseEvidence>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranker: Option<RankerEvidence>,
}

/// The state of the chain an explanation reads.
pub(super) struct Decided<'a> {
    pub profile: &'a UserProfile,
    pub cands: &'a [Candidate],
    pub strategy: Strategy,
    /// Items from this position on came from the popularity top-up, not from the candidates.
    pub top_up_from: usize,
}

impl Engine {
    /// One explanation per item of `items`, in the same order.
    pub(super) fn explain(&self, d: &Decided<'_>, items: &[RecItem]) -> Vec<Explanation> {
        let by_item: FxHashMap<u32, usize> = d
            .cands
            .iter()
            .enumerate()
            .map(|(k, c)| (c.item, k))
            .collect();
        let ranked = d.strategy == Strategy::Ranked && !d.cands.is_empty();
        let phase1 = ranked.then(|| {
            let p = FirstPhase::run(
                d.cands,
                self.plan.first_phase_for(d.profile),
                self.cfg.rerank_depth,
            );
            let order = top_indices(d.cands, &p.scores, d.cands.len());
            let mut rank = vec![0u32; d.cands.len()];
            for (r, &k) in order.iter().enumerate() {
                rank[k] = r as u32;
            }
            let mut in_cut = vec![p.keep().is_none(); d.cands.len()];
            for &k in p.keep().into_iter().flatten() {
                in_cut[k] = true;
            }
            (p.scores, rank, in_cut)
        });
        // The ranker's evidence for every item it ordered, in one batch of rows.
        let ranked_items: Vec<usize> = match &phase1 {
            Some((_, _, in_cut)) => items
                .iter()
                .filter_map(|r| by_item.get(&r.item).copied())
                .filter(|&k| in_cut[k])
                .collect(),
            None => Vec::new(),
        };
        let mut evidence: FxHashMap<usize, RankerEvidence> = FxHashMap::default();
        if let (Some(ranker), Some((scores, _, _))) = (&self.ranker, &phase1) {
            let cands: Vec<Candidate> = ranked_items.iter().map(|&k| d.cands[k]).collect();
            let nf = n_features(&self.model);
            let mut rows = Vec::with_capacity(cands.len() * nf);
            build_rows(&self.model, d.profile, &cands, &mut rows);
            match ranker.contributions(&rows, nf) {
                Ok(contribs) => {
                    for ((&k, c), row) in
                        ranked_items.iter().zip(contribs).zip(rows.chunks_exact(nf))
                    {
                        let features = FEATURE_NAMES
                            .iter()
                            .zip(row)
                            .zip(&c.values)
                            .map(|((name, &v), &contribution)| FeatureContribution {
                                name: (*name).to_string(),
                                value: (!v.is_nan()).then_some(v),
                                contribution,
                            })
                            .collect();
                        let base = self.plan.ranker_adds_first_phase.then(|| scores[k]);
                        evidence.insert(
                            k,
                            RankerEvidence {
                                raw_score: c.total(),
                                bias: c.bias,
                                first_phase_base: base,
                                features,
                            },
                        );
                    }
                }
                Err(e) => tracing::warn!(error = %e, "ranker explanation unavailable"),
            }
        }
        items
            .iter()
            .enumerate()
            .map(|(pos, r)| {
                let cand = by_item
                    .get(&r.item)
                    .copied()
                    .filter(|_| pos < d.top_up_from);
                let Some(k) = cand else {
                    return self.popular_explanation(r.item, pos.saturating_sub(d.top_up_from));
                };
                let first_phase =
                    phase1
                        .as_ref()
                        .map(|(scores, rank, in_cut)| FirstPhaseEvidence {
                            score: scores[k],
                            rank: rank[k],
                            rerank_depth: self.cfg.rerank_depth,
                            in_cut: in_cut[k],
                        });
                let path = match (&first_phase, d.strategy) {
                    (Some(f), _) if f.in_cut => ServedPath::Ranked,
                    (Some(_), _) => ServedPath::FirstPhase,
                    (None, Strategy::Popular) => ServedPath::Popular,
                    (None, _) => ServedPath::Blend,
                };
                Explanation {
                    path,
                    sources: sources_of(&d.cands[k]),
                    first_phase,
                    ranker: evidence.remove(&k),
                }
            })
            .collect()
    }
}

impl Engine {
    /// A popularity top-up (or fallback) item: its popularity percentile, `rank` its position
    /// among the items popularity filled in.
    pub(super) fn popular_explanation(&self, item: u32, rank: usize) -> Explanation {
        Explanation {
            path: ServedPath::Popular,
            sources: vec![SourceEvidence {
                source: Source::Popular.as_str().to_string(),
                score: self
                    .model
                    .popularity_pct
                    .get(item as usize)
                    .copied()
                    .unwrap_or(0.0),
                rank: rank as u32,
            }],
            first_phase: None,
            ranker: None,
        }
    }

    /// Inserts the explanations of the exposure items (`items` is the final list, `ex` the
    /// explanations of the list before exposure) and cuts `ex` back to the list's length.
    pub(super) fn explain_exposure(
        &self,
        ex: &mut Vec<Explanation>,
        items: &[RecItem],
        slots: &[ExposureSlot],
        cands: &[Candidate],
        n: usize,
    ) {
        for slot in slots {
            let item = items[slot.position].item;
            let mut sources = cands
                .iter()
                .find(|c| c.item == item)
                .map_or_else(Vec::new, sources_of);
            // The policy's own evidence: the slot's propensity and its position.
            sources.push(SourceEvidence {
                source: crate::ranking::exposure::EXPOSURE_SOURCE.to_string(),
                score: slot.propensity as f32,
                rank: slot.position as u32,
            });
            let e = Explanation {
                path: ServedPath::Exposure,
                sources,
                first_phase: None,
                ranker: None,
            };
            ex.insert(slot.position.min(ex.len()), e);
        }
        ex.truncate(n.min(items.len()));
    }
}

/// Every source that proposed `c`, with its score and rank.
fn sources_of(c: &Candidate) -> Vec<SourceEvidence> {
    (0..N_SOURCES)
        .filter(|&s| !c.score[s].is_nan())
        .map(|s| SourceEvidence {
            source: Source::ALL[s].as_str().to_string(),
            score: c.score[s],
            rank: c.rank[s] as u32,
        })
        .collect()
}
