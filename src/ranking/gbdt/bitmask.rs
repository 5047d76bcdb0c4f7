//! Branch-free batch scoring of small numerical trees with leaf bitmasks over f32 columns.
//!
//! Walking a tree costs one data-dependent step per level. Here every split of a tree is
//! evaluated for a block of rows instead, with no branches, in a form the compiler vectorises
//! (QuickScorer's leaf bitmasks, evaluated densely): each row starts with all leaves of the
//! tree possible (a `u32` bitmask, leaves numbered left to right) and every split the row goes
//! right at clears the leaves of its left subtree; the exit leaf is the lowest bit left.
//!
//! Inputs are compared as `f32`, exactly: inputs are `f32`, and for a non-NaN `f32` `x` and
//! any `f64` threshold `t`, `x <= t` iff `x <= f32_floor(t)` (the largest `f32` not above
//! `t`; see [`f32_floor`]). So no binning (a binary search per feature and row, ~20% of the
//! time before) is needed, only one pass that copies each feature into a column per block.
//! Missing values are folded into per-split input variants: a NaN (or, under LightGBM's
//! zero-as-missing, a zero) is read as NaN by splits that send it right (`NaN <= t` is false
//! for every `t`, `+inf` included) and as `-inf` by splits that send it left.
//!
//! Blocks: up to [`BLOCK`] = 64 rows (eight AVX2 registers of bitmasks, which stay in
//! registers across a tree's splits); the last block of a batch holds the rows left rounded
//! up to a multiple of [`STEP`] = 8, so 100 rows cost 64 + 40 rows of work, not 128. Each size
//! is a separate monomorphisation (`B` const generic) so the row loops have fixed lengths.
//! Leaf values are stored padded to 32 per tree so the exit bit indexes them directly.
//!
//! Not done, measured or estimated: an AVX-512 build (masked `vpandd`, two instructions per
//! eight rows instead of three) gained only ~7% at 100 rows; QuickScorer proper (per feature,
//! thresholds sorted across trees, only false nodes touched) would touch about half of the
//! 4500 splits per row but one row and tree at a time, more work per row than the vector
//! evaluation of all of them.

use super::{K_ZERO_THRESHOLD, LEAF, Node, SPECIAL_LEFT, TreeInfo, ZERO_SPECIAL};

/// Rows of a full block (see the module docs for the measurements behind it).
pub(super) const BLOCK: usize = 64;
/// Smallest block: a batch's last block holds its remaining rows rounded up to this.
const STEP: usize = 8;
/// Largest tree (in leaves) that fits the `u32` bitmasks.
const MAX_LEAVES: usize = 32;

/// How a split reads its feature: which inputs are special and where they go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Variant {
    /// NaN goes right (read as NaN).
    NanRight,
    /// NaN goes left (read as −∞).
    NanLeft,
    /// NaN and zero go right (LightGBM missing type `Zero`).
    ZeroRight,
    /// NaN and zero go left.
    ZeroLeft,
}

impl Variant {
    fn of(node: Node) -> Variant {
        match (
            node.flags() & ZERO_SPECIAL != 0,
            node.flags() & SPECIAL_LEFT != 0,
        ) {
            (false, false) => Variant::NanRight,
            (false, true) => Variant::NanLeft,
            (true, false) => Variant::ZeroRight,
            (true, true) => Variant::ZeroLeft,
        }
    }

    /// The value a special input is read as: NaN (`NaN <= t` is false for every `t`: right)
    /// or −∞ (`-inf <= t` for every non-NaN `t`: left).
    fn special_value(self) -> f32 {
        match self {
            Variant::NanRight | Variant::ZeroRight => f32::NAN,
            Variant::NanLeft | Variant::ZeroLeft => f32::NEG_INFINITY,
        }
    }

