//! Maximum-inner-product top-k retrieval over item vectors: an exact vectorised scan for small
//! catalogues, an HNSW graph (hnsw_rs, L2 over MIPS-augmented vectors) for large ones.
//!
//! Every score this module returns is the exact `dot(query, item) + bias[item]`: HNSW only proposes
//! candidates, which are rescored against the original vectors. Searches never allocate memory
//! proportional to the catalogue (buffers live in a caller-owned [`SearchScratch`]) and never
//! panic on caller input: a query of the wrong dimension or with non-finite values is an error.
//!
//! Submodules: [`exact`] (dot kernel, bounded top-k, scan), [`mips`] (augmentation and the graph),
//! [`persist`] (dump/reload of the graph with a JSON sidecar that proves it matches the vectors).

mod exact;
mod mips;
mod persist;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use self::exact::TopK;
use self::mips::MipsGraph;

/// Extra candidates fetched per round by a filtered HNSW search, on top of `k` and the caller's hint.
const FILTER_SLACK: usize = 32;
/// Rounds of an HNSW search that found fewer than `k` allowed items: each doubles the candidates fetched.
const SEARCH_ROUNDS: usize = 3;

/// Tuning of [`VectorIndex`]; deserialisable from the service configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IndexConfig {
    /// Catalogues with fewer items than this are searched by an exact scan (no graph is built).
    pub exact_below: usize,
    /// HNSW: maximum links per node and layer (hnsw_rs `max_nb_connection`), 2..=255
    /// (hnsw_rs stores it in a byte in dumps, so 256 would not survive a reload).
    pub m: usize,
    /// HNSW: candidate-list width while inserting.
    pub ef_construction: usize,
    /// HNSW: candidate-list width while searching; a value below `k` behaves like `k`.
    pub ef_search: usize,
    /// Threads used to build the graph; 0 means one per CPU.
    pub threads: usize,
}

impl Default for IndexConfig {
    fn default() -> Self {
        Self {
            exact_below: 50_000,
            m: 16,
            ef_construction: 200,
            ef_search: 128,
            threads: 0,
        }
    }
}

impl IndexConfig {
    /// Rejects values hnsw_rs would abort the process on (`m > 256`), could not reload (`m = 256`)
    /// or that make no sense.
    pub fn validate(&self) -> Result<(), IndexError> {
        let invalid = |field: &'static str, reason: &str| {
            Err(IndexError::InvalidConfig {
                field,
                reason: reason.to_owned(),
            })
        };
        if !(2..=255).contains(&self.m) {
            return invalid("m", "must be within 2..=255");
        }
        if self.ef_construction == 0 {
            return invalid("ef_construction", "must be at least 1");
        }
        if self.ef_search == 0 {
            return invalid("ef_search", "must be at least 1");
        }
        Ok(())
    }
}

/// Why an index could not be built, searched, dumped or loaded.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("invalid index configuration: `{field}` {reason}")]
    InvalidConfig { field: &'static str, reason: String },
    #[error("vector buffer of {len} floats is not a whole number of rows of dimension {dim}")]
    Shape { len: usize, dim: usize },
    #[error("bias has {actual} entries but there are {expected} items")]
    BiasLength { expected: usize, actual: usize },
    #[error("item {item} has a non-finite vector component or bias")]
    NonFiniteItem { item: usize },
    #[error("{n} items exceed the u32 id space")]
    TooManyItems { n: usize },
    #[error("query has dimension {actual}, the index has dimension {expected}")]
    QueryDimension { expected: usize, actual: usize },
    #[error("query has a non-finite component")]
    NonFiniteQuery,
    #[error("could not create the index build thread pool: {0}")]
    ThreadPool(#[from] rayon::ThreadPoolBuildError),
    #[error(
        "invalid dump name {0:?}: use 1-100 characters from [A-Za-z0-9._-], not starting with '.'"
    )]
    DumpName(String),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no index dump at {0}")]
    MissingDump(PathBuf),
    #[error("index dump sidecar {path} is unreadable: {source}")]
    Sidecar {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("index dump does not match these vectors: {0}")]
    StaleDump(String),
    #[error("index dump is corrupt: {0}")]
    CorruptDump(String),
    #[error("hnsw_rs failed: {0}")]
    Hnsw(String),
}

