//! TreeSHAP on the native scorer: why one row got its raw score, as per-feature contributions
//! plus the model's expected value (the bias), which add up to the score.
//!
//! This is the exact, polynomial-time, path-dependent TreeSHAP of Lundberg, Erion and Lee,
//! "Consistent Individualized Feature Attribution for Tree Ensembles" (2018), Algorithm 2, as
//! LightGBM's `Tree::TreeSHAP` implements it for `predict(pred_contrib=True)`: the cover of each
//! node is its training-row count (`internal_count` / `leaf_count` in the model text), and the
//! path taken at each split ("hot" child) follows exactly the decision the scorer makes
//! ([`NativeModel::goes_left`]: missing-value types, default directions, categorical bitsets).
//! Explanations are off the hot path: only `explain=true` requests call this. It must never
//! panic on a model the parser accepted; models without node counts are refused with
//! [`RankerError::Unexplainable`].

use super::{LEAF, NativeModel, RankerError, TreeInfo, walk};

/// Trees deeper than this are not explained (the recursion depth and the path buffer,
/// quadratic in the depth, stay small); LightGBM's trees of 31 leaves are at most 30 deep.
const MAX_EXPLAIN_DEPTH: usize = 512;

/// The decomposition of one row's raw score.
#[derive(Debug, Clone, PartialEq)]
pub struct Contributions {
    /// Contribution of each input feature, in input order (LightGBM's first `pred_contrib`
    /// columns).
    pub values: Vec<f64>,
    /// The expected raw score over the training rows (LightGBM's last `pred_contrib` column).
    pub bias: f64,
}

impl Contributions {
    /// `bias + Σ values`: the raw score, up to rounding.
    pub fn total(&self) -> f64 {
        self.bias + self.values.iter().sum::<f64>()
    }
}

/// One element of the unique path (LightGBM's `PathElement`).
#[derive(Clone, Copy, Debug, Default)]
struct PathElement {
    /// Feature split on; `usize::MAX` for the root's placeholder element.
    feature: usize,
    /// Fraction of the zero (feature absent) paths that flow through this split.
    zero_fraction: f64,
    /// 1 if the row's own path goes through this split, else 0.
    one_fraction: f64,
    /// Weight of the permutations of each subset size.
    pweight: f64,
}

/// `ExtendPath`: appends a split to the path at `path[ud]`, updating the permutation weights.
/// `inv[k]` is `1 / k`: the loops multiply instead of dividing (a division per step made the
/// dependent chains of [`unwound_sum`] latency-bound).
fn extend(path: &mut [PathElement], ud: usize, zero: f64, one: f64, feature: usize, inv: &[f64]) {
    path[ud] = PathElement {
        feature,
        zero_fraction: zero,
        one_fraction: one,
        pweight: if ud == 0 { 1.0 } else { 0.0 },
    };
    let inv_d1 = inv[ud + 1];
    for i in (0..ud).rev() {
        path[i + 1].pweight += one * path[i].pweight * (i + 1) as f64 * inv_d1;
        path[i].pweight = zero * path[i].pweight * (ud - i) as f64 * inv_d1;
    }
}

/// `UnwindPath`: removes element `index` from a path of `ud + 1` elements (undoing `extend`).
fn unwind(path: &mut [PathElement], ud: usize, index: usize, inv: &[f64]) {
    let one = path[index].one_fraction;
    let zero = path[index].zero_fraction;
    let mut next_one_portion = path[ud].pweight;
    let d1 = (ud + 1) as f64;
    let inv_d1 = inv[ud + 1];
    if one != 0.0 {
        let inv_one = 1.0 / one;
        for i in (0..ud).rev() {
            let tmp = path[i].pweight;
            path[i].pweight = next_one_portion * d1 * inv[i + 1] * inv_one;
            next_one_portion = tmp - path[i].pweight * zero * (ud - i) as f64 * inv_d1;
        }
    } else {
        let inv_zero = 1.0 / zero;
        for i in (0..ud).rev() {
            path[i].pweight = path[i].pweight * d1 * inv_zero * inv[ud - i];
        }
    }
    for i in index..ud {
        path[i].feature = path[i + 1].feature;
        path[i].zero_fraction = path[i + 1].zero_fraction;
        path[i].one_fraction = path[i + 1].one_fraction;
    }
}

/// `UnwoundPathSum`: the total permutation weight of the path with element `index` removed.
fn unwound_sum(path: &[PathElement], ud: usize, index: usize, inv: &[f64]) -> f64 {
    let one = path[index].one_fraction;
    let zero = path[index].zero_fraction;
    let mut next_one_portion = path[ud].pweight;
    let d1 = (ud + 1) as f64;
    let inv_d1 = inv[ud + 1];
    let mut total = 0.0;
    if one != 0.0 {
        let inv_one = 1.0 / one;
        for i in (0..ud).rev() {
            let tmp = next_one_portion * d1 * inv[i + 1] * inv_one;
            total += tmp;
            next_one_portion = path[i].pweight - tmp * zero * (ud - i) as f64 * inv_d1;
        }
    } else {
        let inv_zero = 1.0 / zero;
        for i in (0..ud).rev() {
            total += path[i].pweight * inv_zero * d1 * inv[ud - i];
        }
    }
    total
}

/// What one tree's recursion reads and writes.
struct Walk<'a> {
    model: &'a NativeModel,
    /// The converted row (see [`walk::convert_row`]).
    x: &'a [f64],
    phi: &'a mut [f64],
    /// Unique paths of all recursion levels, each level's right after its parent's.
    paths: &'a mut [PathElement],
    /// `inv[k] = 1 / k` for every path length.
    inv: &'a [f64],
}

