//! Training LightGBM boosters through the C API, with query groups and early stopping.
//!
//! `lightgbm3::Dataset` cannot carry query groups, which lambdarank needs, and its handle is
//! private, so datasets and the boosting loop are driven through `lightgbm3-sys` here. The
//! loop evaluates the validation set after every iteration and keeps the best iteration, so the
//! returned model text is the one to ship; it never prints unless asked (`verbosity`).

use std::ffi::{CStr, CString, c_char, c_int, c_void};

use lightgbm3_sys as sys;
use serde_json::{Map, Value};

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
}

/// A trained model: LightGBM text (load it with `NativeModel::parse` or
/// `LgbmBooster::from_string`, or store it in the bundle) and the training log.
#[derive(Clone, Debug)]
pub struct TrainedModel {
    pub model_text: String,
    pub log: TrainLog,
}

/// What happened during training.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrainLog {
    /// Iterations (trees) in the returned model: the best one on the validation set when a
    /// validation metric is available, otherwise all iterations performed.
    pub best_iteration: usize,
    /// Boosting iterations performed before stopping.
    pub iterations_run: usize,
    /// Validation metric that selects the best iteration (the first one LightGBM reports,
    /// e.g. `ndcg@10`), if a validation set was given.
    pub metric: Option<String>,
    /// That metric on the validation set after each iteration.
    pub valid_scores: Vec<f64>,
    /// The metric at `best_iteration`.
    pub best_score: Option<f64>,
    /// Training stopped because the metric had not improved for `early_stopping_round` rounds.
    pub stopped_early: bool,
}

/// LightGBM's aliases of `num_iterations` and `early_stopping_round`; the loop here implements
/// both, so they are taken out of the parameters handed to LightGBM.
const NUM_ITERATIONS_KEYS: [&str; 11] = [
    "num_iterations",
    "num_iteration",
    "n_iter",
    "num_tree",
    "num_trees",
    "num_round",
    "num_rounds",
    "nrounds",
    "num_boost_round",
    "n_estimators",
    "max_iter",
];
const EARLY_STOPPING_KEYS: [&str; 4] = [
    "early_stopping_round",
    "early_stopping_rounds",
    "early_stopping",
    "n_iter_no_change",
];
const DEFAULT_NUM_ITERATIONS: usize = 100;

fn invalid(reason: impl Into<String>) -> RankerError {
    RankerError::InvalidInput {
        reason: reason.into(),
    }
}

/// Trains a lambdarank model: `train_rows` and `valid` need query groups. Defaults added unless
/// given: `objective=lambdarank`, `metric=ndcg`, `ndcg_eval_at=10` (so early stopping follows
/// NDCG@10). Other parameters are LightGBM's (`num_iterations`, `early_stopping_round`,
/// `num_leaves`, `learning_rate`, `categorical_feature`, …). `feature_names` (no whitespace)
/// are stored in the model; LightGBM names them `Column_<i>` otherwise. The model text holds
/// the best iteration on `valid`.
pub fn train_lambdarank(
    train_rows: &LabeledRows<'_>,
    valid: Option<&LabeledRows<'_>>,
    params: &Value,
    feature_names: Option<&[&str]>,
) -> Result<TrainedModel, RankerError> {
    if train_rows.groups.is_none() || valid.is_some_and(|v| v.groups.is_none()) {
        return Err(invalid(
            "lambdarank needs query groups for training and validation rows",
        ));
    }
    let mut params = params_object(params)?;
    let defaults = [
        (
            &["objective", "objective_type", "app", "application", "loss"][..],
            "lambdarank",
        ),
        (&["metric", "metrics", "metric_types"][..], "ndcg"),
        (
            &[
                "eval_at",
                "ndcg_eval_at",
                "ndcg_at",
                "map_eval_at",
                "map_at",
            ][..],
            "10",
        ),
    ];
    for (aliases, value) in defaults {
        if !aliases.iter().any(|k| params.contains_key(*k)) {
            params.insert(aliases[0].to_owned(), Value::from(value));
        }
    }
    train(train_rows, valid, &Value::Object(params), feature_names)
}

/// Trains any single-output LightGBM model (regression, binary, ranking…) with optional early
/// stopping on `valid`; see [`train_lambdarank`].
pub fn train(
    train_rows: &LabeledRows<'_>,
    valid: Option<&LabeledRows<'_>>,
    params: &Value,
    feature_names: Option<&[&str]>,
) -> Result<TrainedModel, RankerError> {
    let mut params = params_object(params)?;
    let num_iterations =
        take_count(&mut params, &NUM_ITERATIONS_KEYS)?.unwrap_or(DEFAULT_NUM_ITERATIONS);
    let early_stopping = take_count(&mut params, &EARLY_STOPPING_KEYS)?.unwrap_or(0);
    if !params.contains_key("verbosity") && !params.contains_key("verbose") {
        params.insert("verbosity".into(), Value::from(-1));
    }
    let params = param_string(&params)?;

    // Declaration order matters: the booster refers to both datasets and is dropped first.
    let train_set = Dataset::new(train_rows, &params, None)?;
    if let Some(names) = feature_names {
        train_set.set_feature_names(names, train_rows.n_features)?;
    }
    let valid_set = match valid {
        Some(v) if v.n_features != train_rows.n_features => {
            return Err(RankerError::FeatureMismatch {
                expected: train_rows.n_features,
                got: v.n_features,
            });
        }
        Some(v) => Some(Dataset::new(v, &params, Some(&train_set))?),
        None => None,
    };
    let booster = BoosterHandle::new(&train_set, &params)?;
    let mut log = TrainLog::default();
    if let Some(v) = &valid_set {
        booster.add_valid(v)?;
        log.metric = booster.eval_names()?.into_iter().next();
    }
    let higher_is_better = log.metric.as_deref().is_some_and(higher_is_better);
    let mut best: Option<(f64, usize)> = None;
    for iteration in 1..=num_iterations {
        if booster.update_one_iter()? {
            break; // no split met the requirements: the model cannot grow any further
        }
        if log.metric.is_none() {
            continue;
        }
        let Some(&score) = booster.eval(1)?.first() else {
            continue;
        };
        log.valid_scores.push(score);
        let improved = best.is_none_or(|(b, _)| {
            if higher_is_better {
                score > b
            } else {
                score < b
            }
        });
        if improved {
            best = Some((score, iteration));
        } else if early_stopping > 0 && best.is_some_and(|(_, at)| iteration - at >= early_stopping)
        {
            log.stopped_early = true;
            break;
        }
    }
    log.iterations_run = booster.current_iteration()?;
    log.best_iteration = match best {
        Some((score, at)) => {
            log.best_score = Some(score);
            at.min(log.iterations_run)
        }
        None => log.iterations_run,
    };
    let model_text = booster.model_string(log.best_iteration)?;
    Ok(TrainedModel { model_text, log })
}