/// Reusable per-thread buffers for searches; create one per worker and pass it to every search.
#[derive(Debug, Default)]
pub struct SearchScratch {
    top: TopK,
    block: Vec<f32>,
    query_aug: Vec<f32>,
}

impl SearchScratch {
    pub fn new() -> Self {
        Self::default()
    }
}

/// Item vectors (row-major), optional per-item bias, and the search structure over them.
/// `Send + Sync`: one instance is searched concurrently from many threads.
pub struct VectorIndex {
    vectors: Vec<f32>,
    bias: Option<Vec<f32>>,
    dim: usize,
    n: usize,
    backend: Backend,
}

enum Backend {
    Exact,
    Hnsw(MipsGraph),
}

impl std::fmt::Debug for VectorIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VectorIndex")
            .field("kind", &self.kind())
            .field("len", &self.n)
            .field("dim", &self.dim)
            .field("bias", &self.bias.is_some())
            .finish()
    }
}

impl VectorIndex {
    /// Builds the index over `vectors` (`n × dim`, row-major). Scores are `dot + bias[i]`.
    /// Uses an exact scan when `n < cfg.exact_below` (or `n == 0`), else builds an HNSW graph.
    pub fn build(
        vectors: Vec<f32>,
        bias: Option<Vec<f32>>,
        dim: usize,
        cfg: &IndexConfig,
    ) -> Result<Self, IndexError> {
        let mut index = Self::exact(vectors, bias, dim, cfg)?;
        if index.n > 0 && index.n >= cfg.exact_below {
            let graph = MipsGraph::build(&index.vectors, index.bias.as_deref(), dim, cfg)?;
            index.backend = Backend::Hnsw(graph);
        }
        Ok(index)
    }

    /// Loads the graph dumped by [`dump`](Self::dump) as `name` in `dir`, if its sidecar proves it
    /// was built from exactly these vectors and bias; otherwise builds. Never writes files: call
    /// `dump` after a build to persist it. Below `cfg.exact_below` no file is read.
    pub fn load_or_build(
        dir: &Path,
        name: &str,
        vectors: Vec<f32>,
        bias: Option<Vec<f32>>,
        dim: usize,
        cfg: &IndexConfig,
    ) -> Result<Self, IndexError> {
        let mut index = Self::exact(vectors, bias, dim, cfg)?;
        if index.n == 0 || index.n < cfg.exact_below {
            return Ok(index);
        }
        let loaded = persist::load(dir, name, &index.vectors, index.bias.as_deref(), dim, cfg);
        let graph = match loaded {
            Ok(graph) => graph,
            Err(IndexError::MissingDump(path)) => {
                tracing::info!(path = %path.display(), "no index dump, building HNSW");
                MipsGraph::build(&index.vectors, index.bias.as_deref(), dim, cfg)?
            }
            Err(error) => {
                tracing::warn!(%error, dir = %dir.display(), name, "unusable index dump, rebuilding HNSW");
                MipsGraph::build(&index.vectors, index.bias.as_deref(), dim, cfg)?
            }
        };
        index.backend = Backend::Hnsw(graph);
        Ok(index)
    }

    /// Loads a dumped graph, failing (instead of building) when it is missing, stale or corrupt.
    pub fn load(
        dir: &Path,
        name: &str,
        vectors: Vec<f32>,
        bias: Option<Vec<f32>>,
        dim: usize,
        cfg: &IndexConfig,
    ) -> Result<Self, IndexError> {
        let mut index = Self::exact(vectors, bias, dim, cfg)?;
        let graph = persist::load(dir, name, &index.vectors, index.bias.as_deref(), dim, cfg)?;
        index.backend = Backend::Hnsw(graph);
        Ok(index)
    }

