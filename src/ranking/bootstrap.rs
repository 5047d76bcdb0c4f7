//! Paired bootstrap confidence intervals of a mean difference: how sure training (the ranker gate)
//! and the evaluation report may be that one
//! pipeline variant beats another on the same users. Pure and deterministic per seed; no model code.
//!
//! Given per-user scores `a[u]` and `b[u]` of two variants on the *same* users, the differences
//! `d[u] = a[u] − b[u]` are resampled (users drawn with replacement, `n` per resample); the interval
//! is the 2.5th / 97.5th percentile (linear interpolation between order statistics, numpy's default)
//! of the resampled mean differences. Pairing keeps the between-user variance (some users are easy
//! for every variant) out of the interval.

use rand::{RngExt, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};

/// Resamples used by `recserve evaluate`.
pub const BOOTSTRAP_RESAMPLES: usize = 1000;

/// A mean difference `a − b` with its 95% percentile-bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DiffCi {
    /// The observed mean of `a[u] − b[u]` over all users (not the mean of the resampled means).
    pub mean: f64,
    /// 2.5th percentile of the resampled mean differences.
    pub lo: f64,
    /// 97.5th percentile of the resampled mean differences.
    pub hi: f64,
    /// Number of bootstrap resamples.
    pub resamples: usize,
}

impl DiffCi {
    /// The whole interval is above zero: `a` is better than `b` at the 95% level.
    pub fn above_zero(&self) -> bool {
        self.lo > 0.0
    }

    /// The whole interval is below zero: `b` is better than `a` at the 95% level.
    pub fn below_zero(&self) -> bool {
        self.hi < 0.0
    }
}

/// Paired bootstrap 95% CI of `mean(a − b)`, resampling the index pairs `(a[u], b[u])` with
/// replacement `resamples` times from a generator seeded with `seed` (same inputs and seed → same
/// interval).
///
/// `None` when the lengths differ, the inputs are empty, `resamples` is 0, or any difference is not
/// finite (a NaN score would make the percentiles meaningless).
pub fn paired_bootstrap_ci(a: &[f64], b: &[f64], resamples: usize, seed: u64) -> Option<DiffCi> {
    if a.len() != b.len() || a.is_empty() || resamples == 0 {
        return None;
    }
    let diffs: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    if diffs.iter().any(|d| !d.is_finite()) {
        return None;
    }
    let n = diffs.len();
    let mean = diffs.iter().sum::<f64>() / n as f64;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| {
            let sum: f64 = (0..n).map(|_| diffs[rng.random_range(0..n)]).sum();
            sum / n as f64
        })
        .collect();
    means.sort_unstable_by(f64::total_cmp);
    Some(DiffCi {
        mean,
        lo: percentile(&means, 2.5),
        hi: percentile(&means, 97.5),
        resamples,
    })
}

