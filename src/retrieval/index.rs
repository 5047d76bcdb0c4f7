//! Maximum-inner-product top-k retrieval over item vectors: an exact vectorised scan for small
//! catalogues, an HNSW proximity graph (built by hnsw_rs over MIPS-augmented vectors) for large ones.
//!
//! Every score this module returns is the exact `dot(query, item) + bias[item]`. Searches never
//! allocate memory proportional to the catalogue per query (buffers live in a caller-owned
//! [`SearchScratch`]) and never panic on caller input: a query of the wrong dimension or with
//! non-finite values is an error.
//!
//! Exclusions come as [`ExcludedIds`] (sorted ids): the exact scan skips them by position, with
//! no per-item lookup; other filters are a predicate called only for would-be results.
//!
//! A search under a bounded [`Deadline`] looks at it every few thousand items scored (or graph
//! nodes expanded) and, once it has passed, stops and returns the best of what it has seen,
//! saying so ([`Coverage::Cut`]): abandoned work stops instead of running to completion.
//!
//! Submodules: `exact` (dot kernels, key selection scan, bounded top-k heap), `mips` (augmentation, graph build),
//! `graph` (inner-product beam search over the graph), `persist` (checksummed graph dumps).

mod exact;
/// The scan kernel's dot product (sixteen accumulators), for other exact scans.
pub(crate) use exact::dot;
mod graph;
mod mips;
mod persist;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::deadline::Deadline;

use self::exact::{Kernel, ScanScratch, TopK};
use self::graph::{GraphScratch, Items, ProximityGraph};

/// Tuning of [`VectorIndex`]; deserialisable from the service configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IndexConfig {
    /// Catalogues with fewer items than this are searched by an exact scan (no graph is built).
    pub exact_below: usize,
    /// Graph build: maximum links per node and upper layer (hnsw_rs `max_nb_connection`; the bottom
    /// layer, the one searched, keeps up to `2m`), 2..=255.
    pub m: usize,
    /// Graph build: candidate-list width while inserting.
    pub ef_construction: usize,
    /// Search: beam width; a value below `k` behaves like `k`.
    pub ef_search: usize,
    /// Search: items scored exhaustively (an even stride over the ids) to find starting points.
    pub seed_pool: usize,
    /// Search: how many of the best pool items the beam starts from.
    pub seeds: usize,
    /// Threads used to build the graph; 0 means one per CPU.
    pub threads: usize,
    /// Search: most graph nodes expanded per search; 0 = auto (32 × the beam width, at least
    /// 1,024). A filter that admits few items (a small category) would otherwise walk the whole
    /// graph looking for enough of them; capped, the search returns what it found.
    pub max_expansions: usize,
}

impl Default for IndexConfig {
    fn default() -> Self {
        Self {
            exact_below: 50_000,
            m: 16,
            ef_construction: 200,
            ef_search: 128,
            seed_pool: 4096,
            seeds: 32,
            threads: 0,
            max_expansions: 0,
        }
    }
}

impl IndexConfig {
    /// Rejects values hnsw_rs would abort the process on (`m > 256`) or that make no sense.
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
        for (field, value) in [
            ("ef_construction", self.ef_construction),
            ("ef_search", self.ef_search),
            ("seed_pool", self.seed_pool),
            ("seeds", self.seeds),
        ] {
            if value == 0 {
                return invalid(field, "must be at least 1");
            }
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
    #[error("index dump does not match these vectors or settings: {0}")]
    StaleDump(String),
    #[error("index dump is corrupt: {0}")]
    CorruptDump(String),
}

/// Reusable per-thread buffers for searches; create one per worker and pass it to every search.
/// An exact scan keeps `O(k)` in it; after a graph search it holds 4 bytes per item of the largest
/// graph index searched with it.
#[derive(Debug, Default)]
pub struct SearchScratch {
    top: TopK,
    scan: ScanScratch,
    graph: GraphScratch,
}

/// Item ids a search must not return (e.g. a user's history), sorted ascending without duplicates.
/// Membership is a binary search; the exact scan walks the list alongside the ids instead.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExcludedIds(Vec<u32>);

impl ExcludedIds {
    /// Sorts and deduplicates `ids`.
    pub fn new(ids: impl IntoIterator<Item = u32>) -> Self {
        let mut ids: Vec<u32> = ids.into_iter().collect();
        ids.sort_unstable();
        ids.dedup();
        Self(ids)
    }

