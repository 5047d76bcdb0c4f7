//! The pairwise SGD steps (WARP and BPR) that one Hogwild worker runs over its share of an
//! epoch's shuffled positives.

use rand::{RngExt, SeedableRng, rngs::Xoshiro256PlusPlus};

use super::Loss;
use super::data::{FeatureMatrix, UserItems};
use super::hogwild::{Adagrad, RowScratch, SideParams};
use super::model::dot;

/// LightFM's clip on the per-sample WARP multiplier `weight · ln(rank)`, for numerical stability.
const MAX_LOSS: f32 = 10.0;

/// Parameters shared by all workers.
pub(crate) struct Params {
    pub(crate) components: usize,
    pub(crate) users: SideParams,
    pub(crate) items: SideParams,
}

/// Everything a worker reads but never writes.
pub(crate) struct EpochInputs<'a> {
    pub(crate) users: &'a FeatureMatrix,
    pub(crate) items: &'a FeatureMatrix,
    pub(crate) positives: &'a UserItems,
    pub(crate) pairs: &'a [(u32, u32)],
    /// Normalised, capped sample weights, aligned with `pairs`.
    pub(crate) weights: &'a [f32],
    pub(crate) loss: Loss,
    pub(crate) max_sampled: usize,
    pub(crate) user_opt: Adagrad,
    pub(crate) item_opt: Adagrad,
}

/// What a worker reports back: summed per-sample loss and counts.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ChunkStats {
    pub(crate) loss_sum: f64,
    pub(crate) samples: u64,
    pub(crate) updates: u64,
}

impl ChunkStats {
    pub(crate) fn merge(self, other: Self) -> Self {
        Self {
            loss_sum: self.loss_sum + other.loss_sum,
            samples: self.samples + other.samples,
            updates: self.updates + other.updates,
        }
    }
}

struct Scratch {
    user: Vec<f32>,
    positive: Vec<f32>,
    negative: Vec<f32>,
    grad: Vec<f32>,
    row: RowScratch,
}

fn softplus(x: f32) -> f32 {
    if x > 20.0 { x } else { x.exp().ln_1p() }
}

/// Runs the loss's SGD step for each pair index in `order` (indices into `inputs.pairs`).
pub(crate) fn run_chunk(
    params: &Params,
    inputs: &EpochInputs<'_>,
    order: &[u32],
    seed: u64,
) -> ChunkStats {
    let d = params.components;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut s = Scratch {
        user: vec![0.0; d],
        positive: vec![0.0; d],
        negative: vec![0.0; d],
        grad: vec![0.0; d],
        row: RowScratch::new(d),
    };
    let n_items = inputs.items.n_rows() as u32;
    // Bound on draws per sample, so that a user who interacted with (almost) every item cannot
    // loop forever while rejecting known positives.
    let max_draws = inputs.max_sampled.saturating_mul(8).saturating_add(16);
    let mut stats = ChunkStats::default();

    for &index in order {
        let index = index as usize;
        let (user, positive) = inputs.pairs[index];
        let weight = inputs.weights[index];
        let user = user as usize;
        params
            .users
            .representation(inputs.users.row(user), &mut s.user);
        let positive_bias = params
            .items
            .representation(inputs.items.row(positive as usize), &mut s.positive);
        let positive_score = dot(&s.user, &s.positive) + positive_bias;
        stats.samples += 1;

        let mut sampled = 0usize;
        let mut draws = 0usize;
        while sampled < inputs.max_sampled && draws < max_draws {
            draws += 1;
            let negative = rng.random_range(0..n_items);
            if inputs.positives.contains(user, negative) {
                continue;
            }
            sampled += 1;
            let negative_bias = params
                .items
                .representation(inputs.items.row(negative as usize), &mut s.negative);
            let negative_score = dot(&s.user, &s.negative) + negative_bias;
            let margin = positive_score - negative_score;

            let multiplier = match inputs.loss {
                Loss::Warp => {
                    if margin >= 1.0 {
                        // Not a violation: keep sampling.
                        continue;
                    }
                    let rank = ((n_items as usize - 1) / sampled).max(1) as f32;
                    let multiplier = (weight * rank.ln()).min(MAX_LOSS);
                    stats.loss_sum += f64::from(multiplier * (1.0 - margin));
                    multiplier
                }
                Loss::Bpr => {
                    stats.loss_sum += f64::from(weight * softplus(-margin));
                    // d/d(margin) of ln(1 + e^-margin) = -sigmoid(-margin).
                    weight / (1.0 + margin.exp())
                }
            };
            if multiplier > 0.0 {
                pairwise_step(params, inputs, user, positive, negative, multiplier, &mut s);
                stats.updates += 1;
            }
            // WARP stops at the first violator; BPR uses exactly one negative.
            break;
        }
    }
    stats
}

