//! The request pipeline, callable without HTTP (the server, the trainer, the evaluator and the
//! benches use it): profile → candidate sources in parallel, each under its budget inside the
//! request's [`Deadline`] → merge → ranker under its budget → fallback chain (ranker → blend →
//! popularity) → top-up. It composes `retrieval` and `ranking` and owns the `[serving]` config.
//! Never panics on request data and never returns an empty list while eligible items exist.
//!
//! Files: `request` (what goes in and out), `engine` (construction, warm-up, profile),
//! `fanout` (stage 1 under budgets), `chain` (the fallback chain and the request budget),
//! `explain` (why each item was shown, only when asked),
//! `degraded` (typed reasons), `executor` (the pipeline's thread pool), `config`.

mod chain;
pub mod config;
mod degraded;
mod engine;
mod executor;
mod explain;
mod fanout;
mod request;

pub use crate::deadline::Deadline;
pub use chain::recommend_within;
pub use config::{Parallelism, ServingConfig, SourceBudgets};
pub use degraded::Degraded;
pub use engine::{Engine, EngineError, Plan};
pub use executor::PipelinePool;
pub use explain::{
    Explanation, FeatureContribution, FirstPhaseEvidence, RankerEvidence, ServedPath,
    SourceEvidence,
};
pub use fanout::{Retrieved, run_source};
pub use request::{Query, Recommendation, SourceCounts, StageTimings, Strategy, Treatment};
