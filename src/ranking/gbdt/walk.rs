//! Tree walks: LightGBM's decision rules over the flat node layout, in two shapes.
//!
//! A single walk ([`NativeModel::eval_tree`]) branches at every node; the branches depend on
//! the data, so about every other one is mispredicted. The lock-step walk
//! ([`NativeModel::walk_lanes`]) advances eight independent walks together and picks each child
//! with a conditional move, trading a few wasted steps (lanes that reached their leaf stay on
//! it) for no mispredictions and overlapped memory loads; it is ~2.5× faster per tree and row.

use super::{CATEGORICAL, K_ZERO_THRESHOLD, LANES, LEAF, NativeModel, SPECIAL_LEFT, ZERO_SPECIAL};

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
            let v = x.get(node.feature()).copied().unwrap_or(f64::NAN);
            let left = if flags & CATEGORICAL != 0 {
                self.categorical_left(node.payload, v)
            } else {
                numerical_left(v, f64::from_bits(node.payload), flags)
            };
            i = if left { i + 1 } else { node.right as usize };
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

impl NativeModel {
    /// EXPERIMENT: branchy batch
    pub fn score_batch_branchy(&self, rows: &[f32], nf: usize, out: &mut Vec<f64>) {
        out.clear();
        out.resize(rows.len() / nf, 0.0);
        let stride = nf + 1;
        let mut block = Vec::new();
        for (rows_in, acc) in rows.chunks(64 * nf).zip(out.chunks_mut(64)) {
            block.clear();
            for row in rows_in.chunks_exact(nf) {
                convert_row(row, &mut block);
            }
            for t in &self.trees {
                for (r, a) in acc.iter_mut().enumerate() {
                    *a += self.eval_tree(t.root as usize, &block[r * stride..(r + 1) * stride]);
                }
            }
        }
    }

    /// EXPERIMENT: streaming lanes with refill
    pub fn score_batch_stream(&self, rows: &[f32], nf: usize, out: &mut Vec<f64>) {
        out.clear();
        out.resize(rows.len() / nf, 0.0);
        let stride = nf + 1;
        let mut block = Vec::new();
        let mut tmp = vec![0.0f64; 64 + 1];
        for (rows_in, acc) in rows.chunks(64 * nf).zip(out.chunks_mut(64)) {
            block.clear();
            for row in rows_in.chunks_exact(nf) {
                convert_row(row, &mut block);
            }
            let nb = acc.len();
            // dummy row nb: all NaN
            block.extend(std::iter::repeat_n(f64::NAN, stride));
            for t in &self.trees {
                let root = t.root as usize;
                let mut lane_row: [usize; LANES] = std::array::from_fn(|l| l.min(nb));
                let mut idx = [root; LANES];
                let mut next = LANES.min(nb);
                let mut done = 0usize;
                let nodes = &self.nodes[..];
                while done < nb {
                    for l in 0..LANES {
                        let Some(&node) = nodes.get(idx[l]) else {
                            continue;
                        };
                        let flags = node.flags();
                        let row = lane_row[l];
                        let v = block
                            .get(row * stride + node.feature())
                            .copied()
                            .unwrap_or(f64::NAN);
                        let left = (v <= f64::from_bits(node.payload))
                            | (v.is_nan() & (flags & SPECIAL_LEFT != 0));
                        let is_leaf = flags & LEAF != 0;
                        if let Some(slot) = tmp.get_mut(row) {
                            *slot = f64::from_bits(node.payload);
                        }
                        let real = row < nb;
                        done += usize::from(is_leaf & real);
                        let child =
                            std::hint::select_unpredictable(left, idx[l] + 1, node.right as usize);
                        idx[l] = std::hint::select_unpredictable(is_leaf, root, child);
                        let new_row = std::hint::select_unpredictable(is_leaf, next, row);
                        next += usize::from(is_leaf & (next < nb));
                        lane_row[l] = new_row.min(nb);
                    }
                }
                for (a, v) in acc.iter_mut().zip(&tmp) {
                    *a += v;
                }
            }
        }
    }
}

