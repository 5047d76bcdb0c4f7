//! The serving engine: everything a request reads, built once from a bundle (indexes loaded or
//! built, ranker parsed, warmed up) and never mutated afterwards, so a reload builds a new one
//! beside it and swaps it whole.

use super::{Query, ServingConfig, Treatment};
use crate::bandit::BlendWeights;
use crate::bundle::Model;
use crate::ranking::features::{FEATURE_NAMES, supported_prefix};
use crate::ranking::{NewItems, Ranker};
use crate::retrieval::index::{IndexConfig, IndexError, VectorIndex};
use crate::retrieval::{Catalog, Eligibility, NO_SUCH_CATEGORY, UserProfile};
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Bundle(#[from] crate::bundle::BundleError),
    #[error("building the {name} index failed: {source}")]
    Index {
        name: &'static str,
        source: IndexError,
    },
    #[error(
        "bundle feature_names {bundle:?} differ from this build's feature definition {build:?}"
    )]
    FeatureMismatch {
        bundle: Vec<String>,
        build: Vec<String>,
    },
    /// The manifest says the bundle has a ranker, but it does not load (refused on reload).
    #[error("the bundle's ranker does not load: {0}")]
    RankerUnavailable(String),
}

/// Everything needed to serve, built once from a bundle and never mutated: swapped whole on reload.
pub struct Engine {
    pub model: Model,
    pub cf_index: VectorIndex,
    pub content_index: VectorIndex,
    pub ranker: Option<Ranker>,
    /// Why the bundle's ranker could not be loaded, when it could not.
    pub ranker_error: Option<String>,
    /// What training decided about serving (from the manifest).
    pub plan: Plan,
    pub cfg: ServingConfig,
    /// `cfg.parallel_sources` resolved for this catalogue and machine at load.
    pub parallel_sources: bool,
    /// The items new-item exposure picks from (`[serving.exposure]`).
    pub new_items: NewItems,
    /// What items added at runtime get their vectors from.
    pub feature_vectors: crate::catalogue::FeatureVectors,
}

/// The bundle's serving plan in typed form; bundles without one get the old behaviour (the
/// ranker over every candidate, the default blend).
#[derive(Debug, Clone)]
pub struct Plan {
    /// Orders the merged candidates before the ranker's cut.
    pub first_phase: BlendWeights,
    /// The first phase for users known only by their features, when training learned one.
    pub cold_first_phase: Option<BlendWeights>,
    /// The blend the control treatment serves without the ranker (gate failed, fallback).
    pub fallback: BlendWeights,
    /// The cut the ranker was trained on (0 = every candidate).
    pub trained_depth: usize,
    /// Whether the ranker earned its place on held-out users (with a history).
    pub ranker_gate_passed: bool,
    /// The gate and the control's alternative for users known only by their features, when
    /// training had enough of them to decide apart.
    pub cold_gate: Option<(bool, BlendWeights)>,
    /// Whether the ranker's output is a correction to the first-phase score.
    pub ranker_adds_first_phase: bool,
}

impl Plan {
    /// The first-phase weights for `profile`: the cold blend for a user known only by their
    /// features (when the bundle has one), else the learned blend.
    pub fn first_phase_for(&self, profile: &UserProfile) -> &BlendWeights {
        match &self.cold_first_phase {
            Some(w) if crate::ranking::phase::is_features_only(profile) => w,
            _ => &self.first_phase,
        }
    }

    /// Whether the ranker serves `profile`'s regime (training's gate for it).
    pub fn ranker_serves(&self, profile: &UserProfile) -> bool {
        match &self.cold_gate {
            Some((passed, _)) if crate::ranking::phase::is_features_only(profile) => *passed,
            _ => self.ranker_gate_passed,
        }
    }

    /// What the control treatment serves `profile` without the ranker: the best validated
    /// alternative of its regime.
    pub fn fallback_for(&self, profile: &UserProfile) -> &BlendWeights {
        match &self.cold_gate {
            Some((_, w)) if crate::ranking::phase::is_features_only(profile) => w,
            _ => &self.fallback,
        }
    }