    /// The input as this variant's splits read it (`v` already has tiny magnitudes zeroed).
    #[inline(always)]
    fn read(self, v: f32) -> f32 {
        let zero_special = matches!(self, Variant::ZeroRight | Variant::ZeroLeft);
        if v.is_nan() | (zero_special & (v == 0.0)) {
            self.special_value()
        } else {
            v
        }
    }
}

/// The largest `f32` not above `t` (`-inf` below `f32::MIN`): for every non-NaN `f32` input
/// `x`, `x <= t` (compared as `f64`) iff `x <= f32_floor(t)`, because no `f32` lies strictly
/// between the two.
fn f32_floor(t: f64) -> f32 {
    let c = t as f32;
    if f64::from(c) > t { c.next_down() } else { c }
}

/// A split of a bitmask tree: goes right iff `column > threshold`, then keeps only `keep`.
#[derive(Clone, Copy, Debug)]
struct Split {
    column: u32,
    threshold: f32,
    keep: u32,
}

/// A bitmask tree: its splits and where its leaf values are.
#[derive(Clone, Copy, Debug)]
struct BitmaskTree {
    first_split: u32,
    num_splits: u32,
}

/// The bitmask form of the model's eligible trees (numerical splits only, at most 32 leaves).
#[derive(Clone, Debug, Default)]
pub(super) struct BitmaskForest {
    /// Input columns (feature, variant) that some split reads.
    columns: Vec<(usize, Variant)>,
    /// The same columns grouped by feature: (feature, [(column, variant)]).
    columns_of_feature: Vec<(usize, Vec<(u32, Variant)>)>,
    splits: Vec<Split>,
    trees: Vec<BitmaskTree>,
    /// Leaf values of tree `i` at `leaves[i]`, left to right, padded with zeros: any exit
    /// bit indexes it without a bounds check.
    leaves: Vec<[f64; MAX_LEAVES]>,
}

impl BitmaskForest {
    /// Builds the bitmask form of every eligible tree and returns, per tree, its index in the
    /// forest (`None` for trees that must be walked).
    pub(super) fn build(nodes: &[Node], trees: &[TreeInfo]) -> (BitmaskForest, Vec<Option<u32>>) {
        let mut forest = BitmaskForest::default();
        let mut column_of = std::collections::HashMap::new();
        let index = trees
            .iter()
            .map(|tree| {
                is_eligible(nodes, tree).then(|| {
                    let at = forest.trees.len() as u32;
                    forest.add_tree(nodes, tree.root as usize, &mut column_of);
                    at
                })
            })
            .collect();
        let mut by_feature: std::collections::BTreeMap<usize, Vec<(u32, Variant)>> =
            std::collections::BTreeMap::new();
        for (column, &(feature, variant)) in forest.columns.iter().enumerate() {
            by_feature
                .entry(feature)
                .or_default()
                .push((column as u32, variant));
        }
        forest.columns_of_feature = by_feature.into_iter().collect();
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
        let mut leaves = Vec::new();
        // Pre-order walk; each split's left subtree holds the leaves numbered from the split's
        // first leaf up to the first leaf of its right subtree.
        let mut stack = vec![(root, None::<(usize, usize)>)];
        while let Some((i, split_slot)) = stack.pop() {
            let leaf_no = leaves.len();
            if let Some((slot, left_first)) = split_slot {
                // `i` is the right child of split `slot`: its left subtree is complete.
                let left = (left_first..leaf_no).fold(0u32, |m, l| m | (1 << l));
                self.splits[slot].keep = !left;
            }
            let Some(&node) = nodes.get(i) else { continue };
            if node.flags() & LEAF != 0 {
                leaves.push(f64::from_bits(node.payload));
                continue;
            }
            let key = (node.feature(), Variant::of(node));
            let next = self.columns.len() as u32;
            let column = *column_of.entry(key).or_insert(next);
            if column == next {
                self.columns.push(key);
            }
            let slot = self.splits.len();
            self.splits.push(Split {
                column,
                threshold: f32_floor(f64::from_bits(node.payload)),
                keep: u32::MAX,
            });
            stack.push((node.right as usize, Some((slot, leaf_no))));
            stack.push((i + 1, None));
        }
        self.trees.push(BitmaskTree {
            first_split,
            num_splits: self.splits.len() as u32 - first_split,
        });
        let mut padded = [0.0; MAX_LEAVES];
        for (p, v) in padded.iter_mut().zip(leaves) {
            *p = v;
        }
        self.leaves.push(padded);
    }

