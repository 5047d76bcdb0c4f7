//! Training LightGBM boosters through the C API, with query groups and early stopping.
//!
//! `lightgbm3::Dataset` cannot carry query groups, which lambdarank needs, and its handle is
//! private, so datasets and the boosting loop are driven through `lightgbm3-sys` (handles in
//! `ffi.rs`). The loop evaluates the validation set after every iteration and keeps the best
//! iteration, so the returned model text is the one to ship; it never prints unless asked
//! (`verbosity`).

use std::ffi::CString;

use serde_json::{Map, Value};

use super::ffi::{BoosterHandle, Dataset, LabeledRows};
use crate::ranking::gbdt::RankerError;

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
