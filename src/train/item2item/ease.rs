//! EASE (Steck 2019): with X the binary user × item matrix, G = XᵀX + λI, P = G⁻¹ and
//! B_ij = −P_ij / P_jj (B_ii = 0), the score of j for a user is Σ_i X_ui B_ij, so item i's
//! outgoing weights are row B_i·. The dense inverse is faer's Cholesky (LLᵀ) inverse.
//!
//! λ is chosen here on held-out users: the Gram matrix is built once from all pairs, the held-out
//! pairs are subtracted in place (exact: integer counts in f64), each grid λ is fitted and scored
//! through the top-K pruned table, then the pairs are added back and the best λ refitted.
//! Memory peak ≈ 4 n² f64 (Gram, Cholesky factor, inverse and faer's scratch).

use std::time::Instant;

use faer::linalg::solvers::{DenseSolveCore, LltError};
use faer::{MatRef, Side};
use rayon::prelude::*;

use super::data::Csr;
use super::eval::{self, Holdouts};
use super::{Item2ItemConfig, Item2ItemError, Item2ItemReport, LambdaScore, Neighbours, write_row};

/// Column-major (= row-major, it is symmetric) dense `n × n` matrix `XᵀX` of co-counts.
pub(super) struct Gram {
    n: usize,
    data: Vec<f64>,
}

impl Gram {
    /// `G_ij` = number of users with both i and j, `G_ii` = users of i. Parallel over columns:
    /// column j sums the item lists of j's users, so the cost is Σ_users (items per user)².
    pub(super) fn build(n: usize, users: &Csr, items: &Csr) -> Result<Self, Item2ItemError> {
        let len = n
            .checked_mul(n)
            .ok_or(Item2ItemError::TooLarge { n_items: n })?;
        let mut data = Vec::new();
        data.try_reserve_exact(len)
            .map_err(|_| Item2ItemError::TooLarge { n_items: n })?;
        data.resize(len, 0.0);
        if n > 0 {
            data.par_chunks_mut(n).enumerate().for_each(|(j, col)| {
                for &u in items.row(j) {
                    for &i in users.row(u as usize) {
                        col[i as usize] += 1.0;
                    }
                }
            });
        }
        Ok(Self { n, data })
    }

    #[cfg(test)]
    pub(super) fn get(&self, i: usize, j: usize) -> f64 {
        self.data[j * self.n + i]
    }

    /// Adds (`sign` = 1) or removes (`sign` = -1) the held-out pairs' contributions: user u's
    /// outer product loses row and column `h` when u holds out item h.
    pub(super) fn shift_holdouts(&mut self, users: &Csr, holdouts: &Holdouts, sign: f64) {
        let n = self.n;
        for (&u, &h) in holdouts.users.iter().zip(&holdouts.items) {
            let h = h as usize;
            for &i in users.row(u as usize) {
                let i = i as usize;
                self.data[h * n + i] += sign;
                if i != h {
                    self.data[i * n + h] += sign;
                }
            }
        }
    }

