//! The catalogue overlay one request reads: the change set resolved against one bundle. Items
//! the bundle does not have become added items with vectors built from the bundle's feature
//! embeddings (the hybrid model's per-feature vectors, summed as LightFM does for an item
//! without interactions; the content vector from the centroids of its categories), addressed
//! by ids past the bundle's (`n_items + k`). Bundle items that are taken down become a sorted
//! id list the request's eligibility excludes. Immutable: a change or a reload builds a new one.

use super::changes::{ChangeSet, Features};
use crate::bundle::Model;
use crate::data::features::{for_each_token, is_category_column, is_text_column, split_multi};
use crate::retrieval::index::{IndexConfig, VectorIndex};
use rustc_hash::{FxHashMap, FxHashSet};

/// The bundle's per-feature vectors that added items are built from, kept by the engine (the
/// full hybrid embedding table, identity rows included, is not kept in serving).
#[derive(Debug, Clone, Default)]
pub struct FeatureVectors {
    cf_dim: usize,
    content_dim: usize,
    /// Non-identity item feature name (`genre=Action`, `text=toy`) → its row.
    by_name: FxHashMap<String, u32>,
    /// Rows of `cf_dim`: the hybrid model's embedding of each feature.
    cf: Vec<f32>,
    /// Per bundle category: the L2-normalised mean content vector of its items.
    category_content: Vec<f32>,
    /// The bias an item without interactions gets: the mean bias of the bundle's least
    /// interacted items.
    cold_bias: f32,
}

impl FeatureVectors {
    /// Copies what added items need out of `model` (call before the engine drops the full
    /// feature embedding table).
    pub fn from_model(model: &Model) -> Self {
        let (n, d, c) = (model.n_items(), model.cf_dim, model.content_dim);
        let names = &model.item_feature_names;
        let mut by_name = FxHashMap::default();
        let mut cf = Vec::new();
        // LightFM layout: one identity feature per item first, then the shared features.
        if d > 0 && names.len() >= n && model.item_feature_emb.len() == names.len() * d {
            for (row, name) in names.iter().enumerate().skip(n) {
                by_name.insert(name.clone(), (row - n) as u32);
            }
            cf = model.item_feature_emb[n * d..].to_vec();
        }
        let n_cat = model.categories.len();
        let mut category_content = vec![0f32; n_cat * c];
        for i in 0..n as u32 {
            for &cat in model.item_categories(i) {
                if let Some(row) =
                    category_content.get_mut(cat as usize * c..(cat as usize + 1) * c)
                {
                    for (a, b) in row.iter_mut().zip(model.item_content(i)) {
                        *a += b;
                    }
                }
            }
        }
        for row in category_content.chunks_mut(c.max(1)) {
            normalise(row);
        }
        let mut counts: Vec<(f32, f32)> = model
            .item_stats
            .iter()
            .zip(&model.item_bias)
            .map(|(s, &b)| (s.count, b))
            .collect();
        counts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let tail = &counts[..counts.len().div_ceil(10)];
        let cold_bias = if tail.is_empty() {
            0.0
        } else {
            tail.iter().map(|x| x.1).sum::<f32>() / tail.len() as f32
        };
        Self {
            cf_dim: d,
            content_dim: c,
            by_name,
            cf,
            category_content,
            cold_bias,
        }
    }

    /// The hybrid-model vector of an item with `features` and no interactions: the mean of its
    /// known features' embeddings, weighted as training weighs a cold item's row.
    fn cf_vector(&self, features: &Features, out: &mut [f32]) {
        let mut rows: Vec<u32> = Vec::new();
        let mut buf = String::new();
        for (col, cell) in features {
            if is_text_column(col) {
                for_each_token(cell, &mut buf, |t| {
                    if let Some(&r) = self.by_name.get(&format!("text={t}")) {
                        rows.push(r);
                    }
                });
            } else {
                for v in split_multi(cell) {
                    if let Some(&r) = self.by_name.get(&format!("{col}={v}")) {
                        rows.push(r);
                    }
                }
            }
        }
        // As a trained item without interactions: its row sums to 1 over the features and
        // the (untrained) identity feature.
        let w = 1.0 / (1.0 + rows.len() as f32);
        let d = self.cf_dim;
        for r in rows {
            if let Some(e) = self.cf.get(r as usize * d..(r as usize + 1) * d) {
                for (a, b) in out.iter_mut().zip(e) {
                    *a += w * b;
                }
            }
        }
    }