    /// Whether the model has any bitmask tree (otherwise no columns need filling).
    pub(super) fn is_empty(&self) -> bool {
        self.trees.is_empty()
    }

    /// The block size for the first `rows` rows of what is left of a batch: full blocks while
    /// they last, then the remainder rounded up to a multiple of [`STEP`].
    pub(super) fn block_for(rows: usize) -> usize {
        rows.min(BLOCK).next_multiple_of(STEP)
    }

    /// Fills `columns` (column-major, `B` values per column) from up to `B` row-major `rows`;
    /// padding rows read as the input 0.0 (their scores are not used).
    #[inline(always)]
    pub(super) fn fill_columns<const B: usize>(
        &self,
        rows: &[f32],
        num_features: usize,
        columns: &mut Vec<f32>,
    ) {
        columns.clear();
        columns.resize(self.columns.len() * B, 0.0);
        let (columns, _) = columns.as_chunks_mut::<B>();
        for (feature, of_feature) in &self.columns_of_feature {
            // Gathered once per feature, then mapped per variant with contiguous (vector) code.
            let mut inputs = [0.0f32; B];
            for (x, row) in inputs.iter_mut().zip(rows.chunks_exact(num_features)) {
                let v = row.get(*feature).copied().unwrap_or(f32::NAN);
                // Inputs up to kZeroThreshold in magnitude are read as 0.0 (see walk.rs); the
                // bound is an f32 widened, so comparing in f32 is the same test.
                *x = if v.abs() <= K_ZERO_THRESHOLD as f32 {
                    0.0
                } else {
                    v
                };
            }
            for &(column, variant) in of_feature {
                let Some(column) = columns.get_mut(column as usize) else {
                    continue;
                };
                for (x, &v) in column.iter_mut().zip(&inputs) {
                    *x = variant.read(v);
                }
            }
        }
    }

    /// Adds the leaf values of bitmask tree `tree` for the `B` rows filled in `columns` (by
    /// [`BitmaskForest::fill_columns`] with `block = B`) to `acc` (one per row, at most `B`).
    #[inline(always)]
    pub(super) fn add_tree_scores<const B: usize>(
        &self,
        tree: u32,
        columns: &[f32],
        acc: &mut [f64],
    ) {
        let Some(t) = self.trees.get(tree as usize) else {
            return;
        };
        let splits = self
            .splits
            .get(t.first_split as usize..(t.first_split + t.num_splits) as usize)
            .unwrap_or_default();
        let mut alive = [u32::MAX; B];
        for &Split {
            column,
            threshold,
            keep,
        } in splits
        {
            let start = column as usize * B;
            let Some(Ok(column)) = columns.get(start..start + B).map(<&[f32; B]>::try_from) else {
                continue;
            };
            // Left (`x <= threshold`): keep all; right (including a NaN special): keep only
            // `keep`. A select over a fixed-length array: the compiler makes it a vector
            // compare and masks, not branches.
            for (a, &x) in alive.iter_mut().zip(column) {
                let kept = *a & keep;
                *a = if x <= threshold { *a } else { kept };
            }
        }
        let Some(leaves) = self.leaves.get(tree as usize) else {
            return;
        };
        for (a, alive) in acc.iter_mut().zip(alive) {
            // The exit leaf is never cleared, so `alive` is not 0 and the mask is a no-op.
            *a += leaves[alive.trailing_zeros() as usize % MAX_LEAVES];
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
