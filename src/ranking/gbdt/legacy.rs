//! The batch scorer as it was before the f32 rewrite of [`super::binned`] (integer bins found
//! by binary search, 64-row blocks whatever the batch size), kept only so that the `ranker`
//! bench can compare old and new in the same run on a noisy machine. Not used by serving.

use super::{
    K_ZERO_THRESHOLD, LANES, LEAF, NativeModel, Node, RankerError, SPECIAL_LEFT, TreeInfo,
    ZERO_SPECIAL, walk,
};

/// Rows evaluated together (sixteen SSE2 registers of bitmasks; measured ~10% faster than 32).
const BLOCK: usize = 64;
/// Largest tree (in leaves) that fits the `u32` bitmasks.
const MAX_LEAVES: usize = 32;

/// How a split reads its feature: which inputs are special and where they go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Variant {
    /// NaN goes right (bin `i32::MAX`).
    NanRight,
    /// NaN goes left (bin -1).
    NanLeft,
    /// NaN and zero go right (LightGBM missing type `Zero`).
    ZeroRight,
    /// NaN and zero go left.
    ZeroLeft,
}

impl Variant {
    fn zero_is_special(self) -> bool {
        matches!(self, Variant::ZeroRight | Variant::ZeroLeft)
    }

    /// The bin of a special input: above every split's bin (right) or below (left).
    fn special_bin(self) -> i32 {
        match self {
            Variant::NanRight | Variant::ZeroRight => i32::MAX,
            Variant::NanLeft | Variant::ZeroLeft => -1,
        }
    }
}

/// A split of a binned tree: goes right iff `bins[column] > bin`, then keeps only `keep` leaves.
#[derive(Clone, Copy, Debug)]
struct Split {
    column: u32,
    bin: i32,
    keep: u32,
}

/// A binned tree: its splits and its leaf values (left to right).
#[derive(Clone, Copy, Debug)]
struct BinnedTree {
    first_split: u32,
    num_splits: u32,
    first_leaf: u32,
}

/// The binned form of the model's eligible trees (numerical splits only, at most 32 leaves).
#[derive(Clone, Debug, Default)]
struct BinnedForest {
    /// Sorted distinct thresholds of each feature.
    thresholds: Vec<Vec<f64>>,
    /// Input columns (feature, variant) that some split reads.
    columns: Vec<(usize, Variant)>,
    /// For each feature, its columns and their variants.
    columns_of_feature: Vec<Vec<(u32, Variant)>>,
    splits: Vec<Split>,
    trees: Vec<BinnedTree>,
    leaves: Vec<f64>,
}

impl BinnedForest {
    /// Builds the binned form of every eligible tree and returns, per tree, its index in the
    /// forest (`None` for trees that must be walked).
    fn build(
        nodes: &[Node],
        trees: &[TreeInfo],
        num_features: usize,
    ) -> (BinnedForest, Vec<Option<u32>>) {
        let mut forest = BinnedForest {
            thresholds: vec![Vec::new(); num_features],
            columns_of_feature: vec![Vec::new(); num_features],
            ..BinnedForest::default()
        };
        let eligible: Vec<bool> = trees.iter().map(|t| is_eligible(nodes, t)).collect();
        for (tree, _) in trees.iter().zip(&eligible).filter(|(_, e)| **e) {
            for node in tree_nodes(nodes, tree) {
                if node.flags() & LEAF == 0
                    && let Some(t) = forest.thresholds.get_mut(node.feature())
                {
                    t.push(f64::from_bits(node.payload));
                }
            }
        }
        for t in &mut forest.thresholds {
            t.sort_by(f64::total_cmp);
            t.dedup_by(|a, b| a == b);
        }
        let mut column_of = std::collections::HashMap::new();
        let index = trees
            .iter()
            .zip(&eligible)
            .map(|(tree, &eligible)| {
                eligible.then(|| {
                    let at = forest.trees.len() as u32;
                    forest.add_tree(nodes, tree.root as usize, &mut column_of);
                    at
                })
            })
            .collect();
        (forest, index)
    }

