//! What candidate generation produces: the sources, one source's ranked list, and the merged
//! candidate that keeps every source's score and rank (the ranker's first features). Merging by
//! item id is retrieval's last step; nothing here knows about ranking or requests.

use rustc_hash::FxHashMap;

/// Candidate sources, in the order their score/rank columns appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    Cf = 0,
    Content = 1,
    Session = 2,
    Popular = 3,
    Item2Item = 4,
    /// Popularity within the values of the user's features (cold start).
    Segment = 5,
}

pub const N_SOURCES: usize = 6;

impl Source {
    pub const ALL: [Source; N_SOURCES] = [
        Source::Cf,
        Source::Content,
        Source::Session,
        Source::Popular,
        Source::Item2Item,
        Source::Segment,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Cf => "cf",
            Source::Content => "content",
            Source::Session => "session",
            Source::Popular => "popular",
            Source::Item2Item => "item2item",
            Source::Segment => "segment",
        }
    }
}

/// One source's ranked output: (item, score), best first.
pub type SourceList = Vec<(u32, f32)>;

/// What a source found under its deadline: its list, and whether its search stopped at the
/// deadline with the best it had seen so far (`cut`) instead of running to completion.
#[derive(Debug, Clone, Default)]
pub struct Found {
    pub list: SourceList,
    pub cut: bool,
}

impl Found {
    /// A list from a search that ran to completion.
    pub fn complete(list: SourceList) -> Self {
        Self { list, cut: false }
    }
}

/// One merged candidate: the item and, per source, its score and 0-based rank (NaN when the
/// source did not propose it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub item: u32,
    pub score: [f32; N_SOURCES],
    pub rank: [f32; N_SOURCES],
}

impl Candidate {
    pub fn new(item: u32) -> Self {
        Self {
            item,
            score: [f32::NAN; N_SOURCES],
            rank: [f32::NAN; N_SOURCES],
        }
    }
    pub fn has(&self, s: Source) -> bool {
        !self.score[s as usize].is_nan()
    }
    /// Names of the sources that proposed this item.
    pub fn sources(&self) -> impl Iterator<Item = Source> + '_ {
        Source::ALL.into_iter().filter(|&s| self.has(s))
    }

    /// The proposing sources as a bit set (bit `s` for `Source::ALL[s]`), as served items carry it.
    pub fn source_bits(&self) -> u8 {
        self.sources().fold(0u8, |acc, s| acc | (1 << s as u8))
    }
}

/// Merges source lists by item, keeping every source's score and 0-based rank; order: first seen.
///
/// Positions go through a per-thread dense table indexed by item id (reset through the merged
/// items afterwards), not a hash map; ids too large for a table fall back to [`merge_hashed`],
/// the definition, which gives the same result.
pub fn merge(lists: &[SourceList; N_SOURCES]) -> Vec<Candidate> {
    let total: usize = lists.iter().map(Vec::len).sum();
    let max = lists.iter().flatten().map(|x| x.0).max().unwrap_or(0) as usize;
    if max >= DENSE_MERGE_MAX_ID {
        return merge_hashed(lists);
    }
    POSITIONS.with_borrow_mut(|pos| {
        if pos.len() <= max {
            pos.resize(max + 1, 0);
        }
        let mut out: Vec<Candidate> = Vec::with_capacity(total);
        for (s, list) in lists.iter().enumerate() {
            for (rank, &(item, score)) in list.iter().enumerate() {
                let Some(p) = pos.get_mut(item as usize) else {
                    continue; // not reached: the table covers `max`
                };
                if *p == 0 {
                    out.push(Candidate::new(item));
                    *p = out.len() as u32;
                }
                let Some(c) = out.get_mut(*p as usize - 1) else {
                    continue;
                };
                if c.score[s].is_nan() {
                    c.score[s] = score;
                    c.rank[s] = rank as f32;
                }
            }
        }
        for c in &out {
            if let Some(p) = pos.get_mut(c.item as usize) {
                *p = 0;
            }
        }
        out
    })
}

