//! The probability with which the policy picks each arm in a context: what an impression logs
//! as its propensity, so the A/B framework can read outcomes per arm and off-policy estimators
//! (IPS, doubly robust) can reweight logged feedback.
//!
//! - **Epsilon-greedy:** exact, from the same statistics the choice used: untried arms share
//!   probability 1; otherwise each arm gets `epsilon / K`, and the arms tied at the best mean
//!   share `1 - epsilon`.
//! - **Thompson sampling:** the probability that an arm's posterior draw is the largest has no
//!   closed form for several Beta arms, so it is estimated by [`THOMPSON_DRAWS`] joint draws
//!   from the posterior (standard error at most `0.5 / sqrt(THOMPSON_DRAWS)` ≈ 0.016 per arm;
//!   the estimates over the arms sum to exactly 1, being counts of the same draws). The
//!   estimate is cached per context and recomputed when it is older than [`THOMPSON_MAX_AGE`] or
//!   [`THOMPSON_MAX_UPDATES`] updates of that context, so its cost stays off most requests.

use super::state::{ArmState, choose_thompson};
use super::{Bandit, Context, MAX_ARMS, PolicyConfig};
use rand::{SeedableRng, rngs::SmallRng};
use std::time::{Duration, Instant};

/// Joint posterior draws per Thompson estimate.
pub const THOMPSON_DRAWS: usize = 1000;
/// A cached Thompson estimate is recomputed once it is this old…
pub const THOMPSON_MAX_AGE: Duration = Duration::from_secs(1);
/// …or once its context has seen this many updates since.
pub const THOMPSON_MAX_UPDATES: u64 = 256;

/// A cached Thompson estimate for one context.
#[derive(Clone, Copy)]
pub(super) struct Cached {
    probs: [f64; MAX_ARMS],
    at: Instant,
    updates: u64,
}

/// The arm the policy chose and the probability of each arm under it.
#[derive(Debug, Clone, PartialEq)]
pub struct ArmChoice {
    pub arm: usize,
    /// One per configured arm, summing to 1.
    pub probabilities: Vec<f64>,
}

impl ArmChoice {
    /// The chosen arm's probability.
    pub fn propensity(&self) -> f64 {
        self.probabilities.get(self.arm).copied().unwrap_or(0.0)
    }
}

/// Exact epsilon-greedy probabilities for `arms` (the same rules as `choose_epsilon_greedy`).
pub(super) fn epsilon_greedy(arms: &[ArmState], epsilon: f64) -> Vec<f64> {
    let k = arms.len().max(1);
    let untried = arms.iter().filter(|a| a.lifetime_pulls == 0).count();
    if untried > 0 {
        return arms
            .iter()
            .map(|a| {
                if a.lifetime_pulls == 0 {
                    1.0 / untried as f64
                } else {
                    0.0
                }
            })
            .collect();
    }
    let value = |a: &ArmState| {
        if a.pulls > 0.0 {
            a.mean()
        } else {
            f64::INFINITY
        }
    };
    let best = arms.iter().map(value).fold(f64::NEG_INFINITY, f64::max);
    let ties = arms.iter().filter(|a| value(a) == best).count().max(1);
    let eps = epsilon.clamp(0.0, 1.0);
    arms.iter()
        .map(|a| {
            let greedy = if value(a) == best {
                (1.0 - eps) / ties as f64
            } else {
                0.0
            };
            eps / k as f64 + greedy
        })
        .collect()
}

/// Monte Carlo estimate of Thompson sampling's arm probabilities for posteriors `params`.
pub(super) fn thompson_estimate(params: &[(f64, f64)], seed: u64) -> [f64; MAX_ARMS] {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut wins = [0u32; MAX_ARMS];
    for _ in 0..THOMPSON_DRAWS {
        wins[choose_thompson(params, &mut rng).min(MAX_ARMS - 1)] += 1;
    }
    let mut probs = [0.0; MAX_ARMS];
    for (p, w) in probs.iter_mut().zip(wins) {
        *p = f64::from(w) / THOMPSON_DRAWS as f64;
    }
    probs
}