/// The `p`-th percentile of non-empty sorted `s`, interpolating linearly between the order
/// statistics at rank `p/100 · (len − 1)` (numpy's default `linear` method).
fn percentile(s: &[f64], p: f64) -> f64 {
    let pos = (p / 100.0 * (s.len() - 1) as f64).clamp(0.0, (s.len() - 1) as f64);
    let i = pos.floor() as usize;
    let frac = pos - i as f64;
    match s.get(i + 1) {
        // Clamped: rounding must not push the interpolation outside its two neighbours.
        Some(&next) if frac > 0.0 => (s[i] + (next - s[i]) * frac).clamp(s[i], next),
        _ => s[i],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Deterministic noisy pairs: `b` spread over [0, 1), `a = b + shift + noise` (noise uniform in
    /// [-0.2, 0.2), so the population mean difference is exactly `shift`).
    fn noisy(n: usize, shift: f64, seed: u64) -> (Vec<f64>, Vec<f64>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let b: Vec<f64> = (0..n).map(|_| rng.random_range(0.0..1.0)).collect();
        let a = b
            .iter()
            .map(|x| x + shift + rng.random_range(-0.2..0.2))
            .collect();
        (a, b)
    }

    fn sample_sd(a: &[f64], b: &[f64]) -> f64 {
        let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
        let m = d.iter().sum::<f64>() / d.len() as f64;
        (d.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (d.len() - 1) as f64).sqrt()
    }

    // Cost: 30 users × 1000 resamples, microseconds.
    #[test]
    fn identical_inputs_give_exactly_zero() {
        let a: Vec<f64> = (0..30).map(|i| (f64::from(i) * 0.37).sin().abs()).collect();
        let ci = paired_bootstrap_ci(&a, &a, 1000, 7).unwrap();
        assert_eq!((ci.mean, ci.lo, ci.hi, ci.resamples), (0.0, 0.0, 0.0, 1000));
        assert!(!ci.above_zero() && !ci.below_zero());
    }

    // Cost: 2 × 50 users × 1000 resamples, about a millisecond.
    #[test]
    fn constant_shift_gives_a_point_interval_even_when_scores_vary() {
        // Dyadic values, so `(b + d) − b == d` exactly. An unpaired resampling (a and b drawn
        // independently) would give a wide interval here, because b itself varies a lot.
        let b: Vec<f64> = (0..50).map(|i| f64::from(i) / 64.0).collect();
        for d in [0.125, -0.25] {
            let a: Vec<f64> = b.iter().map(|x| x + d).collect();
            let ci = paired_bootstrap_ci(&a, &b, 1000, 1).unwrap();
            assert_eq!((ci.mean, ci.lo, ci.hi), (d, d, d), "shift {d}");
            assert_eq!(ci.above_zero(), d > 0.0);
            assert_eq!(ci.below_zero(), d < 0.0);
        }
    }

    // Cost: (100 + 1600) users × 1000 resamples ≈ 1.7M draws, well under a second in debug.
    #[test]
    fn noisy_case_covers_true_mean_narrows_with_n_and_matches_normal_width() {
        let shift = 0.05;
        let mut widths = Vec::new();
        for n in [100, 1600] {
            let (a, b) = noisy(n, shift, 11);
            let ci = paired_bootstrap_ci(&a, &b, 1000, 42).unwrap();
            assert!(
                ci.lo < shift && shift < ci.hi,
                "n = {n}: true mean {shift} outside [{}, {}]",
                ci.lo,
                ci.hi
            );
            assert!(ci.lo <= ci.mean && ci.mean <= ci.hi);
            // The percentile interval of a mean is close to ±1.96 standard errors.
            let width = ci.hi - ci.lo;
            let normal = 2.0 * 1.96 * sample_sd(&a, &b) / (n as f64).sqrt();
            assert!(
                (0.8..1.2).contains(&(width / normal)),
                "n = {n}: width {width} vs normal approximation {normal}"
            );
            widths.push(width);
        }
        // 16× the users: about a quarter of the width.
        assert!(
            widths[1] < widths[0] * 0.35,
            "width did not shrink: {widths:?}"
        );
        // With 1600 users the +0.05 difference is resolved.
        let (a, b) = noisy(1600, shift, 11);
        assert!(paired_bootstrap_ci(&a, &b, 1000, 42).unwrap().above_zero());
    }

    // Cost: a handful of tiny calls.
    #[test]
    fn mismatched_empty_zero_resamples_or_non_finite_is_none() {
        assert_eq!(paired_bootstrap_ci(&[1.0, 2.0], &[1.0], 100, 0), None);
        assert_eq!(paired_bootstrap_ci(&[], &[], 100, 0), None);
        assert_eq!(paired_bootstrap_ci(&[1.0], &[0.5], 0, 0), None);
        assert_eq!(
            paired_bootstrap_ci(&[f64::NAN, 1.0], &[0.0, 0.0], 10, 0),
            None
        );
        assert_eq!(paired_bootstrap_ci(&[f64::INFINITY], &[0.0], 10, 0), None);
        // A single user: every resample is that user.
        let one = paired_bootstrap_ci(&[0.75], &[0.5], 10, 0).unwrap();
        assert_eq!((one.mean, one.lo, one.hi), (0.25, 0.25, 0.25));
    }

    // Cost: 4 × 200 users × 500 resamples, a few milliseconds.
    #[test]
    fn deterministic_per_seed() {
        let (a, b) = noisy(200, 0.01, 3);
        let x = paired_bootstrap_ci(&a, &b, 500, 9).unwrap();
        assert_eq!(paired_bootstrap_ci(&a, &b, 500, 9).unwrap(), x);
        let y = paired_bootstrap_ci(&a, &b, 500, 10).unwrap();
        assert_eq!(
            x.mean, y.mean,
            "the point estimate does not depend on the seed"
        );
        assert!(
            (x.lo, x.hi) != (y.lo, y.hi),
            "another seed, other resamples"
        );
        // Swapping the roles flips the sign.
        let z = paired_bootstrap_ci(&b, &a, 500, 9).unwrap();
        assert!((z.mean + x.mean).abs() < 1e-12);
    }

    #[test]
    fn percentile_interpolates_like_numpy() {
        let s: Vec<f64> = (0..=10).map(f64::from).collect();
        assert_eq!(percentile(&s, 2.5), 0.25);
        assert_eq!(percentile(&s, 97.5), 9.75);
        assert_eq!(percentile(&s, 100.0), 10.0);
        assert_eq!(percentile(&[3.0], 2.5), 3.0);
    }

    proptest! {
        // Cost: 64 cases × ≤ 60 users × 200 resamples, well under a second.
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn interval_contains_the_observed_mean(
            // NDCG-like scores: many exact 0s and 1s (ties), the rest anywhere in [0, 1].
            pairs in prop::collection::vec(
                (
                    prop_oneof![Just(0.0), Just(1.0), 0.0..=1.0f64],
                    prop_oneof![Just(0.0), Just(1.0), 0.0..=1.0f64],
                ),
                1..60,
            ),
            seed in any::<u64>(),
        ) {
            let (a, b): (Vec<f64>, Vec<f64>) = pairs.into_iter().unzip();
            let ci = paired_bootstrap_ci(&a, &b, 200, seed).unwrap();
            prop_assert!(ci.lo <= ci.mean && ci.mean <= ci.hi, "{ci:?}");
            prop_assert!((-1.0..=1.0).contains(&ci.lo) && (-1.0..=1.0).contains(&ci.hi));
        }
    }
}
