//! Offline ranking metrics: the numbers every ablation, report and regression check is judged by.
//! Pure functions over ranked lists of dense item indices plus an accumulator; no I/O, no model code.
//!
//! Accuracy metrics follow the definitions of Microsoft recommenders'
//! `recommenders.evaluation.python_evaluation` with binary relevance:
//!
//! * `precision@K = hits@K / K` — K stays fixed even when fewer than K items were recommended.
//! * `recall@K = hits@K / |relevant|`.
//! * `NDCG@K = DCG@K / IDCG@K`, `DCG@K = Σ_{hit at rank r ≤ K} 1 / log2(r + 1)` (ranks from 1),
//!   `IDCG@K` the DCG of `min(|relevant|, K)` hits at ranks `1..`. (recommenders defaults to a natural
//!   log discount; the base cancels in the ratio, so the value is identical.)
//! * `MAP@K` (recommenders' `map_at_k`, not its `map`): per user
//!   `AP@K = Σ_{hit at rank r ≤ K} (hits within ranks 1..=r / r) / min(|relevant|, K)`, averaged over users.
//! * `hit rate@K`: share of users with at least one hit in the top K.
//!
//! Averages run over users with at least one relevant item; users with none are counted
//! (`users_without_relevant`) but excluded, like recommenders, which only scores users present in the
//! ground truth. Unlike recommenders, a user with relevant items but an empty recommendation list is
//! *included* with zeros — a serving system that returns nothing has failed that user.
//!
//! Duplicates: a recommended list should not repeat an item. If it does, the repeat keeps its rank
//! (it occupies a slot the user sees) but is never a second hit, so every metric stays in `[0, 1]`;
//! the accumulator counts such lists in `users_with_duplicates`.

use std::collections::BTreeMap;

use rustc_hash::FxHashSet;
use serde::{Deserialize, Serialize};

use crate::data::dataset::Interaction;

/// Errors from metric configuration (per-user inputs never fail).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetricsError {
    #[error("K must be at least 1")]
    ZeroK,
    #[error("a recall curve needs at least one cutoff and every cutoff must be at least 1")]
    BadCutoffs,
}

use crate::ranking::quality::hit_ranks;
pub use crate::ranking::quality::{
    RankMetrics, average_precision_at_k, hit_at_k, ndcg_at_k, precision_at_k, rank_metrics,
    recall_at_k,
};

/// Recall of an unordered candidate set (a retrieval stage's output):
/// `|distinct candidates ∩ relevant| / |relevant|`; `None` for an empty relevant set.
pub fn candidate_recall(
    candidates: impl IntoIterator<Item = u32>,
    relevant: &FxHashSet<u32>,
) -> Option<f64> {
    if relevant.is_empty() {
        return None;
    }
    let found: FxHashSet<u32> = candidates
        .into_iter()
        .filter(|i| relevant.contains(i))
        .collect();
    Some(found.len() as f64 / relevant.len() as f64)
}

/// Training-set popularity needed by catalogue coverage and novelty.
#[derive(Debug, Clone, Default)]
pub struct CatalogueStats {
    /// Catalogue size (denominator of coverage).
    pub n_items: usize,
    /// Distinct users in the training interactions.
    pub n_train_users: usize,
    /// Per item: distinct training users who interacted with it.
    pub item_users: Vec<u32>,
}

impl CatalogueStats {
    /// Counts distinct (user, item) pairs of `train`; items `>= n_items` are ignored.
    pub fn from_interactions(train: &[Interaction], n_items: usize) -> Self {
        let mut pairs: Vec<(u32, u32)> = train
            .iter()
            .filter(|x| (x.item as usize) < n_items)
            .map(|x| (x.item, x.user))
            .collect();
        pairs.sort_unstable();
        pairs.dedup();
        let mut item_users = vec![0u32; n_items];
        for &(item, _) in &pairs {
            item_users[item as usize] += 1;
        }
        let users: FxHashSet<u32> = train.iter().map(|x| x.user).collect();
        Self {
            n_items,
            n_train_users: users.len(),
            item_users,
        }
    }

    /// Self-information `-log2(p(i))` with `p(i)` = share of training users who interacted with `i`.
    /// Items never seen in training (cold items, unknown indices) are given one user, the rarest
    /// observable popularity, so their novelty is `log2(n_train_users)` instead of infinite.
    /// (recommenders divides by the number of training *interactions* instead of users.)
    pub fn self_information(&self, item: u32) -> f64 {
        let n = self.n_train_users.max(1) as f64;
        let c = self
            .item_users
            .get(item as usize)
            .copied()
            .unwrap_or(0)
            .max(1) as f64;
        -(c / n).min(1.0).log2()
    }
}

