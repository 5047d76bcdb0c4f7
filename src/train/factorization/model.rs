//! The trained hybrid model: per-feature embeddings and biases, and the entity vectors
//! (weighted sums over an entity's features) that retrieval and ranking consume.

use super::data::FeatureMatrix;

/// LightFM-style hybrid factorisation: an entity's vector is the weighted sum of its features'
/// embeddings, so users and items with features but no interactions still get vectors.
///
/// `score(u, i) = user_vec(u) · item_vec(i) + item_bias(i)`. Embeddings are row-major
/// `n_features × components`. The user bias is kept for format compatibility with LightFM
/// exports; the pairwise losses trained here never change it (it cancels out of every ranking).
#[derive(Debug, Clone, PartialEq)]
pub struct HybridModel {
    pub components: usize,
    pub user_feature_emb: Vec<f32>,
    pub user_feature_bias: Vec<f32>,
    pub item_feature_emb: Vec<f32>,
    pub item_feature_bias: Vec<f32>,
}

impl HybridModel {
    pub fn n_user_features(&self) -> usize {
        self.user_feature_bias.len()
    }

    pub fn n_item_features(&self) -> usize {
        self.item_feature_bias.len()
    }

    /// Row-major `users.n_rows() × components` user vectors.
    ///
    /// Features the model has no embedding for (index ≥ `n_user_features`, e.g. a feature that
    /// first appeared after training) contribute nothing, exactly like a zero embedding.
    pub fn user_vectors(&self, users: &FeatureMatrix) -> Vec<f32> {
        entity_vectors(
            self.components,
            &self.user_feature_emb,
            &self.user_feature_bias,
            users,
        )
        .0
    }

    /// Row-major `items.n_rows() × components` item vectors, and each item's bias.
    /// Unknown features are ignored as in [`HybridModel::user_vectors`].
    pub fn item_vectors(&self, items: &FeatureMatrix) -> (Vec<f32>, Vec<f32>) {
        entity_vectors(
            self.components,
            &self.item_feature_emb,
            &self.item_feature_bias,
            items,
        )
    }
}

/// Dot product with eight independent accumulators: a plain `zip().sum()` is a serial chain of
/// dependent float additions that the compiler may not reorder, hence not vectorise.
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; 8];
    let (a_chunks, b_chunks) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (ca, cb) in a_chunks.zip(b_chunks) {
        for k in 0..8 {
            acc[k] += ca[k] * cb[k];
        }
    }
    acc.iter().sum::<f32>() + tail
}

fn entity_vectors(
    d: usize,
    embeddings: &[f32],
    biases: &[f32],
    features: &FeatureMatrix,
) -> (Vec<f32>, Vec<f32>) {
    let n = features.n_rows();
    let n_known = biases.len().min(embeddings.len() / d.max(1));
    let mut vectors = vec![0.0f32; n * d];
    let mut entity_biases = vec![0.0f32; n];
    if d == 0 {
        return (vectors, entity_biases);
    }
    for (row, (out, bias)) in vectors
        .chunks_exact_mut(d)
        .zip(entity_biases.iter_mut())
        .enumerate()
    {
        let (Some(&start), Some(&end)) = (features.indptr.get(row), features.indptr.get(row + 1))
        else {
            continue;
        };
        let (Some(indices), Some(values)) = (
            features.indices.get(start..end),
            features.values.get(start..end),
        ) else {
            continue;
        };
        for (&feature, &x) in indices.iter().zip(values) {
            let f = feature as usize;
            if f >= n_known {
                continue;
            }
            for (o, e) in out.iter_mut().zip(&embeddings[f * d..(f + 1) * d]) {
                *o += x * e;
            }
            *bias += x * biases[f];
        }
    }
    (vectors, entity_biases)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn vectors_match_dense_product(
            rows in proptest::collection::vec(
                proptest::collection::vec((0u32..7, -2.0f32..2.0), 0..5), 0..6),
            emb in proptest::collection::vec(-1.0f32..1.0, 5 * 3),
            bias in proptest::collection::vec(-1.0f32..1.0, 5),
        ) {
            // 5 known features, indices 5 and 6 are unknown to the model.
            let model = HybridModel {
                components: 3,
                user_feature_emb: emb.clone(),
                user_feature_bias: bias.clone(),
                item_feature_emb: emb.clone(),
                item_feature_bias: bias.clone(),
            };
            let matrix = FeatureMatrix::from_rows(7, rows.clone());
            let (vecs, biases) = model.item_vectors(&matrix);
            prop_assert_eq!(&model.user_vectors(&matrix), &vecs);
            for (r, row) in rows.iter().enumerate() {
                let mut dense = [0.0f64; 7];
                for &(f, x) in row {
                    dense[f as usize] += f64::from(x);
                }
                for k in 0..3 {
                    let expected: f64 =
                        (0..5).map(|f| dense[f] * f64::from(emb[f * 3 + k])).sum();
                    prop_assert!((f64::from(vecs[r * 3 + k]) - expected).abs() < 1e-4);
                }
                let expected_bias: f64 = (0..5).map(|f| dense[f] * f64::from(bias[f])).sum();
                prop_assert!((f64::from(biases[r]) - expected_bias).abs() < 1e-4);
            }
        }
    }

    #[test]
    fn dot_matches_naive_for_all_lengths() {
        for n in 0..40 {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let naive: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(x * y)).sum();
            assert!((f64::from(dot(&a, &b)) - naive).abs() < 1e-5, "n={n}");
        }
    }

    #[test]
    fn vectors_are_weighted_feature_sums_and_ignore_unknown_features() {
        let model = HybridModel {
            components: 2,
            user_feature_emb: vec![1.0, 2.0, 3.0, 4.0],
            user_feature_bias: vec![0.0, 0.0],
            item_feature_emb: vec![1.0, 0.0, 0.0, 1.0, 2.0, 2.0],
            item_feature_bias: vec![0.5, -1.0, 2.0],
        };
        let users = FeatureMatrix::from_rows(3, [vec![(0, 0.5), (1, 0.5)], vec![(2, 1.0)]]);
        assert_eq!(model.user_vectors(&users), vec![2.0, 3.0, 0.0, 0.0]);

        let items = FeatureMatrix::from_rows(3, [vec![(0, 1.0)], vec![(1, 0.5), (2, 0.5)], vec![]]);
        let (vecs, bias) = model.item_vectors(&items);
        assert_eq!(vecs, vec![1.0, 0.0, 1.0, 1.5, 0.0, 0.0]);
        assert_eq!(bias, vec![0.5, 0.5, 0.0]);
    }
}
