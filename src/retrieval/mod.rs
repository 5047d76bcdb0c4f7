//! Stage 1: candidate sources. Each source is a pure function of the engine, the user profile and
//! the eligibility filter, so the server, the trainer (ranker labels) and the evaluator call the
//! very same code. Sources never see HTTP types and never block on locks.

pub mod cf;
pub mod content;
pub mod index;
pub mod popular;
pub mod session;

use crate::bundle::Model;
use rustc_hash::FxHashSet;

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

/// One source's ranked output: (item, score), best first.
pub type SourceList = Vec<(u32, f32)>;

use index::{IndexConfig, VectorIndex};

/// Loads the stored index `name` from `dir` when present and consistent, else builds one.
pub fn index_for(
    name: &str,
    dir: Option<&std::path::Path>,
    vectors: std::sync::Arc<[f32]>,
    bias: Option<Vec<f32>>,
    dim: usize,
    cfg: &IndexConfig,
) -> Result<VectorIndex, String> {
    match dir {
        Some(d) => VectorIndex::load_or_build(d, name, vectors, bias, dim, cfg),
        None => VectorIndex::build(vectors, bias, dim, cfg),
    }
    .map_err(|e| e.to_string())
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
