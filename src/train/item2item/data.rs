//! The binary user × item matrix both methods read, as compressed sparse rows: users → items
//! and its transpose items → users, plus kNN's heavy-user sampling. Built once per fit so the
//! methods never touch the raw interactions.

use rand::{SeedableRng, rngs::StdRng};
use rayon::prelude::*;

use crate::data::dataset::Interaction;

/// Compressed sparse rows of a binary matrix; each row's column ids are ascending and distinct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Csr {
    indptr: Vec<usize>,
    indices: Vec<u32>,
}

impl Csr {
    /// Distinct (user, item) pairs grouped by user. Users are compacted to `0..n` in id order
    /// (only the grouping matters), so sparse or huge user ids cost nothing.
    pub(super) fn user_lists(interactions: &[Interaction]) -> Self {
        let mut pairs: Vec<(u32, u32)> = interactions.iter().map(|x| (x.user, x.item)).collect();
        pairs.par_sort_unstable();
        pairs.dedup();
        let mut indptr = vec![0];
        let mut indices = Vec::with_capacity(pairs.len());
        for (pos, &(user, item)) in pairs.iter().enumerate() {
            if pos > 0 && pairs[pos - 1].0 != user {
                indptr.push(indices.len());
            }
            indices.push(item);
        }
        if !indices.is_empty() {
            indptr.push(indices.len());
        }
        Self { indptr, indices }
    }

    /// From explicit rows (tests); each row is sorted and deduplicated.
    #[cfg(test)]
    pub(super) fn from_rows(rows: &[Vec<u32>]) -> Self {
        let mut indptr = vec![0];
        let mut indices = Vec::new();
        for row in rows {
            let mut row = row.clone();
            row.sort_unstable();
            row.dedup();
            indices.extend(row);
            indptr.push(indices.len());
        }
        Self { indptr, indices }
    }

    pub(super) fn n_rows(&self) -> usize {
        self.indptr.len() - 1
    }

    pub(super) fn nnz(&self) -> usize {
        self.indices.len()
    }

    pub(super) fn row(&self, r: usize) -> &[u32] {
        &self.indices[self.indptr[r]..self.indptr[r + 1]]
    }

    /// The transpose with `n_cols` rows (every column id must be `< n_cols`); its rows come out
    /// ascending because rows are visited in order.
    pub(super) fn transpose(&self, n_cols: usize) -> Self {
        let mut indptr = vec![0usize; n_cols + 1];
        for &c in &self.indices {
            indptr[c as usize + 1] += 1;
        }
        for c in 0..n_cols {
            indptr[c + 1] += indptr[c];
        }
        let mut next = indptr.clone();
        let mut indices = vec![0u32; self.indices.len()];
        for r in 0..self.n_rows() {
            for &c in self.row(r) {
                indices[next[c as usize]] = r as u32;
                next[c as usize] += 1;
            }
        }
        Self { indptr, indices }
    }

    /// Rows longer than `cap` replaced by a seeded uniform sample of `cap` of their entries
    /// (kept ascending); returns the new matrix and how many rows were sampled.
    pub(super) fn cap_rows(&self, cap: usize, seed: u64) -> (Self, usize) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut indptr = vec![0];
        let mut indices = Vec::with_capacity(self.nnz());
        let mut capped = 0;
        for r in 0..self.n_rows() {
            let row = self.row(r);
            if row.len() > cap {
                capped += 1;
                let mut picked = rand::seq::index::sample(&mut rng, row.len(), cap).into_vec();
                picked.sort_unstable();
                indices.extend(picked.into_iter().map(|p| row[p]));
            } else {
                indices.extend_from_slice(row);
            }
            indptr.push(indices.len());
        }
        (Self { indptr, indices }, capped)
    }
}