/// Gradient step for loss `multiplier · (score(u, neg) − score(u, pos))` using the
/// representations already in `s` (computed before any of this step's writes).
fn pairwise_step(
    params: &Params,
    inputs: &EpochInputs<'_>,
    user: usize,
    positive: u32,
    negative: u32,
    multiplier: f32,
    s: &mut Scratch,
) {
    for ((g, n), p) in s.grad.iter_mut().zip(&s.negative).zip(&s.positive) {
        *g = multiplier * (n - p);
    }
    // The user bias cancels out of the score difference: no gradient.
    params.users.adagrad_step(
        inputs.users.row(user),
        &s.grad,
        None,
        inputs.user_opt,
        &mut s.row,
    );

    for (g, u) in s.grad.iter_mut().zip(&s.user) {
        *g = -multiplier * u;
    }
    params.items.adagrad_step(
        inputs.items.row(positive as usize),
        &s.grad,
        Some(-multiplier),
        inputs.item_opt,
        &mut s.row,
    );

    s.grad.iter_mut().for_each(|g| *g = -*g);
    params.items.adagrad_step(
        inputs.items.row(negative as usize),
        &s.grad,
        Some(multiplier),
        inputs.item_opt,
        &mut s.row,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;

    fn tiny() -> (
        Params,
        FeatureMatrix,
        FeatureMatrix,
        UserItems,
        Vec<(u32, u32)>,
    ) {
        let mut rng = StdRng::seed_from_u64(3);
        let params = Params {
            components: 4,
            users: SideParams::init(2, 4, &mut rng),
            items: SideParams::init(5, 4, &mut rng),
        };
        let pairs = vec![(0, 0), (0, 1), (1, 2)];
        let positives = UserItems::new(2, &pairs);
        (
            params,
            FeatureMatrix::identity(2),
            FeatureMatrix::identity(5),
            positives,
            pairs,
        )
    }

    fn score(p: &Params, user: usize, item: usize) -> f32 {
        let (ue, _) = p.users.snapshot();
        let (ie, ib) = p.items.snapshot();
        dot(&ue[user * 4..user * 4 + 4], &ie[item * 4..item * 4 + 4]) + ib[item]
    }

    #[test]
    fn repeated_steps_raise_positive_above_negatives() {
        for loss in [Loss::Warp, Loss::Bpr] {
            let (params, users, items, positives, pairs) = tiny();
            let weights = vec![1.0; pairs.len()];
            let inputs = EpochInputs {
                users: &users,
                items: &items,
                positives: &positives,
                pairs: &pairs,
                weights: &weights,
                loss,
                max_sampled: 10,
                user_opt: Adagrad {
                    learning_rate: 0.1,
                    alpha: 0.0,
                },
                item_opt: Adagrad {
                    learning_rate: 0.1,
                    alpha: 0.0,
                },
            };
            let mut first = None;
            let mut last = ChunkStats::default();
            for epoch in 0..200 {
                last = run_chunk(&params, &inputs, &[0, 1, 2], epoch);
                first.get_or_insert(last);
            }
            let first = first.unwrap();
            assert!(
                last.loss_sum < first.loss_sum * 0.5,
                "{loss:?}: {first:?} -> {last:?}"
            );
            assert_eq!(last.samples, 3);
            // User 0 prefers its positives 0 and 1 to every negative; user 1 prefers item 2.
            for neg in [2, 3, 4] {
                assert!(score(&params, 0, 0) > score(&params, 0, neg), "{loss:?}");
                assert!(score(&params, 0, 1) > score(&params, 0, neg), "{loss:?}");
            }
            for neg in [0, 1, 3, 4] {
                assert!(score(&params, 1, 2) > score(&params, 1, neg), "{loss:?}");
            }
        }
    }

    #[test]
    fn user_with_every_item_terminates_without_updates() {
        let mut rng = StdRng::seed_from_u64(1);
        let params = Params {
            components: 2,
            users: SideParams::init(1, 2, &mut rng),
            items: SideParams::init(2, 2, &mut rng),
        };
        let before = params.items.snapshot();
        let pairs = vec![(0, 0), (0, 1)];
        let positives = UserItems::new(1, &pairs);
        let (users, items) = (FeatureMatrix::identity(1), FeatureMatrix::identity(2));
        let inputs = EpochInputs {
            users: &users,
            items: &items,
            positives: &positives,
            pairs: &pairs,
            weights: &[1.0, 1.0],
            loss: Loss::Warp,
            max_sampled: 10,
            user_opt: Adagrad {
                learning_rate: 0.1,
                alpha: 0.0,
            },
            item_opt: Adagrad {
                learning_rate: 0.1,
                alpha: 0.0,
            },
        };
        let stats = run_chunk(&params, &inputs, &[0, 1], 5);
        assert_eq!(stats.updates, 0);
        assert_eq!(params.items.snapshot(), before);
    }
}