    /// These ids and the ascending, duplicate-free `sorted` together: one linear merge.
    pub fn union_sorted(&self, sorted: &[u32]) -> Self {
        let (a, b) = (&self.0, sorted);
        let mut out = Vec::with_capacity(a.len() + b.len());
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            match a[i].cmp(&b[j]) {
                std::cmp::Ordering::Less => {
                    out.push(a[i]);
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    out.push(b[j]);
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    out.push(a[i]);
                    i += 1;
                    j += 1;
                }
            }
        }
        out.extend_from_slice(&a[i..]);
        out.extend_from_slice(&b[j..]);
        Self(out)
    }

    #[inline]
    pub fn contains(&self, id: u32) -> bool {
        self.0.binary_search(&id).is_ok()
    }

    /// The ids, ascending.
    pub fn as_slice(&self) -> &[u32] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<u32> for ExcludedIds {
    fn from_iter<I: IntoIterator<Item = u32>>(ids: I) -> Self {
        Self::new(ids)
    }
}

impl SearchScratch {
    pub fn new() -> Self {
        Self::default()
    }
}

/// Whether a search looked at everything it would have offline, or stopped at its deadline and
/// returned the best of the items it had scored by then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coverage {
    Complete,
    Cut,
}

impl Coverage {
    pub fn is_cut(self) -> bool {
        self == Coverage::Cut
    }
}

/// Item vectors (row-major), optional per-item bias, and the search structure over them.
/// `Send + Sync`: one instance is searched concurrently from many threads.
pub struct VectorIndex {
    vectors: Arc<[f32]>,
    bias: Option<Vec<f32>>,
    dim: usize,
    n: usize,
    /// The dot kernel of the exact scan, chosen for this CPU at build.
    kernel: Kernel,
    backend: Backend,
}

enum Backend {
    Exact,
    Graph { graph: ProximityGraph, loaded: bool },
}

impl std::fmt::Debug for VectorIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VectorIndex")
            .field("kind", &self.kind())
            .field("len", &self.n)
            .field("dim", &self.dim)
            .field("bias", &self.bias.is_some())
            .field("loaded_from_dump", &self.is_loaded_from_dump())
            .finish()
    }
}

impl VectorIndex {
    /// Builds the index over `vectors` (`n × dim`, row-major). Scores are `dot + bias[i]`.
    /// Uses an exact scan when `n < cfg.exact_below` (or `n == 0`), else builds an HNSW graph
    /// (minutes for 100k items: build in `train`, [`dump`](Self::dump), and load in `serve`).
    pub fn build(
        vectors: impl Into<Arc<[f32]>>,
        bias: Option<Vec<f32>>,
        dim: usize,
        cfg: &IndexConfig,
    ) -> Result<Self, IndexError> {
        let mut index = Self::exact(vectors, bias, dim, cfg)?;
        if index.n > 0 && index.n >= cfg.exact_below {
            let graph = mips::build_graph(&index.vectors, index.bias.as_deref(), dim, cfg)?;
            index.backend = Backend::Graph {
                graph,
                loaded: false,
            };
        }
        Ok(index)
    }

    /// Loads the graph dumped by [`dump`](Self::dump) as `name` in `dir` if it was built from
    /// exactly these vectors and bias with the same `m` and `ef_construction`; otherwise builds
    /// (logging why). Never writes files: call `dump` after a build to persist it.
    /// Below `cfg.exact_below` no file is read.
    pub fn load_or_build(
        dir: &Path,
        name: &str,
        vectors: impl Into<Arc<[f32]>>,
        bias: Option<Vec<f32>>,
        dim: usize,
        cfg: &IndexConfig,
    ) -> Result<Self, IndexError> {
        let mut index = Self::exact(vectors, bias, dim, cfg)?;
        if index.n == 0 || index.n < cfg.exact_below {
            return Ok(index);
        }
        let (vectors, bias) = (&index.vectors, index.bias.as_deref());
        let backend = match persist::load(dir, name, vectors, bias, dim, cfg) {
            Ok(graph) => Backend::Graph {
                graph,
                loaded: true,
            },
            Err(error) => {
                if matches!(error, IndexError::MissingDump(_)) {
                    tracing::info!(%error, "building HNSW graph");
                } else {
                    tracing::warn!(%error, "unusable index dump, rebuilding HNSW graph");
                }
                Backend::Graph {
                    graph: mips::build_graph(vectors, bias, dim, cfg)?,
                    loaded: false,
                }
            }
        };
        index.backend = backend;
        Ok(index)
    }