    fn from_model(model: &Model) -> Self {
        match &model.manifest.serving_plan {
            None => Plan {
                first_phase: BlendWeights::default(),
                cold_first_phase: None,
                fallback: BlendWeights::default(),
                trained_depth: 0,
                ranker_gate_passed: true,
                cold_gate: None,
                ranker_adds_first_phase: false,
            },
            Some(p) => Plan {
                first_phase: BlendWeights::from_named(&p.first_phase_weights),
                cold_first_phase: p
                    .cold_first_phase_weights
                    .as_ref()
                    .map(BlendWeights::from_named),
                fallback: BlendWeights::from_named(&p.fallback_weights),
                trained_depth: p.rerank_depth,
                ranker_gate_passed: p.ranker_gate_passed,
                cold_gate: p.cold_ranker_gate_passed.map(|passed| {
                    let w = p
                        .cold_fallback_weights
                        .as_ref()
                        .map_or(BlendWeights::from_named(&p.fallback_weights), |w| {
                            BlendWeights::from_named(w)
                        });
                    (passed, w)
                }),
                ranker_adds_first_phase: p.ranker_adds_first_phase,
            },
        }
    }
}

impl Engine {
    /// Reads and validates the bundle at `dir`, then builds the engine over it (blocking: call
    /// off the async threads).
    pub fn load(
        dir: &Path,
        cfg: ServingConfig,
        index_cfg: &IndexConfig,
    ) -> Result<Self, EngineError> {
        let model = Model::read(dir)?;
        let engine = Self::new(model, cfg, index_cfg, Some(dir))?;
        if let Some(reason) = &engine.ranker_error {
            tracing::warn!(bundle = %dir.display(), reason = %reason, "ranker unavailable; serving with the blend fallback");
        }
        Ok(engine)
    }

    /// Builds the indexes (or loads them from the bundle's `index/`) and the ranker. Refuses a
    /// bundle trained with a different feature definition than this build's.
    pub fn new(
        mut model: Model,
        cfg: ServingConfig,
        index_cfg: &IndexConfig,
        bundle_dir: Option<&Path>,
    ) -> Result<Self, EngineError> {
        let Some(n_features) = supported_prefix(&model.manifest.feature_names) else {
            return Err(EngineError::FeatureMismatch {
                bundle: model.manifest.feature_names.clone(),
                build: FEATURE_NAMES.iter().map(|s| s.to_string()).collect(),
            });
        };
        // The hybrid model's feature embeddings are kept in the bundle for tooling and
        // retraining; serving keeps only the shared features' rows (for items added at
        // runtime), not the identity rows.
        let feature_vectors = crate::catalogue::FeatureVectors::from_model(&model);
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
        .map_err(|source| EngineError::Index { name: "cf", source })?;
        let content_index = crate::retrieval::index_for(
            "content",
            index_dir.as_deref(),
            Arc::clone(&model.item_content),
            None,
            model.content_dim,
            index_cfg,
        )
        .map_err(|source| EngineError::Index {
            name: "content",
            source,
        })?;
        let plan = Plan::from_model(&model);
        if model.manifest.serving_plan.is_some() && plan.trained_depth != cfg.rerank_depth {
            tracing::warn!(
                trained = plan.trained_depth,
                serving = cfg.rerank_depth,
                "serving.rerank_depth differs from the cut the ranker was trained on"
            );
        }
        if !plan.ranker_gate_passed || plan.cold_gate.is_some_and(|(passed, _)| !passed) {
            tracing::warn!(
                "training found the ranker no better than its alternatives for some users; the control treatment serves them the best validated alternative"
            );
        }
        let (ranker, ranker_error) = match &model.ranker_text {
            None => (None, Some("bundle has no ranker".to_string())),
            Some(text) => match Ranker::load(text, cfg.ranker_backend, n_features) {
                Ok(r) => (Some(r), None),
                Err(e) => (None, Some(e.to_string())),
            },
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let parallel_sources = cfg.parallel_sources.resolve(model.n_items(), cores);
        let new_items = NewItems::new(
            &model,
            cfg.exposure.new_item_max_interactions,
            cfg.exposure.pool_max,
        );
        Ok(Self {
            model,
            cf_index,
            content_index,
            ranker,
            ranker_error,
            plan,
            cfg,
            parallel_sources,
            new_items,
            feature_vectors,
        })
    }

    /// The external id of `item`: the bundle's, or an item added at runtime.
    pub fn item_id<'a>(
        &'a self,
        overlay: Option<&'a crate::catalogue::Overlay>,
        item: u32,
    ) -> &'a str {
        match self.model.item_ids.get(item as usize) {
            Some(id) => id,
            None => overlay.and_then(|o| o.item_id(item)).unwrap_or(""),
        }
    }

    pub fn version(&self) -> &str {
        &self.model.manifest.model_version
    }

    /// What the candidate sources search.
    pub fn catalog(&self) -> Catalog<'_> {
        Catalog {
            model: &self.model,
            cf_index: &self.cf_index,
            content_index: &self.content_index,
        }
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
        // A plain list: `Eligibility::new` sorts and deduplicates it.
        let mut excluded: Vec<u32> = q
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
        let category = q
            .category
            .as_deref()
            .map(|c| m.category_index.get(c).copied().unwrap_or(NO_SUCH_CATEGORY));
        let mut elig = Eligibility::new(excluded, category);
        // Taken-down items are never eligible, for any source, fallback or top-up (the list is
        // kept sorted, so this is one merge).
        if let Some(ov) = q.overlay.as_deref().filter(|o| !o.taken_down.is_empty()) {
            elig.excluded = elig.excluded.union_sorted(&ov.taken_down);
        }
        (profile, elig)
    }

    /// Runs a few internal requests so caches, pools and page faults are paid before traffic.
    pub fn warm_up(self: &Arc<Self>, requests: usize) {
        let m = &self.model;
        let t = Treatment::default();
        let deadline = || super::Deadline::after(self.cfg.total_budget());
        for k in 0..requests {
            let user = (m.n_users() > 0).then(|| m.user_ids[(k * 7919) % m.n_users()].clone());
            let q = Query {
                user_id: user,
                n: 10,
                exclude_seen: true,
                ..Default::default()
            };
            let _ = self.recommend(&q, &t, deadline());
        }
        if let Some(first) = m.item_ids.first() {
            let q = Query {
                recent: vec![first.clone()],
                n: 10,
                exclude_seen: true,
                ..Default::default()
            };
            let _ = self.recommend(&q, &t, deadline());
        }
    }
}

