//! LightFM-style hybrid matrix factorisation (WARP or BPR loss, Adagrad, L2) trained with
//! lock-free Hogwild SGD on a rayon pool, with early stopping on held-out recall@k.
//!
//! Users and items are sums of their feature embeddings (identity feature included by the
//! caller), so entities with features but no interactions still get useful vectors. This module
//! only learns embeddings; it never reads files or decides which features exist.

mod data;
mod eval;
mod hogwild;
mod model;
mod sgd;
#[cfg(test)]
mod tests;

use std::time::Instant;

use rand::{SeedableRng, rngs::StdRng, seq::SliceRandom};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use data::{FeatureMatrix, TrainInteractions};
pub use model::HybridModel;

use data::UserItems;
use eval::RecallEvaluator;
use hogwild::{Adagrad, SideParams};
use sgd::{ChunkStats, EpochInputs, Params};

/// Pairwise ranking loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Loss {
    /// Weighted Approximate-Rank Pairwise (Weston et al., 2011): samples negatives until one
    /// violates the margin and weights the step by the log of the estimated rank. Optimises the
    /// top of the list.
    Warp,
    /// Bayesian Personalised Ranking (Rendle et al., 2009): one uniform negative, logistic loss.
    /// Optimises AUC.
    Bpr,
}

/// Training hyper-parameters. Every field has a default, so a config file may set any subset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FactorizationConfig {
    /// Embedding dimension.
    pub components: usize,
    /// Adagrad base learning rate.
    pub learning_rate: f32,
    /// L2 penalty on item-feature parameters, applied to every parameter an update touches
    /// (so frequent features are regularised more than rare ones).
    pub item_alpha: f32,
    /// L2 penalty on user-feature parameters (see `item_alpha`).
    pub user_alpha: f32,
    pub max_epochs: usize,
    pub loss: Loss,
    /// WARP: negatives sampled per positive before giving up.
    pub max_sampled: usize,
    /// Stop after this many evaluations without a new best recall; 0 never stops early
    /// (the best evaluated epoch is still the one returned).
    pub patience: usize,
    /// Evaluate on the validation set every this many epochs (and after the last one).
    pub eval_every: usize,
    /// Cut-off of the validation recall.
    pub eval_k: usize,
    /// Validation users sampled (once, seeded) for the recall estimate.
    pub eval_max_users: usize,
    /// Sample weights are divided by their median, then capped at this value.
    pub max_sample_weight: f32,
    /// Hogwild worker threads; 0 = rayon's default (one per core).
    pub threads: usize,
    /// Seeds initialisation, shuffling and sampling. With `threads = 1` training is
    /// deterministic; with more threads Hogwild's update interleaving is not.
    pub seed: u64,
}

impl Default for FactorizationConfig {
    fn default() -> Self {
        Self {
            components: 64,
            learning_rate: 0.05,
            item_alpha: 1e-6,
            user_alpha: 1e-6,
            max_epochs: 30,
            loss: Loss::Warp,
            max_sampled: 10,
            patience: 3,
            eval_every: 1,
            eval_k: 10,
            eval_max_users: 2000,
            max_sample_weight: 10.0,
            threads: 0,
            seed: 42,
        }
    }
}

impl FactorizationConfig {
    pub fn validate(&self) -> Result<(), FactorizationError> {
        let bad = |field: &'static str, reason: &'static str| {
            Err(FactorizationError::InvalidConfig { field, reason })
        };
        if self.components == 0 {
            return bad("components", "must be at least 1");
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad("learning_rate", "must be a positive number");
        }
        for (field, alpha) in [
            ("item_alpha", self.item_alpha),
            ("user_alpha", self.user_alpha),
        ] {
            if !(alpha.is_finite() && alpha >= 0.0) {
                return bad(field, "must be a non-negative number");
            }
        }
        if self.max_epochs == 0 {
            return bad("max_epochs", "must be at least 1");
        }
        if self.max_sampled == 0 {
            return bad("max_sampled", "must be at least 1");
        }
        if self.eval_every == 0 {
            return bad("eval_every", "must be at least 1");
        }
        if self.eval_k == 0 {
            return bad("eval_k", "must be at least 1");
        }
        if !(self.max_sample_weight.is_finite() && self.max_sample_weight > 0.0) {
            return bad("max_sample_weight", "must be a positive number");
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FactorizationError {
    #[error("invalid factorization config: `{field}` {reason}")]
    InvalidConfig {
        field: &'static str,
        reason: &'static str,
    },
    #[error("malformed {matrix} feature matrix: {reason}")]
    MalformedFeatures {
        matrix: &'static str,
        reason: String,
    },
    #[error(
        "{set} interactions cover {expected} {entity} but the feature matrix has {actual} rows"
    )]
    ShapeMismatch {
        set: &'static str,
        entity: &'static str,
        expected: usize,
        actual: usize,
    },
    #[error("{set} interactions: {pairs} pairs but {weights} weights")]
    WeightsLength {
        set: &'static str,
        pairs: usize,
        weights: usize,
    },
    #[error("{set} interaction #{index} ({user}, {item}) is out of range")]
    InteractionOutOfRange {
        set: &'static str,
        index: usize,
        user: u32,
        item: u32,
    },
    #[error("{set} interaction #{index} has weight {weight}; weights must be finite and >= 0")]
    InvalidWeight {
        set: &'static str,
        index: usize,
        weight: f32,
    },
    #[error("no training interaction has a positive weight")]
    NoInteractions,
    #[error(
        "{side} parameters ({features} features × {components} components) do not fit in memory"
    )]
    TooLarge {
        side: &'static str,
        features: usize,
        components: usize,
    },
    #[error("training diverged in epoch {epoch} (non-finite loss); lower the learning rate")]
    Diverged { epoch: usize },
    #[error("could not start the training thread pool")]
    ThreadPool(#[from] rayon::ThreadPoolBuildError),
}

