//! Stage 2: the one feature definition, the ranker, the blend fallback, the final top-n and its
//! diversity controls. The
//! native flat-tree scorer serves by default; the LightGBM C library (lightgbm3) is the reference
//! and a config switch away. Ranking reads retrieval's candidate types and never runs a source.

pub mod blend;
pub mod bootstrap;
pub mod diversity;
pub mod exposure;
pub mod features;
pub mod gbdt;
pub mod lgbm;
pub mod phase;
pub mod quality;

pub use blend::{RecItem, blend_scores, top_indices, top_n};
pub use diversity::Diversity;
pub use exposure::{ExposurePolicy, ExposureSlot, NewItems};
pub use phase::FirstPhase;

use crate::bundle::Model;
use crate::retrieval::{Candidate, UserProfile};
use gbdt::{NativeModel, RankerError};
use lgbm::LgbmBooster;
use serde::{Deserialize, Serialize};

/// Which implementation scores the trees (the `serving.ranker_backend` setting).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RankerBackend {
    /// Flat trees evaluated in Rust (the default: no FFI, batch-friendly).
    Native,
    /// The LightGBM C library through lightgbm3 (the reference).
    Lightgbm,
}

/// A loaded lambdarank model, shared by every request (never copied per request).
pub enum Ranker {
    Native(NativeModel),
    /// LightGBM scores; the native model of the same text explains (TreeSHAP).
    Lightgbm {
        booster: LgbmBooster,
        native: NativeModel,
    },
}

impl Ranker {
    /// Parses the LightGBM text model and checks it expects `n_features` inputs.
    pub fn load(
        text: &str,
        backend: RankerBackend,
        n_features: usize,
    ) -> Result<Self, RankerError> {
        let native = NativeModel::parse(text)?;
        if native.num_features() != n_features {
            return Err(RankerError::FeatureMismatch {
                expected: n_features,
                got: native.num_features(),
            });
        }
        Ok(match backend {
            RankerBackend::Native => Ranker::Native(native),
            RankerBackend::Lightgbm => Ranker::Lightgbm {
                booster: LgbmBooster::from_string(text)?,
                native,
            },
        })
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Ranker::Native(_) => "native",
            Ranker::Lightgbm { .. } => "lightgbm",
        }
    }

    /// Scores row-major `rows` (`n_features` per row) in one call.
    pub fn score_batch(&self, rows: &[f32], n_features: usize) -> Result<Vec<f64>, RankerError> {
        match self {
            Ranker::Native(m) => {
                let mut out = Vec::with_capacity(rows.len() / n_features.max(1));
                m.score_batch(rows, n_features, &mut out)?;
                Ok(out)
            }
            Ranker::Lightgbm { booster, .. } => booster.predict_batch(rows, n_features),
        }
    }

    /// TreeSHAP contributions of each row-major row (`n_features` per row): `bias + Σ values`
    /// is the row's raw score. Explanations only; never on the default path.
    pub fn contributions(
        &self,
        rows: &[f32],
        n_features: usize,
    ) -> Result<Vec<gbdt::Contributions>, RankerError> {
        let native = match self {
            Ranker::Native(m) | Ranker::Lightgbm { native: m, .. } => m,
        };
        rows.chunks(n_features.max(1))
            .map(|row| native.contributions(row))
            .collect()
    }

    /// Scores `cands` for `profile`, with rows from the one feature definition.
    pub fn score_candidates(
        &self,
        model: &Model,
        profile: &UserProfile,
        cands: &[Candidate],
    ) -> Result<Vec<f64>, RankerError> {
        let nf = features::n_features(model);
        let mut rows = Vec::with_capacity(cands.len() * nf);
        features::build_rows(model, profile, cands, &mut rows);
        self.score_batch(&rows, nf)
    }
}