/// One user's evaluation input.
#[derive(Debug, Clone, Copy)]
pub struct UserRanking<'a> {
    /// Recommended items, best first (only the top K is scored).
    pub ranked: &'a [u32],
    /// Held-out items the user interacted with.
    pub relevant: &'a FxHashSet<u32>,
    /// The "obvious" recommender's list for this user (popularity + the user's own category
    /// profile, built by the caller); `None` skips serendipity for this user.
    pub obvious: Option<&'a [u32]>,
}

/// Aggregated metrics of one slice of users at cutoff `k`. Accuracy metrics (and serendipity) are
/// means over `users_evaluated`; coverage and novelty use the top-K lists of all `users`.
/// All means are 0 when their denominator count is 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    pub k: usize,
    /// Users added to the slice.
    pub users: u64,
    /// Users with at least one relevant item (the denominator of accuracy metrics).
    pub users_evaluated: u64,
    /// Users with no relevant item, excluded from accuracy averages.
    pub users_without_relevant: u64,
    /// Users whose top-K list held fewer than K items.
    pub users_short_list: u64,
    /// Users whose top-K list repeated an item.
    pub users_with_duplicates: u64,
    pub precision: f64,
    pub recall: f64,
    pub ndcg: f64,
    pub map: f64,
    pub hit_rate: f64,
    /// Distinct items in all top-K lists / catalogue size.
    pub coverage: f64,
    /// Mean self-information (bits) over all recommended top-K positions.
    pub novelty: f64,
    /// Serendipity@K: per user, `|{i in top K : i relevant and i not in obvious}| / K`, averaged over
    /// evaluated users that came with an obvious list. It is precision@K counting only the hits an
    /// obvious recommender would not have made, hence `serendipity <= precision` per user.
    pub serendipity: f64,
    /// Users contributing to `serendipity`.
    pub serendipity_users: u64,
}

#[derive(Debug, Clone, Default)]
struct SliceState {
    users: u64,
    users_evaluated: u64,
    users_without_relevant: u64,
    users_short_list: u64,
    users_with_duplicates: u64,
    sums: RankMetrics,
    recommended: Vec<bool>,
    n_recommended_positions: u64,
    novelty_sum: f64,
    serendipity_sum: f64,
    serendipity_users: u64,
}

/// Accumulates per-user results into named slices ("all", "cold_users", "cold_items", …).
#[derive(Debug, Clone)]
pub struct MetricAccumulator {
    k: usize,
    stats: CatalogueStats,
    slices: BTreeMap<String, SliceState>,
}

impl MetricAccumulator {
    pub fn new(k: usize, stats: CatalogueStats) -> Result<Self, MetricsError> {
        if k == 0 {
            return Err(MetricsError::ZeroK);
        }
        Ok(Self {
            k,
            stats,
            slices: BTreeMap::new(),
        })
    }

    pub fn k(&self) -> usize {
        self.k
    }

    /// Adds one user to every slice named in `slices` (a slice exists once something was added).
    pub fn add(&mut self, slices: &[&str], user: &UserRanking<'_>) {
        let top = &user.ranked[..user.ranked.len().min(self.k)];
        let metrics = rank_metrics(top, user.relevant, self.k);
        let has_dup = {
            let mut seen = FxHashSet::default();
            !top.iter().all(|i| seen.insert(*i))
        };
        let novelty: f64 = top.iter().map(|&i| self.stats.self_information(i)).sum();
        let serendipity = match (metrics, user.obvious) {
            (Some(_), Some(obvious)) => {
                let ranks = hit_ranks(top, user.relevant, self.k);
                let unexpected = ranks
                    .iter()
                    .filter(|&&r| !obvious.contains(&top[r - 1]))
                    .count();
                Some(unexpected as f64 / self.k as f64)
            }
            _ => None,
        };
        for name in slices {
            let s = self.slices.entry((*name).to_string()).or_default();
            if s.recommended.len() != self.stats.n_items {
                s.recommended = vec![false; self.stats.n_items];
            }
            s.users += 1;
            s.users_short_list += u64::from(top.len() < self.k);
            s.users_with_duplicates += u64::from(has_dup);
            for &i in top {
                if let Some(slot) = s.recommended.get_mut(i as usize) {
                    *slot = true;
                }
            }
            s.n_recommended_positions += top.len() as u64;
            s.novelty_sum += novelty;
            match metrics {
                Some(m) => {
                    s.users_evaluated += 1;
                    s.sums.precision += m.precision;
                    s.sums.recall += m.recall;
                    s.sums.ndcg += m.ndcg;
                    s.sums.average_precision += m.average_precision;
                    s.sums.hit += m.hit;
                }
                None => s.users_without_relevant += 1,
            }
            if let Some(v) = serendipity {
                s.serendipity_sum += v;
                s.serendipity_users += 1;
            }
        }
    }