/// Progress of one epoch, handed to the caller's callback.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochReport {
    /// 1-based.
    pub epoch: usize,
    /// Mean per-positive training loss (WARP: weighted log-rank × hinge of the sampled violator,
    /// 0 if none was found; BPR: weighted logistic loss).
    pub train_loss: f32,
    /// Validation recall@k, when evaluated this epoch.
    pub metric: Option<f32>,
    /// Whether `metric` is a new best.
    pub improved: bool,
    pub seconds: f64,
}

/// Outcome of a training run.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainReport {
    pub epochs_run: usize,
    /// Epoch whose parameters were returned (the last one when there is no validation set).
    pub best_epoch: usize,
    /// `(epoch, validation recall@k)` for every evaluated epoch.
    pub history: Vec<(usize, f32)>,
    /// Mean training loss per epoch (index 0 = epoch 1).
    pub train_loss: Vec<f32>,
    pub stopped_early: bool,
    pub seconds: f64,
}

/// Trains the hybrid model on positive interactions.
///
/// `users` / `items` rows must line up with `train.n_users` / `train.n_items`. With `valid`,
/// recall@k is measured after epochs (see [`FactorizationConfig`]), the best epoch's parameters
/// are returned, and training stops after `patience` evaluations without improvement.
#[tracing::instrument(skip_all, fields(
    users = train.n_users, items = train.n_items, interactions = train.pairs.len(),
    loss = ?cfg.loss, components = cfg.components,
))]
pub fn train(
    cfg: &FactorizationConfig,
    users: &FeatureMatrix,
    items: &FeatureMatrix,
    train: &TrainInteractions,
    valid: Option<&TrainInteractions>,
    progress: &dyn Fn(EpochReport),
) -> Result<(HybridModel, TrainReport), FactorizationError> {
    let started = Instant::now();
    validate_inputs(cfg, users, items, train, valid)?;

    let positives = UserItems::new(train.n_users, &train.pairs);
    let weights = normalized_weights(&train.weights, cfg.max_sample_weight);
    let mut order: Vec<u32> = (0..train.pairs.len() as u32)
        .filter(|&k| weights[k as usize] > 0.0)
        .collect();
    if order.is_empty() {
        return Err(FactorizationError::NoInteractions);
    }

    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let params = Params {
        components: cfg.components,
        users: SideParams::init(users.n_features, cfg.components, &mut rng),
        items: SideParams::init(items.n_features, cfg.components, &mut rng),
    };
    let inputs = EpochInputs {
        users,
        items,
        positives: &positives,
        pairs: &train.pairs,
        weights: &weights,
        loss: cfg.loss,
        max_sampled: cfg.max_sampled,
        user_opt: Adagrad {
            learning_rate: cfg.learning_rate,
            alpha: cfg.user_alpha,
        },
        item_opt: Adagrad {
            learning_rate: cfg.learning_rate,
            alpha: cfg.item_alpha,
        },
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cfg.threads)
        .thread_name(|i| format!("factorization-{i}"))
        .build()?;
    let n_chunks = pool.current_num_threads().max(1);
    let evaluator = valid
        .map(|v| RecallEvaluator::new(&positives, v, cfg.eval_k, cfg.eval_max_users, cfg.seed));
    if let Some(evaluator) = &evaluator {
        tracing::debug!(
            validation_users = evaluator.n_users(),
            k = cfg.eval_k,
            "early stopping on validation recall"
        );
    }

    let mut report = TrainReport {
        epochs_run: 0,
        best_epoch: 0,
        history: Vec::new(),
        train_loss: Vec::new(),
        stopped_early: false,
        seconds: 0.0,
    };
    let mut best: Option<(f32, HybridModel)> = None;
    let mut evals_since_best = 0;

    for epoch in 1..=cfg.max_epochs {
        let epoch_started = Instant::now();
        order.shuffle(&mut rng);
        let chunk_len = order.len().div_ceil(n_chunks);
        let stats = pool.install(|| {
            order
                .par_chunks(chunk_len)
                .enumerate()
                .map(|(chunk, slice)| {
                    sgd::run_chunk(&params, &inputs, slice, chunk_seed(cfg.seed, epoch, chunk))
                })
                .reduce(ChunkStats::default, ChunkStats::merge)
        });
        let train_loss = (stats.loss_sum / stats.samples.max(1) as f64) as f32;
        if !train_loss.is_finite() {
            return Err(FactorizationError::Diverged { epoch });
        }
        report.epochs_run = epoch;
        report.train_loss.push(train_loss);

        let is_last = epoch == cfg.max_epochs;
        let mut metric = None;
        let mut improved = false;
        if let Some(evaluator) = &evaluator
            && (epoch % cfg.eval_every == 0 || is_last)
        {
            let snapshot = snapshot(&params);
            let recall = pool.install(|| evaluator.recall(&snapshot, users, items, &positives));
            report.history.push((epoch, recall));
            metric = Some(recall);
            if best.as_ref().is_none_or(|(b, _)| recall > *b) {
                best = Some((recall, snapshot));
                report.best_epoch = epoch;
                evals_since_best = 0;
                improved = true;
            } else {
                evals_since_best += 1;
            }
        }
        let seconds = epoch_started.elapsed().as_secs_f64();
        tracing::debug!(epoch, train_loss, ?metric, seconds, "factorization epoch");
        progress(EpochReport {
            epoch,
            train_loss,
            metric,
            improved,
            seconds,
        });
        if cfg.patience > 0 && evals_since_best >= cfg.patience {
            report.stopped_early = !is_last;
            break;
        }
    }

    let model = match best {
        Some((_, model)) => model,
        None => {
            report.best_epoch = report.epochs_run;
            snapshot(&params)
        }
    };
    report.seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        epochs = report.epochs_run,
        best_epoch = report.best_epoch,
        seconds = report.seconds,
        "factorization trained"
    );
    Ok((model, report))
}