    /// Top-K pruned B for `lambda`; also returns the seconds of (factor + inverse, top-K).
    pub(super) fn neighbours(
        &mut self,
        lambda: f64,
        k: usize,
    ) -> Result<(Neighbours, f64, f64), Item2ItemError> {
        let n = self.n;
        let start = Instant::now();
        // G + λI: shift the diagonal, factor (faer copies the lower triangle), restore it.
        let diag: Vec<f64> = (0..n).map(|j| self.data[j * n + j]).collect();
        for (j, d) in diag.iter().enumerate() {
            self.data[j * n + j] = d + lambda;
        }
        let llt = MatRef::from_column_major_slice(&self.data, n, n).llt(Side::Lower);
        for (j, d) in diag.iter().enumerate() {
            self.data[j * n + j] = *d;
        }
        let llt = llt.map_err(|e| match e {
            LltError::NonPositivePivot { index } => Item2ItemError::NotPositiveDefinite {
                lambda,
                pivot: index,
            },
        })?;
        let p = llt.inverse();
        drop(llt);
        let inverse_seconds = start.elapsed().as_secs_f64();

        let start = Instant::now();
        let p_diag: Vec<f64> = (0..n).map(|j| p[(j, j)]).collect();
        if !p_diag.iter().all(|d| d.is_finite() && *d > 0.0) {
            return Err(Item2ItemError::NonFinite {
                lambda,
                what: "inverse diagonal",
            });
        }
        let mut ids = vec![-1i32; n * k];
        let mut weights = vec![0f32; n * k];
        ids.par_chunks_mut(k)
            .zip(weights.par_chunks_mut(k))
            .enumerate()
            .try_for_each_init(Vec::new, |cands: &mut Vec<(f32, u32)>, (i, (ids, ws))| {
                // Row i of B is column i of P (symmetric) scaled by -1 / P_jj.
                cands.clear();
                for (j, (&p_ij, &p_jj)) in p.col_as_slice(i).iter().zip(&p_diag).enumerate() {
                    let w = -p_ij / p_jj;
                    if !w.is_finite() {
                        return Err(Item2ItemError::NonFinite {
                            lambda,
                            what: "weight",
                        });
                    }
                    let w = w as f32;
                    if j != i && w > 0.0 {
                        cands.push((w, j as u32));
                    }
                }
                write_row(cands, ids, ws);
                Ok(())
            })?;
        Ok((
            Neighbours { k, ids, weights },
            inverse_seconds,
            start.elapsed().as_secs_f64(),
        ))
    }
}

/// The median of the grid (lower middle), used when no validation is possible.
fn grid_median(lambdas: &[f64]) -> f64 {
    let mut sorted = lambdas.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[(sorted.len() - 1) / 2]
}

pub(super) fn fit(
    n_items: usize,
    users: &Csr,
    cfg: &Item2ItemConfig,
    report: &mut Item2ItemReport,
) -> Result<Neighbours, Item2ItemError> {
    let start = Instant::now();
    let items = users.transpose(n_items);
    let mut gram = Gram::build(n_items, users, &items)?;
    drop(items);
    report.seconds.gram = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let holdouts = match cfg.lambdas.len() {
        1 => None,
        _ => Some(Holdouts::sample(users, cfg.validation_users, cfg.seed)),
    };
    let lambda = match holdouts {
        None => cfg.lambdas[0],
        Some(h) if h.len() == 0 => grid_median(&cfg.lambdas),
        Some(holdouts) => validate_lambda(&mut gram, users, &holdouts, cfg, report)?,
    };
    report.seconds.validation = start.elapsed().as_secs_f64();
    report.lambda = Some(lambda);

    let (nb, inverse, top_k) = gram.neighbours(lambda, cfg.neighbours)?;
    report.seconds.inverse = inverse;
    report.seconds.neighbours = top_k;
    Ok(nb)
}

/// Fits every grid λ on the Gram matrix minus the held-out pairs (restored afterwards), records
/// its metrics in `report` and returns the λ with the best ndcg@20.
fn validate_lambda(
    gram: &mut Gram,
    users: &Csr,
    holdouts: &Holdouts,
    cfg: &Item2ItemConfig,
    report: &mut Item2ItemReport,
) -> Result<f64, Item2ItemError> {
    gram.shift_holdouts(users, holdouts, -1.0);
    let mut best: Option<(f64, f64)> = None;
    for &lambda in &cfg.lambdas {
        let t = Instant::now();
        let (nb, _, _) = gram.neighbours(lambda, cfg.neighbours)?;
        let (recall, ndcg) = eval::evaluate(&nb, users, holdouts);
        report.validation.push(LambdaScore {
            lambda,
            recall_at_20: recall,
            ndcg_at_20: ndcg,
            seconds: t.elapsed().as_secs_f64(),
        });
        // Exact ties go to the larger (more regularised) λ.
        let better = best.is_none_or(|(bl, bm)| ndcg > bm || (ndcg == bm && lambda > bl));
        if better {
            best = Some((lambda, ndcg));
        }
    }
    gram.shift_holdouts(users, holdouts, 1.0);
    report.validation_users = holdouts.len();
    let (lambda, metric) = best.expect("validated configs have a non-empty grid");
    report.validation_metric = Some(metric);
    Ok(lambda)
}
