//! Indexed inputs of the factoriser: CSR feature matrices and the interaction list, with the
//! validation that lets the training loops index them without bounds surprises.

use super::FactorizationError;

/// Sparse entity × feature matrix in CSR layout: row `r` is entity `r` (a user or an item), listing
/// the features that describe it and their weights. The caller includes each entity's identity
/// feature; LightFM additionally normalises each row to sum to 1 ([`FeatureMatrix::normalize_rows`]).
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureMatrix {
    pub n_features: usize,
    pub indptr: Vec<usize>,
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

impl FeatureMatrix {
    /// One identity feature per entity, weight 1 (pure collaborative filtering).
    pub fn identity(n: usize) -> Self {
        Self {
            n_features: n,
            indptr: (0..=n).collect(),
            indices: (0..n).map(|i| i as u32).collect(),
            values: vec![1.0; n],
        }
    }

    /// Builds a matrix from per-entity `(feature, weight)` lists.
    pub fn from_rows<R>(n_features: usize, rows: impl IntoIterator<Item = R>) -> Self
    where
        R: IntoIterator<Item = (u32, f32)>,
    {
        let mut matrix = Self {
            n_features,
            indptr: vec![0],
            indices: Vec::new(),
            values: Vec::new(),
        };
        for row in rows {
            for (feature, weight) in row {
                matrix.indices.push(feature);
                matrix.values.push(weight);
            }
            matrix.indptr.push(matrix.indices.len());
        }
        matrix
    }

    /// Number of entities (rows).
    pub fn n_rows(&self) -> usize {
        self.indptr.len().saturating_sub(1)
    }

    /// Feature indices and weights of entity `row`. Panics if `row` is out of range, like slice
    /// indexing; call [`FeatureMatrix::validate`] before trusting `indptr`.
    pub fn row(&self, row: usize) -> (&[u32], &[f32]) {
        let range = self.indptr[row]..self.indptr[row + 1];
        (&self.indices[range.clone()], &self.values[range])
    }

    /// Scales every non-empty row so that its weights sum to 1 (LightFM's default normalisation).
    /// Rows whose weights sum to zero are left unchanged.
    pub fn normalize_rows(&mut self) {
        for row in 0..self.n_rows() {
            let range = self.indptr[row]..self.indptr[row + 1];
            let values = &mut self.values[range];
            let sum: f32 = values.iter().sum();
            if sum != 0.0 && sum.is_finite() {
                values.iter_mut().for_each(|v| *v /= sum);
            }
        }
    }

    /// Checks the CSR invariants the training loops rely on.
    pub fn validate(&self, name: &'static str) -> Result<(), FactorizationError> {
        let bad = |reason: String| FactorizationError::MalformedFeatures {
            matrix: name,
            reason,
        };
        if self.indptr.first() != Some(&0) {
            return Err(bad("indptr must start with 0".into()));
        }
        if self.indptr.windows(2).any(|w| w[0] > w[1]) {
            return Err(bad("indptr must be non-decreasing".into()));
        }
        let nnz = self.indptr[self.indptr.len() - 1];
        if nnz != self.indices.len() || nnz != self.values.len() {
            return Err(bad(format!(
                "indptr ends at {nnz} but there are {} indices and {} values",
                self.indices.len(),
                self.values.len()
            )));
        }
        if let Some(&f) = self
            .indices
            .iter()
            .find(|&&f| f as usize >= self.n_features)
        {
            return Err(bad(format!(
                "feature index {f} is out of range (n_features = {})",
                self.n_features
            )));
        }
        if let Some(v) = self.values.iter().find(|v| !v.is_finite()) {
            return Err(bad(format!("feature weight {v} is not finite")));
        }
        Ok(())
    }
}

/// Positive (implicit) interactions: `pairs[k] = (user, item)` with sample weight `weights[k]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainInteractions {
    pub n_users: usize,
    pub n_items: usize,
    pub pairs: Vec<(u32, u32)>,
    pub weights: Vec<f32>,
}

impl TrainInteractions {
    /// Interactions that all weigh 1.
    pub fn unweighted(n_users: usize, n_items: usize, pairs: Vec<(u32, u32)>) -> Self {
        let weights = vec![1.0; pairs.len()];
        Self {
            n_users,
            n_items,
            pairs,
            weights,
        }
    }

    /// Checks that ids are in range and weights are finite and non-negative.
    pub fn validate(&self, name: &'static str) -> Result<(), FactorizationError> {
        if self.weights.len() != self.pairs.len() {
            return Err(FactorizationError::WeightsLength {
                set: name,
                pairs: self.pairs.len(),
                weights: self.weights.len(),
            });
        }
        for (index, (&(user, item), &weight)) in self.pairs.iter().zip(&self.weights).enumerate() {
            if user as usize >= self.n_users || item as usize >= self.n_items {
                return Err(FactorizationError::InteractionOutOfRange {
                    set: name,
                    index,
                    user,
                    item,
                });
            }
            if !(weight.is_finite() && weight >= 0.0) {
                return Err(FactorizationError::InvalidWeight {
                    set: name,
                    index,
                    weight,
                });
            }
        }
        Ok(())
    }
}

