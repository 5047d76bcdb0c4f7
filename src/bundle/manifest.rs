//! `manifest.json`: what a bundle is, how it was made and how well it did; read first on load.

use serde::{Deserialize, Serialize};

/// Bumped on any incompatible change of the layout; readers refuse other versions.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DataSummary {
    pub users: usize,
    pub items: usize,
    pub interactions: usize,
    pub users_without_interactions: usize,
    pub items_without_interactions: usize,
    pub categories: usize,
    pub first_ts: i64,
    pub last_ts: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    /// Unique per training run, e.g. `20261129T053000Z-3f2a`.
    pub model_version: String,
    /// Unix seconds.
    pub created_at: i64,
    pub data: DataSummary,
    pub cf_dim: usize,
    pub content_dim: usize,
    /// The reference "now" of the training data (its latest timestamp); time features are relative to it
    /// when a request gives no `ts`.
    pub reference_ts: i64,
    /// Ordered feature names the ranker expects; must equal the ranker file's `feature_names`.
    pub feature_names: Vec<String>,
    /// Whether `ranker.txt` is part of the bundle.
    pub has_ranker: bool,
    /// Training metrics (factorization, ranker vs sources, timings), free-form but stable keys.
    #[serde(default)]
    pub training: serde_json::Value,
    /// How training's validation says the stack should serve (absent in older bundles: the
    /// ranker over every candidate, hand-set blend weights).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving_plan: Option<ServingPlan>,
}

/// The serving decisions training made on held-out users.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ServingPlan {
    /// The learned first-phase blend, by source name: it orders every merged candidate, and the
    /// ranker re-ranks its top `rerank_depth` (the cut the ranker was trained on).
    pub first_phase_weights: std::collections::BTreeMap<String, f32>,
    /// The first-phase blend learned on the users known only by their features (no history),
    /// used for them instead; absent = the one blend for everyone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cold_first_phase_weights: Option<std::collections::BTreeMap<String, f32>>,
    /// Whether the ranker was boosted from the first-phase score (LightGBM `init_score`), so
    /// its output is a correction to add to that score.
    #[serde(default)]
    pub ranker_adds_first_phase: bool,
    /// The first-phase cut the ranker was trained on; 0 = every candidate.
    pub rerank_depth: usize,
    /// Whether the ranker held against its best validated alternative on the report users with
    /// a history (a single source: beaten with the paired bootstrap CI above zero; the learned
    /// blend: not significantly worse).
    pub ranker_gate_passed: bool,
    /// Weights of the best validated alternative to the ranker (one source alone, or the learned
    /// blend when it beat that source): what the control treatment serves when the gate failed.
    pub fallback_weights: std::collections::BTreeMap<String, f32>,
    /// The gate decided again on the report users known only by their features (absent = too
    /// few of them: the decision above applies to everyone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cold_ranker_gate_passed: Option<bool>,
    /// The best validated alternative for users known only by their features.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cold_fallback_weights: Option<std::collections::BTreeMap<String, f32>>,
    /// One line on the decision, with the numbers.
    pub reason: String,
}
