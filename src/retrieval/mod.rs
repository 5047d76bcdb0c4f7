//! Stage 1, candidate generation: the candidate and profile types, the vector indexes, the
//! sources and the merge. Each source is a pure function of the [`Catalog`] it searches, the
//! user profile and the eligibility filter, so the pipeline, the trainer (ranker labels), the
//! evaluator and the benches call the very same code. Sources never see HTTP types, the engine
//! or the ranker, and never block on locks. The searching sources (cf, content, session,
//! item2item) take the request's [`Deadline`] and stop mid-search once it has passed, returning
//! what they found and saying so ([`Found::cut`]); offline callers pass [`Deadline::NONE`].

pub mod candidate;
pub mod cf;
pub mod content;
pub mod index;
pub mod item2item;
pub mod popular;
pub mod profile;
pub mod segment;
pub mod session;
mod sums;

pub use crate::deadline::Deadline;
pub use candidate::{Candidate, Found, N_SOURCES, Source, SourceList, merge};
pub use profile::UserProfile;

use crate::bundle::Model;

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
/// The excluded ids are kept sorted, so the exact index scan skips them by position (no lookup per
/// item) and [`allows`](Self::allows) is a binary search over a user's tens to hundreds of items.
#[derive(Debug, Clone, Default)]
pub struct Eligibility {
    pub excluded: ExcludedIds,
    pub category: Option<u32>,
}

impl Eligibility {
    /// Eligibility excluding `excluded` (any order, duplicates allowed) and, when given, requiring `category`.
    pub fn new(excluded: impl IntoIterator<Item = u32>, category: Option<u32>) -> Self {
        Self {
            excluded: ExcludedIds::new(excluded),
            category,
        }
    }

    #[inline]
    pub fn allows(&self, model: &Model, item: u32) -> bool {
        !self.excluded.contains(item) && self.in_category(model, item)
    }

    /// The requested category's items (`None` without a category filter), for sources to search
    /// among.
    pub fn members<'m>(&self, model: &'m Model) -> Option<&'m [u32]> {
        self.category.map(|c| {
            model
                .popular_by_category
                .get(c as usize)
                .map_or(&[][..], |v| v.as_slice())
        })
    }

    /// The category half of [`allows`](Self::allows): `true` without a category filter.
    #[inline]
    pub fn in_category(&self, model: &Model, item: u32) -> bool {
        self.category
            .is_none_or(|c| model.item_categories(item).contains(&c))
    }
}

use index::{ExcludedIds, IndexConfig, IndexError, VectorIndex};

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

/// Top-`k` items by the index's score that are not in `excluded` and pass `allow`, best first
/// (the exact scan skips `excluded` by position and calls `allow` only for would-be results; the
/// graph search walks past excluded items). With `among` (the members of a requested category),
/// only those items can be results, and a short enough list is scanned exactly instead. Past
/// `deadline` the search stops with what it has (`Found::cut`).
pub trait SearchEligible {
    fn search_eligible(
        &self,
        query: &[f32],
        k: usize,
        excluded: &ExcludedIds,
        among: Option<&[u32]>,
        allow: impl Fn(u32) -> bool,
        deadline: Deadline,
    ) -> Found;
}

/// A category filter whose members number at most this is served by an exact scan of the
/// members (never a graph walk that must skip everything else): at 64 dimensions that is under
/// a millisecond, where a filtered graph search over a million items could walk far.
pub const EXACT_AMONG_BELOW: usize = 50_000;

thread_local! {
    /// Per-thread search buffers, reused across requests (no per-request allocation of them).
    static SCRATCH: std::cell::RefCell<index::SearchScratch> = std::cell::RefCell::new(index::SearchScratch::new());
}

impl SearchEligible for VectorIndex {
    fn search_eligible(
        &self,
        query: &[f32],
        k: usize,
        excluded: &ExcludedIds,
        among: Option<&[u32]>,
        allow: impl Fn(u32) -> bool,
        deadline: Deadline,
    ) -> Found {
        let mut out = Vec::with_capacity(k.min(self.len()));
        let res = match among.filter(|m| m.len() < EXACT_AMONG_BELOW) {
            Some(members) => {
                self.search_among(query, k, members, excluded, &allow, deadline, &mut out)
            }
            None => SCRATCH.with(|s| match s.try_borrow_mut() {
                Ok(mut scratch) => {
                    self.search_within(query, k, excluded, &allow, deadline, &mut scratch, &mut out)
                }
                Err(_) => {
                    let mut scratch = index::SearchScratch::new();
                    let s = &mut scratch;
                    self.search_within(query, k, excluded, &allow, deadline, s, &mut out)
                }
            }),
        };
        match res {
            Ok(coverage) => Found {
                list: out,
                cut: coverage.is_cut(),
            },
            Err(e) => {
                tracing::warn!(error = %e, "vector search failed; source returns nothing");
                Found::default()
            }
        }
    }
}
