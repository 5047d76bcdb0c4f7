//! Offline trainer of the item-to-item ("item2item") candidate source: for every item `i`, its
//! top-K neighbours `j ≠ i` with weights `w(i→j) > 0`, so that serving scores candidate `j` for a
//! user as `Σ_{i in history} w(i→j)`.
//!
//! Two methods share the input handling and the output format:
//! - EASE (Steck 2019, "Embarrassingly Shallow Autoencoders"), a closed-form linear item-item
//!   model from one dense `n_items × n_items` inverse per L2 penalty λ; λ is chosen inside
//!   [`fit`] on held-out users. Cost O(n_items³) time and O(n_items²) memory, so only up to
//!   [`Item2ItemConfig::ease_max_items`] items.
//! - Sparse cosine item-kNN with shrinkage for larger catalogues, whose cost grows with the
//!   interactions (heavy users capped), never with n_items².
//!
//! This file owns the public API (config, errors, output, report), input validation and the
//! method dispatch; the methods live in the submodules. The interactions are read as a binary
//! user × item matrix: `weight`, `count` and `ts` are ignored and duplicates collapse.

mod data;
mod ease;
mod eval;
mod knn;
#[cfg(test)]
mod tests;

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::data::dataset::Interaction;

/// Which model builds the neighbour lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// EASE at or below `ease_max_items` items, kNN above.
    Auto,
    /// Always EASE (needs ~4 · n_items² · 8 bytes of memory at its peak).
    Ease,
    /// Always item-kNN.
    Knn,
}

/// Hyper-parameters. Every field has a default, so a config file may set any subset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Item2ItemConfig {
    pub method: Method,
    /// `auto` uses EASE at or below this many items and kNN above. The default (5000) is where
    /// the whole EASE fit (Gram matrix, one Cholesky inverse per grid λ for the validation, the
    /// final refit) took ≈ 16 s on an idle 2-core machine with the default 7-point grid, one
    /// inverse ≈ 1.8 s (6000 items: 26 s; 8000: ≈ 60-70 s). Memory peak ≈ 4 · n² · 8 bytes.
    /// See the timing test `ease_scaling` in `item2item/tests.rs`.
    pub ease_max_items: usize,
    /// The L2 penalties EASE validates over (each finite and > 0); with a single value no
    /// validation runs.
    pub lambdas: Vec<f64>,
    /// K: neighbours kept per item.
    pub neighbours: usize,
    /// kNN: `sim(i, j) = c_ij / (sqrt(n_i · n_j) + shrinkage)`, which damps pairs seen by few
    /// users.
    pub knn_shrinkage: f64,
    /// kNN: a user with more distinct items than this contributes a seeded random sample of this
    /// many of them (their pairs cost O(items²)); co-counts and item counts both use the sampled
    /// lists, so the cosine stays consistent.
    pub knn_max_user_items: usize,
    /// EASE: users (with ≥ 2 items, seeded sample) that each hold out one random item to choose λ.
    /// 0 disables the validation; then the grid's median λ is used.
    pub validation_users: usize,
    /// Seeds the validation sample and the kNN heavy-user sampling.
    pub seed: u64,
}

impl Default for Item2ItemConfig {
    fn default() -> Self {
        Self {
            method: Method::Auto,
            ease_max_items: 5000,
            lambdas: vec![10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0],
            neighbours: 50,
            knn_shrinkage: 10.0,
            knn_max_user_items: 500,
            validation_users: 1000,
            seed: 42,
        }
    }
}

