//! Native scoring of LightGBM text models: the ranker's hot path without the C++ library.
//!
//! LightGBM's own prediction costs ~5 µs per row and 100 trees through its C API (per-row
//! allocations, sparse pair vectors, a lock, one mispredicted branch every other tree level);
//! a request scores hundreds of candidates against hundreds of trees. This module parses the
//! text model format (see [`NativeModel::parse`]) and applies exactly LightGBM's decision rules
//! (`Tree::NumericalDecision` / `Tree::CategoricalDecision`, `kZeroThreshold`, missing-value
//! types), summing leaf values in tree order, so its scores equal LightGBM's raw scores bit for
//! bit. Batches use branch-free bitmask evaluation over f32 input columns ([`bitmask`]); trees
//! that do not fit it, and batches of one or two rows, walk a flat pre-order node array
//! ([`walk`]).
//!
//! Batch cost on the demo ranker (150 trees of 31 leaves, 22 features, real feature rows;
//! CPU time per call on the shared 2-core machine, `cargo bench --bench ranker -- demo_ranker`
//! for wall time):
//!
//! | rows | binned, 64-row blocks (before) | f32 columns, sized blocks, AVX2 |
//! |------|--------------------------------|---------------------------------|
//! | 1    | 24 µs                          | 2.0 µs (walked)                 |
//! | 7    | —                              | 4.7 µs                          |
//! | 100  | 74 µs                          | 29.5 µs                         |
//! | 462  | 300 µs                         | 135 µs                          |
//!
//! Where the time went before, for 100 rows: ~20% binning (a binary search per feature and
//! row), the rest the dense split evaluation over two full 64-row blocks (28 padding rows)
//! with four rows per SSE2 instruction, and three trees with an `inf` threshold walked.
//!
//! It must never panic or loop on a malformed file: the parser checks every index and that each
//! tree is a proper binary tree before the scorer may walk it.

mod bitmask;
mod parse;
mod shap;
#[cfg(test)]
mod tests;
mod walk;

pub use shap::Contributions;

use std::path::{Path, PathBuf};

/// LightGBM's `kZeroThreshold` (`1e-35f` widened to double): inputs whose magnitude is at most
/// this are treated as exactly zero, and "zero" missing-value splits use it too.
pub const K_ZERO_THRESHOLD: f64 = 1e-35_f32 as f64;

/// Walks advanced in lock-step (see [`walk`]): enough independent work to hide the latency of
/// each step's two dependent loads, few enough to keep every walk's position in a register.
const LANES: usize = 8;

