//! List-quality measures of one ranked list against a relevant set: precision, recall, NDCG,
//! AP and hit at K with binary relevance. The one definition, shared by training (the ranker's
//! validation against the blend and every single source) and offline evaluation (`eval::metrics`,
//! whose module docs give the exact definitions and their match with Microsoft recommenders).

use rustc_hash::FxHashSet;

/// Per-user accuracy metrics at one cutoff K.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RankMetrics {
    pub precision: f64,
    pub recall: f64,
    pub ndcg: f64,
    pub average_precision: f64,
    /// 1.0 when the top K holds at least one relevant item, else 0.0.
    pub hit: f64,
    /// Distinct relevant items in the top K.
    pub hits: usize,
}

/// Ranks (1-based) of the first occurrence of each relevant item within the top `k`.
pub fn hit_ranks(ranked: &[u32], relevant: &FxHashSet<u32>, k: usize) -> Vec<usize> {
    let mut found: Vec<u32> = Vec::new();
    let mut ranks = Vec::new();
    for (pos, &item) in ranked.iter().take(k).enumerate() {
        if relevant.contains(&item) && !found.contains(&item) {
            found.push(item);
            ranks.push(pos + 1);
        }
    }
    ranks
}

/// Ideal DCG with binary gains: `n` hits at ranks `1..=n`.
fn ideal_dcg(n: usize) -> f64 {
    (1..=n).map(|r| 1.0 / ((r + 1) as f64).log2()).sum()
}

/// All accuracy metrics of one ranked list at cutoff `k`; `None` when `relevant` is empty or `k == 0`
/// (such users are excluded from averages, see the module docs).
pub fn rank_metrics(ranked: &[u32], relevant: &FxHashSet<u32>, k: usize) -> Option<RankMetrics> {
    if relevant.is_empty() || k == 0 {
        return None;
    }
    let ranks = hit_ranks(ranked, relevant, k);
    let hits = ranks.len();
    let dcg: f64 = ranks.iter().map(|&r| 1.0 / ((r + 1) as f64).log2()).sum();
    let ap_sum: f64 = ranks
        .iter()
        .enumerate()
        .map(|(i, &r)| (i + 1) as f64 / r as f64)
        .sum();
    let cap = relevant.len().min(k);
    Some(RankMetrics {
        precision: hits as f64 / k as f64,
        recall: hits as f64 / relevant.len() as f64,
        ndcg: dcg / ideal_dcg(cap),
        average_precision: ap_sum / cap as f64,
        hit: if hits > 0 { 1.0 } else { 0.0 },
        hits,
    })
}

/// `hits@K / K`; 0 for an empty relevant set or `k == 0`.
pub fn precision_at_k(ranked: &[u32], relevant: &FxHashSet<u32>, k: usize) -> f64 {
    rank_metrics(ranked, relevant, k).map_or(0.0, |m| m.precision)
}

/// `hits@K / |relevant|`; 0 for an empty relevant set or `k == 0`.
pub fn recall_at_k(ranked: &[u32], relevant: &FxHashSet<u32>, k: usize) -> f64 {
    rank_metrics(ranked, relevant, k).map_or(0.0, |m| m.recall)
}

/// Binary NDCG@K (see module docs); 0 for an empty relevant set or `k == 0`.
pub fn ndcg_at_k(ranked: &[u32], relevant: &FxHashSet<u32>, k: usize) -> f64 {
    rank_metrics(ranked, relevant, k).map_or(0.0, |m| m.ndcg)
}

/// AP@K normalised by `min(|relevant|, K)`; its mean over users is MAP@K.
pub fn average_precision_at_k(ranked: &[u32], relevant: &FxHashSet<u32>, k: usize) -> f64 {
    rank_metrics(ranked, relevant, k).map_or(0.0, |m| m.average_precision)
}

/// 1 when any relevant item is in the top K, else 0; its mean over users is hit rate@K.
pub fn hit_at_k(ranked: &[u32], relevant: &FxHashSet<u32>, k: usize) -> f64 {
    rank_metrics(ranked, relevant, k).map_or(0.0, |m| m.hit)
}
