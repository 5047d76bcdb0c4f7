//! The in-memory model a bundle holds: ids, vectors, statistics and histories, all dense by index.
//! Immutable once built; shared by training (stage-1 fitting) and serving through `Arc`.

use super::Manifest;
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// Per-item statistics used by the popular source and the ranker's features.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ItemStat {
    /// Time-decayed interaction count (the popularity score).
    pub popularity: f32,
    /// Raw interaction count in training.
    pub count: f32,
    /// Share of the item's interactions in the last 30 days of the data (0 when none).
    pub trend: f32,
    /// Days between the item's first interaction (or release) and the reference time; NaN when unknown.
    pub age_days: f32,
}

#[derive(Debug, Clone)]
pub struct Model {
    pub manifest: Manifest,
    pub item_ids: Vec<String>,
    pub user_ids: Vec<String>,
    pub item_index: FxHashMap<String, u32>,
    pub user_index: FxHashMap<String, u32>,
    pub categories: Vec<String>,
    pub category_index: FxHashMap<String, u32>,
    /// CSR item → category ids.
    pub item_cat_indptr: Vec<usize>,
    pub item_cat: Vec<u32>,
    pub cf_dim: usize,
    /// `n_items × cf_dim`, row-major.
    /// Shared with the CF vector index (one copy in memory).
    pub item_cf: Arc<[f32]>,
    pub item_bias: Vec<f32>,
    /// `n_users × cf_dim`, row-major.
    pub user_cf: Vec<f32>,
    pub content_dim: usize,
    /// `n_items × content_dim`, row-major, rows L2-normalised (or zero).
    /// Shared with the content vector index (one copy in memory).
    pub item_content: Arc<[f32]>,
    pub item_stats: Vec<ItemStat>,
    /// Items by descending popularity (global popular list).
    pub popular_order: Vec<u32>,
    /// Per category: its items by descending popularity (per-segment popular lists).
    pub popular_by_category: Vec<Vec<u32>>,
    /// Percentile rank of each item's popularity in [0,1], 1 = most popular.
    pub popularity_pct: Vec<f32>,
    /// CSR user → training history (item ids and timestamps, oldest first).
    pub hist_indptr: Vec<usize>,
    pub hist_items: Vec<u32>,
    pub hist_ts: Vec<i64>,
    /// Vocabularies and embeddings of the hybrid model's features (kept for tooling and retraining).
    pub user_feature_names: Vec<String>,
    pub item_feature_names: Vec<String>,
    pub user_feature_emb: Vec<f32>,
    pub item_feature_emb: Vec<f32>,
    /// Item-to-item neighbours: `n_items × item2item_k`, row i = the items that consuming i
    /// points to, best first, padded with -1 (weight 0). `item2item_k == 0`: no such model.
    pub item2item_k: usize,
    pub item2item_ids: Vec<i32>,
    pub item2item_weights: Vec<f32>,
    /// User segments and their popularity (empty in bundles without them).
    pub segments: super::Segments,
    /// LightGBM text model, when the bundle has a ranker.
    pub ranker_text: Option<String>,
}

impl Model {
    pub fn n_items(&self) -> usize {
        self.item_ids.len()
    }
    pub fn n_users(&self) -> usize {
        self.user_ids.len()
    }
    pub fn item_cf(&self, i: u32) -> &[f32] {
        let d = self.cf_dim;
        &self.item_cf[i as usize * d..(i as usize + 1) * d]
    }
    pub fn user_cf(&self, u: u32) -> &[f32] {
        let d = self.cf_dim;
        &self.user_cf[u as usize * d..(u as usize + 1) * d]
    }
    pub fn item_content(&self, i: u32) -> &[f32] {
        let d = self.content_dim;
        &self.item_content[i as usize * d..(i as usize + 1) * d]
    }
    pub fn item_categories(&self, i: u32) -> &[u32] {
        &self.item_cat[self.item_cat_indptr[i as usize]..self.item_cat_indptr[i as usize + 1]]
    }
    /// Item `i`'s item-to-item neighbours and their weights (empty without the model).
    pub fn item2item(&self, i: u32) -> (&[i32], &[f32]) {
        let k = self.item2item_k;
        let (a, b) = (i as usize * k, (i as usize + 1) * k);
        match (
            self.item2item_ids.get(a..b),
            self.item2item_weights.get(a..b),
        ) {
            (Some(ids), Some(w)) => (ids, w),
            _ => (&[], &[]),
        }
    }

    /// A user's training history: (items, timestamps), oldest first.
    pub fn history(&self, u: u32) -> (&[u32], &[i64]) {
        let (a, b) = (
            self.hist_indptr[u as usize],
            self.hist_indptr[u as usize + 1],
        );
        (&self.hist_items[a..b], &self.hist_ts[a..b])
    }

    /// Derives popularity order, per-category lists and percentiles from `item_stats` and categories.
    /// Called by the reader and the trainer so the derived state is never stored twice.
    pub fn derive_popularity(&mut self) {
        let n = self.n_items();
        let mut order: Vec<u32> = (0..n as u32).collect();
        let pop = |i: u32| self.item_stats[i as usize].popularity;
        order.sort_unstable_by(|&a, &b| pop(b).total_cmp(&pop(a)).then(a.cmp(&b)));
        let mut pct = vec![0f32; n];
        for (rank, &i) in order.iter().enumerate() {
            pct[i as usize] = if n > 1 {
                1.0 - rank as f32 / (n - 1) as f32
            } else {
                1.0
            };
        }
        let mut by_cat = vec![Vec::new(); self.categories.len()];
        for &i in &order {
            let mut cats: Vec<u32> = self.item_categories(i).to_vec();
            cats.sort_unstable();
            cats.dedup();
            for c in cats {
                if let Some(list) = by_cat.get_mut(c as usize) {
                    list.push(i);
                }
            }
        }
        self.popular_order = order;
        self.popular_by_category = by_cat;
        self.popularity_pct = pct;
    }

    /// Rebuilds the id → index maps from the id lists.
    pub fn derive_indexes(&mut self) {
        self.item_index = self
            .item_ids
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), i as u32))
            .collect();
        self.user_index = self
            .user_ids
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), i as u32))
            .collect();
        self.category_index = self
            .categories
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), i as u32))
            .collect();
    }
}