/// Batches of at most this many rows are scored row by row by walks: a bitmask block costs
/// the same for one row as for eight (demo ranker: 2.0 µs per walked row, 4.6 µs per block).
const WALK_MAX_ROWS: usize = 2;

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
    /// The model cannot be explained (no node counts in the text, or trees too deep).
    #[error("cannot explain this model: {reason}")]
    Unexplainable { reason: String },
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
    /// Index in [`NativeModel::bitmask`], for trees scored in batches by bitmasks.
    bitmask: Option<u32>,
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
    /// Training rows that reached each entry of `nodes` (`internal_count` / `leaf_count`, NaN
    /// where the text has none): TreeSHAP's cover, read only by explanations.
    cover: Vec<f64>,
    /// The trees in boosting order.
    trees: Vec<TreeInfo>,
    /// Concatenated bitsets of all categorical splits.
    cat_bits: Vec<u32>,
    /// Batch form of the trees that have one (see [`binned`]).
    bitmask: Box<bitmask::BitmaskForest>,
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
        Ok(self.score_converted(&x))
    }

    /// Raw score of one row converted by [`walk::convert_row`], by walks: eight trees at a time
    /// in lock-step where they allow it.
    fn score_converted(&self, x: &[f64]) -> f64 {
        let mut sum = 0.0;
        // Lanes are consecutive trees on the same row; their leaf values are added in tree
        // order, as LightGBM does, so the sum is identical.
        for chunk in self.trees.chunks(LANES) {
            if let Ok(group) = <&[TreeInfo; LANES]>::try_from(chunk)
                && group.iter().all(|t| t.simple)
            {
                let roots = group.map(|t| t.root as usize);
                let depth = group.iter().map(|t| t.depth).max().unwrap_or(0);
                for v in self.walk_lanes(roots, [0; LANES], x, depth) {
                    sum += v;
                }
            } else {
                for t in chunk {
                    sum += self.eval_tree(t.root as usize, x);
                }
            }
        }
        sum
    }

    /// Raw scores of row-major `rows` (`n_features` values each), written to `out` (cleared
    /// first, so a caller can reuse the buffer). Scores equal [`NativeModel::score`] per row.
    ///
    /// Rows are processed in blocks of up to 64 (the last one sized to the rows left, in
    /// steps of 8), tree after tree (so each row's leaf values are added in tree order):
    /// numerical trees of up to 32 leaves by branch-free bitmasks over f32 input columns (see
    /// [`bitmask`]), other trees by walks, eight rows in lock-step. Batches of at most
    /// [`WALK_MAX_ROWS`] rows are walked row by row like [`NativeModel::score`].
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
        if rows.len() <= WALK_MAX_ROWS * nf {
            let mut x = Vec::with_capacity(nf + 1);
            for row in rows.chunks_exact(nf) {
                x.clear();
                walk::convert_row(row, &mut x);
                out.push(self.score_converted(&x));
            }
            return Ok(());
        }
        out.resize(rows.len() / nf, 0.0);
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above), the only requirement of
            // calling a function compiled with `target_feature(enable = "avx2")`.
            unsafe { self.score_blocks_avx2(rows, out) };
            return Ok(());
        }
        self.score_blocks(rows, out);
        Ok(())
    }

    /// [`NativeModel::score_blocks`] compiled for AVX2: eight rows per vector instruction in
    /// the bitmask trees instead of four (100 demo rows: 33 µs instead of 49 µs with SSE2).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn score_blocks_avx2(&self, rows: &[f32], out: &mut [f64]) {
        self.score_blocks(rows, out);
    }

    /// Adds the scores of row-major `rows` to `out` (one per row), block after block.
    #[inline(always)]
    fn score_blocks(&self, mut rows: &[f32], mut out: &mut [f64]) {
        let nf = self.num_features();
        let mut scratch = Scratch::default();
        while !out.is_empty() {
            let block = bitmask::BitmaskForest::block_for(out.len());
            let n = block.min(out.len());
            // `score_batch` checked that `rows` holds `out.len()` rows.
            let (Some((rows_in, rest_rows)), Some((acc, rest_out))) =
                (rows.split_at_checked(n * nf), out.split_at_mut_checked(n))
            else {
                return;
            };
            match block {
                8 => self.score_block::<8>(rows_in, acc, &mut scratch),
                16 => self.score_block::<16>(rows_in, acc, &mut scratch),
                24 => self.score_block::<24>(rows_in, acc, &mut scratch),
                32 => self.score_block::<32>(rows_in, acc, &mut scratch),
                40 => self.score_block::<40>(rows_in, acc, &mut scratch),
                48 => self.score_block::<48>(rows_in, acc, &mut scratch),
                56 => self.score_block::<56>(rows_in, acc, &mut scratch),
                _ => self.score_block::<{ bitmask::BLOCK }>(rows_in, acc, &mut scratch),
            }
            rows = rest_rows;
            out = rest_out;
        }
    }

    /// Adds the scores of up to `B` row-major `rows` to `acc` (one per row), tree after tree.
    #[inline(always)]
    fn score_block<const B: usize>(&self, rows: &[f32], acc: &mut [f64], scratch: &mut Scratch) {
        let nf = self.num_features();
        let stride = nf + 1;
        if !self.bitmask.is_empty() {
            self.bitmask
                .fill_columns::<B>(rows, nf, &mut scratch.columns);
        }
        let walked = self.trees.iter().any(|t| t.bitmask.is_none());
        if walked {
            scratch.converted.clear();
            for row in rows.chunks_exact(nf) {
                walk::convert_row(row, &mut scratch.converted);
            }
        }
        let converted = &scratch.converted[..];
        let full = acc.len() / LANES * LANES;
        for tree in &self.trees {
            if let Some(b) = tree.bitmask {
                self.bitmask.add_tree_scores::<B>(b, &scratch.columns, acc);
                continue;
            }
            let root = tree.root as usize;
            let rest = if tree.simple {
                for (r, lanes) in acc[..full].chunks_exact_mut(LANES).enumerate() {
                    let offsets = std::array::from_fn(|l| (r * LANES + l) * stride);
                    let values = self.walk_lanes([root; LANES], offsets, converted, tree.depth);
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
}

/// Per-batch buffers of [`NativeModel::score_batch`].
#[derive(Default)]
struct Scratch {
    /// Inputs of the bitmask trees, column-major (see [`bitmask::BitmaskForest::fill_columns`]).
    columns: Vec<f32>,
    /// Converted rows for the walked trees (see [`walk::convert_row`]).
    converted: Vec<f64>,
}
