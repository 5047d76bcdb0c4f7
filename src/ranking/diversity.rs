//! Lists that are not ten versions of one thing: maximal marginal relevance over the items'
//! content vectors (Carbonell & Goldstein, 1998) applied to the top of the ordered list, and a
//! hard cap on items per primary category. Also the intra-list similarity that prices both.
//!
//! Off by default ([`Diversity::is_off`]): the pipeline then never calls into this module, and
//! `lambda = 0` without a cap is "off", so it returns exactly today's list.

use super::RecItem;
use crate::bundle::Model;
use serde::{Deserialize, Serialize};

/// With diversity on, MMR picks the `n` items from the first `POOL_FACTOR × n` of the ordered
/// list (at least `n + POOL_MIN_EXTRA`): enough room to trade relevance for variety, while
/// staying at the top of the list.
pub const POOL_FACTOR: usize = 3;
pub const POOL_MIN_EXTRA: usize = 20;

/// Diversity controls of one request (a variant's `diversity = {…}`, overridden per request by
/// `diversity=` and `max_per_category=`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Diversity {
    /// MMR trade-off in [0, 1]: each next item maximises `(1 − λ)·relevance − λ·max similarity
    /// to the items already picked` (relevance min-max normalised over the pool, similarity the
    /// cosine of content vectors). 0 = relevance only.
    #[serde(default)]
    pub lambda: f32,
    /// At most this many items per primary category (the item's first category), also in the
    /// popularity top-up; `None` = no cap. Items without a category are not capped.
    #[serde(default)]
    pub max_per_category: Option<usize>,
}

impl Diversity {
    /// Whether the list is served as today (no MMR, no cap).
    pub fn is_off(&self) -> bool {
        self.lambda == 0.0 && self.max_per_category.is_none()
    }

    /// Checks the ranges; the message names the offending setting.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.lambda) {
            return Err(format!(
                "diversity lambda must be in [0, 1], got {}",
                self.lambda
            ));
        }
        if self.max_per_category == Some(0) {
            return Err("max_per_category must be at least 1".into());
        }
        Ok(())
    }

    /// How many items of the ordered list diversity chooses `n` from.
    pub fn pool(&self, n: usize) -> usize {
        if self.is_off() {
            n
        } else {
            (n * POOL_FACTOR).max(n + POOL_MIN_EXTRA)
        }
    }
}

/// The item's primary category (its first), if it has one.
pub fn primary_category(model: &Model, item: u32) -> Option<u32> {
    model.item_categories(item).first().copied()
}

/// Counts items per primary category against the cap.
#[derive(Debug, Clone)]
pub struct CategoryCap {
    cap: Option<usize>,
    counts: rustc_hash::FxHashMap<u32, usize>,
}

impl CategoryCap {
    pub fn new(cap: Option<usize>) -> Self {
        Self {
            cap,
            counts: Default::default(),
        }
    }

    /// Whether `item` may still be added.
    pub fn allows(&self, model: &Model, item: u32) -> bool {
        match (self.cap, primary_category(model, item)) {
            (Some(cap), Some(c)) => self.counts.get(&c).copied().unwrap_or(0) < cap,
            _ => true,
        }
    }

    /// Counts `item` as added.
    pub fn add(&mut self, model: &Model, item: u32) {
        if let Some(c) = primary_category(model, item) {
            *self.counts.entry(c).or_insert(0) += 1;
        }
    }
}

/// Cosine similarity of two items' content vectors (rows are L2-normalised or zero).
fn similarity(model: &Model, a: u32, b: u32) -> f32 {
    let (x, y) = (model.item_content(a), model.item_content(b));
    x.iter().zip(y).map(|(p, q)| p * q).sum()
}

/// Picks up to `n` items of the ordered `pool` (best first) by MMR under the category cap;
/// returns them in pick order with their original scores. With `lambda = 0` this is the pool's
/// order with capped items skipped.
pub fn rerank(model: &Model, pool: &[RecItem], n: usize, d: &Diversity) -> Vec<RecItem> {
    let mut cap = CategoryCap::new(d.max_per_category);
    let mut out = Vec::with_capacity(n.min(pool.len()));
    let lambda = f64::from(d.lambda.clamp(0.0, 1.0));
    if lambda == 0.0 {
        for r in pool {
            if out.len() >= n {
                break;
            }
            if cap.allows(model, r.item) {
                cap.add(model, r.item);
                out.push(r.clone());
            }
        }
        return out;
    }
    let finite = pool.iter().map(|r| r.score).filter(|s| s.is_finite());
    let lo = finite.clone().fold(f32::INFINITY, f32::min);
    let hi = finite.fold(f32::NEG_INFINITY, f32::max);
    let relevance = |s: f32| -> f64 {
        if !s.is_finite() {
            return if s > 0.0 { 1.0 } else { 0.0 };
        }
        if hi > lo {
            f64::from((s - lo) / (hi - lo))
        } else {
            1.0
        }
    };
    // `max_sim[k]`: the largest similarity of pool item k to the items picked so far.
    let mut max_sim = vec![f64::NEG_INFINITY; pool.len()];
    let mut taken = vec![false; pool.len()];
    while out.len() < n {
        let mut best: Option<(usize, f64)> = None;
        for (k, r) in pool.iter().enumerate() {
            if taken[k] || !cap.allows(model, r.item) {
                continue;
            }
            let redundancy = if max_sim[k].is_finite() {
                max_sim[k]
            } else {
                0.0
            };
            let value = (1.0 - lambda) * relevance(r.score) - lambda * redundancy;
            // Ties keep the pool's order (strictly greater replaces).
            if best.is_none_or(|(_, v)| value > v) {
                best = Some((k, value));
            }
        }
        let Some((k, _)) = best else { break };
        taken[k] = true;
        let picked = pool[k].item;
        cap.add(model, picked);
        out.push(pool[k].clone());
        for (j, r) in pool.iter().enumerate() {
            if !taken[j] {
                max_sim[j] = max_sim[j].max(f64::from(similarity(model, picked, r.item)));
            }
        }
    }
    out
}

/// Intra-list similarity: the mean content cosine over all pairs of `items` (0 for fewer than
/// two items). Lower = a more varied list.
pub fn intra_list_similarity(model: &Model, items: &[u32]) -> f64 {
    let mut sum = 0.0;
    let mut pairs = 0usize;
    for (a, &x) in items.iter().enumerate() {
        for &y in &items[a + 1..] {
            sum += f64::from(similarity(model, x, y));
            pairs += 1;
        }
    }
    if pairs == 0 { 0.0 } else { sum / pairs as f64 }
}