    /// Folds another accumulator (same K and catalogue, e.g. from a parallel worker) into this one.
    pub fn merge(&mut self, other: Self) {
        for (name, o) in other.slices {
            let s = self.slices.entry(name).or_default();
            if s.recommended.len() < o.recommended.len() {
                s.recommended.resize(o.recommended.len(), false);
            }
            for (a, b) in s.recommended.iter_mut().zip(&o.recommended) {
                *a |= *b;
            }
            s.users += o.users;
            s.users_evaluated += o.users_evaluated;
            s.users_without_relevant += o.users_without_relevant;
            s.users_short_list += o.users_short_list;
            s.users_with_duplicates += o.users_with_duplicates;
            s.sums.precision += o.sums.precision;
            s.sums.recall += o.sums.recall;
            s.sums.ndcg += o.sums.ndcg;
            s.sums.average_precision += o.sums.average_precision;
            s.sums.hit += o.sums.hit;
            s.n_recommended_positions += o.n_recommended_positions;
            s.novelty_sum += o.novelty_sum;
            s.serendipity_sum += o.serendipity_sum;
            s.serendipity_users += o.serendipity_users;
        }
    }

    /// Summary of one slice, `None` if nothing was added to it.
    pub fn summary(&self, slice: &str) -> Option<MetricSummary> {
        self.slices.get(slice).map(|s| self.summarise(s))
    }

    /// Summaries of every slice, by name.
    pub fn summaries(&self) -> BTreeMap<String, MetricSummary> {
        self.slices
            .iter()
            .map(|(n, s)| (n.clone(), self.summarise(s)))
            .collect()
    }

    fn summarise(&self, s: &SliceState) -> MetricSummary {
        let mean = |sum: f64, n: u64| if n == 0 { 0.0 } else { sum / n as f64 };
        let distinct = s.recommended.iter().filter(|&&b| b).count();
        MetricSummary {
            k: self.k,
            users: s.users,
            users_evaluated: s.users_evaluated,
            users_without_relevant: s.users_without_relevant,
            users_short_list: s.users_short_list,
            users_with_duplicates: s.users_with_duplicates,
            precision: mean(s.sums.precision, s.users_evaluated),
            recall: mean(s.sums.recall, s.users_evaluated),
            ndcg: mean(s.sums.ndcg, s.users_evaluated),
            map: mean(s.sums.average_precision, s.users_evaluated),
            hit_rate: mean(s.sums.hit, s.users_evaluated),
            coverage: if self.stats.n_items == 0 {
                0.0
            } else {
                distinct as f64 / self.stats.n_items as f64
            },
            novelty: mean(s.novelty_sum, s.n_recommended_positions),
            serendipity: mean(s.serendipity_sum, s.serendipity_users),
            serendipity_users: s.serendipity_users,
        }
    }
}

/// Recall@K curves of candidate sources (including the merged candidate set) at several cutoffs,
/// averaged over users with at least one relevant item.
#[derive(Debug, Clone)]
pub struct RecallCurve {
    cutoffs: Vec<usize>,
    /// Per source: per-cutoff recall sums and the number of users.
    sums: BTreeMap<String, (Vec<f64>, u64)>,
}

impl RecallCurve {
    /// `cutoffs` are sorted and deduplicated; each must be ≥ 1.
    pub fn new(mut cutoffs: Vec<usize>) -> Result<Self, MetricsError> {
        if cutoffs.is_empty() || cutoffs.contains(&0) {
            return Err(MetricsError::BadCutoffs);
        }
        cutoffs.sort_unstable();
        cutoffs.dedup();
        Ok(Self {
            cutoffs,
            sums: BTreeMap::new(),
        })
    }