    /// Writes `name.hnsw.graph`, `name.hnsw.data` and `name.index.json` into `dir` (created if
    /// needed), replacing a previous dump of that name. An exact index has no graph: nothing is written.
    pub fn dump(&self, dir: &Path, name: &str) -> Result<(), IndexError> {
        match &self.backend {
            Backend::Exact => Ok(()),
            Backend::Hnsw(graph) => persist::dump(
                graph,
                dir,
                name,
                &self.vectors,
                self.bias.as_deref(),
                self.dim,
            ),
        }
    }

    /// Top-`k` items by `dot(query, item) + bias`, best first, written to `out` (cleared first).
    /// Returns fewer than `k` only when the catalogue is smaller, or when an HNSW graph yields fewer
    /// even after widening its search (at most 3 rounds, doubling the candidates each time).
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        scratch: &mut SearchScratch,
        out: &mut Vec<(u32, f32)>,
    ) -> Result<(), IndexError> {
        self.search_impl(query, k, 0, &|_| true, scratch, out)
    }

    /// Like [`search`](Self::search) but only items with `allow(id)` are returned.
    /// The exact scan filters inline (and calls `allow` only for items good enough to enter the top-k).
    /// HNSW over-fetches `k + expected_excluded + 32` candidates, filters, and doubles the fetch
    /// (at most 3 rounds) while fewer than `k` survive; pass the size of the exclusion set
    /// (e.g. the user's seen items) as `expected_excluded`.
    pub fn search_filtered(
        &self,
        query: &[f32],
        k: usize,
        expected_excluded: usize,
        allow: impl Fn(u32) -> bool,
        scratch: &mut SearchScratch,
        out: &mut Vec<(u32, f32)>,
    ) -> Result<(), IndexError> {
        let extra = expected_excluded.saturating_add(FILTER_SLACK);
        self.search_impl(query, k, extra, &allow, scratch, out)
    }

    fn search_impl(
        &self,
        query: &[f32],
        k: usize,
        extra: usize,
        allow: &impl Fn(u32) -> bool,
        scratch: &mut SearchScratch,
        out: &mut Vec<(u32, f32)>,
    ) -> Result<(), IndexError> {
        out.clear();
        self.check_query(query)?;
        if k == 0 || self.n == 0 {
            return Ok(());
        }
        match &self.backend {
            Backend::Exact => {
                let SearchScratch { top, block, .. } = scratch;
                let (vectors, bias) = (&self.vectors, self.bias.as_deref());
                exact::scan(vectors, bias, self.dim, query, k, allow, top, block);
                top.drain_sorted_into(out);
            }
            Backend::Hnsw(graph) => {
                let mut fetch = k.saturating_add(extra).min(self.n);
                for _ in 0..SEARCH_ROUNDS {
                    self.hnsw_round(graph, query, k, fetch, allow, scratch, out);
                    if out.len() >= k || fetch >= self.n {
                        break;
                    }
                    fetch = fetch.saturating_mul(2).min(self.n);
                }
            }
        }
        Ok(())
    }

    /// One HNSW search of `fetch` candidates, rescored exactly and filtered, into `out`.
    #[allow(clippy::too_many_arguments)]
    fn hnsw_round(
        &self,
        graph: &MipsGraph,
        query: &[f32],
        k: usize,
        fetch: usize,
        allow: &impl Fn(u32) -> bool,
        scratch: &mut SearchScratch,
        out: &mut Vec<(u32, f32)>,
    ) {
        let SearchScratch { top, query_aug, .. } = scratch;
        top.reset(k);
        for id in graph.candidates(query, fetch, query_aug) {
            // Ids come from our own inserts (0..n); the bound check guards a foreign dump anyway.
            let Ok(id) = u32::try_from(id) else { continue };
            if let Some(score) = self.score(query, id)
                && top.would_accept(score, id)
                && allow(id)
            {
                top.push(score, id);
            }
        }
        top.drain_sorted_into(out);
    }

    /// Changes the HNSW search width (a value below `k` behaves like `k`); no effect on an exact index.
    pub fn set_ef_search(&mut self, ef_search: usize) {
        if let Backend::Hnsw(graph) = &mut self.backend {
            graph.set_ef_search(ef_search.max(1));
        }
    }

    /// The exact score of one item, or `None` when `item` is out of range or the query has the wrong dimension.
    pub fn score(&self, query: &[f32], item: u32) -> Option<f32> {
        if query.len() != self.dim {
            return None;
        }
        let v = self.vector(item)?;
        let b = self.bias.as_ref().map_or(0.0, |b| b[item as usize]);
        Some(exact::dot(query, v) + b)
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Dimension of item and query vectors (without the augmentation).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// `"exact"` or `"hnsw"`, for logs and metrics labels.
    pub fn kind(&self) -> &'static str {
        match self.backend {
            Backend::Exact => "exact",
            Backend::Hnsw(_) => "hnsw",
        }
    }

    /// Whether the HNSW graph was reloaded from a dump rather than built in this process.
    pub fn is_loaded_from_dump(&self) -> bool {
        matches!(&self.backend, Backend::Hnsw(graph) if graph.is_loaded())
    }

    /// The original (non-augmented) vector of `item`, or `None` when out of range.
    pub fn vector(&self, item: u32) -> Option<&[f32]> {
        let i = item as usize;
        if i >= self.n {
            return None;
        }
        self.vectors.get(i * self.dim..(i + 1) * self.dim)
    }

    /// The bias of `item` (0 when the index has none), or `None` when out of range.
    pub fn bias(&self, item: u32) -> Option<f32> {
        let i = item as usize;
        if i >= self.n {
            return None;
        }
        Some(self.bias.as_ref().map_or(0.0, |b| b[i]))
    }

    /// Validates the inputs and returns an exact-scan index over them.
    fn exact(
        vectors: Vec<f32>,
        bias: Option<Vec<f32>>,
        dim: usize,
        cfg: &IndexConfig,
    ) -> Result<Self, IndexError> {
        cfg.validate()?;
        if dim == 0 || !vectors.len().is_multiple_of(dim) {
            return Err(IndexError::Shape {
                len: vectors.len(),
                dim,
            });
        }
        let n = vectors.len() / dim;
        if u32::try_from(n).is_err() {
            return Err(IndexError::TooManyItems { n });
        }
        if let Some(b) = &bias
            && b.len() != n
        {
            return Err(IndexError::BiasLength {
                expected: n,
                actual: b.len(),
            });
        }
        if let Some(item) = vectors
            .chunks_exact(dim)
            .position(|row| !row.iter().all(|x| x.is_finite()))
        {
            return Err(IndexError::NonFiniteItem { item });
        }
        if let Some(item) = bias
            .as_ref()
            .and_then(|b| b.iter().position(|x| !x.is_finite()))
        {
            return Err(IndexError::NonFiniteItem { item });
        }
        Ok(Self {
            vectors,
            bias,
            dim,
            n,
            backend: Backend::Exact,
        })
    }

    fn check_query(&self, query: &[f32]) -> Result<(), IndexError> {
        if query.len() != self.dim {
            return Err(IndexError::QueryDimension {
                expected: self.dim,
                actual: query.len(),
            });
        }
        if !query.iter().all(|x| x.is_finite()) {
            return Err(IndexError::NonFiniteQuery);
        }
        Ok(())
    }
}

// Searched from many threads at once; a compile error here means a field lost Send or Sync.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<VectorIndex>();
};
