//! Per-arm statistics of one context row, their deterministic update math (pulls, rewards,
//! discounting) and the two selection rules. Pure functions over slices: no locks, no I/O,
//! randomness only in the selection rules.

use rand::Rng;

use super::sampling::{below, beta, unit_f64};

/// Discounted values smaller than this are flushed to zero, so long-running rows never
/// spend time in subnormal arithmetic. Deterministic like every other update step.
const FLUSH_TO_ZERO: f64 = 1e-200;

/// Statistics of one arm in one context.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct ArmState {
    /// Discounted number of pulls.
    pub pulls: f64,
    /// Discounted sum of rewards, in configured reward units.
    pub reward_sum: f64,
    /// Discounted sum of rewards normalised by the largest configured reward and clipped to
    /// `[0, 1]` per reward: the fractional successes of the Beta-Bernoulli model.
    pub successes: f64,
    /// Undiscounted pull count (decides "never tried"; reported in stats).
    pub lifetime_pulls: u64,
    /// Undiscounted count of reward events.
    pub lifetime_rewards: u64,
}

impl ArmState {
    /// Mean reward per pull; zero for an arm without (remaining) pulls.
    pub fn mean(&self) -> f64 {
        if self.pulls > 0.0 {
            self.reward_sum / self.pulls
        } else {
            0.0
        }
    }

    /// Beta posterior parameters under a uniform Beta(1, 1) prior: `alpha = 1 + successes`,
    /// `beta = 1 + pulls - successes`, clipped to at least 1 (several rewarded events on one
    /// pull can push successes past pulls).
    pub fn beta_params(&self) -> (f64, f64) {
        (
            1.0 + self.successes,
            (1.0 + self.pulls - self.successes).max(1.0),
        )
    }
}

fn decay(x: f64, discount: f64) -> f64 {
    let y = x * discount;
    if y < FLUSH_TO_ZERO { 0.0 } else { y }
}

/// One request served with `arm`: every arm of the row decays by `discount` (one time step
/// passes for the whole context), then the pulled arm counts one more pull.
pub(crate) fn apply_pull(arms: &mut [ArmState], arm: usize, discount: f64) {
    if discount < 1.0 {
        for a in arms.iter_mut() {
            a.pulls = decay(a.pulls, discount);
            a.reward_sum = decay(a.reward_sum, discount);
            a.successes = decay(a.successes, discount);
        }
    }
    let a = &mut arms[arm];
    a.pulls += 1.0;
    a.lifetime_pulls += 1;
}

/// A reward for an earlier pull of `arm`. Rewards do not advance time (no decay).
pub(crate) fn apply_reward(arms: &mut [ArmState], arm: usize, reward: f64, max_reward: f64) {
    let a = &mut arms[arm];
    a.reward_sum += reward;
    a.successes += (reward / max_reward).clamp(0.0, 1.0);
    a.lifetime_rewards += 1;
}

/// Epsilon-greedy: arms never pulled come first (uniformly among them); then with
/// probability `epsilon` a uniform arm; otherwise the best mean, ties broken uniformly.
/// An arm whose discounted pulls decayed to zero carries no information and counts as best.
pub(crate) fn choose_epsilon_greedy<R: Rng + ?Sized>(
    arms: &[ArmState],
    epsilon: f64,
    rng: &mut R,
) -> usize {
    let untried = arms.iter().filter(|a| a.lifetime_pulls == 0).count();
    if untried > 0 {
        let pick = below(rng, untried);
        return arms
            .iter()
            .enumerate()
            .filter(|(_, a)| a.lifetime_pulls == 0)
            .nth(pick)
            .map_or(0, |(i, _)| i);
    }
    if epsilon > 0.0 && unit_f64(rng) < epsilon {
        return below(rng, arms.len());
    }
    let value = |a: &ArmState| {
        if a.pulls > 0.0 {
            a.mean()
        } else {
            f64::INFINITY
        }
    };
    // Reservoir sampling over the arms tied at the maximum.
    let mut best = 0;
    let mut best_value = f64::NEG_INFINITY;
    let mut ties = 0usize;
    for (i, a) in arms.iter().enumerate() {
        let v = value(a);
        if v > best_value {
            best = i;
            best_value = v;
            ties = 1;
        } else if v == best_value {
            ties += 1;
            if below(rng, ties) == 0 {
                best = i;
            }
        }
    }
    best
}

