//! Multi-phase ranking's first phase, the one definition training and serving share: the learned
//! blend scores every merged candidate, and the ranker re-ranks only the top `depth` of them. The
//! ranker is trained on exactly this cut and boosted from these scores, so both sides must cut
//! the same way.

use super::{blend_scores, top_indices};
use crate::bandit::BlendWeights;
use crate::retrieval::{Candidate, UserProfile};

/// A known user without any interaction (training or online) and without a session: known only
/// by their features. Such users may get their own first-phase blend.
pub fn is_features_only(profile: &UserProfile) -> bool {
    profile.user.is_some() && profile.history_len == 0 && profile.recent.is_empty()
}

pub struct FirstPhase {
    /// The blend's score of every candidate (the ranker's base score).
    pub scores: Vec<f64>,
    /// With a cut, the first-phase order of the cut ([`FirstPhase::keep`]) followed by the
    /// candidates just below it ([`FirstPhase::below`]); `None` = every candidate (`depth == 0`,
    /// or no more candidates than `depth`).
    order: Option<Vec<usize>>,
    depth: usize,
}

impl FirstPhase {
    pub fn run(cands: &[Candidate], weights: &BlendWeights, depth: usize) -> Self {
        Self::run_deep(cands, weights, depth, 0)
    }

    /// [`FirstPhase::run`], also ordering up to `deeper` candidates past the cut (`below`).
    /// One selection serves both: the cut is the first `depth` of the same order (the order is
    /// total: score, then item id, then index).
    pub fn run_deep(
        cands: &[Candidate],
        weights: &BlendWeights,
        depth: usize,
        deeper: usize,
    ) -> Self {
        let scores = blend_scores(cands, weights);
        let order = (depth > 0 && cands.len() > depth)
            .then(|| top_indices(cands, &scores, depth.saturating_add(deeper)));
        Self {
            scores,
            order,
            depth,
        }
    }

    /// Indices of the candidates the ranker sees, best first; `None` = every candidate.
    pub fn keep(&self) -> Option<&[usize]> {
        self.order
            .as_deref()
            .map(|o| o.get(..self.depth).unwrap_or(o))
    }

    /// With a cut, the next candidates below it in first-phase order (as many as
    /// [`FirstPhase::run_deep`] asked for): what a list longer than the cut continues with.
    pub fn below(&self) -> &[usize] {
        self.order
            .as_deref()
            .and_then(|o| o.get(self.depth..))
            .unwrap_or_default()
    }

    /// The candidates the ranker sees (copied only when there is a cut).
    pub fn cut(&self, cands: &[Candidate]) -> Option<Vec<Candidate>> {
        self.keep().map(|k| k.iter().map(|&i| cands[i]).collect())
    }

    /// The base score of each candidate the ranker sees, in the same order.
    pub fn kept_scores(&self) -> Vec<f64> {
        match self.keep() {
            Some(k) => k.iter().map(|&i| self.scores[i]).collect(),
            None => self.scores.clone(),
        }
    }

    /// Adds the base score to the ranker's output for the same candidates: a ranker boosted
    /// from the first phase outputs a correction to it.
    pub fn add_base(&self, ranker_scores: &mut [f64]) {
        // The same sums as zipping with `kept_scores`, without collecting them first.
        match self.keep() {
            Some(k) => {
                for (s, &i) in ranker_scores.iter_mut().zip(k) {
                    *s += self.scores[i];
                }
            }
            None => {
                for (s, b) in ranker_scores.iter_mut().zip(&self.scores) {
                    *s += b;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retrieval::N_SOURCES;

    fn cand(item: u32, cf: f32) -> Candidate {
        let mut c = Candidate::new(item);
        c.score = [f32::NAN; N_SOURCES];
        c.score[0] = cf;
        c
    }

    #[test]
    fn the_cut_keeps_the_blends_best_and_aligns_base_scores() {
        let cands: Vec<Candidate> = (0..10).map(|i| cand(i, i as f32)).collect();
        let w = BlendWeights {
            cf: 1.0,
            content: 0.0,
            session: 0.0,
            popular: 0.0,
            item2item: 0.0,
            segment: 0.0,
        };
        let p = FirstPhase::run(&cands, &w, 3);
        assert_eq!(p.keep(), Some(&[9, 8, 7][..]));
        let cut = p.cut(&cands).unwrap();
        assert_eq!(
            cut.iter().map(|c| c.item).collect::<Vec<_>>(),
            vec![9, 8, 7]
        );
        let mut s = vec![0.0; 3];
        p.add_base(&mut s);
        // min-max normalised cf scores of items 9, 8, 7 (computed in f32)
        for (got, want) in s.iter().zip([1.0, 8.0 / 9.0, 7.0 / 9.0]) {
            assert!((got - want).abs() < 1e-6, "{s:?}");
        }
        // Below the cut: the next candidates in the same order, as many as asked for.
        let deep = FirstPhase::run_deep(&cands, &w, 3, 4);
        assert_eq!(deep.keep(), p.keep());
        assert_eq!(deep.below(), &[6, 5, 4, 3][..]);
        assert_eq!(FirstPhase::run_deep(&cands, &w, 3, 20).below().len(), 7);
        // No cut when the depth covers every candidate (or is 0): base scores for all.
        for depth in [0, 10, 50] {
            let p = FirstPhase::run_deep(&cands, &w, depth, 5);
            assert!(p.keep().is_none() && p.cut(&cands).is_none() && p.below().is_empty());
            assert_eq!(p.kept_scores().len(), 10);
        }
    }

    use proptest::prelude::*;

    proptest! {
        /// The cut followed by `below` is the first-phase order of every candidate, prefix for
        /// prefix: what the list continued with before (a second selection over all
        /// candidates, the cut's items filtered out).
        #[test]
        fn the_cut_and_below_are_the_full_first_phase_order(
            scores in proptest::collection::vec(prop_oneof![
                4 => (0u8..20).prop_map(f32::from),
                1 => Just(f32::NAN),
            ], 1..120),
            depth in 1usize..40,
            deeper in 0usize..60,
        ) {
            let cands: Vec<Candidate> =
                scores.iter().enumerate().map(|(i, &s)| cand(1000 - i as u32, s)).collect();
            let w = BlendWeights { cf: 1.0, content: 0.0, session: 0.0, popular: 0.0, item2item: 0.0, segment: 0.0 };
            let p = FirstPhase::run_deep(&cands, &w, depth, deeper);
            let Some(keep) = p.keep() else {
                prop_assert!(cands.len() <= depth);
                return Ok(());
            };
            let all = top_indices(&cands, &p.scores, cands.len());
            let cut: std::collections::HashSet<usize> = keep.iter().copied().collect();
            let want: Vec<usize> = all.iter().copied().filter(|i| !cut.contains(i)).take(deeper).collect();
            prop_assert_eq!(keep, &all[..depth]);
            prop_assert_eq!(p.below(), &want[..]);
        }
    }
}
