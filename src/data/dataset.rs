//! The in-memory data set every reader produces and every trainer consumes: dense ids,
//! aggregated interactions and entity features. Readers own parsing; nothing here does I/O.

use rustc_hash::FxHashMap;

/// One aggregated (user, item) interaction. Duplicates in the input are merged by the readers:
/// `weight` is the sum of the weights, `ts` the latest timestamp, `count` the number of rows merged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interaction {
    pub user: u32,
    pub item: u32,
    /// Unix seconds.
    pub ts: i64,
    pub weight: f32,
    pub count: u32,
}

impl Interaction {
    /// One plain interaction at time 0 (a test fixture).
    #[cfg(test)]
    pub(crate) fn at0(user: u32, item: u32) -> Self {
        Self {
            user,
            item,
            ts: 0,
            weight: 1.0,
            count: 1,
        }
    }
}

/// Features of one entity kind (users or items), dense per entity index.
#[derive(Debug, Clone, Default)]
pub struct EntityFeatures {
    /// Vocabulary of categorical features, each `"column=value"` (multi-valued cells give one per value).
    pub cat_vocab: Vec<String>,
    /// Per entity: ids into `cat_vocab`.
    pub categorical: Vec<Vec<u32>>,
    /// Vocabulary of text tokens (from `title` / `description` columns, lower-cased alphanumeric runs).
    pub token_vocab: Vec<String>,
    /// Per entity: ids into `token_vocab`, repeats kept (term frequency).
    pub text: Vec<Vec<u32>>,
    /// Names of numeric columns.
    pub numeric_names: Vec<String>,
    /// Row-major `n_entities × numeric_names.len()`, NaN where missing.
    pub numeric: Vec<f32>,
}

impl EntityFeatures {
    pub fn empty(n: usize) -> Self {
        Self {
            categorical: vec![Vec::new(); n],
            text: vec![Vec::new(); n],
            ..Default::default()
        }
    }
    pub fn len(&self) -> usize {
        self.categorical.len()
    }
    pub fn is_empty(&self) -> bool {
        self.categorical.is_empty()
    }
    /// Whether entity `i` has at least one feature besides its identity.
    pub fn has_any(&self, i: usize) -> bool {
        let n_num = self.numeric_names.len();
        !self.categorical[i].is_empty()
            || !self.text[i].is_empty()
            || (n_num > 0
                && self.numeric[i * n_num..(i + 1) * n_num]
                    .iter()
                    .any(|v| !v.is_nan()))
    }
}

/// A whole input data set with dense ids.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    pub user_ids: Vec<String>,
    pub item_ids: Vec<String>,
    pub user_index: FxHashMap<String, u32>,
    pub item_index: FxHashMap<String, u32>,
    /// Aggregated interactions, sorted by (user, ts, item).
    pub interactions: Vec<Interaction>,
    pub user_features: EntityFeatures,
    pub item_features: EntityFeatures,
    /// The item "category" used for per-category popularity, the `category=` filter and the
    /// category-match features: values of the first column named category/categories/genre/genres.
    pub category_vocab: Vec<String>,
    /// Per item: ids into `category_vocab`.
    pub item_categories: Vec<Vec<u32>>,
    /// Item titles when the input has them (for reports and responses), else empty strings.
    pub item_titles: Vec<String>,
    /// Lines skipped by `--skip-bad-lines`, per file name.
    pub skipped_lines: Vec<(String, u64)>,
}

impl Dataset {
    pub fn n_users(&self) -> usize {
        self.user_ids.len()
    }
    pub fn n_items(&self) -> usize {
        self.item_ids.len()
    }

    /// The same users, items and features with other interactions (e.g. a split's train part),
    /// sorted by (user, ts, item) as every consumer expects.
    pub fn with_interactions(&self, mut interactions: Vec<Interaction>) -> Dataset {
        interactions.sort_by_key(|x| (x.user, x.ts, x.item));
        Dataset {
            interactions,
            ..self.clone()
        }
    }
}
