//! Held-out recall@k by exact scoring of the whole catalogue, used for early stopping: a fixed,
//! seeded sample of validation users, each user's training items excluded from the ranking.

use rand::{SeedableRng, rngs::StdRng, seq::SliceRandom};
use rayon::prelude::*;

use super::data::{FeatureMatrix, TrainInteractions, UserItems};
use super::model::{HybridModel, dot};

/// Validation users (a seeded sample) with their relevant items: held-out items that are not
/// already training positives (those are excluded from the ranking, so could never be hit).
pub(crate) struct RecallEvaluator {
    k: usize,
    users: Vec<u32>,
    relevant: Vec<Vec<u32>>,
}

impl RecallEvaluator {
    /// `train` and `valid` must be validated and agree on `n_users`.
    pub(crate) fn new(
        train: &UserItems,
        valid: &TrainInteractions,
        k: usize,
        max_users: usize,
        seed: u64,
    ) -> Self {
        let held_out = UserItems::new(valid.n_users, &valid.pairs);
        let mut candidates: Vec<(u32, Vec<u32>)> = (0..held_out.n_users())
            .filter_map(|user| {
                let relevant: Vec<u32> = held_out
                    .items(user)
                    .iter()
                    .copied()
                    .filter(|&item| user >= train.n_users() || !train.contains(user, item))
                    .collect();
                (!relevant.is_empty()).then_some((user as u32, relevant))
            })
            .collect();
        if candidates.len() > max_users {
            candidates.shuffle(&mut StdRng::seed_from_u64(seed));
            candidates.truncate(max_users);
            candidates.sort_unstable_by_key(|c| c.0);
        }
        let (users, relevant) = candidates.into_iter().unzip();
        Self { k, users, relevant }
    }

    pub(crate) fn n_users(&self) -> usize {
        self.users.len()
    }

    /// Mean recall@k (hits in the top k / number of relevant items) over the sampled users;
    /// 0 when there are none. Runs on the current rayon pool; the result does not depend on the
    /// number of threads.
    pub(crate) fn recall(
        &self,
        model: &HybridModel,
        users: &FeatureMatrix,
        items: &FeatureMatrix,
        train: &UserItems,
    ) -> f32 {
        if self.users.is_empty() {
            return 0.0;
        }
        let d = model.components;
        let user_vecs = model.user_vectors(users);
        let (item_vecs, item_bias) = model.item_vectors(items);
        let n_items = item_bias.len();
        let k = self.k.min(n_items);
        let per_user: Vec<f64> = self
            .users
            .par_iter()
            .zip(&self.relevant)
            .map_init(
                || Vec::with_capacity(n_items),
                |ranked: &mut Vec<(f32, u32)>, (&user, relevant)| {
                    let user = user as usize;
                    let Some(u) = user_vecs.get(user * d..(user + 1) * d) else {
                        return 0.0;
                    };
                    let seen = if user < train.n_users() {
                        train.items(user)
                    } else {
                        &[]
                    };
                    ranked.clear();
                    ranked.extend(
                        item_vecs
                            .chunks_exact(d.max(1))
                            .zip(&item_bias)
                            .enumerate()
                            .filter(|(item, _)| seen.binary_search(&(*item as u32)).is_err())
                            .map(|(item, (v, b))| (dot(v, u) + b, item as u32)),
                    );
                    let top = top_k(ranked, k);
                    let hits = top
                        .iter()
                        .filter(|(_, item)| relevant.binary_search(item).is_ok())
                        .count();
                    hits as f64 / relevant.len() as f64
                },
            )
            .collect();
        (per_user.iter().sum::<f64>() / per_user.len() as f64) as f32
    }
}

/// The `k` best `(score, id)` pairs, ties broken by lower id; NaN scores rank last.
fn top_k(ranked: &mut [(f32, u32)], k: usize) -> &[(f32, u32)] {
    let order = |a: &(f32, u32), b: &(f32, u32)| {
        let key = |s: f32| if s.is_nan() { f32::NEG_INFINITY } else { s };
        key(b.0).total_cmp(&key(a.0)).then(a.1.cmp(&b.1))
    };
    let k = k.min(ranked.len());
    if k == 0 {
        return &[];
    }
    if k < ranked.len() {
        ranked.select_nth_unstable_by(k - 1, order);
    }
    &ranked[..k]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn top_k_matches_full_sort(
            scores in proptest::collection::vec(-5i8..5, 0..40),
            k in 0usize..45,
        ) {
            let mut ranked: Vec<(f32, u32)> =
                scores.iter().enumerate().map(|(i, &s)| (f32::from(s), i as u32)).collect();
            let mut expected = ranked.clone();
            expected.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            expected.truncate(k);
            let mut got = top_k(&mut ranked, k).to_vec();
            got.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            prop_assert_eq!(got, expected);
        }
    }

    #[test]
    fn recall_excludes_training_items_and_counts_hits() {
        // Items score by their bias only: item 3 > 2 > 1 > 0.
        let model = HybridModel {
            components: 1,
            user_feature_emb: vec![0.0; 2],
            user_feature_bias: vec![0.0; 2],
            item_feature_emb: vec![0.0; 4],
            item_feature_bias: vec![0.0, 1.0, 2.0, 3.0],
        };
        let users = FeatureMatrix::identity(2);
        let items = FeatureMatrix::identity(4);
        // User 0 trained on item 3, so its top-1 is item 2; user 1 has no training items.
        let train = UserItems::new(2, &[(0, 3)]);
        let valid = TrainInteractions::unweighted(2, 4, vec![(0, 2), (0, 3), (1, 0), (1, 3)]);
        let eval = RecallEvaluator::new(&train, &valid, 1, 10, 0);
        assert_eq!(eval.n_users(), 2);
        // User 0: relevant {2} (3 is a training item), top-1 = 2 -> recall 1.
        // User 1: relevant {0, 3}, top-1 = 3 -> recall 0.5.
        let recall = eval.recall(&model, &users, &items, &train);
        assert!((recall - 0.75).abs() < 1e-6, "{recall}");
    }

    #[test]
    fn user_sample_is_capped_and_seeded() {
        let train = UserItems::new(50, &[]);
        let pairs = (0..50).map(|u| (u, 0)).collect();
        let valid = TrainInteractions::unweighted(50, 1, pairs);
        let a = RecallEvaluator::new(&train, &valid, 10, 7, 9);
        let b = RecallEvaluator::new(&train, &valid, 10, 7, 9);
        assert_eq!(a.n_users(), 7);
        assert_eq!(a.users, b.users);
    }
}
