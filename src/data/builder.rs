//! Accumulates what the readers parse (ids, interactions, features, categories) into a
//! [`Dataset`], so that every input layout ends in the same dense ids and aggregation rules.
//! Memory stays proportional to the distinct (user, item) pairs, not to the input rows.

use std::path::Path;

use rustc_hash::FxHashMap;

use super::dataset::{Dataset, Interaction};
use super::error::DataError;
use super::features::{FeaturesBuilder, Vocab, VocabFull, slot};

/// Running aggregate of the rows of one (user, item) pair.
#[derive(Debug, Clone, Copy)]
struct PairAgg {
    ts: i64,
    weight: f32,
    count: u32,
}

/// Builds a [`Dataset`]; entities get dense ids in order of first appearance.
#[derive(Debug, Default)]
pub(crate) struct DatasetBuilder {
    users: Vocab,
    items: Vocab,
    /// Keyed by `user << 32 | item`.
    pairs: FxHashMap<u64, PairAgg>,
    pub(crate) user_features: FeaturesBuilder,
    pub(crate) item_features: FeaturesBuilder,
    categories: Vocab,
    item_categories: Vec<Vec<u32>>,
    item_titles: Vec<String>,
    skipped: Vec<(String, u64)>,
}

impl DatasetBuilder {
    /// Dense id of user `id` (already trimmed and non-empty), added on first sight.
    pub(crate) fn user(&mut self, id: &str, file: &Path) -> Result<u32, DataError> {
        self.users.id(id).map_err(|_| too_many(file, "user ids"))
    }

    /// Dense id of item `id` (already trimmed and non-empty), added on first sight.
    pub(crate) fn item(&mut self, id: &str, file: &Path) -> Result<u32, DataError> {
        self.items.id(id).map_err(|_| too_many(file, "item ids"))
    }

    /// Adds one interaction row. Rows of the same (user, item) pair are merged: weights summed,
    /// latest timestamp kept, rows counted.
    pub(crate) fn add_interaction(&mut self, user: u32, item: u32, ts: i64, weight: f32) {
        let key = (u64::from(user) << 32) | u64::from(item);
        self.pairs
            .entry(key)
            .and_modify(|agg| {
                agg.ts = agg.ts.max(ts);
                agg.weight += weight;
                agg.count = agg.count.saturating_add(1);
            })
            .or_insert(PairAgg {
                ts,
                weight,
                count: 1,
            });
    }

    /// Adds category `name` to `item` (once; the first category added is the first listed).
    pub(crate) fn add_item_category(
        &mut self,
        item: u32,
        name: &str,
        file: &Path,
    ) -> Result<(), DataError> {
        let id = self
            .categories
            .id(name)
            .map_err(|_| too_many(file, "categories"))?;
        let cats = slot(&mut self.item_categories, item);
        if !cats.contains(&id) {
            cats.push(id);
        }
        Ok(())
    }

    /// Sets the display title of `item` (the last one given wins).
    pub(crate) fn set_item_title(&mut self, item: u32, title: &str) {
        let t = slot(&mut self.item_titles, item);
        t.clear();
        t.push_str(title);
    }

    /// Records `n` skipped lines of `file` (nothing when `n == 0`).
    pub(crate) fn record_skipped(&mut self, file: &Path, n: u64) {
        if n == 0 {
            return;
        }
        let name = file
            .file_name()
            .unwrap_or(file.as_os_str())
            .to_string_lossy()
            .into_owned();
        match self.skipped.iter_mut().find(|(f, _)| *f == name) {
            Some((_, total)) => *total += n,
            None => self.skipped.push((name, n)),
        }
    }

    pub(crate) fn finish(self) -> Dataset {
        let mut interactions: Vec<Interaction> = Vec::with_capacity(self.pairs.len());
        interactions.extend(self.pairs.into_iter().map(|(key, agg)| Interaction {
            user: (key >> 32) as u32,
            item: key as u32,
            ts: agg.ts,
            weight: agg.weight,
            count: agg.count,
        }));
        interactions.sort_unstable_by_key(|x| (x.user, x.ts, x.item));
        let (user_ids, user_index) = self.users.into_parts();
        let (item_ids, item_index) = self.items.into_parts();
        let n_items = item_ids.len();
        let mut item_categories = self.item_categories;
        item_categories.resize_with(n_items, Vec::new);
        let mut item_titles = self.item_titles;
        item_titles.resize_with(n_items, String::new);
        Dataset {
            user_features: self.user_features.finish(user_ids.len()),
            item_features: self.item_features.finish(n_items),
            user_ids,
            item_ids,
            user_index,
            item_index,
            interactions,
            category_vocab: self.categories.into_parts().0,
            item_categories,
            item_titles,
            skipped_lines: self.skipped,
        }
    }
}

fn too_many(file: &Path, what: &'static str) -> DataError {
    DataError::TooManyIds {
        file: file.to_path_buf(),
        what,
    }
}

/// Maps a full feature vocabulary to an error naming `file`.
pub(crate) fn vocab_full(file: &Path) -> impl Fn(VocabFull) -> DataError + '_ {
    move |_| too_many(file, "feature values")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_aggregated_and_sorted() {
        let f = Path::new("x.csv");
        let mut b = DatasetBuilder::default();
        let u1 = b.user("u1", f).unwrap();
        let u0 = b.user("u0", f).unwrap();
        let a = b.item("a", f).unwrap();
        let c = b.item("c", f).unwrap();
        assert_eq!((u1, u0, a, c), (0, 1, 0, 1));
        assert_eq!(b.user("u1", f).unwrap(), 0);
        b.add_interaction(u0, c, 50, 1.0);
        b.add_interaction(u0, a, 10, 2.0);
        b.add_interaction(u0, a, 30, 0.5);
        b.add_interaction(u0, a, 20, 1.0);
        b.add_interaction(u1, c, 5, 1.0);
        b.record_skipped(Path::new("/d/x.csv"), 2);
        b.record_skipped(Path::new("/d/x.csv"), 0);
        b.record_skipped(Path::new("/d/x.csv"), 1);
        let d = b.finish();
        let got: Vec<_> = d
            .interactions
            .iter()
            .map(|x| (x.user, x.item, x.ts, x.weight, x.count))
            .collect();
        assert_eq!(
            got,
            [(0, 1, 5, 1.0, 1), (1, 0, 30, 3.5, 3), (1, 1, 50, 1.0, 1)]
        );
        assert_eq!(d.user_ids, ["u1", "u0"]);
        assert_eq!(d.item_index["c"], 1);
        assert_eq!(d.skipped_lines, [("x.csv".to_string(), 3)]);
        assert_eq!(d.item_titles, ["", ""]);
        assert_eq!(d.item_categories, [Vec::<u32>::new(), vec![]]);
        assert_eq!(d.user_features.len(), 2);
    }
}