/// Per-user sorted, de-duplicated item sets (CSR), for "is this item a known positive?" lookups.
#[derive(Debug, Clone)]
pub(crate) struct UserItems {
    indptr: Vec<usize>,
    items: Vec<u32>,
}

impl UserItems {
    /// Groups `pairs` by user. Ids must already be validated against `n_users`.
    pub(crate) fn new(n_users: usize, pairs: &[(u32, u32)]) -> Self {
        let mut counts = vec![0usize; n_users + 1];
        for &(user, _) in pairs {
            counts[user as usize + 1] += 1;
        }
        for u in 0..n_users {
            counts[u + 1] += counts[u];
        }
        let mut fill = counts.clone();
        let mut items = vec![0u32; pairs.len()];
        for &(user, item) in pairs {
            items[fill[user as usize]] = item;
            fill[user as usize] += 1;
        }
        // Sort and de-duplicate each user's slice, compacting in place.
        let mut indptr = Vec::with_capacity(n_users + 1);
        indptr.push(0);
        let mut write = 0;
        for u in 0..n_users {
            let row = &mut items[counts[u]..counts[u + 1]];
            row.sort_unstable();
            let mut last = None;
            for read in counts[u]..counts[u + 1] {
                let item = items[read];
                if last != Some(item) {
                    items[write] = item;
                    write += 1;
                    last = Some(item);
                }
            }
            indptr.push(write);
        }
        items.truncate(write);
        Self { indptr, items }
    }

    pub(crate) fn n_users(&self) -> usize {
        self.indptr.len() - 1
    }

    /// The user's distinct items, sorted.
    pub(crate) fn items(&self, user: usize) -> &[u32] {
        &self.items[self.indptr[user]..self.indptr[user + 1]]
    }

    pub(crate) fn contains(&self, user: usize, item: u32) -> bool {
        self.items(user).binary_search(&item).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn validate_rejects_broken_csr() {
        let ok = FeatureMatrix::from_rows(3, [vec![(0, 1.0)], vec![(1, 0.5), (2, 0.5)]]);
        assert!(ok.validate("items").is_ok());
        assert_eq!(ok.n_rows(), 2);

        let mut out_of_range = ok.clone();
        out_of_range.indices[0] = 3;
        assert!(out_of_range.validate("items").is_err());

        let mut nan = ok.clone();
        nan.values[1] = f32::NAN;
        assert!(nan.validate("items").is_err());

        let mut decreasing = ok.clone();
        decreasing.indptr = vec![0, 2, 1];
        assert!(decreasing.validate("items").is_err());

        let mut short = ok;
        short.values.pop();
        assert!(short.validate("items").is_err());
    }

    #[test]
    fn normalize_rows_sums_to_one_and_keeps_empty_rows() {
        let mut m = FeatureMatrix::from_rows(3, [vec![(0, 2.0), (1, 6.0)], vec![], vec![(2, 0.0)]]);
        m.normalize_rows();
        assert_eq!(m.row(0).1, &[0.25, 0.75]);
        assert!(m.row(1).0.is_empty());
        assert_eq!(m.row(2).1, &[0.0]);
    }

    #[test]
    fn interactions_validation() {
        let mut t = TrainInteractions::unweighted(2, 2, vec![(0, 1), (1, 0)]);
        assert!(t.validate("train").is_ok());
        t.weights[1] = -1.0;
        assert!(matches!(
            t.validate("train"),
            Err(FactorizationError::InvalidWeight { index: 1, .. })
        ));
        t.weights[1] = 1.0;
        t.pairs[0] = (2, 0);
        assert!(matches!(
            t.validate("train"),
            Err(FactorizationError::InteractionOutOfRange { index: 0, .. })
        ));
        t.weights.pop();
        assert!(t.validate("train").is_err());
    }

    proptest! {
        #[test]
        fn user_items_matches_naive_sets(
            pairs in proptest::collection::vec((0u32..6, 0u32..9), 0..60)
        ) {
            let sets = UserItems::new(6, &pairs);
            prop_assert_eq!(sets.n_users(), 6);
            for user in 0..6u32 {
                let mut expected: Vec<u32> =
                    pairs.iter().filter(|p| p.0 == user).map(|p| p.1).collect();
                expected.sort_unstable();
                expected.dedup();
                prop_assert_eq!(sets.items(user as usize), expected.as_slice());
                for item in 0..9 {
                    prop_assert_eq!(sets.contains(user as usize, item), expected.contains(&item));
                }
            }
        }
    }
}