#[cfg(test)]
mod plan_tests {
    use super::*;

    /// One source's own order (a one-hot blend).
    fn only(s: crate::retrieval::Source) -> BlendWeights {
        let mut w = [0f32; crate::retrieval::N_SOURCES];
        w[s as usize] = 1.0;
        BlendWeights::from_array(w)
    }

    #[test]
    fn each_regime_gets_its_own_gate_and_alternative() {
        let warm_alt = only(crate::retrieval::Source::Item2Item);
        let cold_alt = only(crate::retrieval::Source::Cf);
        let mut plan = Plan {
            first_phase: BlendWeights::default(),
            cold_first_phase: None,
            fallback: warm_alt,
            trained_depth: 64,
            ranker_gate_passed: true,
            cold_gate: Some((false, cold_alt)),
            ranker_adds_first_phase: true,
        };
        let cold = UserProfile {
            user: Some(3),
            ..UserProfile::default()
        };
        let warm = UserProfile {
            user: Some(3),
            history_len: 5,
            recent: vec![1, 2],
            ..UserProfile::default()
        };
        // A session makes a user known by more than features; so does a history.
        let session = UserProfile {
            user: Some(3),
            recent: vec![1],
            recent_from_request: true,
            ..UserProfile::default()
        };
        assert!(!plan.ranker_serves(&cold));
        assert_eq!(plan.fallback_for(&cold), &cold_alt);
        for p in [&warm, &session] {
            assert!(plan.ranker_serves(p));
            assert_eq!(plan.fallback_for(p), &warm_alt);
        }
        // Anonymous requests are not "known only by features": the warm decision applies.
        assert!(plan.ranker_serves(&UserProfile::default()));
        // Without a cold decision (an older bundle), one decision for everyone.
        plan.cold_gate = None;
        plan.ranker_gate_passed = false;
        assert!(!plan.ranker_serves(&warm) && !plan.ranker_serves(&cold));
        assert_eq!(plan.fallback_for(&cold), &warm_alt);
    }
}