impl Walk<'_> {
    /// `Tree::TreeSHAP` at `node` (an index into `NativeModel::nodes`): the unique path of this
    /// level starts at `start` and holds `ud` elements copied from the parent's at `parent`.
    #[allow(clippy::too_many_arguments)]
    fn recurse(
        &mut self,
        node: usize,
        ud: usize,
        parent: usize,
        start: usize,
        zero: f64,
        one: f64,
        feature: usize,
    ) {
        let m = self.model;
        let Some(&entry) = m.nodes.get(node) else {
            return;
        };
        if ud > 0 {
            self.paths.copy_within(parent..parent + ud, start);
        }
        let path = &mut self.paths[start..];
        extend(path, ud, zero, one, feature, self.inv);
        if entry.flags() & LEAF != 0 {
            let value = f64::from_bits(entry.payload);
            for i in 1..=ud {
                let w = unwound_sum(path, ud, i, self.inv);
                let el = path[i];
                if let Some(p) = self.phi.get_mut(el.feature) {
                    *p += w * (el.one_fraction - el.zero_fraction) * value;
                }
            }
            return;
        }
        let split = entry.feature();
        let (left, right) = (node + 1, entry.right as usize);
        let (hot, cold) = if m.goes_left(entry, self.x) {
            (left, right)
        } else {
            (right, left)
        };
        let cover = |i: usize| m.cover.get(i).copied().unwrap_or(0.0);
        let w = cover(node);
        let (hot_zero, cold_zero) = (cover(hot) / w, cover(cold) / w);
        let (mut in_zero, mut in_one) = (1.0, 1.0);
        let mut ud = ud;
        // A feature already on the path: undo that split so that this node redoes it.
        if let Some(k) = (0..=ud).find(|&k| path[k].feature == split) {
            in_zero = path[k].zero_fraction;
            in_one = path[k].one_fraction;
            unwind(path, ud, k, self.inv);
            ud -= 1;
        }
        let child = start + ud + 1;
        self.recurse(hot, ud + 1, start, child, hot_zero * in_zero, in_one, split);
        self.recurse(cold, ud + 1, start, child, cold_zero * in_zero, 0.0, split);
    }
}

impl NativeModel {
    /// Whether every tree carries the node counts TreeSHAP needs.
    pub fn explainable(&self) -> bool {
        self.unexplainable_reason().is_none()
    }

    fn unexplainable_reason(&self) -> Option<String> {
        if self.max_depth() > MAX_EXPLAIN_DEPTH {
            return Some(format!(
                "trees are {} deep, at most {MAX_EXPLAIN_DEPTH} are explained",
                self.max_depth()
            ));
        }
        let multi_leaf = self.trees.iter().filter(|t| t.len > 1);
        for (k, t) in multi_leaf.enumerate() {
            let range = t.root as usize..(t.root + t.len) as usize;
            let cover = self.cover.get(range).unwrap_or_default();
            // Every cover positive: the fractions (and their reciprocals) stay finite.
            if cover.len() != t.len as usize || cover.iter().any(|&c| c.is_nan() || c <= 0.0) {
                return Some(format!(
                    "tree {} with splits has no leaf_count/internal_count, or a zero count",
                    k + 1
                ));
            }
        }
        None
    }

    /// TreeSHAP contributions of one row (see the module docs): equal to LightGBM's
    /// `pred_contrib` output, and `bias + Σ values` equals [`NativeModel::score`] up to rounding.
    pub fn contributions(&self, row: &[f32]) -> Result<Contributions, RankerError> {
        let n = self.num_features();
        if row.len() != n {
            return Err(RankerError::FeatureMismatch {
                expected: n,
                got: row.len(),
            });
        }
        if let Some(reason) = self.unexplainable_reason() {
            return Err(RankerError::Unexplainable { reason });
        }
        let mut x = Vec::with_capacity(n + 1);
        walk::convert_row(row, &mut x);
        let levels = self.max_depth() + 2;
        let mut paths = vec![PathElement::default(); levels * (levels + 1) / 2];
        let inv: Vec<f64> = (0..=levels + 1).map(|k| 1.0 / k as f64).collect();
        let mut phi = vec![0.0; n];
        let mut bias = 0.0;
        for t in &self.trees {
            bias += self.expected_value(t);
            if t.len > 1 {
                let mut walk = Walk {
                    model: self,
                    x: &x,
                    phi: &mut phi,
                    paths: &mut paths,
                    inv: &inv,
                };
                walk.recurse(t.root as usize, 0, 0, 0, 1.0, 1.0, usize::MAX);
            }
        }
        Ok(Contributions { values: phi, bias })
    }

    /// `Tree::ExpectedValue`: the leaf values weighted by the share of training rows in each.
    fn expected_value(&self, t: &TreeInfo) -> f64 {
        let range = t.root as usize..(t.root + t.len) as usize;
        let (Some(nodes), Some(cover)) = (self.nodes.get(range.clone()), self.cover.get(range))
        else {
            return 0.0;
        };
        if t.len == 1 {
            return nodes.first().map_or(0.0, |n| f64::from_bits(n.payload));
        }
        let total = cover.first().copied().unwrap_or(0.0);
        nodes
            .iter()
            .zip(cover)
            .filter(|(n, _)| n.flags() & LEAF != 0)
            .map(|(n, c)| c / total * f64::from_bits(n.payload))
            .sum()
    }
}
