//! Owned LightGBM C API handles (datasets, boosters) for training, and their error mapping.
//!
//! Every `unsafe` call into `lightgbm3-sys` for training lives here, next to the invariant that
//! makes it sound: handles are freed exactly once, and a booster is dropped before the
//! datasets it refers to.

use std::ffi::{CStr, CString, c_char, c_int, c_void};

use lightgbm3_sys as sys;

use crate::ranking::gbdt::RankerError;

/// Rows with labels (and, for ranking, query groups) to train or validate on.
#[derive(Clone, Copy, Debug)]
pub struct LabeledRows<'a> {
    /// Row-major features: `labels.len() * n_features` values; NaN marks a missing value.
    pub features: &'a [f32],
    pub n_features: usize,
    pub labels: &'a [f32],
    /// Sizes of consecutive query groups, summing to the number of rows (ranking objectives).
    pub groups: Option<&'a [i32]>,
    /// A base score per row that boosting starts from (LightGBM's `init_score`): the trees learn
    /// corrections to it, and the model's output must be added to it when predicting.
    pub init_score: Option<&'a [f64]>,
}

fn invalid(reason: impl Into<String>) -> RankerError {
    RankerError::InvalidInput {
        reason: reason.into(),
    }
}

/// Turns a LightGBM C API return code into a result with its last error message.
fn check(ret: c_int) -> Result<(), RankerError> {
    if ret == 0 {
        return Ok(());
    }
    // SAFETY: LGBM_GetLastError returns a pointer to a NUL-terminated thread-local buffer that
    // stays valid until the next LightGBM call on this thread; it is copied immediately.
    let message = unsafe { CStr::from_ptr(sys::LGBM_GetLastError()) };
    Err(RankerError::Lightgbm(
        message.to_string_lossy().into_owned(),
    ))
}

fn to_i32(n: usize, what: &str) -> Result<i32, RankerError> {
    i32::try_from(n).map_err(|_| invalid(format!("{what} ({n}) exceeds i32::MAX")))
}

/// An owned LightGBM dataset handle.
pub(super) struct Dataset(sys::DatasetHandle);

impl Dataset {
    pub(super) fn new(
        rows: &LabeledRows<'_>,
        params: &CStr,
        reference: Option<&Dataset>,
    ) -> Result<Dataset, RankerError> {
        let n_rows = rows.labels.len();
        if rows.n_features == 0 || n_rows == 0 {
            return Err(invalid("no rows or no features"));
        }
        if rows.features.len() != n_rows.saturating_mul(rows.n_features) {
            return Err(invalid(format!(
                "{} feature values for {n_rows} labels × {} features",
                rows.features.len(),
                rows.n_features
            )));
        }
        if let Some(bad) = rows.labels.iter().find(|l| !l.is_finite()) {
            return Err(invalid(format!("label {bad} is not finite")));
        }
        if let Some(groups) = rows.groups {
            let total: i64 = groups.iter().map(|&g| i64::from(g)).sum();
            if groups.iter().any(|&g| g <= 0) || total != n_rows as i64 {
                return Err(invalid(format!(
                    "query groups must be positive and sum to the {n_rows} rows (sum {total})"
                )));
            }
        }
        if let Some(init) = rows.init_score
            && (init.len() != n_rows || init.iter().any(|v| !v.is_finite()))
        {
            return Err(invalid(format!(
                "init_score must hold one finite value per row ({} for {n_rows} rows)",
                init.len()
            )));
        }
        let n_rows_i32 = to_i32(n_rows, "number of rows")?;
        let mut handle: sys::DatasetHandle = std::ptr::null_mut();
        // SAFETY: `features` holds n_rows × n_features f32 values (checked above) and LightGBM
        // copies them into its own bins before returning; `params` is NUL-terminated;
        // `reference`, if any, is a live dataset handle owned by the caller.
        check(unsafe {
            sys::LGBM_DatasetCreateFromMat(
                rows.features.as_ptr().cast::<c_void>(),
                sys::C_API_DTYPE_FLOAT32 as c_int,
                n_rows_i32,
                to_i32(rows.n_features, "number of features")?,
                1,
                params.as_ptr(),
                reference.map_or(std::ptr::null_mut(), |r| r.0),
                &mut handle,
            )
        })?;
        let dataset = Dataset(handle);
        dataset.set_field(
            c"label",
            rows.labels.as_ptr().cast(),
            n_rows_i32,
            sys::C_API_DTYPE_FLOAT32,
        )?;
        if let Some(groups) = rows.groups {
            let len = to_i32(groups.len(), "number of groups")?;
            dataset.set_field(
                c"group",
                groups.as_ptr().cast(),
                len,
                sys::C_API_DTYPE_INT32,
            )?;
        }
        if let Some(init) = rows.init_score {
            dataset.set_field(
                c"init_score",
                init.as_ptr().cast(),
                n_rows_i32,
                sys::C_API_DTYPE_FLOAT64,
            )?;
        }
        Ok(dataset)
    }

