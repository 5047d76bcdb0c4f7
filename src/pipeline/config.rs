//! The pipeline's own configuration section, `[serving]`: list sizes, latency budgets, how the
//! sources run and which ranker backend scores. The config aggregator only assembles it.

use crate::ranking::RankerBackend;
use crate::ranking::exposure::{ExposureError, ExposurePolicy, Pick, Placement};
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
    /// Run the stage-1 sources on the rayon pool in parallel (`true`), one after another on the
    /// request's blocking thread (`false`), or decide at load (`"auto"`, see [`Parallelism`]).
    pub parallel_sources: Parallelism,
    /// `native` (flat trees in Rust) or `lightgbm` (the C library through lightgbm3).
    pub ranker_backend: RankerBackend,
    /// Items of the user's history used for the content profile and the session source.
    pub profile_items: usize,
    /// Multi-phase ranking: the learned first-phase blend orders every merged candidate and the
    /// ranker re-ranks only its top `rerank_depth` (0 = every candidate). Training trains the
    /// ranker on exactly this cut; serving a different depth is logged at load.
    pub rerank_depth: usize,
    /// Extra time an `explain=true` request may take after its list is decided, for the
    /// explanations (TreeSHAP costs ~1 ms per ranked item on the demo ranker). The list itself
    /// stays under `total_budget_ms`; past both, the request is answered from popularity.
    #[serde(default = "default_explain_budget_ms")]
    pub explain_budget_ms: u64,
    /// New-item exposure: the default policy (variants may override it) and which items count
    /// as new.
    #[serde(default)]
    pub exposure: ExposureConfig,
}

/// `[serving.exposure]`: the policy of treatments that do not set their own, and the new items.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ExposureConfig {
    /// Share of slots for new items (0 = off); see [`ExposurePolicy`].
    pub share: f64,
    pub placement: Placement,
    pub offset: usize,
    pub pick: Pick,
    /// Items with at most this many training interactions are new.
    pub new_item_max_interactions: u32,
    /// New items a request scores at most (the youngest): bounds the per-request cost.
    pub pool_max: usize,
    /// Share of requests that get the slots (see [`ExposurePolicy::traffic_share`]).
    pub traffic_share: f64,
}

impl Default for ExposureConfig {
    fn default() -> Self {
        let p = ExposurePolicy::default();
        Self {
            share: p.share,
            placement: p.placement,
            offset: p.offset,
            pick: p.pick,
            traffic_share: p.traffic_share,
            new_item_max_interactions: 0,
            pool_max: 1000,
        }
    }
}

impl ExposureConfig {
    pub fn policy(&self) -> ExposurePolicy {
        ExposurePolicy {
            share: self.share,
            placement: self.placement,
            offset: self.offset,
            pick: self.pick,
            traffic_share: self.traffic_share,
        }
    }
}

fn default_explain_budget_ms() -> u64 {
    1000
}

/// How the stage-1 sources run. Measured on the 2-core reference machine with the demo bundle
/// (1.5k items): sequential 227 µs vs parallel 253 µs per request in process, and the rayon
/// hand-off wakes idle workers that then spin. Sources this fast only gain from parallelism on
/// machines with cores to spare and catalogues large enough that a source costs milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parallelism {
    Sequential,
    Parallel,
    /// Parallel when the machine has at least [`AUTO_MIN_CORES`] cores and the catalogue at
    /// least [`AUTO_MIN_ITEMS`] items; sequential otherwise.
    Auto,
}

/// Cores below which `"auto"` runs the sources sequentially.
pub const AUTO_MIN_CORES: usize = 4;
/// Catalogue size below which `"auto"` runs the sources sequentially.
pub const AUTO_MIN_ITEMS: usize = 100_000;

impl Parallelism {
    /// The decision for a catalogue of `n_items` on a machine with `cores` cores.
    pub fn resolve(self, n_items: usize, cores: usize) -> bool {
        match self {
            Parallelism::Sequential => false,
            Parallelism::Parallel => true,
            Parallelism::Auto => cores >= AUTO_MIN_CORES && n_items >= AUTO_MIN_ITEMS,
        }
    }
}

impl From<bool> for Parallelism {
    fn from(b: bool) -> Self {
        if b {
            Parallelism::Parallel
        } else {
            Parallelism::Sequential
        }
    }
}

impl serde::Serialize for Parallelism {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Parallelism::Sequential => s.serialize_bool(false),
            Parallelism::Parallel => s.serialize_bool(true),
            Parallelism::Auto => s.serialize_str("auto"),
        }
    }
}

impl<'de> Deserialize<'de> for Parallelism {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Parallelism;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("true, false or \"auto\"")
            }
            fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Parallelism, E> {
                Ok(b.into())
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Parallelism, E> {
                match v {
                    "auto" => Ok(Parallelism::Auto),
                    "true" => Ok(Parallelism::Parallel),
                    "false" => Ok(Parallelism::Sequential),
                    other => Err(E::invalid_value(serde::de::Unexpected::Str(other), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
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
    #[serde(default = "default_source_budget_ms")]
    pub segment: u64,
}

fn default_source_budget_ms() -> u64 {
    10
}

#[derive(Debug, thiserror::Error)]
pub enum ServingConfigError {
    #[error("serving.default_n ({default_n}) must be in 1..=serving.max_n ({max_n})")]
    DefaultN { default_n: usize, max_n: usize },
    #[error("serving.exposure: {0}")]
    Exposure(#[from] ExposureError),
}

impl ServingConfig {
    pub fn validate(&self) -> Result<(), ServingConfigError> {
        if self.max_n == 0 || self.default_n == 0 || self.default_n > self.max_n {
            return Err(ServingConfigError::DefaultN {
                default_n: self.default_n,
                max_n: self.max_n,
            });
        }
        self.exposure.policy().validate()?;
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
            Source::Segment => b.segment,
        })
    }

    pub fn ranker_budget(&self) -> Duration {
        Duration::from_millis(self.ranker_budget_ms)
    }

    pub fn total_budget(&self) -> Duration {
        Duration::from_millis(self.total_budget_ms)
    }

    pub fn explain_budget(&self) -> Duration {
        Duration::from_millis(self.explain_budget_ms)
    }
}

#[cfg(test)]
mod parallelism_tests {
    use super::*;

    #[test]
    fn auto_is_parallel_only_with_cores_and_a_large_catalogue() {
        assert!(!Parallelism::Auto.resolve(1_500, 2));
        assert!(!Parallelism::Auto.resolve(1_000_000, 2));
        assert!(!Parallelism::Auto.resolve(1_500, 16));
        assert!(Parallelism::Auto.resolve(AUTO_MIN_ITEMS, AUTO_MIN_CORES));
        assert!(Parallelism::Parallel.resolve(10, 1));
        assert!(!Parallelism::Sequential.resolve(10_000_000, 64));
    }

    #[test]
    fn booleans_strings_and_auto_parse_and_anything_else_is_refused() {
        #[derive(Deserialize)]
        struct T {
            p: Parallelism,
        }
        let p = |s: &str| toml::from_str::<T>(s).map(|t| t.p);
        assert_eq!(p("p = true").unwrap(), Parallelism::Parallel);
        assert_eq!(p("p = false").unwrap(), Parallelism::Sequential);
        assert_eq!(p("p = \"auto\"").unwrap(), Parallelism::Auto);
        assert_eq!(p("p = \"false\"").unwrap(), Parallelism::Sequential);
        let err = p("p = \"sometimes\"").unwrap_err().to_string();
        assert!(err.contains("auto"), "{err}");
    }
}
