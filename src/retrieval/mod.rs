//! Stage 1, candidate generation: the candidate and profile types, the vector indexes, the
//! sources and the merge. Each source is a pure function of the [`Catalog`] it searches, the
//! user profile and the eligibility filter, so the pipeline, the trainer (ranker labels), the
//! evaluator and the benches call the very same code. Sources never see HTTP types, the engine
//! or the ranker, and never block on locks.

pub mod candidate;
pub mod cf;
pub mod content;
pub mod index;
pub mod item2item;
pub mod popular;
pub mod profile;
pub mod session;

pub use candidate::{Candidate, N_SOURCES, Source, SourceList, merge, source_names};
pub use profile::UserProfile;

use crate::bundle::Model;
use rustc_hash::FxHashSet;

/// What the sources search: the bundle's arrays and the two vector indexes built over them.
#[derive(Clone, Copy)]
pub struct Catalog<'a> {
    pub model: &'a Model,
    pub cf_index: &'a VectorIndex,
    pub content_index: &'a VectorIndex,
}

/// The category id of a `category=` the bundle does not know: no item has it.
pub const NO_SUCH_CATEGORY: u32 = u32::MAX;

/// Which items a request may receive: not excluded (seen or `exclude=`), and in `category` when given.
#[derive(Debug, Clone, Default)]
pub struct Eligibility {
    pub excluded: FxHashSet<u32>,
    pub category: Option<u32>,
}

impl Eligibility {
    #[inline]
    pub fn allows(&self, model: &Model, item: u32) -> bool {
        !self.excluded.contains(&item)
            && self
                .category
                .is_none_or(|c| model.item_categories(item).contains(&c))
    }
}

use index::{IndexConfig, IndexError, VectorIndex};

/// Loads the stored index `name` from `dir` when present and consistent, else builds one.
pub fn index_for(
    name: &str,
    dir: Option<&std::path::Path>,
    vectors: std::sync::Arc<[f32]>,
    bias: Option<Vec<f32>>,
    dim: usize,
    cfg: &IndexConfig,
) -> Result<VectorIndex, IndexError> {
    match dir {
        Some(d) => VectorIndex::load_or_build(d, name, vectors, bias, dim, cfg),
        None => VectorIndex::build(vectors, bias, dim, cfg),
    }
}

/// Top-`k` eligible items by the index's score, best first (the exact scan filters inline; the
/// graph search walks past excluded items).
pub trait SearchEligible {
    fn search_eligible(&self, query: &[f32], k: usize, allow: impl Fn(u32) -> bool) -> SourceList;
}

thread_local! {
    /// Per-thread search buffers, reused across requests (no per-request allocation of them).
    static SCRATCH: std::cell::RefCell<index::SearchScratch> = std::cell::RefCell::new(index::SearchScratch::new());
}

impl SearchEligible for VectorIndex {
    fn search_eligible(&self, query: &[f32], k: usize, allow: impl Fn(u32) -> bool) -> SourceList {
        let mut out = Vec::with_capacity(k);
        let res = SCRATCH.with(|s| match s.try_borrow_mut() {
            Ok(mut scratch) => self.search_filtered(query, k, &allow, &mut scratch, &mut out),
            Err(_) => {
                self.search_filtered(query, k, &allow, &mut index::SearchScratch::new(), &mut out)
            }
        });
        if let Err(e) = res {
            tracing::warn!(error = %e, "vector search failed; source returns nothing");
            out.clear();
        }
        out
    }
}