    /// Loads a dumped graph, failing (instead of building) when it is missing, stale or corrupt.
    pub fn load(
        dir: &Path,
        name: &str,
        vectors: impl Into<Arc<[f32]>>,
        bias: Option<Vec<f32>>,
        dim: usize,
        cfg: &IndexConfig,
    ) -> Result<Self, IndexError> {
        let mut index = Self::exact(vectors, bias, dim, cfg)?;
        let graph = persist::load(dir, name, &index.vectors, index.bias.as_deref(), dim, cfg)?;
        index.backend = Backend::Graph {
            graph,
            loaded: true,
        };
        Ok(index)
    }

    /// Atomically writes (or replaces) `dir/name.graph`, creating `dir` if needed.
    /// An exact index has no graph: nothing is written.
    pub fn dump(&self, dir: &Path, name: &str) -> Result<(), IndexError> {
        match &self.backend {
            Backend::Exact => Ok(()),
            Backend::Graph { graph, .. } => persist::dump(
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
    /// Returns fewer than `k` only when the catalogue (or the part of the graph reachable from the
    /// seeds) is smaller, or when a filter admits so few items that the graph search reaches its
    /// expansion cap (`max_expansions`) first.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        scratch: &mut SearchScratch,
        out: &mut Vec<(u32, f32)>,
    ) -> Result<(), IndexError> {
        self.search_excluding(query, k, &ExcludedIds::default(), |_| true, scratch, out)
    }

    /// Like [`search`](Self::search) but only items with `allow(id)` are returned. `allow` is only
    /// called for items good enough to enter the top-k; the graph search walks through excluded
    /// items without returning them, widening by itself. For a list of ids to skip (the user's
    /// seen items), [`search_excluding`](Self::search_excluding) is faster.
    pub fn search_filtered(
        &self,
        query: &[f32],
        k: usize,
        allow: impl Fn(u32) -> bool,
        scratch: &mut SearchScratch,
        out: &mut Vec<(u32, f32)>,
    ) -> Result<(), IndexError> {
        self.search_excluding(query, k, &ExcludedIds::default(), allow, scratch, out)
    }

    /// Like [`search_filtered`](Self::search_filtered), also never returning an id in `excluded`.
    /// The exact scan skips those by position (`O(|excluded|)` per search, no per-item lookup).
    pub fn search_excluding(
        &self,
        query: &[f32],
        k: usize,
        excluded: &ExcludedIds,
        allow: impl Fn(u32) -> bool,
        scratch: &mut SearchScratch,
        out: &mut Vec<(u32, f32)>,
    ) -> Result<(), IndexError> {
        let _complete =
            self.search_within(query, k, excluded, allow, Deadline::NONE, scratch, out)?;
        Ok(())
    }

    /// [`search_excluding`](Self::search_excluding) under `deadline`: past it, the search stops at
    /// its next check and returns the best items it had scored ([`Coverage::Cut`]).
    #[allow(clippy::too_many_arguments)]
    pub fn search_within(
        &self,
        query: &[f32],
        k: usize,
        excluded: &ExcludedIds,
        allow: impl Fn(u32) -> bool,
        deadline: Deadline,
        scratch: &mut SearchScratch,
        out: &mut Vec<(u32, f32)>,
    ) -> Result<Coverage, IndexError> {
        out.clear();
        self.check_query(query)?;
        // More than `n` results cannot exist; clamping keeps buffer sizes bounded for huge `k`.
        let k = k.min(self.n);
        if k == 0 {
            return Ok(Coverage::Complete);
        }
        let SearchScratch { top, scan, graph } = scratch;
        let (vectors, bias, dim) = (&self.vectors, self.bias.as_deref(), self.dim);
        let coverage = match &self.backend {
            Backend::Exact => {
                let ids = excluded.as_slice();
                let kernel = self.kernel;
                exact::scan(
                    vectors, bias, dim, query, k, ids, &allow, kernel, deadline, scan, out,
                )
            }
            Backend::Graph { graph: g, .. } => {
                let items = Items { vectors, bias, dim };
                let allow = |id| !excluded.contains(id) && allow(id);
                let coverage = g.search(items, query, k, &allow, deadline, top, graph);
                top.drain_sorted_into(out);
                out.truncate(k);
                coverage
            }
        };
        Ok(coverage)
    }

    /// Exact top-`k` among `members` (a category's items, say) that are not in `excluded` and pass
    /// `allow`; best first by score, then id. `O(|members| · dim)`: what a filter admitting few items should cost,
    /// whatever the backend. Ids outside the catalogue are ignored. Past `deadline` (checked every
    /// few thousand members) it answers from the members scored so far ([`Coverage::Cut`]).
    #[allow(clippy::too_many_arguments)]
    pub fn search_among(
        &self,
        query: &[f32],
        k: usize,
        members: &[u32],
        excluded: &ExcludedIds,
        allow: impl Fn(u32) -> bool,
        deadline: Deadline,
        out: &mut Vec<(u32, f32)>,
    ) -> Result<Coverage, IndexError> {
        out.clear();
        self.check_query(query)?;
        if k == 0 {
            return Ok(Coverage::Complete);
        }
        let dim = self.dim;
        let mut keys: Vec<u64> = Vec::with_capacity(members.len().min(exact::CHECK_EVERY));
        let mut coverage = Coverage::Complete;
        for (c, chunk) in members.chunks(exact::CHECK_EVERY).enumerate() {
            if c > 0 && deadline.expired() {
                coverage = Coverage::Cut;
                break;
            }
            keys.extend(
                chunk
                    .iter()
                    .filter(|&&id| (id as usize) < self.n && !excluded.contains(id) && allow(id))
                    .map(|&id| {
                        let i = id as usize;
                        let row = &self.vectors[i * dim..(i + 1) * dim];
                        let b = self.bias.as_ref().map_or(0.0, |b| b[i]);
                        exact::key(exact::dot(query, row) + b, id)
                    }),
            );
        }
        keys.sort_unstable();
        keys.dedup();
        out.extend(keys.iter().rev().take(k).map(|&key| exact::unkey(key)));
        Ok(coverage)
    }

    /// Applies the search-time fields of `cfg` (`ef_search`, `seed_pool`, `seeds`) without
    /// rebuilding; an exact index ignores them.
    pub fn set_search_config(&mut self, cfg: &IndexConfig) -> Result<(), IndexError> {
        cfg.validate()?;
        if let Backend::Graph { graph, .. } = &mut self.backend {
            let items = Items {
                vectors: &self.vectors,
                bias: self.bias.as_deref(),
                dim: self.dim,
            };
            graph.configure(cfg, items);
        }
        Ok(())
    }

    /// The exact score of one item, or `None` when `item` is out of range or the query has the wrong dimension.
    pub fn score(&self, query: &[f32], item: u32) -> Option<f32> {
        if query.len() != self.dim {
            return None;
        }
        Some(exact::dot(query, self.vector(item)?) + self.bias(item)?)
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Dimension of item and query vectors.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// `"exact"` or `"hnsw"`, for logs and metric labels.
    pub fn kind(&self) -> &'static str {
        match self.backend {
            Backend::Exact => "exact",
            Backend::Graph { .. } => "hnsw",
        }
    }

    /// Whether the graph was reloaded from a dump rather than built in this process.
    pub fn is_loaded_from_dump(&self) -> bool {
        matches!(self.backend, Backend::Graph { loaded: true, .. })
    }

    /// The vector of `item`, or `None` when out of range.
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
        match &self.bias {
            Some(b) => b.get(i).copied(),
            None => Some(0.0),
        }
    }

    /// Validates the inputs and returns an exact-scan index over them.
    fn exact(
        vectors: impl Into<Arc<[f32]>>,
        bias: Option<Vec<f32>>,
        dim: usize,
        cfg: &IndexConfig,
    ) -> Result<Self, IndexError> {
        cfg.validate()?;
        let vectors: Arc<[f32]> = vectors.into();
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
            kernel: Kernel::detect(),
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