/// Thompson sampling: one Beta draw per arm from `(alpha, beta)`, the largest wins.
/// A NaN draw (impossible for validated state) never wins.
pub(crate) fn choose_thompson<R: Rng + ?Sized>(params: &[(f64, f64)], rng: &mut R) -> usize {
    let mut best = 0;
    let mut best_draw = f64::NEG_INFINITY;
    for (i, &(a, b)) in params.iter().enumerate() {
        let draw = beta(rng, a, b);
        if draw > best_draw {
            best = i;
            best_draw = draw;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use rand::{SeedableRng, rngs::SmallRng};

    use super::*;

    fn tried(pulls: f64, reward_sum: f64) -> ArmState {
        ArmState {
            pulls,
            reward_sum,
            successes: reward_sum,
            lifetime_pulls: pulls as u64,
            lifetime_rewards: 0,
        }
    }

    #[test]
    fn untried_arms_are_pulled_first() {
        let mut rng = SmallRng::seed_from_u64(1);
        let arms = [
            tried(10.0, 9.0),
            ArmState::default(),
            tried(5.0, 0.0),
            ArmState::default(),
        ];
        let mut hits = [0usize; 4];
        for _ in 0..2_000 {
            hits[choose_epsilon_greedy(&arms, 1.0, &mut rng)] += 1;
        }
        assert_eq!(hits[0] + hits[2], 0, "{hits:?}");
        assert!(hits[1] > 850 && hits[3] > 850, "{hits:?}");
    }

    #[test]
    fn greedy_picks_best_mean_and_breaks_ties_uniformly() {
        let mut rng = SmallRng::seed_from_u64(2);
        let arms = [tried(10.0, 1.0), tried(4.0, 2.0), tried(100.0, 20.0)];
        for _ in 0..100 {
            assert_eq!(choose_epsilon_greedy(&arms, 0.0, &mut rng), 1);
        }
        let tie = [tried(10.0, 5.0), tried(4.0, 1.0), tried(2.0, 1.0)];
        let mut hits = [0usize; 3];
        for _ in 0..2_000 {
            hits[choose_epsilon_greedy(&tie, 0.0, &mut rng)] += 1;
        }
        assert_eq!(hits[1], 0);
        assert!(hits[0] > 850 && hits[2] > 850, "{hits:?}");
    }

    #[test]
    fn epsilon_explores_uniformly_at_the_configured_rate() {
        let mut rng = SmallRng::seed_from_u64(3);
        let arms = [tried(10.0, 1.0), tried(10.0, 5.0), tried(10.0, 2.0)];
        let n = 30_000;
        let mut hits = [0usize; 3];
        for _ in 0..n {
            hits[choose_epsilon_greedy(&arms, 0.3, &mut rng)] += 1;
        }
        // Non-best arms each expect n * 0.3 / 3 = 3000 (sd ~52).
        for i in [0, 2] {
            assert!((2_700..=3_300).contains(&hits[i]), "{hits:?}");
        }
        let mut all_explore = [0usize; 3];
        for _ in 0..n {
            all_explore[choose_epsilon_greedy(&arms, 1.0, &mut rng)] += 1;
        }
        for c in all_explore {
            assert!((9_500..=10_500).contains(&c), "{all_explore:?}");
        }
    }

    #[test]
    fn discount_matches_a_naive_weighted_sum() {
        // After a sequence of pulls in one row, an arm's discounted pulls must equal
        // sum over its pulls of discount^(number of row pulls after it).
        let d = 0.9;
        let seq = [0usize, 1, 1, 0, 2, 1, 0, 0, 2, 1];
        let mut arms = vec![ArmState::default(); 3];
        for &arm in &seq {
            apply_pull(&mut arms, arm, d);
        }
        for (arm, state) in arms.iter().enumerate() {
            let naive: f64 = seq
                .iter()
                .enumerate()
                .filter(|&(_, &a)| a == arm)
                .map(|(t, _)| d.powi((seq.len() - 1 - t) as i32))
                .sum();
            assert!((state.pulls - naive).abs() < 1e-12, "arm {arm}");
            assert_eq!(
                state.lifetime_pulls,
                seq.iter().filter(|&&a| a == arm).count() as u64
            );
        }
    }

    #[test]
    fn rewards_are_normalised_and_clipped_for_successes() {
        let mut arms = vec![ArmState::default(); 2];
        apply_pull(&mut arms, 1, 1.0);
        apply_reward(&mut arms, 1, 2.0, 5.0);
        apply_reward(&mut arms, 1, 7.5, 5.0);
        assert_eq!(arms[1].reward_sum, 9.5);
        assert!((arms[1].successes - 1.4).abs() < 1e-12);
        let (a, b) = arms[1].beta_params();
        assert!((a - 2.4).abs() < 1e-12);
        assert_eq!(b, 1.0, "beta is clipped at 1");
        assert_eq!(arms[0].beta_params(), (1.0, 1.0));
    }

    #[test]
    fn decayed_values_flush_to_zero() {
        let mut arms = vec![ArmState::default(); 2];
        apply_pull(&mut arms, 0, 1e-3);
        for _ in 0..100 {
            apply_pull(&mut arms, 1, 1e-3);
        }
        assert_eq!(arms[0].pulls, 0.0);
        assert_eq!(arms[0].lifetime_pulls, 1);
        // A fully decayed arm counts as the best candidate for the greedy rule.
        let mut rng = SmallRng::seed_from_u64(4);
        arms[1].reward_sum = 1.0;
        assert_eq!(choose_epsilon_greedy(&arms, 0.0, &mut rng), 0);
    }

    #[test]
    fn thompson_prefers_the_clearly_better_posterior() {
        let mut rng = SmallRng::seed_from_u64(5);
        let params = [(11.0, 91.0), (41.0, 61.0), (21.0, 81.0)];
        let mut hits = [0usize; 3];
        for _ in 0..1_000 {
            hits[choose_thompson(&params, &mut rng)] += 1;
        }
        assert!(hits[1] > 950, "{hits:?}");
        let nan = [(f64::NAN, 1.0), (2.0, 2.0)];
        assert_eq!(choose_thompson(&nan, &mut rng), 1);
    }
}