fn params_object(params: &Value) -> Result<Map<String, Value>, RankerError> {
    match params {
        Value::Object(map) => Ok(map.clone()),
        Value::Null => Ok(Map::new()),
        other => Err(invalid(format!(
            "parameters must be a JSON object, got {other}"
        ))),
    }
}

/// Removes the first of `aliases` from `params` and reads it as a count; two aliases at once
/// are ambiguous.
fn take_count(
    params: &mut Map<String, Value>,
    aliases: &[&str],
) -> Result<Option<usize>, RankerError> {
    let present: Vec<&str> = aliases
        .iter()
        .copied()
        .filter(|k| params.contains_key(*k))
        .collect();
    let Some((&key, rest)) = present.split_first() else {
        return Ok(None);
    };
    if let Some(other) = rest.first() {
        return Err(invalid(format!(
            "parameters `{key}` and `{other}` are aliases; give one"
        )));
    }
    let value = params.remove(key).unwrap_or(Value::Null);
    let count = match &value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    count
        .and_then(|c| usize::try_from(c).ok())
        .map(Some)
        .ok_or_else(|| {
            invalid(format!(
                "`{key}` must be a non-negative integer, got {value}"
            ))
        })
}

/// LightGBM's `key=value key=value` parameter text. Arrays become comma-separated lists.
pub(super) fn param_string(params: &Map<String, Value>) -> Result<CString, RankerError> {
    fn scalar(key: &str, v: &Value) -> Result<String, RankerError> {
        let s = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => return Err(invalid(format!("parameter `{key}`: unsupported value {v}"))),
        };
        if s.is_empty()
            || s.chars()
                .any(|c| c.is_whitespace() || c == '=' || c == '\0')
        {
            return Err(invalid(format!("parameter `{key}`: invalid value {s:?}")));
        }
        Ok(s)
    }
    let mut parts = Vec::with_capacity(params.len());
    for (key, value) in params {
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(invalid(format!("invalid parameter name {key:?}")));
        }
        let value = match value {
            Value::Array(items) => items
                .iter()
                .map(|v| scalar(key, v))
                .collect::<Result<Vec<_>, _>>()?
                .join(","),
            v => scalar(key, v)?,
        };
        parts.push(format!("{key}={value}"));
    }
    CString::new(parts.join(" ")).map_err(|_| invalid("NUL byte in parameters"))
}

fn higher_is_better(metric: &str) -> bool {
    ["ndcg", "map", "auc", "average_precision"]
        .iter()
        .any(|m| metric.starts_with(m))
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
struct Dataset(sys::DatasetHandle);

impl Dataset {
    fn new(
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
        Ok(dataset)
    }

    fn set_feature_names(&self, names: &[&str], n_features: usize) -> Result<(), RankerError> {
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
struct BoosterHandle(sys::BoosterHandle);

impl BoosterHandle {
    fn new(train: &Dataset, params: &CStr) -> Result<BoosterHandle, RankerError> {
        let mut handle: sys::BoosterHandle = std::ptr::null_mut();
        // SAFETY: `train.0` is a live dataset that outlives the booster; `params` is
        // NUL-terminated.
        check(unsafe { sys::LGBM_BoosterCreate(train.0, params.as_ptr(), &mut handle) })?;
        Ok(BoosterHandle(handle))
    }

    fn add_valid(&self, valid: &Dataset) -> Result<(), RankerError> {
        // SAFETY: both handles are live; the dataset outlives the booster.
        check(unsafe { sys::LGBM_BoosterAddValidData(self.0, valid.0) })
    }

    /// One boosting iteration; `true` when no tree could be grown (training is finished).
    fn update_one_iter(&self) -> Result<bool, RankerError> {
        let mut finished: c_int = 0;
        // SAFETY: live booster handle; `finished` is a valid out pointer.
        check(unsafe { sys::LGBM_BoosterUpdateOneIter(self.0, &mut finished) })?;
        Ok(finished != 0)
    }

    fn current_iteration(&self) -> Result<usize, RankerError> {
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

    fn eval_names(&self) -> Result<Vec<String>, RankerError> {
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
    fn eval(&self, data_idx: c_int) -> Result<Vec<f64>, RankerError> {
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
    fn model_string(&self, iterations: usize) -> Result<String, RankerError> {
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
