//! What goes into the pipeline and what comes out: the validated query, the treatment (which
//! sources with how many candidates, ranker or blend), the strategy that served, stage timings
//! and the recommendation itself. Plain data: no HTTP types, no behaviour beyond small helpers.

use super::{Degraded, Explanation};
use crate::bandit::BlendWeights;
use crate::ranking::{Diversity, ExposurePolicy, ExposureSlot, RecItem};
use crate::retrieval::{N_SOURCES, Source};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Candidate counts per source (a variant's or an arm's treatment).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SourceCounts {
    pub cf: usize,
    pub content: usize,
    pub session: usize,
    pub popular: usize,
    /// Absent in older variant files: the default count.
    #[serde(default = "default_item2item_count")]
    pub item2item: usize,
    /// Absent in older variant files: the default count.
    #[serde(default = "default_segment_count")]
    pub segment: usize,
}

fn default_item2item_count() -> usize {
    SourceCounts::default().item2item
}

fn default_segment_count() -> usize {
    SourceCounts::default().segment
}

impl Default for SourceCounts {
    fn default() -> Self {
        Self {
            cf: 200,
            content: 200,
            session: 100,
            popular: 50,
            item2item: 200,
            segment: 100,
        }
    }
}

impl SourceCounts {
    /// Scales each count by its source's weight relative to the largest weight, keeping at
    /// least a tenth of the base count for sources with any weight (the bandit's candidate mix).
    pub fn weighted(&self, w: &BlendWeights) -> SourceCounts {
        let max = w.as_array().into_iter().fold(0f32, f32::max);
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
            item2item: scale(self.item2item, w.item2item),
            segment: scale(self.segment, w.segment),
        }
    }

    pub fn get(&self, s: Source) -> usize {
        match s {
            Source::Cf => self.cf,
            Source::Content => self.content,
            Source::Session => self.session,
            Source::Popular => self.popular,
            Source::Item2Item => self.item2item,
            Source::Segment => self.segment,
        }
    }
}

/// How one request is treated: which sources with how many candidates, whether the ranker runs,
/// and the blend weights used by the blend stage (the fallback, or the bandit's arm).
#[derive(Debug, Clone, PartialEq)]
pub struct Treatment {
    pub counts: SourceCounts,
    /// Blend weights for the blend strategy; `None` = the bundle's learned weights (the best
    /// validated alternative to the ranker). The ranker's first phase always uses the learned
    /// first-phase weights, so an override never changes the cut the ranker was trained on.
    pub weights: Option<BlendWeights>,
    pub use_ranker: bool,
    /// New-item exposure; `None` = the engine's `[serving.exposure]` policy.
    pub exposure: Option<ExposurePolicy>,
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
    /// Explain every item (`explain=true`): see [`super::Explanation`]. Off by default.
    pub explain: bool,
    /// MMR and the per-category cap (the variant's, overridden by the request); off by default.
    pub diversity: Diversity,
    /// Seeds the exposure policy's draws; 0 (the default, what the server passes) = a hash of
    /// the user, `n` and the session items, so the same request always gets the same list.
    pub exposure_seed: u64,
    /// The runtime catalogue (items added and taken down since the bundle); `None` = none.
    pub overlay: Option<std::sync::Arc<crate::catalogue::Overlay>>,
    /// Items of the online history the bundle does not know (added at runtime): seen, so
    /// excluded like the rest of the history.
    pub seen_added: Vec<String>,
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
    /// Why a source or stage was skipped, in the order it happened.
    pub degraded: Vec<Degraded>,
    pub candidates: [usize; N_SOURCES],
    pub timings: StageTimings,
    pub profile_history_len: usize,
    /// One explanation per item, in item order, when the query asked for them.
    pub explanations: Option<Vec<Explanation>>,
    /// The positions the exposure policy filled with new items, with their propensities.
    pub exposure: Vec<ExposureSlot>,
}

impl Default for Treatment {
    fn default() -> Self {
        Self {
            counts: SourceCounts::default(),
            weights: None,
            use_ranker: true,
            exposure: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_counts_follow_the_arm() {
        let base = SourceCounts::default();
        let w = BlendWeights {
            cf: 0.6,
            content: 0.15,
            session: 0.0,
            popular: 0.3,
            item2item: 0.0,
            segment: 0.0,
        };
        let c = base.weighted(&w);
        assert_eq!(c.cf, 200);
        assert_eq!(c.content, 50);
        assert_eq!(c.session, 0, "a zero-weight source is off");
        assert_eq!(c.popular, 25);
    }
}