impl Bandit {
    /// Chooses the next arm for `ctx` (the same draw sequence as [`Bandit::choose_next`]) and
    /// reports every arm's probability under the policy, both from one copy of the context's
    /// statistics.
    pub fn choose_next_with_probabilities(&self, ctx: &Context) -> ArmChoice {
        let n = self
            .draws
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut rng =
            SmallRng::seed_from_u64(self.cfg.seed ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let index = ctx.index();
        let arms: Vec<ArmState> = self.rows[index].0.lock().to_vec();
        let arm = match self.cfg.policy {
            PolicyConfig::EpsilonGreedy { epsilon } => {
                super::state::choose_epsilon_greedy(&arms, epsilon, &mut rng)
            }
            PolicyConfig::Thompson => {
                let params: Vec<(f64, f64)> = arms.iter().map(ArmState::beta_params).collect();
                choose_thompson(&params, &mut rng)
            }
        };
        ArmChoice {
            arm,
            probabilities: self.probabilities_of(index, &arms),
        }
    }

    /// Every arm's probability of being chosen in `ctx` now.
    pub fn probabilities(&self, ctx: &Context) -> Vec<f64> {
        let index = ctx.index();
        let arms: Vec<ArmState> = self.rows[index].0.lock().to_vec();
        self.probabilities_of(index, &arms)
    }

    fn probabilities_of(&self, index: usize, arms: &[ArmState]) -> Vec<f64> {
        match self.cfg.policy {
            PolicyConfig::EpsilonGreedy { epsilon } => epsilon_greedy(arms, epsilon),
            PolicyConfig::Thompson => {
                let updates: u64 = arms
                    .iter()
                    .map(|a| a.lifetime_pulls + a.lifetime_rewards)
                    .sum();
                let Some(slot) = self.propensity_cache.get(index) else {
                    return vec![0.0; arms.len()];
                };
                let mut cache = slot.lock();
                let fresh = cache.as_ref().is_some_and(|c| {
                    c.at.elapsed() < THOMPSON_MAX_AGE
                        && updates.saturating_sub(c.updates) < THOMPSON_MAX_UPDATES
                });
                if !fresh {
                    let params: Vec<(f64, f64)> = arms.iter().map(ArmState::beta_params).collect();
                    let seed = self.cfg.seed
                        ^ (index as u64).wrapping_mul(0x2545_f491_4f6c_dd1d)
                        ^ updates;
                    *cache = Some(Cached {
                        probs: thompson_estimate(&params, seed),
                        at: Instant::now(),
                        updates,
                    });
                }
                let probs = cache.as_ref().map_or([0.0; MAX_ARMS], |c| c.probs);
                probs[..arms.len().min(MAX_ARMS)].to_vec()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bandit::BanditConfig;

    fn tried(pulls: f64, reward_sum: f64) -> ArmState {
        ArmState {
            pulls,
            reward_sum,
            successes: reward_sum,
            lifetime_pulls: pulls as u64,
            lifetime_rewards: reward_sum as u64,
        }
    }

    #[test]
    fn epsilon_greedy_probabilities_match_the_choice_frequencies() {
        use rand::SeedableRng;
        let arms = [
            tried(10.0, 5.0),
            tried(10.0, 2.0),
            tried(10.0, 5.0),
            tried(10.0, 1.0),
        ];
        let p = epsilon_greedy(&arms, 0.2);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((p[0] - (0.05 + 0.4)).abs() < 1e-12 && (p[1] - 0.05).abs() < 1e-12);
        let mut rng = SmallRng::seed_from_u64(3);
        let n = 200_000;
        let mut seen = [0usize; 4];
        for _ in 0..n {
            seen[super::super::state::choose_epsilon_greedy(&arms, 0.2, &mut rng)] += 1;
        }
        for (s, q) in seen.iter().zip(&p) {
            let f = *s as f64 / n as f64;
            assert!(
                (f - q).abs() < 4.0 * (q * (1.0 - q) / n as f64).sqrt() + 1e-9,
                "{f} vs {q}"
            );
        }
        // Untried arms come first, uniformly.
        let p = epsilon_greedy(
            &[tried(3.0, 1.0), ArmState::default(), ArmState::default()],
            0.2,
        );
        assert_eq!(p, vec![0.0, 0.5, 0.5]);
    }

    #[test]
    fn thompson_estimates_sum_to_one_and_match_the_choice_frequencies() {
        let params = [(30.0, 70.0), (25.0, 75.0), (5.0, 5.0)];
        let p = thompson_estimate(&params, 11);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        let mut rng = SmallRng::seed_from_u64(99);
        let n = 100_000;
        let mut seen = [0usize; 3];
        for _ in 0..n {
            seen[choose_thompson(&params, &mut rng)] += 1;
        }
        for (s, q) in seen.iter().zip(&p) {
            let f = *s as f64 / n as f64;
            // The estimate's own error (0.5/sqrt(1000) at most) dominates.
            assert!(
                (f - q).abs() < 4.0 * 0.5 / (THOMPSON_DRAWS as f64).sqrt(),
                "{f} vs {q}"
            );
        }
    }

    #[test]
    fn the_bandit_reports_probabilities_for_its_choice() {
        let b = Bandit::new(BanditConfig::default()).unwrap();
        let ctx = Context::from_index(0).unwrap();
        for _ in 0..50 {
            let c = b.choose_next_with_probabilities(&ctx);
            assert_eq!(c.probabilities.len(), b.arms().len());
            assert!((c.probabilities.iter().sum::<f64>() - 1.0).abs() < 1e-9);
            assert!(c.propensity() > 0.0, "{c:?}");
            b.record_pull(&ctx, c.arm).unwrap();
        }
    }
}
