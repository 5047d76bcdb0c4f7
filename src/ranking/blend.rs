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
    cands
        .iter()
        .map(|c| {
            (0..N_SOURCES)
                .filter(|&s| !c.score[s].is_nan())
                .map(|s| {
                    let span = hi[s] - lo[s];
                    let norm = if span > 0.0 {
                        (c.score[s] - lo[s]) / span
                    } else {
                        1.0
                    };
                    f64::from(weights[s] * norm)
                })
                .sum()
        })
        .collect()
}

/// The `n` best candidates by score (ties by item id, for determinism).
pub fn top_n(cands: &[Candidate], scores: &[f64], n: usize) -> Vec<RecItem> {
    let key = |i: usize| {
        if scores[i].is_nan() {
            f64::NEG_INFINITY
        } else {
            scores[i]
        }
    };
    top_indices(cands, scores, n)
        .into_iter()
        .map(|i| {
            let c = &cands[i];
            let sources = c.sources().fold(0u8, |acc, s| acc | (1 << s as u8));
            RecItem {
                item: c.item,
                score: key(i) as f32,
                sources,
            }
        })
        .collect()
}

/// Indices of the `n` best candidates by score, best first (NaN last, ties by item id).
pub fn top_indices(cands: &[Candidate], scores: &[f64], n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..cands.len()).collect();
    let key = |i: usize| {
        if scores[i].is_nan() {
            f64::NEG_INFINITY
        } else {
            scores[i]
        }
    };
    let cmp = |a: &usize, b: &usize| {
        key(*b)
            .total_cmp(&key(*a))
            .then(cands[*a].item.cmp(&cands[*b].item))
    };
    if order.len() > n {
        order.select_nth_unstable_by(n, cmp);
        order.truncate(n);
    }
    order.sort_unstable_by(cmp);
    order
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

    }
}