/// EXPERIMENT: mask trees
#[derive(Clone, Copy, Debug, Default)]
pub struct MaskNode {
    threshold: f64,
    /// leaves that survive when the row goes right (left-subtree leaves cleared)
    keep_right: u64,
    feature: u32,
    nan_right: bool,
}

#[derive(Clone, Debug, Default)]
pub struct MaskForest {
    nodes: Vec<MaskNode>,
    /// (first node, num nodes, first leaf) per tree
    trees: Vec<(u32, u32, u32)>,
    leaves: Vec<f64>,
}

impl NativeModel {
    pub fn build_masks(&self) -> Option<MaskForest> {
        let mut f = MaskForest::default();
        for t in &self.trees {
            if !t.simple {
                return None;
            }
            let first_node = f.nodes.len() as u32;
            let first_leaf = f.leaves.len() as u32;
            // in-order traversal over pre-order layout
            // recursive via stack: compute leaf ranges
            fn walk(
                m: &NativeModel,
                i: usize,
                f: &mut MaskForest,
                first_leaf: usize,
            ) -> Option<(usize, usize)> {
                let n = m.nodes[i];
                if n.flags() & LEAF != 0 {
                    let k = f.leaves.len() - first_leaf;
                    f.leaves.push(f64::from_bits(n.payload));
                    return Some((k, k + 1));
                }
                let slot = f.nodes.len();
                f.nodes.push(MaskNode::default());
                let (lo, mid) = walk(m, i + 1, f, first_leaf)?;
                let (mid2, hi) = walk(m, n.right as usize, f, first_leaf)?;
                debug_assert_eq!(mid, mid2);
                if hi > 64 {
                    return None;
                }
                let left_bits = if mid - lo == 64 {
                    u64::MAX
                } else {
                    ((1u64 << (mid - lo)) - 1) << lo
                };
                f.nodes[slot] = MaskNode {
                    threshold: f64::from_bits(n.payload),
                    keep_right: !left_bits,
                    feature: n.feature() as u32,
                    nan_right: n.flags() & SPECIAL_LEFT == 0,
                };
                Some((lo, hi))
            }
            walk(self, t.root as usize, &mut f, first_leaf as usize)?;
            f.trees
                .push((first_node, f.nodes.len() as u32 - first_node, first_leaf));
        }
        Some(f)
    }

    pub fn score_batch_masks<const B: usize>(
        &self,
        f: &MaskForest,
        rows: &[f32],
        nf: usize,
        out: &mut Vec<f64>,
    ) {
        out.clear();
        out.resize(rows.len() / nf, 0.0);
        let mut cols = vec![0.0f64; (nf + 1) * B];
        for (rows_in, acc) in rows.chunks(B * nf).zip(out.chunks_mut(B)) {
            for (r, row) in rows_in.chunks_exact(nf).enumerate() {
                for (j, &v) in row.iter().enumerate() {
                    let v = f64::from(v);
                    cols[j * B + r] = if v.abs() <= K_ZERO_THRESHOLD { 0.0 } else { v };
                }
            }
            let mut res = [0.0f64; B];
            for &(first, n, first_leaf) in &f.trees {
                let mut lm = [u64::MAX; B];
                for node in &f.nodes[first as usize..(first + n) as usize] {
                    let base = node.feature as usize * B;
                    let Some(xs) = cols.get(base..base + B) else {
                        continue;
                    };
                    let t = node.threshold;
                    let nr = node.nan_right;
                    let keep = node.keep_right;
                    for r in 0..B {
                        let x = xs[r];
                        let right = (x > t) | (x.is_nan() & nr);
                        lm[r] &= if right { keep } else { u64::MAX };
                    }
                }
                let leaves = &f.leaves[first_leaf as usize..];
                for r in 0..B {
                    res[r] = leaves
                        .get(lm[r].trailing_zeros() as usize)
                        .copied()
                        .unwrap_or(0.0);
                }
                for (a, v) in acc.iter_mut().zip(&res) {
                    *a += v;
                }
            }
        }
    }
}
