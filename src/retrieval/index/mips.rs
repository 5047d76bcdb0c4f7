//! Maximum inner product search through an L2 HNSW graph (hnsw_rs) over augmented vectors.
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
//! The graph only proposes candidates: callers rescore them with the exact `dot + bias`.

use hnsw_rs::prelude::{Distance, Hnsw, Neighbour};

use super::persist::LoadedGraph;
use super::{IndexConfig, IndexError};

/// Layers of the graph; hnsw_rs caps it at 16.
pub(crate) const MAX_LAYERS: usize = 16;
/// Extra coordinates of an augmented vector: the bias (or 0) and the norm-completing one.
pub(crate) const EXTRA_DIMS: usize = 2;

/// The graph type stored in memory and in dumps.
pub(crate) type Graph = Hnsw<'static, f32, AugmentedL2>;

/// Squared Euclidean distance with independent accumulators (hnsw_rs's `DistL2` sums serially).
/// Squaring preserves every comparison the graph makes, and the result is never negative,
/// which hnsw_rs asserts. Its type name is recorded in dumps and checked on reload.
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

/// Largest norm of `[x, b]` over the catalogue (f64 accumulation), or 1 when every item is zero.
pub(crate) fn augmentation_norm(vectors: &[f32], bias: Option<&[f32]>, dim: usize) -> f32 {
    let mut max_sq = 0.0f64;
    for (i, row) in vectors.chunks_exact(dim).enumerate() {
        let b = bias.map_or(0.0, |b| f64::from(b[i]));
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
fn augment_item(row: &[f32], bias: f32, norm: f32, out: &mut Vec<f32>) {
    let start = out.len();
    out.extend(row.iter().map(|&x| x / norm));
    out.push(bias / norm);
    let sq: f64 = out[start..]
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum();
    out.push((1.0 - sq).max(0.0).sqrt() as f32);
}

/// Writes the augmented query `[q, 1]/||[q, 1]||, 0` into `out`.
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

/// The HNSW graph over augmented item vectors, built here or reloaded from a dump.
pub(crate) struct MipsGraph {
    store: GraphStore,
    /// `M`, the augmentation norm (recorded in the dump sidecar).
    norm: f32,
    ef_search: usize,
}

enum GraphStore {
    Built(Graph),
    Loaded(LoadedGraph),
}

impl MipsGraph {
    /// Builds the graph with `cfg.threads` rayon threads (0 = one per CPU).
    pub(crate) fn build(
        vectors: &[f32],
        bias: Option<&[f32]>,
        dim: usize,
        cfg: &IndexConfig,
    ) -> Result<Self, IndexError> {
        let n = vectors.len() / dim;
        let norm = augmentation_norm(vectors, bias, dim);
        let aug_dim = dim + EXTRA_DIMS;
        let mut augmented = Vec::with_capacity(n * aug_dim);
        for (i, row) in vectors.chunks_exact(dim).enumerate() {
            augment_item(row, bias.map_or(0.0, |b| b[i]), norm, &mut augmented);
        }
        let started = std::time::Instant::now();
        let mut graph: Graph = Hnsw::new(cfg.m, n, MAX_LAYERS, cfg.ef_construction, AugmentedL2);
        let items: Vec<(&[f32], usize)> = augmented.chunks_exact(aug_dim).zip(0..n).collect();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(cfg.threads)
            .thread_name(|i| format!("hnsw-build-{i}"))
            .build()?;
        pool.install(|| graph.parallel_insert_slice(&items));
        graph.set_searching_mode(true);
        tracing::info!(
            items = n,
            dim,
            m = cfg.m,
            ef_construction = cfg.ef_construction,
            seconds = started.elapsed().as_secs_f64(),
            "built HNSW index"
        );
        Ok(Self {
            store: GraphStore::Built(graph),
            norm,
            ef_search: cfg.ef_search,
        })
    }

    pub(crate) fn from_loaded(loaded: LoadedGraph, norm: f32, cfg: &IndexConfig) -> Self {
        Self {
            store: GraphStore::Loaded(loaded),
            norm,
            ef_search: cfg.ef_search,
        }
    }

    pub(crate) fn graph(&self) -> &Graph {
        match &self.store {
            GraphStore::Built(graph) => graph,
            GraphStore::Loaded(loaded) => loaded.graph(),
        }
    }

    pub(crate) fn set_ef_search(&mut self, ef_search: usize) {
        self.ef_search = ef_search;
    }

    pub(crate) fn norm(&self) -> f32 {
        self.norm
    }

    pub(crate) fn is_loaded(&self) -> bool {
        matches!(self.store, GraphStore::Loaded(_))
    }

    /// Ids of approximate maximum-inner-product items: the whole search list of width
    /// `max(ef_search, fetch)`, at least `fetch` when the graph has that many. The search visits
    /// those candidates anyway, so returning all of them for exact rescoring costs a few hundred
    /// dot products and recovers items the L2 ordering misplaces near the top-k boundary.
    pub(crate) fn candidates(
        &self,
        query: &[f32],
        fetch: usize,
        query_aug: &mut Vec<f32>,
    ) -> impl Iterator<Item = usize> + use<> {
        augment_query(query, query_aug);
        let ef = self.ef_search.max(fetch);
        let found: Vec<Neighbour> = self.graph().search(query_aug, ef, ef);
        found.into_iter().map(|n| n.d_id)
    }
}