    /// Adds one user's candidates from `source`, best first. Users without relevant items are skipped.
    pub fn add(&mut self, source: &str, candidates: &[u32], relevant: &FxHashSet<u32>) {
        if relevant.is_empty() {
            return;
        }
        let n = self.cutoffs.len();
        let entry = self
            .sums
            .entry(source.to_string())
            .or_insert_with(|| (vec![0.0; n], 0));
        let ranks = hit_ranks(candidates, relevant, candidates.len());
        for (slot, &k) in entry.0.iter_mut().zip(&self.cutoffs) {
            let hits = ranks.iter().take_while(|&&r| r <= k).count();
            *slot += hits as f64 / relevant.len() as f64;
        }
        entry.1 += 1;
    }

    /// Per source (sorted by name): `(K, mean recall@K)` for every cutoff.
    pub fn curves(&self) -> Vec<(String, Vec<(usize, f64)>)> {
        self.sums
            .iter()
            .map(|(name, (sums, n))| {
                let points = self
                    .cutoffs
                    .iter()
                    .zip(sums)
                    .map(|(&k, &s)| (k, if *n == 0 { 0.0 } else { s / *n as f64 }))
                    .collect();
                (name.clone(), points)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set(items: &[u32]) -> FxHashSet<u32> {
        items.iter().copied().collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn hand_computed_fixture() {
        let rel = set(&[2, 4, 9]);
        let m = rank_metrics(&[1, 2, 3, 4, 5], &rel, 5).unwrap();
        assert_eq!(m.hits, 2);
        assert!(close(m.precision, 0.4));
        assert!(close(m.recall, 2.0 / 3.0));
        // (1/log2 3 + 1/log2 5) / (1 + 1/log2 3 + 1/log2 4)
        assert!((m.ndcg - 0.498_189_257_466_412_85).abs() < 1e-12);
        // (1/2 + 2/4) / min(3, 5)
        assert!(close(m.average_precision, 1.0 / 3.0));
        assert!(close(m.hit, 1.0));

        let m3 = rank_metrics(&[1, 2, 3, 4, 5], &rel, 3).unwrap();
        assert!(close(m3.precision, 1.0 / 3.0));
        assert!(close(m3.recall, 1.0 / 3.0));
        assert!((m3.ndcg - 0.296_081_910_965_865_2).abs() < 1e-12);
        assert!(close(m3.average_precision, 0.5 / 3.0));
    }

    #[test]
    fn fewer_than_k_keeps_k_in_precision() {
        let rel = set(&[2]);
        let m = rank_metrics(&[7, 2], &rel, 10).unwrap();
        assert!(close(m.precision, 0.1));
        assert!(close(m.recall, 1.0));
        assert!((m.ndcg - 0.630_929_753_571_457_5).abs() < 1e-12);
        assert!(close(m.average_precision, 0.5));
    }

    #[test]
    fn k_larger_than_list_and_relevant_set() {
        let rel = set(&[2, 4]);
        let m = rank_metrics(&[2, 4], &rel, 10).unwrap();
        assert!(close(m.ndcg, 1.0));
        assert!(close(m.average_precision, 1.0));
        assert!(close(m.precision, 0.2));
        assert!(close(m.recall, 1.0));
    }

    #[test]
    fn duplicates_occupy_a_rank_but_never_hit_twice() {
        let rel = set(&[2, 4]);
        let m = rank_metrics(&[2, 2, 4], &rel, 3).unwrap();
        assert_eq!(m.hits, 2);
        assert!(close(m.precision, 2.0 / 3.0));
        assert!(close(m.recall, 1.0));
        // hits at ranks 1 and 3: (1 + 1/log2 4) / (1 + 1/log2 3)
        assert!((m.ndcg - 0.919_720_789_148_187_6).abs() < 1e-12);
        assert!(close(m.average_precision, (1.0 + 2.0 / 3.0) / 2.0));
        let all_dup = rank_metrics(&[2, 2, 2], &set(&[2]), 3).unwrap();
        assert!(close(all_dup.precision, 1.0 / 3.0));
    }

    #[test]
    fn empty_relevant_or_zero_k_is_excluded() {
        assert_eq!(rank_metrics(&[1, 2], &set(&[]), 5), None);
        assert_eq!(rank_metrics(&[1, 2], &set(&[1]), 0), None);
        assert_eq!(precision_at_k(&[1, 2], &set(&[]), 5), 0.0);
        assert_eq!(candidate_recall([1, 2], &set(&[])), None);
        // Empty list with relevant items is scored (zeros), not excluded.
        assert_eq!(rank_metrics(&[], &set(&[1]), 5).map(|m| m.hits), Some(0));
    }

    #[test]
    fn single_metric_functions_agree_with_rank_metrics() {
        let rel = set(&[3, 8]);
        let ranked = [8, 1, 3];
        let m = rank_metrics(&ranked, &rel, 2).unwrap();
        assert_eq!(precision_at_k(&ranked, &rel, 2), m.precision);
        assert_eq!(recall_at_k(&ranked, &rel, 2), m.recall);
        assert_eq!(ndcg_at_k(&ranked, &rel, 2), m.ndcg);
        assert_eq!(
            average_precision_at_k(&ranked, &rel, 2),
            m.average_precision
        );
        assert_eq!(hit_at_k(&ranked, &rel, 2), 1.0);
        assert_eq!(hit_at_k(&[1, 3], &rel, 1), 0.0);
    }

    #[test]
    fn candidate_recall_counts_distinct_items() {
        let rel = set(&[1, 2, 3, 4]);
        assert_eq!(candidate_recall([9, 1, 1, 2, 7], &rel), Some(0.5));
        assert_eq!(candidate_recall(std::iter::empty(), &rel), Some(0.0));
    }

    fn ix(user: u32, item: u32) -> Interaction {
        Interaction {
            user,
            item,
            ts: 0,
            weight: 1.0,
            count: 1,
        }
    }

    #[test]
    fn catalogue_stats_and_self_information() {
        // 4 users; item 0 seen by 4 users (one twice), item 1 by 1 user, item 2 by none.
        let train = [
            ix(0, 0),
            ix(1, 0),
            ix(2, 0),
            ix(3, 0),
            ix(3, 0),
            ix(0, 1),
            ix(0, 99),
        ];
        let st = CatalogueStats::from_interactions(&train, 3);
        assert_eq!(st.item_users, vec![4, 1, 0]);
        assert_eq!(st.n_train_users, 4);
        assert!(close(st.self_information(0), 0.0));
        assert!(close(st.self_information(1), 2.0));
        assert!(
            close(st.self_information(2), 2.0),
            "unseen items count as one user"
        );
        assert!(close(st.self_information(500), 2.0));
    }

    fn fixture_accumulator() -> MetricAccumulator {
        let train = [ix(0, 1), ix(1, 1), ix(0, 2), ix(1, 3), ix(2, 4), ix(3, 1)];
        let stats = CatalogueStats::from_interactions(&train, 10);
        MetricAccumulator::new(5, stats).unwrap()
    }

    #[test]
    fn accumulator_hand_computed() {
        let mut acc = fixture_accumulator();
        let r1 = set(&[2, 4, 9]);
        let r2 = set(&[]);
        let r3 = set(&[2]);
        let obvious1 = [2u32, 1];
        acc.add(
            &["all"],
            &UserRanking {
                ranked: &[1, 2, 3, 4, 5, 6],
                relevant: &r1,
                obvious: Some(&obvious1),
            },
        );
        acc.add(
            &["all"],
            &UserRanking {
                ranked: &[1, 3],
                relevant: &r2,
                obvious: Some(&[]),
            },
        );
        acc.add(
            &["all"],
            &UserRanking {
                ranked: &[7, 2],
                relevant: &r3,
                obvious: None,
            },
        );
        let s = acc.summary("all").unwrap();
        assert_eq!(s.k, 5);
        assert_eq!(
            (s.users, s.users_evaluated, s.users_without_relevant),
            (3, 2, 1)
        );
        assert_eq!(s.users_short_list, 2);
        assert_eq!(s.users_with_duplicates, 0);
        assert!(close(s.precision, (0.4 + 0.2) / 2.0));
        assert!(close(s.recall, (2.0 / 3.0 + 1.0) / 2.0));
        assert!(close(
            s.ndcg,
            (0.498_189_257_466_412_85 + 0.630_929_753_571_457_5) / 2.0
        ));
        assert!(close(s.map, (1.0 / 3.0 + 0.5) / 2.0));
        assert!(close(s.hit_rate, 1.0));
        // Top-5 lists: {1,2,3,4,5} ∪ {1,3} ∪ {7,2} = 6 distinct items of 10; item 6 is beyond K.
        assert!(close(s.coverage, 0.6));
        // Novelty reference: 4 train users; users per item 1→3, 2→1, 3→1, 4→1, others→(1).
        let info = |c: f64| -(c / 4.0f64).log2();
        let expected = [info(3.0), info(1.0), info(1.0), info(1.0), info(1.0)]
            .iter()
            .chain(&[info(3.0), info(1.0)])
            .chain(&[info(1.0), info(1.0)])
            .sum::<f64>()
            / 9.0;
        assert!(close(s.novelty, expected));
        // User 1: hits 2 (obvious) and 4 (unexpected) → 1/5; user 3 has no obvious list.
        assert_eq!(s.serendipity_users, 1);
        assert!(close(s.serendipity, 0.2));
    }

    #[test]
    fn slices_are_independent_and_merge_matches_single_pass() {
        let rels: Vec<FxHashSet<u32>> = vec![set(&[1]), set(&[2, 3]), set(&[]), set(&[4, 5])];
        let lists: Vec<Vec<u32>> = vec![vec![1, 2], vec![3, 3, 2], vec![4], vec![9, 8, 5]];
        let mut single = fixture_accumulator();
        let mut a = fixture_accumulator();
        let mut b = fixture_accumulator();
        for (i, (l, r)) in lists.iter().zip(&rels).enumerate() {
            let slices: &[&str] = if i % 2 == 0 {
                &["all", "cold_users"]
            } else {
                &["all"]
            };
            let u = UserRanking {
                ranked: l,
                relevant: r,
                obvious: Some(&[1]),
            };
            single.add(slices, &u);
            if i < 2 {
                a.add(slices, &u)
            } else {
                b.add(slices, &u)
            }
        }
        a.merge(b);
        let (s, m) = (single.summaries(), a.summaries());
        assert_eq!(s.keys().collect::<Vec<_>>(), vec!["all", "cold_users"]);
        for (name, x) in &s {
            let y = &m[name];
            assert_eq!(
                (x.users, x.users_evaluated, x.users_with_duplicates),
                (y.users, y.users_evaluated, y.users_with_duplicates)
            );
            for (p, q) in [
                (x.ndcg, y.ndcg),
                (x.map, y.map),
                (x.coverage, y.coverage),
                (x.novelty, y.novelty),
                (x.serendipity, y.serendipity),
            ] {
                assert!(close(p, q), "{name}: {p} vs {q}");
            }
        }
        let cold = &s["cold_users"];
        assert_eq!(
            (
                cold.users,
                cold.users_evaluated,
                cold.users_without_relevant
            ),
            (2, 1, 1)
        );
        assert!(close(cold.precision, 1.0 / 5.0));
        assert_eq!(s["all"].users_with_duplicates, 1);
        assert!(single.summary("missing").is_none());
        assert_eq!(
            MetricAccumulator::new(0, CatalogueStats::default()).err(),
            Some(MetricsError::ZeroK)
        );
    }

    #[test]
    fn recall_curve_hand_computed() {
        let mut c = RecallCurve::new(vec![10, 1, 4, 2, 4]).unwrap();
        c.add("cf", &[5, 1, 9, 2], &set(&[1, 2, 3]));
        c.add("cf", &[3], &set(&[3]));
        c.add("cf", &[3], &set(&[]));
        c.add("pop", &[], &set(&[3]));
        let curves = c.curves();
        assert_eq!(curves[0].0, "cf");
        let want = [
            (1, 0.5),
            (2, (1.0 / 3.0 + 1.0) / 2.0),
            (4, (2.0 / 3.0 + 1.0) / 2.0),
            (10, (2.0 / 3.0 + 1.0) / 2.0),
        ];
        for ((k, v), (wk, wv)) in curves[0].1.iter().zip(want) {
            assert_eq!(*k, wk);
            assert!(close(*v, wv), "recall@{k} = {v}, want {wv}");
        }
        assert_eq!(
            curves[1],
            (
                "pop".to_string(),
                vec![(1, 0.0), (2, 0.0), (4, 0.0), (10, 0.0)]
            )
        );
        assert_eq!(
            RecallCurve::new(vec![]).err(),
            Some(MetricsError::BadCutoffs)
        );
        assert_eq!(
            RecallCurve::new(vec![0, 3]).err(),
            Some(MetricsError::BadCutoffs)
        );
    }

    /// Naive reference written from the textbook definitions (natural-log discount on purpose:
    /// the base must cancel).
    fn naive(ranked: &[u32], rel: &FxHashSet<u32>, k: usize) -> (f64, f64, f64, f64) {
        let is_hit = |i: usize| rel.contains(&ranked[i]) && !ranked[..i].contains(&ranked[i]);
        let n = ranked.len().min(k);
        let hits_upto = |r: usize| (0..r.min(n)).filter(|&i| is_hit(i)).count() as f64;
        let precision = hits_upto(k) / k as f64;
        let recall = hits_upto(k) / rel.len() as f64;
        let dcg: f64 = (0..n)
            .filter(|&i| is_hit(i))
            .map(|i| 1.0 / ((i + 2) as f64).ln())
            .sum();
        let idcg: f64 = (0..rel.len().min(k))
            .map(|i| 1.0 / ((i + 2) as f64).ln())
            .sum();
        let ap: f64 = (0..n)
            .filter(|&i| is_hit(i))
            .map(|i| hits_upto(i + 1) / (i + 1) as f64)
            .sum();
        (precision, recall, dcg / idcg, ap / rel.len().min(k) as f64)
    }

    proptest! {
        #[test]
        fn metrics_match_naive_and_stay_in_unit_interval(
            ranked in proptest::collection::vec(0u32..30, 0..25),
            rel in proptest::collection::hash_set(0u32..30, 1..10),
            k in 1usize..30,
        ) {
            let rel: FxHashSet<u32> = rel.into_iter().collect();
            let m = rank_metrics(&ranked, &rel, k).unwrap();
            for v in [m.precision, m.recall, m.ndcg, m.average_precision, m.hit] {
                prop_assert!((0.0..=1.0 + 1e-12).contains(&v), "{m:?}");
            }
            let (p, r, n, ap) = naive(&ranked, &rel, k);
            prop_assert!(close(m.precision, p) && close(m.recall, r));
            prop_assert!(close(m.ndcg, n) && close(m.average_precision, ap), "{m:?} vs {n} {ap}");
        }

        #[test]
        fn recall_and_hit_rate_monotone_in_k(
            ranked in proptest::collection::vec(0u32..30, 0..25),
            rel in proptest::collection::hash_set(0u32..30, 1..10),
        ) {
            let rel: FxHashSet<u32> = rel.into_iter().collect();
            for k in 1..30 {
                let (a, b) = (rank_metrics(&ranked, &rel, k).unwrap(), rank_metrics(&ranked, &rel, k + 1).unwrap());
                prop_assert!(a.recall <= b.recall && a.hit <= b.hit);
            }
        }

        #[test]
        fn ndcg_is_one_when_list_starts_with_all_relevant(
            rel in proptest::collection::hash_set(0u32..50, 1..12),
            tail in proptest::collection::vec(50u32..80, 0..10),
            k in 1usize..25,
        ) {
            let ranked: Vec<u32> = rel.iter().copied().chain(tail).collect();
            let rel: FxHashSet<u32> = rel.into_iter().collect();
            let m = rank_metrics(&ranked, &rel, k).unwrap();
            prop_assert!((m.ndcg - 1.0).abs() < 1e-12 && (m.average_precision - 1.0).abs() < 1e-12);
        }

        #[test]
        fn summary_metrics_in_unit_interval_and_serendipity_below_precision(
            users in proptest::collection::vec(
                (proptest::collection::vec(0u32..40, 0..15),
                 proptest::collection::hash_set(0u32..40, 0..6),
                 proptest::collection::vec(0u32..40, 0..8)),
                1..12),
            k in 1usize..12,
        ) {
            let train: Vec<Interaction> = (0..20).map(|i| ix(i % 5, i % 40)).collect();
            let mut acc = MetricAccumulator::new(k, CatalogueStats::from_interactions(&train, 40)).unwrap();
            for (ranked, rel, obvious) in &users {
                let rel: FxHashSet<u32> = rel.iter().copied().collect();
                acc.add(&["all"], &UserRanking { ranked, relevant: &rel, obvious: Some(obvious) });
            }
            let s = acc.summary("all").unwrap();
            for v in [s.precision, s.recall, s.ndcg, s.map, s.hit_rate, s.coverage, s.serendipity] {
                prop_assert!((0.0..=1.0 + 1e-12).contains(&v), "{s:?}");
            }
            prop_assert!(s.serendipity <= s.precision + 1e-12);
            prop_assert_eq!(s.users_evaluated + s.users_without_relevant, s.users);
        }
    }
}
