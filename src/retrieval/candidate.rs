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
}

/// Merges source lists by item, keeping every source's score and 0-based rank; order: first seen.
pub fn merge(lists: &[SourceList; N_SOURCES]) -> Vec<Candidate> {
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

/// Source names for a bit set of sources (bit i set when `Source::ALL[i]` proposed the item).
pub fn source_names(bits: u8) -> Vec<&'static str> {
    Source::ALL
        .into_iter()
        .filter(|&s| bits & (1 << s as u8) != 0)
        .map(Source::as_str)
        .collect()
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
    }
}
