//! Tree walks: LightGBM's decision rules over the flat node layout, in two shapes.
//!
//! A single walk ([`NativeModel::eval_tree`]) branches at every node; the branches depend on
//! the data, so about every other one is mispredicted. The lock-step walk
//! ([`NativeModel::walk_lanes`]) advances eight independent walks together and picks each child
//! with a conditional move, trading wasted steps (lanes that reached their leaf stay on it
//! until the deepest lane is done) for no mispredictions and overlapped loads: ~2× faster.
//! Walks serve single rows and the batch trees that the bitmask scorer ([`super::binned`])
//! cannot take (categorical splits, more than 32 leaves).

use super::{
    CATEGORICAL, K_ZERO_THRESHOLD, LANES, LEAF, NativeModel, Node, SPECIAL_LEFT, ZERO_SPECIAL,
};

/// Appends one row converted the way LightGBM's dense-matrix predictor reads it (widened to
/// `f64`, magnitudes up to [`K_ZERO_THRESHOLD`] read as an absent feature, i.e. 0.0), followed
/// by the NaN padding column that leaf entries point at.
#[inline]
pub(super) fn convert_row(row: &[f32], out: &mut Vec<f64>) {
    out.extend(row.iter().map(|&v| {
        let v = f64::from(v);
        if v.abs() <= K_ZERO_THRESHOLD { 0.0 } else { v }
    }));
    out.push(f64::NAN);
}

/// LightGBM's `NumericalDecision` with the missing-value type folded into `flags` (see
/// [`super::Node`]): NaN, and zero under missing type `Zero`, take the split's special
/// direction; everything else goes left iff `v <= threshold`.
#[inline(always)]
fn numerical_left(v: f64, threshold: f64, flags: u32) -> bool {
    let special = v.is_nan() || (flags & ZERO_SPECIAL != 0 && v == 0.0);
    if special {
        flags & SPECIAL_LEFT != 0
    } else {
        v <= threshold
    }
}

impl NativeModel {
    /// Walks one tree from `root` to a leaf for the converted row `x`; any node kind.
    #[inline]
    pub(super) fn eval_tree(&self, root: usize, x: &[f64]) -> f64 {
        let mut i = root;
        // Termination: the parser guarantees that every walk from a root ends in a leaf and
        // that each child index is larger than its parent's.
        loop {
            let Some(&node) = self.nodes.get(i) else {
                return 0.0;
            };
            let flags = node.flags();
            if flags & LEAF != 0 {
                return f64::from_bits(node.payload);
            }
            i = if self.goes_left(node, x) {
                i + 1
            } else {
                node.right as usize
            };
        }
    }

    /// LightGBM's decision at the internal `node` for the converted row `x`: true = left.
    #[inline(always)]
    pub(super) fn goes_left(&self, node: Node, x: &[f64]) -> bool {
        let v = x.get(node.feature()).copied().unwrap_or(f64::NAN);
        if node.flags() & CATEGORICAL != 0 {
            self.categorical_left(node.payload, v)
        } else {
            numerical_left(v, f64::from_bits(node.payload), node.flags())
        }
    }

    /// Walks `LANES` trees in lock-step: lane `l` starts at `roots[l]` and reads the converted
    /// row at `x[offsets[l]..]`; returns each lane's leaf value. Only for trees whose nodes are
    /// all numerical without zero-as-missing (`TreeInfo::simple`) and at most `depth` deep.
    ///
    /// Every lane takes a step each round; a lane on a leaf reads the NaN padding column,
    /// which sends it "right", to itself. The walk ends when all lanes sit on leaves.
    #[inline(always)]
    pub(super) fn walk_lanes(
        &self,
        roots: [usize; LANES],
        offsets: [usize; LANES],
        x: &[f64],
        depth: u32,
    ) -> [f64; LANES] {
        let nodes = &self.nodes[..];
        let mut idx = roots;
        for _ in 0..depth {
            let mut all_leaves = LEAF;
            for l in 0..LANES {
                let Some(&node) = nodes.get(idx[l]) else {
                    continue;
                };
                let flags = node.flags();
                all_leaves &= flags;
                let v = x
                    .get(offsets[l] + node.feature())
                    .copied()
                    .unwrap_or(f64::NAN);
                // `v <= t` is false for NaN; NaN then takes the special direction. (Missing type
                // None stores SPECIAL_LEFT = `0.0 <= t`, the answer for NaN read as zero.)
                let left = (v <= f64::from_bits(node.payload))
                    | (v.is_nan() & (flags & SPECIAL_LEFT != 0));
                idx[l] = std::hint::select_unpredictable(left, idx[l] + 1, node.right as usize);
            }
            if all_leaves != 0 {
                break;
            }
        }
        idx.map(|i| nodes.get(i).map_or(0.0, |n| f64::from_bits(n.payload)))
    }

    /// LightGBM's `CategoricalDecision`: NaN and negative categories go right; otherwise left
    /// iff the category's bit is set in the split's bitset (categories past its end go right).
    #[inline]
    fn categorical_left(&self, range: u64, v: f64) -> bool {
        if v.is_nan() {
            return false;
        }
        // Truncation toward zero like `static_cast<int>`; values beyond i32 saturate, and
        // LightGBM sends those right too (negative after x86 conversion, or past the bitset).
        let category = v as i32;
        if category < 0 {
            return false;
        }
        let start = (range >> 32) as usize;
        let len = (range & u64::from(u32::MAX)) as usize;
        let word = (category / 32) as usize;
        if word >= len {
            return false;
        }
        self.cat_bits
            .get(start + word)
            .is_some_and(|bits| (bits >> (category % 32)) & 1 == 1)
    }
}