    pub(super) fn set_feature_names(
        &self,
        names: &[&str],
        n_features: usize,
    ) -> Result<(), RankerError> {
        if names.len() != n_features {
            return Err(invalid(format!(
                "{} feature names for {n_features} features",
                names.len()
            )));
        }
        let names = names
            .iter()
            .map(|n| {
                if n.is_empty() || n.chars().any(|c| c.is_whitespace() || c == '\0') {
                    Err(invalid(format!("invalid feature name {n:?}")))
                } else {
                    CString::new(*n).map_err(|_| invalid("NUL byte in a feature name"))
                }
            })
            .collect::<Result<Vec<CString>, _>>()?;
        let mut ptrs: Vec<*const c_char> = names.iter().map(|n| n.as_ptr()).collect();
        // SAFETY: live dataset; `ptrs` holds `n_features` NUL-terminated strings that outlive
        // the call, and LightGBM copies them.
        check(unsafe {
            sys::LGBM_DatasetSetFeatureNames(
                self.0,
                ptrs.as_mut_ptr(),
                to_i32(n_features, "number of features")?,
            )
        })
    }

    fn set_field(
        &self,
        name: &CStr,
        data: *const c_void,
        len: i32,
        dtype: u32,
    ) -> Result<(), RankerError> {
        // SAFETY: `self.0` is a live dataset; `data` points to `len` values of `dtype` that
        // LightGBM copies before returning.
        check(unsafe {
            sys::LGBM_DatasetSetField(self.0, name.as_ptr(), data, len, dtype as c_int)
        })
    }
}

impl Drop for Dataset {
    fn drop(&mut self) {
        // SAFETY: the handle came from LGBM_DatasetCreateFromMat and is freed only here; every
        // booster using it is dropped first (see `train`). A failure cannot be acted upon.
        let _ = unsafe { sys::LGBM_DatasetFree(self.0) };
    }
}

/// An owned LightGBM booster handle during training.
pub(super) struct BoosterHandle(sys::BoosterHandle);

impl BoosterHandle {
    pub(super) fn new(train: &Dataset, params: &CStr) -> Result<BoosterHandle, RankerError> {
        let mut handle: sys::BoosterHandle = std::ptr::null_mut();
        // SAFETY: `train.0` is a live dataset that outlives the booster; `params` is
        // NUL-terminated.
        check(unsafe { sys::LGBM_BoosterCreate(train.0, params.as_ptr(), &mut handle) })?;
        Ok(BoosterHandle(handle))
    }

    pub(super) fn add_valid(&self, valid: &Dataset) -> Result<(), RankerError> {
        // SAFETY: both handles are live; the dataset outlives the booster.
        check(unsafe { sys::LGBM_BoosterAddValidData(self.0, valid.0) })
    }

    /// One boosting iteration; `true` when no tree could be grown (training is finished).
    pub(super) fn update_one_iter(&self) -> Result<bool, RankerError> {
        let mut finished: c_int = 0;
        // SAFETY: live booster handle; `finished` is a valid out pointer.
        check(unsafe { sys::LGBM_BoosterUpdateOneIter(self.0, &mut finished) })?;
        Ok(finished != 0)
    }