fn validate_inputs(
    cfg: &FactorizationConfig,
    users: &FeatureMatrix,
    items: &FeatureMatrix,
    train: &TrainInteractions,
    valid: Option<&TrainInteractions>,
) -> Result<(), FactorizationError> {
    cfg.validate()?;
    users.validate("user")?;
    items.validate("item")?;
    for (side, matrix) in [("user", users), ("item", items)] {
        if matrix
            .n_features
            .checked_mul(cfg.components)
            .is_none_or(|n| n > isize::MAX as usize / 8)
        {
            return Err(FactorizationError::TooLarge {
                side,
                features: matrix.n_features,
                components: cfg.components,
            });
        }
    }
    let sets = std::iter::once(("train", train)).chain(valid.map(|v| ("validation", v)));
    for (set, interactions) in sets {
        interactions.validate(set)?;
        for (entity, expected, actual) in [
            ("users", interactions.n_users, users.n_rows()),
            ("items", interactions.n_items, items.n_rows()),
        ] {
            if expected != actual {
                return Err(FactorizationError::ShapeMismatch {
                    set,
                    entity,
                    expected,
                    actual,
                });
            }
        }
    }
    Ok(())
}

/// Divides weights by the median positive weight (so typical samples weigh 1 whatever the unit:
/// counts, seconds, ratings) and caps them, so one heavy interaction cannot dominate an epoch.
fn normalized_weights(weights: &[f32], cap: f32) -> Vec<f32> {
    let mut positive: Vec<f32> = weights.iter().copied().filter(|&w| w > 0.0).collect();
    if positive.is_empty() {
        return vec![0.0; weights.len()];
    }
    let mid = positive.len() / 2;
    let (_, &mut median, _) = positive.select_nth_unstable_by(mid, f32::total_cmp);
    weights.iter().map(|&w| (w / median).min(cap)).collect()
}

fn chunk_seed(seed: u64, epoch: usize, chunk: usize) -> u64 {
    // SplitMix64 finaliser over the combined inputs: distinct, well-mixed streams per chunk.
    let mut z = seed
        ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (chunk as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn snapshot(params: &Params) -> HybridModel {
    let (user_feature_emb, user_feature_bias) = params.users.snapshot();
    let (item_feature_emb, item_feature_bias) = params.items.snapshot();
    HybridModel {
        components: params.components,
        user_feature_emb,
        user_feature_bias,
        item_feature_emb,
        item_feature_bias,
    }
}