    /// Appends the splits (in pre-order) and leaves (left to right) of the tree at `root`.
    fn add_tree(
        &mut self,
        nodes: &[Node],
        root: usize,
        column_of: &mut std::collections::HashMap<(usize, Variant), u32>,
    ) {
        let first_split = self.splits.len() as u32;
        let first_leaf = self.leaves.len() as u32;
        // Pre-order walk; each split's left subtree holds the leaves numbered from the split's
        // first leaf up to the first leaf of its right subtree.
        let mut stack = vec![(root, None::<(usize, usize)>)];
        while let Some((i, split_slot)) = stack.pop() {
            let leaf_no = self.leaves.len() - first_leaf as usize;
            if let Some((slot, left_first)) = split_slot {
                // `i` is the right child of split `slot`: its left subtree is complete.
                let left = (left_first..leaf_no).fold(0u32, |m, l| m | (1 << l));
                self.splits[slot].keep = !left;
            }
            let Some(&node) = nodes.get(i) else { continue };
            if node.flags() & LEAF != 0 {
                self.leaves.push(f64::from_bits(node.payload));
                continue;
            }
            let variant = match (
                node.flags() & ZERO_SPECIAL != 0,
                node.flags() & SPECIAL_LEFT != 0,
            ) {
                (false, false) => Variant::NanRight,
                (false, true) => Variant::NanLeft,
                (true, false) => Variant::ZeroRight,
                (true, true) => Variant::ZeroLeft,
            };
            let key = (node.feature(), variant);
            let next = self.columns.len() as u32;
            let column = *column_of.entry(key).or_insert(next);
            if column == next {
                self.columns.push(key);
                if let Some(of_feature) = self.columns_of_feature.get_mut(key.0) {
                    of_feature.push((column, variant));
                }
            }
            let thresholds = self
                .thresholds
                .get(node.feature())
                .map_or(&[][..], Vec::as_slice);
            let threshold = f64::from_bits(node.payload);
            let bin = thresholds.partition_point(|&t| t < threshold) as i32;
            let slot = self.splits.len();
            self.splits.push(Split {
                column,
                bin,
                keep: u32::MAX,
            });
            stack.push((node.right as usize, Some((slot, leaf_no))));
            stack.push((i + 1, None));
        }
        self.trees.push(BinnedTree {
            first_split,
            num_splits: self.splits.len() as u32 - first_split,
            first_leaf,
        });
    }

    /// Whether the model has any binned tree (otherwise no bins need computing).
    fn is_empty(&self) -> bool {
        self.trees.is_empty()
    }

    /// Fills `bins` (column-major, `BLOCK` rows per column) for up to `BLOCK` row-major rows.
    fn bin_rows(&self, rows: &[f32], num_features: usize, bins: &mut Vec<i32>) {
        bins.clear();
        bins.resize(self.columns.len() * BLOCK, 0);
        for (feature, columns) in self.columns_of_feature.iter().enumerate() {
            if columns.is_empty() {
                continue;
            }
            let thresholds = self.thresholds.get(feature).map_or(&[][..], Vec::as_slice);
            for (r, row) in rows.chunks_exact(num_features).take(BLOCK).enumerate() {
                // Inputs up to kZeroThreshold in magnitude are read as 0.0 (see walk.rs).
                let v = row.get(feature).map_or(f64::NAN, |&v| f64::from(v));
                let v = if v.abs() <= K_ZERO_THRESHOLD { 0.0 } else { v };
                let plain = if v.is_nan() {
                    0
                } else {
                    thresholds.partition_point(|&t| t < v) as i32
                };
                for &(column, variant) in columns {
                    let special = v.is_nan() || (variant.zero_is_special() && v == 0.0);
                    if let Some(bin) = bins.get_mut(column as usize * BLOCK + r) {
                        *bin = if special {
                            variant.special_bin()
                        } else {
                            plain
                        };
                    }
                }
            }
        }
    }

