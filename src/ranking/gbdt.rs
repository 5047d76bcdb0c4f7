//! Native scoring of LightGBM text models: the ranker's hot path without the C++ library.
//!
//! LightGBM's own prediction costs ~5 µs per row and 100 trees through its C API (per-row
//! allocations, sparse pair vectors, a lock, one mispredicted branch every other tree level);
//! a request scores hundreds of candidates against hundreds of trees. This module parses the
//! text model format (see [`NativeModel::parse`]) and applies exactly LightGBM's decision rules
//! (`Tree::NumericalDecision` / `Tree::CategoricalDecision`, `kZeroThreshold`, missing-value
//! types), summing leaf values in tree order, so its scores equal LightGBM's raw scores bit for
//! bit. Batches use branch-free bitmask evaluation over binned inputs ([`binned`]); trees that
//! do not fit it, and single rows, walk a flat pre-order node array ([`walk`]).
//!
//! It must never panic or loop on a malformed file: the parser checks every index and that each
//! tree is a proper binary tree before the scorer may walk it.

mod binned;
mod parse;
#[cfg(test)]
mod tests;
mod walk;

use std::path::{Path, PathBuf};

/// LightGBM's `kZeroThreshold` (`1e-35f` widened to double): inputs whose magnitude is at most
/// this are treated as exactly zero, and "zero" missing-value splits use it too.
pub const K_ZERO_THRESHOLD: f64 = 1e-35_f32 as f64;

/// Walks advanced in lock-step (see [`walk`]): enough independent work to hide the latency of
/// each step's two dependent loads, few enough to keep every walk's position in a register.
const LANES: usize = 8;

/// Errors of the ranking model layer (native scorer and the LightGBM wrapper).
#[derive(Debug, thiserror::Error)]
pub enum RankerError {
    /// The model text is malformed or uses a feature this scorer does not support.
    #[error("LightGBM model text, line {line}: {reason}")]
    Parse { line: usize, reason: String },
    /// Reading a model file failed.
    #[error("reading {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The LightGBM library reported an error.
    #[error("LightGBM: {0}")]
    Lightgbm(String),
    /// Rows do not have the number of features the model was trained with.
    #[error("feature count mismatch: the model expects {expected} features, got {got}")]
    FeatureMismatch { expected: usize, got: usize },
    /// Input data or parameters are inconsistent (shapes, groups, parameter values).
    #[error("invalid input: {reason}")]
    InvalidInput { reason: String },
}

/// Node flag: the entry is a leaf; `payload` holds the leaf value, `right` points to the leaf
/// itself and the feature index is the always-NaN padding column, so a lock-step walk that is
/// still going on for other lanes stays on the leaf.
const LEAF: u32 = 1;
/// Node flag: categorical split; `payload` holds the bitset's `start << 32 | len` in `cat_bits`.
const CATEGORICAL: u32 = 2;
/// Node flag: "special" inputs (NaN, and zero when [`ZERO_SPECIAL`]) go to the left child.
const SPECIAL_LEFT: u32 = 4;
/// Node flag: an input equal to zero is special (LightGBM missing type `Zero`).
const ZERO_SPECIAL: u32 = 8;
const FLAG_SHIFT: u32 = 24;
const FEATURE_MASK: u32 = (1 << FLAG_SHIFT) - 1;
/// Largest feature index the packed node layout can hold (one index is kept for the padding
/// column that leaves point at).
const MAX_FEATURE_INDEX: usize = FEATURE_MASK as usize - 1;

