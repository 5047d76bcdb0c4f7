//! Builds the proximity graph for maximum inner product search with hnsw_rs, over augmented vectors.
//!
//! hnsw_rs's `DistDot` panics on inputs that are not exactly unit-norm, so inner product is reduced to
//! Euclidean nearest neighbour (Bachrach et al. 2014). With the bias folded in as a coordinate,
//! `x' = [x, b]` and `q' = [q, 1]`, so `q'·x' = q·x + b`. Let `M = max ||x'||` over the catalogue:
//!
//! - item  `x̃ = [x'/M, sqrt(1 − ||x'/M||²)]`: every item then has norm exactly 1;
//! - query `q̃ = [q'/||q'||, 0]` (norm 1; `||q'|| ≥ 1` thanks to the constant coordinate).
//!
//! `||q̃ − x̃||² = 2 − 2·q̃·x̃ = 2 − 2·(q·x + b)/(M·||q'||)`, a decreasing function of `q·x + b`,
//! so the nearest augmented item is the maximum-inner-product item. Scaling by `1/M` and `1/||q'||`
//! changes no ranking and keeps distances within [0, 4], where f32 keeps its precision.
//!
//! hnsw_rs links each augmented item to its L2 neighbours; only the bottom layer's links are kept
//! (see `super::graph`, which searches them with the exact `q·x + b`, the same order as the L2
//! distance to `q̃`), and the hnsw_rs structure is dropped once they are copied out.

use hnsw_rs::prelude::{Distance, Hnsw};

use super::graph::{Items, ProximityGraph};
use super::{IndexConfig, IndexError};

/// Layers of the hnsw_rs graph; hnsw_rs caps it at 16.
const MAX_LAYERS: usize = 16;
/// Extra coordinates of an augmented vector: the bias (or 0) and the norm-completing one.
const EXTRA_DIMS: usize = 2;

/// Squared Euclidean distance with independent accumulators (hnsw_rs's `DistL2` sums serially).
/// Squaring preserves every comparison the graph construction makes, and the result is never
/// negative, which hnsw_rs asserts.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct AugmentedL2;

impl Distance<f32> for AugmentedL2 {
    fn eval(&self, va: &[f32], vb: &[f32]) -> f32 {
        const LANES: usize = 16;
        let len = va.len().min(vb.len());
        let (a_chunks, a_tail) = va[..len].as_chunks::<LANES>();
        let (b_chunks, b_tail) = vb[..len].as_chunks::<LANES>();
        let mut acc = [0.0f32; LANES];
        for (x, y) in a_chunks.iter().zip(b_chunks) {
            for i in 0..LANES {
                let d = x[i] - y[i];
                acc[i] += d * d;
            }
        }
        let mut sum: f32 = a_tail
            .iter()
            .zip(b_tail)
            .map(|(x, y)| (x - y) * (x - y))
            .sum();
        for a in acc {
            sum += a;
        }
        sum
    }
}

/// `M`: the largest norm of `[x, b]` over the catalogue (f64 accumulation), or 1 when every item is zero.
pub(crate) fn augmentation_norm(vectors: &[f32], bias: Option<&[f32]>, dim: usize) -> f32 {
    let mut max_sq = 0.0f64;
    for (i, row) in vectors.chunks_exact(dim).enumerate() {
        let b = bias.and_then(|b| b.get(i)).map_or(0.0, |&b| f64::from(b));
        let sq = row
            .iter()
            .map(|&x| f64::from(x) * f64::from(x))
            .sum::<f64>()
            + b * b;
        max_sq = max_sq.max(sq);
    }
    let norm = max_sq.sqrt() as f32;
    if norm > 0.0 && norm.is_finite() {
        norm
    } else {
        1.0
    }
}

/// Appends the augmented item `[x/M, b/M, sqrt(1 − ||[x, b]/M||²)]` to `out`.
pub(crate) fn augment_item(row: &[f32], bias: f32, norm: f32, out: &mut Vec<f32>) {
    let start = out.len();
    out.extend(row.iter().map(|&x| x / norm));
    out.push(bias / norm);
    let sq: f64 = out[start..]
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum();
    out.push((1.0 - sq).max(0.0).sqrt() as f32);
}

/// Writes the augmented query `[q, 1]/||[q, 1]||, 0` into `out` (the search itself scores the
/// original vectors; this is the other half of the reduction, used to test it).
#[cfg(test)]
pub(crate) fn augment_query(query: &[f32], out: &mut Vec<f32>) {
    out.clear();
    let sq: f64 = 1.0
        + query
            .iter()
            .map(|&x| f64::from(x) * f64::from(x))
            .sum::<f64>();
    let inv = (1.0 / sq.sqrt()) as f32;
    out.extend(query.iter().map(|&x| x * inv));
    out.push(inv);
    out.push(0.0);
}

/// Builds the hnsw_rs graph over the augmented items with `cfg.threads` rayon threads
/// (0 = one per CPU) and keeps its bottom layer.
pub(crate) fn build_graph(
    vectors: &[f32],
    bias: Option<&[f32]>,
    dim: usize,
    cfg: &IndexConfig,
) -> Result<ProximityGraph, IndexError> {
    let n = vectors.len() / dim;
    let norm = augmentation_norm(vectors, bias, dim);
    let aug_dim = dim + EXTRA_DIMS;
    let mut augmented = Vec::with_capacity(n * aug_dim);
    for (i, row) in vectors.chunks_exact(dim).enumerate() {
        let b = bias.and_then(|b| b.get(i)).copied().unwrap_or(0.0);
        augment_item(row, b, norm, &mut augmented);
    }
    let started = std::time::Instant::now();
    let hnsw: Hnsw<'_, f32, AugmentedL2> =
        Hnsw::new(cfg.m, n, MAX_LAYERS, cfg.ef_construction, AugmentedL2);
    let inserts: Vec<(&[f32], usize)> = augmented.chunks_exact(aug_dim).zip(0..n).collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cfg.threads)
        .thread_name(|i| format!("hnsw-build-{i}"))
        .build()?;
    pool.install(|| hnsw.parallel_insert_slice(&inserts));

    let mut lists: Vec<Vec<u32>> = vec![Vec::new(); n];
    for point in hnsw.get_point_indexation() {
        let id = point.get_origin_id();
        let layer0 = point.get_neighborhood_id().into_iter().next();
        if let (Some(slot), Some(layer0)) = (lists.get_mut(id), layer0) {
            slot.extend(
                layer0
                    .iter()
                    .map(|nb| nb.d_id)
                    .filter(|&j| j < n && j != id)
                    .map(|j| j as u32),
            );
        }
    }
    let mut offsets = Vec::with_capacity(n + 1);
    offsets.push(0);
    let mut neighbours = Vec::with_capacity(lists.iter().map(Vec::len).sum());
    for list in &lists {
        neighbours.extend_from_slice(list);
        offsets.push(neighbours.len());
    }
    tracing::info!(
        items = n,
        dim,
        m = cfg.m,
        ef_construction = cfg.ef_construction,
        mean_degree = neighbours.len() as f64 / n.max(1) as f64,
        seconds = started.elapsed().as_secs_f64(),
        "built HNSW graph"
    );
    let items = Items { vectors, bias, dim };
    Ok(ProximityGraph::new(offsets, neighbours, cfg, items))
}