    /// Adds the leaf values of binned tree `tree` for the rows binned in `bins` (by
    /// [`BinnedForest::bin_rows`]) to `acc` (one per row, at most `BLOCK`).
    #[inline]
    fn add_tree_scores(&self, tree: u32, bins: &[i32], acc: &mut [f64]) {
        let Some(t) = self.trees.get(tree as usize) else {
            return;
        };
        let splits = self
            .splits
            .get(t.first_split as usize..(t.first_split + t.num_splits) as usize)
            .unwrap_or_default();
        let mut alive = [u32::MAX; BLOCK];
        for &Split { column, bin, keep } in splits {
            let start = column as usize * BLOCK;
            let Some(column) = bins.get(start..start + BLOCK) else {
                continue;
            };
            // Right (`b > bin`): keep only `keep`; left: keep all. Written as arithmetic so
            // that it compiles to vector compares and masks, not to branches.
            for (a, &b) in alive.iter_mut().zip(column) {
                *a &= keep | u32::from(b <= bin).wrapping_neg();
            }
        }
        let leaves = self.leaves.get(t.first_leaf as usize..).unwrap_or_default();
        for (a, alive) in acc.iter_mut().zip(alive) {
            *a += leaves
                .get(alive.trailing_zeros() as usize)
                .copied()
                .unwrap_or(0.0);
        }
    }
}

/// The entries of `tree` in `nodes` (pre-order, contiguous).
fn tree_nodes<'a>(nodes: &'a [Node], tree: &TreeInfo) -> &'a [Node] {
    let root = tree.root as usize;
    nodes
        .get(root..root + tree.len as usize)
        .unwrap_or_default()
}

/// Numerical splits with real thresholds only, and few enough leaves for a `u32` mask.
fn is_eligible(nodes: &[Node], tree: &TreeInfo) -> bool {
    let entries = tree_nodes(nodes, tree);
    let leaves = entries.iter().filter(|n| n.flags() & LEAF != 0).count();
    leaves <= MAX_LEAVES
        && entries.iter().all(|n| {
            n.flags() & LEAF != 0
                || (n.flags() & super::CATEGORICAL == 0 && !f64::from_bits(n.payload).is_nan())
        })
}

/// The previous batch scorer of a model (see the module docs); build it with
/// [`NativeModel::legacy_scorer`].
#[doc(hidden)]
pub struct LegacyScorer<'a> {
    model: &'a NativeModel,
    forest: BinnedForest,
    index: Vec<Option<u32>>,
}

impl NativeModel {
    /// The previous batch scorer, for same-run bench comparisons only.
    #[doc(hidden)]
    pub fn legacy_scorer(&self) -> LegacyScorer<'_> {
        let (forest, index) = BinnedForest::build(&self.nodes, &self.trees, self.num_features());
        LegacyScorer {
            model: self,
            forest,
            index,
        }
    }
}

impl LegacyScorer<'_> {
    /// [`NativeModel::score_batch`] as it was.
    pub fn score_batch(
        &self,
        rows: &[f32],
        n_features: usize,
        out: &mut Vec<f64>,
    ) -> Result<(), RankerError> {
        let m = self.model;
        let nf = m.num_features();
        if n_features != nf || !rows.len().is_multiple_of(nf) {
            return Err(RankerError::FeatureMismatch {
                expected: nf,
                got: n_features,
            });
        }
        out.clear();
        out.resize(rows.len() / nf, 0.0);
        let walked = self.index.iter().any(Option::is_none);
        let stride = nf + 1;
        let mut bins = Vec::new();
        let mut converted = Vec::new();
        for (rows_in, acc) in rows.chunks(BLOCK * nf).zip(out.chunks_mut(BLOCK)) {
            if !self.forest.is_empty() {
                self.forest.bin_rows(rows_in, nf, &mut bins);
            }
            if walked {
                converted.clear();
                for row in rows_in.chunks_exact(nf) {
                    walk::convert_row(row, &mut converted);
                }
            }
            let full = acc.len() / LANES * LANES;
            for (tree, binned) in m.trees.iter().zip(&self.index) {
                if let Some(b) = *binned {
                    self.forest.add_tree_scores(b, &bins, acc);
                    continue;
                }
                let root = tree.root as usize;
                let rest = if tree.simple {
                    for (r, lanes) in acc[..full].chunks_exact_mut(LANES).enumerate() {
                        let offsets = std::array::from_fn(|l| (r * LANES + l) * stride);
                        let values = m.walk_lanes([root; LANES], offsets, &converted, tree.depth);
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
                    *a += m.eval_tree(root, x);
                }
            }
        }
        Ok(())
    }
}