/// One entry of the flat pre-order node array (16 bytes, four per cache line).
///
/// Internal nodes are followed directly by their left subtree; `right` is the absolute index of
/// the right child. LightGBM's three missing-value types are folded at load time into two flags:
///
/// | missing type | NaN goes            | zero goes           |
/// |--------------|---------------------|---------------------|
/// | None         | as `0.0 <= t`       | as `0.0 <= t`       |
/// | Zero         | default direction   | default direction   |
/// | NaN          | default direction   | as `0.0 <= t`       |
///
/// so a numerical decision is "special (NaN, or zero under `Zero`) → [`SPECIAL_LEFT`], else
/// `x <= threshold`" (inputs are already mapped to exact zero below [`K_ZERO_THRESHOLD`]).
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
struct Node {
    /// Threshold (numerical split) or leaf value as `f64` bits; bitset range (categorical split).
    payload: u64,
    /// Index of the right child in `NativeModel::nodes`; a leaf's own index for leaves.
    right: u32,
    /// Feature index in the low 24 bits, flags in the high 8 bits.
    meta: u32,
}

impl Node {
    /// A leaf stored at index `at` of a model with `num_features` features (see [`LEAF`]).
    fn leaf(value: f64, at: u32, num_features: usize) -> Node {
        Node {
            payload: value.to_bits(),
            right: at,
            meta: (num_features as u32) | (LEAF << FLAG_SHIFT),
        }
    }

    #[inline(always)]
    fn flags(self) -> u32 {
        self.meta >> FLAG_SHIFT
    }

    #[inline(always)]
    fn feature(self) -> usize {
        (self.meta & FEATURE_MASK) as usize
    }
}

/// Where one tree lives in [`NativeModel::nodes`] and how it is scored.
#[derive(Clone, Copy, Debug)]
struct TreeInfo {
    /// Index of the root entry.
    root: u32,
    /// Number of entries (nodes and leaves).
    len: u32,
    /// Index in [`NativeModel::binned`], for trees scored in batches by bitmasks.
    binned: Option<u32>,
    /// Depth of the deepest leaf (0 for a single-leaf tree).
    depth: u32,
    /// Only numerical splits without zero-as-missing: eligible for the lock-step walk, whose
    /// decision is `x <= threshold || (x is NaN && SPECIAL_LEFT)`.
    simple: bool,
}

/// A LightGBM model (one tree per iteration) laid out for fast scoring.
#[derive(Clone, Debug)]
pub struct NativeModel {
    /// All trees' entries in pre-order, tree after tree.
    nodes: Vec<Node>,
    /// The trees in boosting order.
    trees: Vec<TreeInfo>,
    /// Concatenated bitsets of all categorical splits.
    cat_bits: Vec<u32>,
    /// Batch form of the trees that have one (see [`binned`]).
    binned: Box<binned::BinnedForest>,
    feature_names: Vec<String>,
    objective: Option<String>,
}

impl NativeModel {
    /// Parses a LightGBM text model (`Booster::save_model` / `model_to_string` output).
    ///
    /// Supported: one tree per iteration (regression, binary, lambdarank and other
    /// single-output objectives), numerical and categorical splits, all missing-value types,
    /// single-leaf trees. Rejected with [`RankerError::Parse`]: multiclass models, linear trees,
    /// random-forest (`average_output`) models, and any structural inconsistency.
    pub fn parse(text: &str) -> Result<NativeModel, RankerError> {
        parse::parse_model(text)
    }

