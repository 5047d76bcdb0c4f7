//! LightGBM's own library behind a thread-safe handle: training, and reference predictions.
//!
//! Serving scores with [`NativeModel`](super::gbdt::NativeModel), >10× faster in batches; this
//! wrapper trains rankers (see [`train_lambdarank`]) and provides LightGBM's predictions to check
//! the native scorer against. Every prediction passes the same parameter string and prediction
//! type, so LightGBM's process-wide settings and cached predictor never change between calls.

mod ffi;
mod train;

#[cfg(test)]
mod tests;

use std::path::Path;

use lightgbm3::{Booster, DType};

use super::gbdt::{NativeModel, RankerError};

pub use ffi::LabeledRows;
pub use train::{TrainLog, TrainedModel, train, train_lambdarank};

/// The one parameter string of every prediction. LightGBM applies `num_threads` process-wide on
/// each call and rebuilds its cached single-row predictor when parameters change, so varying it
/// between calls would race with concurrent callers. One thread per call: concurrency comes from
/// concurrent requests.
const PREDICT_PARAMS: &str = "num_threads=1";

/// A loaded LightGBM booster that can be shared between threads (`Arc<LgbmBooster>`).
pub struct LgbmBooster {
    inner: Booster,
    num_features: usize,
    num_trees: usize,
}

// SAFETY: `Booster` is only `!Send`/`!Sync` because it holds LightGBM's raw `BoosterHandle`.
// LightGBM has no thread affinity, so moving the handle to another thread is sound, and the
// handle is freed exactly once by `Booster`'s `Drop`. Shared use is sound because this type only
// exposes `&self` operations that LightGBM's C API serialises itself: prediction takes the
// booster's shared lock (`Booster::Predict`, `SHARED_LOCK(mutex_)` in c_api.cpp) or, for a
// single row, its unique lock; saving takes the shared lock. The single-row path caches a
// predictor per prediction type and replaces it only when the parameters differ; this wrapper
// always passes `PREDICT_PARAMS` with `RawScore`, so the cache is never replaced under a
// concurrent reader. Nothing here calls `Booster`'s `&mut self` methods (fast single-row
// config, `set_max_iterations`), whose state is not protected by LightGBM's lock.
unsafe impl Send for LgbmBooster {}
// SAFETY: see the `Send` impl above.
unsafe impl Sync for LgbmBooster {}

impl std::fmt::Debug for LgbmBooster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LgbmBooster")
            .field("num_features", &self.num_features)
            .field("num_trees", &self.num_trees)
            .finish_non_exhaustive()
    }
}

fn lightgbm_error(e: lightgbm3::Error) -> RankerError {
    let text = e.to_string();
    RankerError::Lightgbm(
        text.strip_prefix("LightGBM error: ")
            .unwrap_or(&text)
            .to_owned(),
    )
}

impl LgbmBooster {
    /// Loads a model from LightGBM's text format.
    ///
    /// The text is first validated with [`NativeModel::parse`]: LightGBM's C++ parser trusts
    /// the text (it seeks by `tree_sizes` and scans for `=` without bounds), so malformed input
    /// is rejected here as [`RankerError::Parse`] instead of reaching it. The same models that
    /// the native scorer supports (single output, no linear trees) can therefore be loaded.
    pub fn from_string(text: &str) -> Result<LgbmBooster, RankerError> {
        let native = NativeModel::parse(text)?;
        if let Some(pos) = text.find('\0') {
            let line = text[..pos].lines().count().max(1);
            return Err(RankerError::Parse {
                line,
                reason: "NUL byte in model text".into(),
            });
        }
        let inner = Booster::from_string(text).map_err(lightgbm_error)?;
        let num_features = usize::try_from(inner.num_features()).unwrap_or(0);
        if num_features != native.num_features() {
            return Err(RankerError::Lightgbm(format!(
                "LightGBM reads {num_features} features, the model text declares {}",
                native.num_features()
            )));
        }
        Ok(LgbmBooster {
            inner,
            num_features,
            num_trees: native.num_trees(),
        })
    }

    /// Reads and loads a text model file (see [`LgbmBooster::from_string`]).
    pub fn from_file(path: impl AsRef<Path>) -> Result<LgbmBooster, RankerError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| RankerError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        LgbmBooster::from_string(&text)
    }

    /// Number of input features the model expects.
    pub fn num_features(&self) -> usize {
        self.num_features
    }

    /// Number of trees (= boosting iterations) in the model.
    pub fn num_trees(&self) -> usize {
        self.num_trees
    }

    /// LightGBM's raw scores (sum of leaf values, no sigmoid or other output transform) for
    /// row-major `rows` of `n_features` values; for lambdarank this is what `predict` returns.
    pub fn predict_batch<T: DType>(
        &self,
        rows: &[T],
        n_features: usize,
    ) -> Result<Vec<f64>, RankerError> {
        if n_features != self.num_features {
            return Err(RankerError::FeatureMismatch {
                expected: self.num_features,
                got: n_features,
            });
        }
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let n_rows = rows.len() / n_features;
        if n_rows * n_features != rows.len() || i32::try_from(n_rows).is_err() {
            return Err(RankerError::InvalidInput {
                reason: format!(
                    "{} values are not a whole number of rows of {n_features} features \
                     (or more than i32::MAX rows)",
                    rows.len()
                ),
            });
        }
        let n_features = i32::try_from(n_features).map_err(|_| RankerError::FeatureMismatch {
            expected: self.num_features,
            got: n_features,
        })?;
        let mut scores = self
            .inner
            .raw_scores_with_params(rows, n_features, true, PREDICT_PARAMS)
            .map_err(lightgbm_error)?;
        scores.truncate(n_rows);
        Ok(scores)
    }

    /// The model in LightGBM's text format.
    pub fn model_to_string(&self) -> Result<String, RankerError> {
        self.inner.save_string().map_err(lightgbm_error)
    }
}
