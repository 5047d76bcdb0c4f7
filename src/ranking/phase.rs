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
    /// Indices of the candidates the ranker sees, best first; `None` = every candidate
    /// (`depth == 0`, or no more candidates than `depth`).
    pub keep: Option<Vec<usize>>,
}

impl FirstPhase {
    pub fn run(cands: &[Candidate], weights: &BlendWeights, depth: usize) -> Self {
        let scores = blend_scores(cands, weights);
        let keep = (depth > 0 && cands.len() > depth).then(|| top_indices(cands, &scores, depth));
        Self { scores, keep }
    }

    /// The candidates the ranker sees (copied only when there is a cut).
    pub fn cut(&self, cands: &[Candidate]) -> Option<Vec<Candidate>> {
        self.keep
            .as_ref()
            .map(|k| k.iter().map(|&i| cands[i]).collect())
    }

    /// The base score of each candidate the ranker sees, in the same order.
    pub fn kept_scores(&self) -> Vec<f64> {
        match &self.keep {
            Some(k) => k.iter().map(|&i| self.scores[i]).collect(),
            None => self.scores.clone(),
        }
    }

    /// Adds the base score to the ranker's output for the same candidates: a ranker boosted
    /// from the first phase outputs a correction to it.
    pub fn add_base(&self, ranker_scores: &mut [f64]) {
        for (s, b) in ranker_scores.iter_mut().zip(self.kept_scores()) {
            *s += b;
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
        assert_eq!(p.keep.as_deref(), Some(&[9, 8, 7][..]));
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
        // No cut when the depth covers every candidate (or is 0): base scores for all.
        for depth in [0, 10, 50] {
            let p = FirstPhase::run(&cands, &w, depth);
            assert!(p.keep.is_none() && p.cut(&cands).is_none());
            assert_eq!(p.kept_scores().len(), 10);
        }
    }
}