    /// Reads and parses a LightGBM text model file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<NativeModel, RankerError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| RankerError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        NativeModel::parse(&text)
    }

    /// Number of input features (`max_feature_idx + 1`).
    pub fn num_features(&self) -> usize {
        self.feature_names.len()
    }

    /// Feature names in input order, as stored in the model.
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    /// Number of trees (= boosting iterations).
    pub fn num_trees(&self) -> usize {
        self.trees.len()
    }

    /// The `objective=` line of the model (e.g. `lambdarank`, `binary sigmoid:1`), if any.
    pub fn objective(&self) -> Option<&str> {
        self.objective.as_deref()
    }

    /// Depth of the deepest leaf over all trees (a single-leaf tree has depth 0).
    pub fn max_depth(&self) -> usize {
        self.trees
            .iter()
            .map(|t| t.depth as usize)
            .max()
            .unwrap_or(0)
    }

    /// Raw score of one row: the sum of the leaf values of all trees, which is what LightGBM's
    /// `predict` returns for lambdarank (and its raw score for other objectives).
    pub fn score(&self, row: &[f32]) -> Result<f64, RankerError> {
        let n = self.num_features();
        if row.len() != n {
            return Err(RankerError::FeatureMismatch {
                expected: n,
                got: row.len(),
            });
        }
        let mut x = Vec::with_capacity(n + 1);
        walk::convert_row(row, &mut x);
        let mut sum = 0.0;
        // Lanes are consecutive trees on the same row; their leaf values are added in tree
        // order, as LightGBM does, so the sum is identical.
        for chunk in self.trees.chunks(LANES) {
            if let Ok(group) = <&[TreeInfo; LANES]>::try_from(chunk)
                && group.iter().all(|t| t.simple)
            {
                let roots = group.map(|t| t.root as usize);
                let depth = group.iter().map(|t| t.depth).max().unwrap_or(0);
                for v in self.walk_lanes(roots, [0; LANES], &x, depth) {
                    sum += v;
                }
            } else {
                for t in chunk {
                    sum += self.eval_tree(t.root as usize, &x);
                }
            }
        }
        Ok(sum)
    }

    /// Raw scores of row-major `rows` (`n_features` values each), written to `out` (cleared
    /// first, so a caller can reuse the buffer). Scores equal [`NativeModel::score`] per row.
    ///
    /// Rows are processed in blocks of 64, tree after tree (so each row's leaf values are
    /// added in tree order): numerical trees of up to 32 leaves by branch-free bitmasks over
    /// binned inputs (see [`binned`]), other trees by walks, eight rows in lock-step.
    pub fn score_batch(
        &self,
        rows: &[f32],
        n_features: usize,
        out: &mut Vec<f64>,
    ) -> Result<(), RankerError> {
        let nf = self.num_features();
        if n_features != nf {
            return Err(RankerError::FeatureMismatch {
                expected: nf,
                got: n_features,
            });
        }
        if !rows.len().is_multiple_of(nf) {
            return Err(RankerError::InvalidInput {
                reason: format!(
                    "{} values are not a whole number of rows of {nf} features",
                    rows.len()
                ),
            });
        }
        out.clear();
        out.resize(rows.len() / nf, 0.0);
        let walked = self.trees.iter().any(|t| t.binned.is_none());
        let stride = nf + 1;
        let mut bins = Vec::new();
        let mut converted = Vec::new();
        for (rows_in, acc) in rows
            .chunks(binned::BLOCK * nf)
            .zip(out.chunks_mut(binned::BLOCK))
        {
            if !self.binned.is_empty() {
                self.binned.bin_rows(rows_in, nf, &mut bins);
            }
            if walked {
                converted.clear();
                for row in rows_in.chunks_exact(nf) {
                    walk::convert_row(row, &mut converted);
                }
            }
            let full = acc.len() / LANES * LANES;
            for tree in &self.trees {
                if let Some(b) = tree.binned {
                    self.binned.add_tree_scores(b, &bins, acc);
                    continue;
                }
                let root = tree.root as usize;
                let rest = if tree.simple {
                    for (r, lanes) in acc[..full].chunks_exact_mut(LANES).enumerate() {
                        let offsets = std::array::from_fn(|l| (r * LANES + l) * stride);
                        let values =
                            self.walk_lanes([root; LANES], offsets, &converted, tree.depth);
                        for (a, v) in lanes.iter_mut().zip(values) {
                            *a += v;
                        }
                    }
                    full
                } else {
                    0
                };
                for (r, a) in acc.iter_mut().enumerate().skip(rest) {
                    let x = converted
                        .get(r * stride..(r + 1) * stride)
                        .unwrap_or_default();
                    *a += self.eval_tree(root, x);
                }
            }
        }
        Ok(())
    }
}