/// Item ids below this merge through the dense per-thread table (4 bytes per id, so at most
/// 64 MB per pipeline thread; a catalogue of a million items uses 4 MB).
const DENSE_MERGE_MAX_ID: usize = 1 << 24;

thread_local! {
    /// `item → 1 + position in the merged list`, 0 when absent; all zero between calls.
    static POSITIONS: std::cell::RefCell<Vec<u32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// [`merge`] through a hash map: the definition, and the path for very large ids.
pub fn merge_hashed(lists: &[SourceList; N_SOURCES]) -> Vec<Candidate> {
    let total: usize = lists.iter().map(Vec::len).sum();
    let mut pos: FxHashMap<u32, usize> =
        FxHashMap::with_capacity_and_hasher(total, Default::default());
    let mut out: Vec<Candidate> = Vec::with_capacity(total);
    for (s, list) in lists.iter().enumerate() {
        for (rank, &(item, score)) in list.iter().enumerate() {
            let idx = *pos.entry(item).or_insert_with(|| {
                out.push(Candidate::new(item));
                out.len() - 1
            });
            let c = &mut out[idx];
            if c.score[s].is_nan() {
                c.score[s] = score;
                c.rank[s] = rank as f32;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn merge_keeps_every_source_score_and_rank_once_per_item() {
        let lists: [SourceList; N_SOURCES] = [
            vec![(1, 0.9), (2, 0.5)],
            vec![(2, 0.7), (3, 0.1)],
            vec![],
            vec![(1, 0.3), (1, 0.2)],
            vec![],
            vec![],
        ];
        let m = merge(&lists);
        assert_eq!(m.iter().map(|c| c.item).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(m[0].score[0], 0.9);
        assert_eq!(m[0].rank[3], 0.0, "first occurrence wins");
        assert_eq!(m[0].score[3], 0.3);
        assert_eq!((m[1].rank[0], m[1].rank[1]), (1.0, 0.0));
        assert!(m[2].score[0].is_nan() && m[2].score[1] == 0.1);
    }

    proptest! {
        /// Merging never loses or duplicates an item, whatever the lists hold.
        #[test]
        fn merge_is_a_deduplicated_union(lists in proptest::collection::vec(proptest::collection::vec((0u32..40, -1.0f32..1.0), 0..30), N_SOURCES)) {
            let arr: [SourceList; N_SOURCES] = std::array::from_fn(|s| lists[s].clone());
            let m = merge(&arr);
            let mut want: Vec<u32> = lists.iter().flatten().map(|x| x.0).collect();
            want.sort_unstable();
            want.dedup();
            let mut got: Vec<u32> = m.iter().map(|c| c.item).collect();
            got.sort_unstable();
            prop_assert_eq!(got, want);
        }

        /// The dense table gives the hash map's result exactly (order, scores, ranks), and leaves
        /// the table clean for the next call (a second merge of other lists still agrees).
        #[test]
        fn dense_merge_equals_the_hashed_definition(
            lists in proptest::collection::vec(proptest::collection::vec((0u32..60, -1.0f32..1.0), 0..40), 2 * N_SOURCES),
            big in proptest::bool::ANY,
        ) {
            let bits = |m: &[Candidate]| m.iter().map(|c| (c.item, c.score.map(f32::to_bits), c.rank.map(f32::to_bits))).collect::<Vec<_>>();
            for half in lists.chunks(N_SOURCES) {
                let mut arr: [SourceList; N_SOURCES] = std::array::from_fn(|s| half[s].clone());
                if big {
                    arr[0].push((DENSE_MERGE_MAX_ID as u32 + 5, 0.5));
                }
                prop_assert_eq!(bits(&merge(&arr)), bits(&merge_hashed(&arr)));
            }
        }
    }
}
