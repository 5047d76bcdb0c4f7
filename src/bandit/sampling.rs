//! Random variates the policies need, built only on `Rng::next_u64` (rand 0.10 ships no
//! distributions, and owning the math keeps draw sequences stable across rand upgrades):
//! uniforms, a standard normal (Marsaglia polar), Gamma (Marsaglia–Tsang 2000) and Beta
//! (ratio of two Gammas).

use rand::Rng;

/// Uniform in `[0, 1)` with 53 random bits.
#[inline]
pub fn unit_f64<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Uniform in the open interval `(0, 1)`: safe to take a logarithm of.
#[inline]
pub fn open_unit_f64<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    ((rng.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
}

/// Uniform index in `0..n` (`n >= 1`) by Lemire's multiply-shift; the bias is below
/// `n / 2^64`, far under anything a bandit could notice.
#[inline]
pub fn below<R: Rng + ?Sized>(rng: &mut R, n: usize) -> usize {
    ((u128::from(rng.next_u64()) * n as u128) >> 64) as usize
}

/// Standard normal by Marsaglia's polar method (the second variate is discarded so the
/// sampler stays stateless).
pub fn standard_normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    loop {
        let u = 2.0 * unit_f64(rng) - 1.0;
        let v = 2.0 * unit_f64(rng) - 1.0;
        let s = u * u + v * v;
        if s > 0.0 && s < 1.0 {
            return u * (-2.0 * s.ln() / s).sqrt();
        }
    }
}

/// Gamma(shape, scale 1) by Marsaglia & Tsang, "A simple method for generating gamma
/// variables" (2000). Shapes below 1 use the boost `Gamma(a) = Gamma(a + 1) · U^(1/a)`.
/// Returns NaN for a shape that is not finite and positive.
pub fn gamma<R: Rng + ?Sized>(rng: &mut R, shape: f64) -> f64 {
    if !(shape.is_finite() && shape > 0.0) {
        return f64::NAN;
    }
    if shape < 1.0 {
        let boost = open_unit_f64(rng).powf(1.0 / shape);
        return gamma(rng, shape + 1.0) * boost;
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = standard_normal(rng);
        let t = 1.0 + c * x;
        if t <= 0.0 {
            continue;
        }
        let v = t * t * t;
        let u = open_unit_f64(rng);
        let x2 = x * x;
        // Squeeze first (accepts ~98% without a logarithm), then the exact test.
        if u < 1.0 - 0.0331 * x2 * x2 || u.ln() < 0.5 * x2 + d * (1.0 - v + v.ln()) {
            return d * v;
        }
    }
}

/// Beta(alpha, beta) as `X / (X + Y)` with `X ~ Gamma(alpha)`, `Y ~ Gamma(beta)`.
/// Returns NaN unless both parameters are finite and positive.
pub fn beta<R: Rng + ?Sized>(rng: &mut R, alpha: f64, beta: f64) -> f64 {
    let x = gamma(rng, alpha);
    let y = gamma(rng, beta);
    let sum = x + y;
    if sum > 0.0 {
        x / sum
    } else if sum == 0.0 {
        // Both Gammas underflowed (tiny shapes): fall back to the mean.
        alpha / (alpha + beta)
    } else {
        f64::NAN
    }
}

#[cfg(test)]
mod tests {
    use rand::{SeedableRng, rngs::SmallRng};

    use super::*;

    fn moments(samples: &[f64]) -> (f64, f64) {
        let n = samples.len() as f64;
        let mean = samples.iter().sum::<f64>() / n;
        let var = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, var)
    }

    #[test]
    fn uniforms_stay_in_range_and_below_is_uniform() {
        let mut rng = SmallRng::seed_from_u64(1);
        let mut counts = [0usize; 7];
        for _ in 0..70_000 {
            let u = unit_f64(&mut rng);
            assert!((0.0..1.0).contains(&u));
            let o = open_unit_f64(&mut rng);
            assert!(o > 0.0 && o < 1.0);
            counts[below(&mut rng, 7)] += 1;
        }
        // Each bucket expects 10_000 with sd ~93; 5 sd tolerance.
        for c in counts {
            assert!((9_535..=10_465).contains(&c), "{counts:?}");
        }
        assert_eq!(below(&mut rng, 1), 0);
    }

    #[test]
    fn normal_moments() {
        let mut rng = SmallRng::seed_from_u64(2);
        let xs: Vec<f64> = (0..200_000).map(|_| standard_normal(&mut rng)).collect();
        let (mean, var) = moments(&xs);
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "var {var}");
        let within_1sd = xs.iter().filter(|x| x.abs() < 1.0).count() as f64 / xs.len() as f64;
        assert!((within_1sd - 0.6827).abs() < 0.005, "{within_1sd}");
    }

    #[test]
    fn gamma_moments_match_analytic() {
        let mut rng = SmallRng::seed_from_u64(3);
        for shape in [0.3, 1.0, 2.5, 40.0] {
            let xs: Vec<f64> = (0..100_000).map(|_| gamma(&mut rng, shape)).collect();
            assert!(xs.iter().all(|&x| x >= 0.0 && x.is_finite()));
            let (mean, var) = moments(&xs);
            // Gamma(k, 1): mean k, variance k. Means within 6 standard errors; variances
            // within 10% (the relative error of a sample variance is ~sqrt((6/k + 2) / n)).
            let se = (shape / xs.len() as f64).sqrt();
            assert!((mean - shape).abs() < 6.0 * se, "k={shape} mean {mean}");
            assert!((var - shape).abs() < 0.1 * shape, "k={shape} var {var}");
        }
        assert!(gamma(&mut rng, 0.0).is_nan());
        assert!(gamma(&mut rng, -1.0).is_nan());
        assert!(gamma(&mut rng, f64::INFINITY).is_nan());
    }

    #[test]
    fn beta_moments_match_analytic() {
        let mut rng = SmallRng::seed_from_u64(4);
        for (a, b) in [
            (1.0, 1.0),
            (2.0, 5.0),
            (0.5, 0.5),
            (30.0, 70.0),
            (1.0, 400.0),
        ] {
            let xs: Vec<f64> = (0..100_000).map(|_| beta(&mut rng, a, b)).collect();
            assert!(xs.iter().all(|&x| (0.0..=1.0).contains(&x)));
            let (mean, var) = moments(&xs);
            let mean_ref = a / (a + b);
            let var_ref = a * b / ((a + b) * (a + b) * (a + b + 1.0));
            let se = (var_ref / xs.len() as f64).sqrt();
            assert!(
                (mean - mean_ref).abs() < 6.0 * se,
                "Beta({a},{b}) mean {mean} vs {mean_ref}"
            );
            assert!(
                (var - var_ref).abs() < 0.05 * var_ref,
                "Beta({a},{b}) var {var} vs {var_ref}"
            );
        }
        assert!(beta(&mut rng, f64::NAN, 1.0).is_nan());
    }

    #[test]
    fn seeded_draws_are_reproducible() {
        let draw = |seed| {
            let mut rng = SmallRng::seed_from_u64(seed);
            (0..100)
                .map(|_| beta(&mut rng, 3.0, 4.0))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(9), draw(9));
        assert_ne!(draw(9), draw(10));
    }
}