    fn content_vector(&self, categories: &[u32], out: &mut [f32]) {
        let c = self.content_dim;
        for &cat in categories {
            if let Some(row) = self
                .category_content
                .get(cat as usize * c..(cat as usize + 1) * c)
            {
                for (a, b) in out.iter_mut().zip(row) {
                    *a += b;
                }
            }
        }
        normalise(out);
    }
}

fn normalise(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// The change set resolved against one bundle (see the module docs).
#[derive(Debug, Default)]
pub struct Overlay {
    /// The change-set version it was built from.
    pub version: u64,
    /// The bundle's item count: added item `k` has id `base + k`.
    base: u32,
    cf_dim: usize,
    content_dim: usize,
    /// Added items that may be served, in item-id order.
    ids: Vec<String>,
    index: FxHashMap<String, u32>,
    categories: Vec<Vec<u32>>,
    /// Exact scans over the added items' vectors (the retrieval scan kernel, no graph).
    pub cf_index: Option<VectorIndex>,
    pub content_index: Option<VectorIndex>,
    /// Added items that are taken down: known (feedback on them is history), never served.
    down_added: FxHashSet<String>,
    /// Bundle items that are taken down, ascending.
    pub taken_down: Vec<u32>,
    /// Entries with runtime features for an item the bundle has (the bundle's vectors serve
    /// until retraining; the entry is kept for export).
    pub covered: usize,
}

impl Overlay {
    /// No runtime changes over a bundle of `n_items`.
    pub fn empty(n_items: usize) -> Self {
        Self {
            base: n_items as u32,
            ..Default::default()
        }
    }

    pub fn build(model: &Model, fv: &FeatureVectors, set: &ChangeSet, version: u64) -> Self {
        let mut o = Self::empty(model.n_items());
        o.version = version;
        o.cf_dim = fv.cf_dim;
        o.content_dim = fv.content_dim;
        // The added items' vectors, moved into their exact scans at the end.
        let (mut cf, mut content) = (Vec::new(), Vec::new());
        for (id, e) in &set.entries {
            if let Some(&i) = model.item_index.get(id.as_str()) {
                if e.taken_down {
                    o.taken_down.push(i);
                }
                o.covered += usize::from(e.features.is_some());
                continue;
            }
            let Some(features) = &e.features else {
                // A takedown of an id nobody added: nothing to serve or hide.
                continue;
            };
            if e.taken_down {
                o.down_added.insert(id.clone());
                continue;
            }
            let k = o.ids.len();
            o.ids.push(id.clone());
            o.index.insert(id.clone(), k as u32);
            let mut cats: Vec<u32> = features
                .iter()
                .filter(|(col, _)| is_category_column(col))
                .flat_map(|(_, cell)| split_multi(cell))
                .filter_map(|v| model.category_index.get(v).copied())
                .collect();
            cats.sort_unstable();
            cats.dedup();
            cf.resize((k + 1) * o.cf_dim, 0.0);
            fv.cf_vector(features, &mut cf[k * o.cf_dim..]);
            content.resize((k + 1) * o.content_dim, 0.0);
            fv.content_vector(&cats, &mut content[k * o.content_dim..]);
            o.categories.push(cats);
        }
        o.taken_down.sort_unstable();
        if !o.ids.is_empty() {
            // Always an exact scan: the overlay is small by design (retrain past ~10k items).
            let exact = IndexConfig {
                exact_below: usize::MAX,
                ..IndexConfig::default()
            };
            o.cf_index =
                VectorIndex::build(cf, Some(vec![fv.cold_bias; o.ids.len()]), o.cf_dim, &exact)
                    .map_err(|e| tracing::warn!(error = %e, "added items' cf scan not built"))
                    .ok();
            o.content_index = VectorIndex::build(content, None, o.content_dim, &exact)
                .map_err(|e| tracing::warn!(error = %e, "added items' content scan not built"))
                .ok();
        }
        o
    }

    /// Nothing added and nothing taken down: requests run exactly as without an overlay.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty() && self.taken_down.is_empty()
    }

    /// Added items that may be served.
    pub fn n_added(&self) -> usize {
        self.ids.len()
    }

    /// The first id past the bundle's.
    pub fn base(&self) -> u32 {
        self.base
    }

    /// The served id of added item `k`.
    pub fn id_of(&self, k: usize) -> u32 {
        self.base + k as u32
    }

    /// The external id of item `item` when it is an added one.
    pub fn item_id(&self, item: u32) -> Option<&str> {
        item.checked_sub(self.base)
            .and_then(|k| self.ids.get(k as usize))
            .map(String::as_str)
    }

    /// The added item `id`, if it may be served.
    pub fn added(&self, id: &str) -> Option<usize> {
        self.index.get(id).map(|&k| k as usize)
    }

    /// Whether `id` is an item the overlay added (served or taken down).
    pub fn knows(&self, id: &str) -> bool {
        self.index.contains_key(id) || self.down_added.contains(id)
    }

    pub fn categories(&self, k: usize) -> &[u32] {
        self.categories.get(k).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::{Change, Stamp};

    fn demo() -> Model {
        Model::read(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/demo"))
            .expect("demo bundle")
    }

    fn up(id: &str, features: &[(&str, &str)]) -> Change {
        Change::Upsert {
            item_id: id.into(),
            features: features
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    // Cost: reads the demo bundle (~50 ms).
    #[test]
    fn the_overlay_adds_what_the_bundle_lacks_and_hides_what_is_taken_down() {
        let m = demo();
        let fv = FeatureVectors::from_model(&m);
        let cat = m.categories[0].clone();
        let bundle_item = m.item_ids[3].clone();
        let mut set = ChangeSet::default();
        let st = |ms| Stamp {
            ms,
            origin: "t".into(),
        };
        set.apply(&up("fresh", &[("category", &cat), ("title", "x")]), &st(1));
        set.apply(&up("gone", &[("category", &cat)]), &st(2));
        set.apply(
            &Change::TakeDown {
                item_id: "gone".into(),
            },
            &st(3),
        );
        // A newer bundle has this one: it is covered, not added (a reload drops it).
        set.apply(&up(&bundle_item, &[("category", &cat)]), &st(4));
        set.apply(
            &Change::TakeDown {
                item_id: m.item_ids[9].clone(),
            },
            &st(5),
        );
        set.apply(
            &Change::TakeDown {
                item_id: m.item_ids[2].clone(),
            },
            &st(6),
        );
        let o = Overlay::build(&m, &fv, &set, 7);
        assert_eq!(o.n_added(), 1);
        assert_eq!(o.added("fresh"), Some(0));
        assert_eq!(o.item_id(o.id_of(0)), Some("fresh"));
        assert_eq!(o.item_id(3), None, "bundle ids are the bundle's");
        assert!(
            o.knows("gone") && o.added("gone").is_none(),
            "known, never served"
        );
        assert_eq!(o.covered, 1);
        assert_eq!(o.taken_down, vec![2, 9], "sorted bundle ids");
        assert_eq!(o.categories(0), &[0]);
        // Its content vector is its category's centroid: closest to that category's items.
        let ix = o.content_index.as_ref().unwrap();
        let members = &m.popular_by_category[0];
        let mean_in = members
            .iter()
            .map(|&i| ix.score(m.item_content(i), 0).unwrap())
            .sum::<f32>()
            / members.len() as f32;
        let others: Vec<u32> = (0..m.n_items() as u32)
            .filter(|&i| !m.item_categories(i).contains(&0))
            .collect();
        let mean_out = others
            .iter()
            .map(|&i| ix.score(m.item_content(i), 0).unwrap())
            .sum::<f32>()
            / others.len() as f32;
        assert!(mean_in > mean_out + 0.1, "{mean_in} vs {mean_out}");
        // Nothing changed: an empty overlay.
        assert!(Overlay::build(&m, &fv, &ChangeSet::default(), 0).is_empty());
    }
}