impl Item2ItemConfig {
    pub fn validate(&self) -> Result<(), Item2ItemError> {
        let bad = |field: &'static str, reason: &'static str| {
            Err(Item2ItemError::InvalidConfig { field, reason })
        };
        if self.neighbours == 0 {
            return bad("neighbours", "must be at least 1");
        }
        if self.lambdas.is_empty() {
            return bad("lambdas", "must list at least one value");
        }
        if !self.lambdas.iter().all(|l| l.is_finite() && *l > 0.0) {
            return bad("lambdas", "must all be finite and > 0");
        }
        if !(self.knn_shrinkage.is_finite() && self.knn_shrinkage >= 0.0) {
            return bad("knn_shrinkage", "must be finite and >= 0");
        }
        if self.knn_max_user_items < 2 {
            return bad("knn_max_user_items", "must be at least 2");
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Item2ItemError {
    #[error("invalid item2item config: `{field}` {reason}")]
    InvalidConfig {
        field: &'static str,
        reason: &'static str,
    },
    #[error("item2item: no interactions to learn from")]
    NoInteractions,
    #[error("item2item: interaction #{index} has item {item} but there are {n_items} items")]
    ItemOutOfRange {
        index: usize,
        item: u32,
        n_items: usize,
    },
    #[error("item2item: {n_items} items do not fit the i32 neighbour ids")]
    TooManyItems { n_items: usize },
    #[error("item2item: EASE's {n_items} × {n_items} Gram matrix does not fit in memory")]
    TooLarge { n_items: usize },
    #[error("item2item: EASE Gram matrix + λ = {lambda} is not positive definite (pivot {pivot})")]
    NotPositiveDefinite { lambda: f64, pivot: usize },
    #[error("item2item: EASE with λ = {lambda} produced a non-finite {what}")]
    NonFinite { lambda: f64, what: &'static str },
}

/// Row `i` (`k` slots) lists item `i`'s neighbours, best first; unused slots hold id -1 and
/// weight 0.0. Every kept weight is finite and > 0, and no row lists its own item.
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbours {
    pub k: usize,
    pub ids: Vec<i32>,
    pub weights: Vec<f32>,
}

impl Neighbours {
    pub fn n_items(&self) -> usize {
        self.ids.len().checked_div(self.k).unwrap_or(0)
    }

    /// Item `item`'s slots (ids, weights); empty slices when `item` is out of range.
    pub fn row(&self, item: usize) -> (&[i32], &[f32]) {
        let range = item.saturating_mul(self.k)..item.saturating_add(1).saturating_mul(self.k);
        match (self.ids.get(range.clone()), self.weights.get(range)) {
            (Some(ids), Some(weights)) => (ids, weights),
            _ => (&[], &[]),
        }
    }

    /// Number of filled (non-padding) slots over all rows.
    pub fn filled(&self) -> usize {
        self.ids.iter().filter(|&&id| id >= 0).count()
    }
}

/// One grid point of EASE's λ validation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LambdaScore {
    pub lambda: f64,
    /// Share of validation users whose held-out item is in the top 20 of the pruned model.
    pub recall_at_20: f64,
    /// Mean `1 / log2(rank + 2)` of the held-out item when in the top 20 (0-based rank), else 0.
    pub ndcg_at_20: f64,
    /// Inverse + top-K + scoring for this λ.
    pub seconds: f64,
}

/// Wall-clock split of one [`fit`].
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FitSeconds {
    /// Grouping the interactions into sparse lists (and kNN's heavy-user sampling).
    pub prepare: f64,
    /// EASE: building `XᵀX`.
    pub gram: f64,
    /// EASE: the whole λ grid (see [`LambdaScore::seconds`]).
    pub validation: f64,
    /// EASE: Cholesky factor + inverse of the final refit.
    pub inverse: f64,
    /// EASE: weights + top-K of the final refit; kNN: co-counting + top-K.
    pub neighbours: f64,
    pub total: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Item2ItemReport {
    /// `ease` or `knn` (never `auto`).
    pub method: Method,
    pub n_items: usize,
    /// Distinct users with at least one interaction.
    pub n_users: usize,
    /// Distinct (user, item) pairs, i.e. the non-zeros of the binary matrix.
    pub n_pairs: usize,
    pub neighbours: usize,
    /// Mean filled slots per item row (≤ `neighbours`).
    pub mean_row_fill: f64,
    /// EASE's λ (validated, the single grid value, or the grid median without validation users).
    pub lambda: Option<f64>,
    /// Name of the metric λ is chosen by.
    pub selection_metric: &'static str,
    /// The chosen λ's `selection_metric`, the maximum over `validation`.
    pub validation_metric: Option<f64>,
    /// Every grid λ's metrics, in grid order.
    pub validation: Vec<LambdaScore>,
    /// Held-out users actually scored.
    pub validation_users: usize,
    /// kNN: users whose item list was sampled down to `knn_max_user_items`.
    pub capped_users: usize,
    pub seconds: FitSeconds,
}

/// Fits the item2item neighbour lists on `interactions` (dense item ids `< n_items`; user ids
/// only group). Items without interactions get all-padding rows.
pub fn fit(
    n_items: usize,
    interactions: &[Interaction],
    cfg: &Item2ItemConfig,
) -> Result<(Neighbours, Item2ItemReport), Item2ItemError> {
    let start = Instant::now();
    cfg.validate()?;
    if interactions.is_empty() {
        return Err(Item2ItemError::NoInteractions);
    }
    if i32::try_from(n_items).is_err() {
        return Err(Item2ItemError::TooManyItems { n_items });
    }
    if n_items.checked_mul(cfg.neighbours).is_none() {
        return Err(Item2ItemError::InvalidConfig {
            field: "neighbours",
            reason: "times n_items overflows the table size",
        });
    }
    if let Some((index, x)) = interactions
        .iter()
        .enumerate()
        .find(|(_, x)| x.item as usize >= n_items)
    {
        return Err(Item2ItemError::ItemOutOfRange {
            index,
            item: x.item,
            n_items,
        });
    }
    let users = data::Csr::user_lists(interactions);
    let method = match cfg.method {
        Method::Auto if n_items <= cfg.ease_max_items => Method::Ease,
        Method::Auto => Method::Knn,
        m => m,
    };
    let mut report = Item2ItemReport {
        method,
        n_items,
        n_users: users.n_rows(),
        n_pairs: users.nnz(),
        neighbours: cfg.neighbours,
        mean_row_fill: 0.0,
        lambda: None,
        selection_metric: "ndcg@20",
        validation_metric: None,
        validation: Vec::new(),
        validation_users: 0,
        capped_users: 0,
        seconds: FitSeconds::default(),
    };
    report.seconds.prepare = start.elapsed().as_secs_f64();
    let nb = match method {
        Method::Ease => ease::fit(n_items, &users, cfg, &mut report)?,
        _ => knn::fit(n_items, &users, cfg, &mut report),
    };
    report.mean_row_fill = nb.filled() as f64 / n_items.max(1) as f64;
    report.seconds.total = start.elapsed().as_secs_f64();
    Ok((nb, report))
}

/// Writes the best `ids.len()` of `cands` (weight descending, ties by lower id) into one row and
/// pads the rest with -1 / 0.0. `cands` must hold finite weights > 0 and distinct ids; it is
/// reordered.
fn write_row(cands: &mut [(f32, u32)], ids: &mut [i32], weights: &mut [f32]) {
    let order = |a: &(f32, u32), b: &(f32, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
    let k = ids.len().min(cands.len());
    if k > 0 && k < cands.len() {
        cands.select_nth_unstable_by(k - 1, order);
    }
    let top = &mut cands[..k];
    top.sort_unstable_by(order);
    for (slot, (id, weight)) in ids.iter_mut().zip(weights.iter_mut()).enumerate() {
        (*id, *weight) = top.get(slot).map_or((-1, 0.0), |&(w, j)| (j as i32, w));
    }
}