    pub(super) fn current_iteration(&self) -> Result<usize, RankerError> {
        let mut out: c_int = 0;
        // SAFETY: live booster handle; valid out pointer.
        check(unsafe { sys::LGBM_BoosterGetCurrentIteration(self.0, &mut out) })?;
        Ok(usize::try_from(out).unwrap_or(0))
    }

    fn eval_count(&self) -> Result<usize, RankerError> {
        let mut n: c_int = 0;
        // SAFETY: live booster handle; valid out pointer.
        check(unsafe { sys::LGBM_BoosterGetEvalCounts(self.0, &mut n) })?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    pub(super) fn eval_names(&self) -> Result<Vec<String>, RankerError> {
        let n = self.eval_count()?;
        let mut buffer_len = 128;
        loop {
            let mut buffers = vec![vec![0u8; buffer_len]; n];
            let mut ptrs: Vec<*mut c_char> =
                buffers.iter_mut().map(|b| b.as_mut_ptr().cast()).collect();
            let (mut out_len, mut needed): (c_int, usize) = (0, 0);
            // SAFETY: `ptrs` holds `n` writable buffers of `buffer_len` bytes each; LightGBM
            // writes at most `buffer_len` bytes per name and reports the size it needed.
            check(unsafe {
                sys::LGBM_BoosterGetEvalNames(
                    self.0,
                    to_i32(n, "number of metrics")?,
                    &mut out_len,
                    buffer_len,
                    &mut needed,
                    ptrs.as_mut_ptr(),
                )
            })?;
            if needed > buffer_len {
                buffer_len = needed;
                continue;
            }
            let count = usize::try_from(out_len).unwrap_or(0).min(n);
            return Ok(buffers[..count]
                .iter()
                .map(|b| {
                    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
                    String::from_utf8_lossy(&b[..end]).into_owned()
                })
                .collect());
        }
    }

    /// Metric values on dataset `data_idx` (0 = training data, 1 = first validation set).
    pub(super) fn eval(&self, data_idx: c_int) -> Result<Vec<f64>, RankerError> {
        let n = self.eval_count()?;
        let mut out = vec![0.0; n];
        let mut out_len: c_int = 0;
        // SAFETY: `out` has room for every metric (LGBM_BoosterGetEvalCounts).
        check(unsafe {
            sys::LGBM_BoosterGetEval(self.0, data_idx, &mut out_len, out.as_mut_ptr())
        })?;
        out.truncate(usize::try_from(out_len).unwrap_or(0));
        Ok(out)
    }

    /// The first `iterations` iterations as LightGBM model text.
    pub(super) fn model_string(&self, iterations: usize) -> Result<String, RankerError> {
        let iterations = to_i32(iterations, "iterations")?;
        let mut buffer = vec![0u8; 1 << 16];
        loop {
            let mut needed: i64 = 0;
            let capacity = i64::try_from(buffer.len()).map_err(|_| invalid("model too large"))?;
            // SAFETY: `buffer` has `capacity` writable bytes; LightGBM writes at most that many
            // and reports the full size (with the NUL) in `needed`.
            check(unsafe {
                sys::LGBM_BoosterSaveModelToString(
                    self.0,
                    0,
                    iterations,
                    sys::C_API_FEATURE_IMPORTANCE_SPLIT as c_int,
                    capacity,
                    &mut needed,
                    buffer.as_mut_ptr().cast(),
                )
            })?;
            let needed = usize::try_from(needed).map_err(|_| invalid("negative model size"))?;
            if needed > buffer.len() {
                buffer = vec![0u8; needed];
                continue;
            }
            let text = CStr::from_bytes_until_nul(&buffer[..needed])
                .map_err(|_| RankerError::Lightgbm("model text is not NUL-terminated".into()))?;
            return text
                .to_str()
                .map(str::to_owned)
                .map_err(|_| RankerError::Lightgbm("model text is not UTF-8".into()));
        }
    }
}

impl Drop for BoosterHandle {
    fn drop(&mut self) {
        // SAFETY: the handle came from LGBM_BoosterCreate and is freed only here.
        let _ = unsafe { sys::LGBM_BoosterFree(self.0) };
    }
}
