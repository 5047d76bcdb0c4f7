//! The ranker-free ordering and the final cut: a weighted blend of per-source scores (the
//! fallback when the ranker is off, over budget or failing, and the bandit's treatment), and the
//! deterministic top-n that both the ranked and the blended path end with.

use crate::bandit::BlendWeights;
use crate::retrieval::{Candidate, N_SOURCES};

/// One recommended item with its final score.
#[derive(Debug, Clone, PartialEq)]
pub struct RecItem {
    pub item: u32,
    pub score: f32,
    /// Bit i set when `Source::ALL[i]` proposed the item.
    pub sources: u8,
}

/// Weighted blend of per-source min-max normalised scores (a missing source contributes 0).
pub fn blend_scores(cands: &[Candidate], w: &BlendWeights) -> Vec<f64> {
    let weights = w.as_array();
    let mut lo = [f32::INFINITY; N_SOURCES];
    let mut hi = [f32::NEG_INFINITY; N_SOURCES];
    for c in cands {
        for s in 0..N_SOURCES {
            let v = c.score[s];
            if !v.is_nan() {
                lo[s] = lo[s].min(v);
                hi[s] = hi[s].max(v);
            }
        }
    }
    let span: [f32; N_SOURCES] = std::array::from_fn(|s| hi[s] - lo[s]);
    cands
        .iter()
        .map(|c| {
            // Every column's term at once (branch-free, so it vectorises), then the sum of the
            // proposing sources' terms in column order: the same f32 and f64 operations, in the
            // same order, as one term per proposing source.
            let terms: [f32; N_SOURCES] = std::array::from_fn(|s| {
                let norm = if span[s] > 0.0 {
                    (c.score[s] - lo[s]) / span[s]
                } else {
                    1.0
                };
                weights[s] * norm
            });
            (0..N_SOURCES)
                .filter(|&s| !c.score[s].is_nan())
                .map(|s| f64::from(terms[s]))
                .sum()
        })
        .collect()
}

/// The `n` best candidates by score (ties by item id, for determinism). The list has room for
/// `n` items even when there are fewer candidates, so topping it up to `n` (the ranked cut
/// continued from the first phase) does not reallocate.
pub fn top_n(cands: &[Candidate], scores: &[f64], n: usize) -> Vec<RecItem> {
    let key = |i: usize| {
        if scores[i].is_nan() {
            f64::NEG_INFINITY
        } else {
            scores[i]
        }
    };
    let mut out = Vec::with_capacity(n);
    out.extend(top_indices(cands, scores, n).into_iter().map(|i| {
        let c = &cands[i];
        let sources = c.source_bits();
        RecItem {
            item: c.item,
            score: key(i) as f32,
            sources,
        }
    }));
    out
}

/// Indices of the `n` best candidates by score, best first (NaN last, ties by item id).
///
/// Selection and sort run over packed `(order key, item, index)` triples, so each comparison
/// is two integer compares instead of two indirect loads and a float compare.
pub fn top_indices(cands: &[Candidate], scores: &[f64], n: usize) -> Vec<usize> {
    let mut keyed: Vec<(u64, u32, u32)> = cands
        .iter()
        .zip(scores)
        .enumerate()
        .map(|(i, (c, &s))| (descending_key(s), c.item, i as u32))
        .collect();
    if keyed.len() > n {
        keyed.select_nth_unstable(n);
        keyed.truncate(n);
    }
    keyed.sort_unstable();
    keyed.into_iter().map(|k| k.2 as usize).collect()
}

