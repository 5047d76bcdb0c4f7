//! The pipeline's own configuration section, `[serving]`: list sizes, latency budgets, how the
//! sources run and which ranker backend scores. The config aggregator only assembles it.

use crate::ranking::RankerBackend;
use serde::Deserialize;
use std::time::Duration;

use crate::retrieval::Source;

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServingConfig {
    pub default_n: usize,
    pub max_n: usize,
    /// Longest `recent` / `exclude` list accepted.
    pub max_list_len: usize,
    pub total_budget_ms: u64,
    pub ranker_budget_ms: u64,
    pub source_budget_ms: SourceBudgets,
    /// Run the stage-1 sources on the rayon pool in parallel (true) or one after another.
    pub parallel_sources: bool,
    /// `native` (flat trees in Rust) or `lightgbm` (the C library through lightgbm3).
    pub ranker_backend: RankerBackend,
    /// Items of the user's history used for the content profile and the session source.
    pub profile_items: usize,
    /// Multi-phase ranking: the learned first-phase blend orders every merged candidate and the
    /// ranker re-ranks only its top `rerank_depth` (0 = every candidate). Training trains the
    /// ranker on exactly this cut; serving a different depth is logged at load.
    pub rerank_depth: usize,
}

#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SourceBudgets {
    pub cf: u64,
    pub content: u64,
    pub session: u64,
    pub popular: u64,
    #[serde(default = "default_source_budget_ms")]
    pub item2item: u64,
}

fn default_source_budget_ms() -> u64 {
    10
}

#[derive(Debug, thiserror::Error)]
pub enum ServingConfigError {
    #[error("serving.default_n ({default_n}) must be in 1..=serving.max_n ({max_n})")]
    DefaultN { default_n: usize, max_n: usize },
}

impl ServingConfig {
    pub fn validate(&self) -> Result<(), ServingConfigError> {
        if self.max_n == 0 || self.default_n == 0 || self.default_n > self.max_n {
            return Err(ServingConfigError::DefaultN {
                default_n: self.default_n,
                max_n: self.max_n,
            });
        }
        Ok(())
    }

    /// The latency budget of source `s`.
    pub fn source_budget(&self, s: Source) -> Duration {
        let b = &self.source_budget_ms;
        Duration::from_millis(match s {
            Source::Cf => b.cf,
            Source::Content => b.content,
            Source::Session => b.session,
            Source::Popular => b.popular,
            Source::Item2Item => b.item2item,
        })
    }

    pub fn ranker_budget(&self) -> Duration {
        Duration::from_millis(self.ranker_budget_ms)
    }

    pub fn total_budget(&self) -> Duration {
        Duration::from_millis(self.total_budget_ms)
    }
}