/// An integer key whose ascending order is `f64::total_cmp`'s descending order, with NaN
/// treated as `-inf` (the order [`top_indices`] defines).
#[inline]
fn descending_key(score: f64) -> u64 {
    let x = if score.is_nan() {
        f64::NEG_INFINITY
    } else {
        score
    };
    let bits = x.to_bits();
    // total_cmp's trick: flip the magnitude bits of negatives, then the sign bit, so unsigned
    // order is numeric order; `!` reverses it.
    let ordered = bits ^ ((((bits as i64) >> 63) as u64) >> 1) ^ (1 << 63);
    !ordered
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cand(item: u32, scores: [f32; N_SOURCES]) -> Candidate {
        let mut c = Candidate::new(item);
        c.score = scores;
        c
    }

    #[test]
    fn blend_weights_follow_the_source_column_order() {
        // `BlendWeights` lives below retrieval (in bandit), so this is where the two orders meet.
        let names: Vec<&str> = BlendWeights::default()
            .named()
            .iter()
            .map(|x| x.0)
            .collect();
        let sources: Vec<&str> = crate::retrieval::Source::ALL
            .iter()
            .map(|s| s.as_str())
            .collect();
        assert_eq!(names, sources);
        let w = BlendWeights::from_array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(w.as_array(), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!((w.cf, w.item2item, w.segment), (1.0, 5.0, 6.0));
    }

    #[test]
    fn blend_normalises_per_source_and_weights() {
        let cands = [
            cand(1, [1.0, f32::NAN, f32::NAN, 0.0, f32::NAN, f32::NAN]),
            cand(2, [3.0, f32::NAN, f32::NAN, 10.0, f32::NAN, f32::NAN]),
        ];
        let w = BlendWeights {
            cf: 1.0,
            content: 0.0,
            session: 0.0,
            popular: 0.5,
            item2item: 0.0,
            segment: 0.0,
        };
        let s = blend_scores(&cands, &w);
        assert!(
            (s[0] - 0.0).abs() < 1e-9 && (s[1] - 1.5).abs() < 1e-9,
            "{s:?}"
        );
    }

    proptest! {
        /// `top_n` equals a naive full sort (score desc, NaN last, ties by item id).
        #[test]
        fn top_n_matches_naive_sort(scores in proptest::collection::vec(prop_oneof![Just(f64::NAN), -5.0f64..5.0], 0..60), n in 1usize..70) {
            let cands: Vec<Candidate> = (0..scores.len() as u32).map(Candidate::new).collect();
            let got: Vec<u32> = top_n(&cands, &scores, n).iter().map(|r| r.item).collect();
            let mut naive: Vec<(f64, u32)> = scores.iter().enumerate()
                .map(|(i, &s)| (if s.is_nan() { f64::NEG_INFINITY } else { s }, i as u32)).collect();
            naive.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let want: Vec<u32> = naive.into_iter().take(n).map(|x| x.1).collect();
            prop_assert_eq!(got, want);
        }

        /// The packed-key selection gives the comparator definition's indices, with item ids
        /// unrelated to positions and scores full of ties, signed zeros, infinities and NaN.
        #[test]
        fn top_indices_matches_the_comparator_definition(
            picks in proptest::collection::vec(0usize..8, 0..80),
            perm_seed in 0u64..1000,
            n in 0usize..90,
        ) {
            const VALUES: [f64; 8] = [f64::NAN, -0.0, 0.0, 1.5, -2.25, f64::INFINITY, f64::NEG_INFINITY, 1.5];
            let scores: Vec<f64> = picks.iter().map(|&p| VALUES[p]).collect();
            let items: Vec<u32> = (0..scores.len() as u32).map(|i| (i * 37 + perm_seed as u32) % 1009).collect();
            let mut seen = std::collections::HashSet::new();
            prop_assume!(items.iter().all(|i| seen.insert(*i)));
            let cands: Vec<Candidate> = items.iter().map(|&i| Candidate::new(i)).collect();
            let key = |i: usize| if scores[i].is_nan() { f64::NEG_INFINITY } else { scores[i] };
            let mut want: Vec<usize> = (0..cands.len()).collect();
            want.sort_by(|&a, &b| key(b).total_cmp(&key(a)).then(cands[a].item.cmp(&cands[b].item)));
            want.truncate(n);
            prop_assert_eq!(top_indices(&cands, &scores, n), want);
        }

        /// The vectorisable blend equals one term per proposing source, summed in column
        /// order, bit for bit.
        #[test]
        fn blend_matches_the_per_source_definition(
            rows in proptest::collection::vec(proptest::collection::vec(prop_oneof![Just(f32::NAN), -3.0f32..3.0, Just(0.0f32)], N_SOURCES), 1..50),
            w in proptest::collection::vec(-2.0f32..2.0, N_SOURCES),
        ) {
            let cands: Vec<Candidate> = rows.iter().enumerate()
                .map(|(i, r)| cand(i as u32, std::array::from_fn(|s| r[s]))).collect();
            let weights = BlendWeights::from_array(std::array::from_fn(|s| w[s]));
            let arr = weights.as_array();
            let mut lo = [f32::INFINITY; N_SOURCES];
            let mut hi = [f32::NEG_INFINITY; N_SOURCES];
            for c in &cands {
                for s in 0..N_SOURCES {
                    if !c.score[s].is_nan() {
                        lo[s] = lo[s].min(c.score[s]);
                        hi[s] = hi[s].max(c.score[s]);
                    }
                }
            }
            let want: Vec<u64> = cands.iter().map(|c| {
                let v: f64 = (0..N_SOURCES).filter(|&s| !c.score[s].is_nan()).map(|s| {
                    let span = hi[s] - lo[s];
                    let norm = if span > 0.0 { (c.score[s] - lo[s]) / span } else { 1.0 };
                    f64::from(arr[s] * norm)
                }).sum();
                v.to_bits()
            }).collect();
            let got: Vec<u64> = blend_scores(&cands, &weights).iter().map(|v| v.to_bits()).collect();
            prop_assert_eq!(got, want);
        }
    }
}
