//! Column typing and feature interning shared by every reader, so that a CSV directory and a
//! MovieLens directory yield features named and encoded the same way. No I/O here.
//!
//! Conventions (the input contract in DESIGN.md):
//! - a cell holding `|` is multi-valued: `Action|Comedy` gives two categorical features;
//! - a column whose every non-empty cell parses as a finite number is numeric;
//! - columns named `title` or `description` are text: lower-cased alphanumeric runs become tokens;
//! - every other column is categorical, each feature named `column=value`;
//! - empty cells are missing values; a column with no non-empty cell at all is dropped.

use rustc_hash::FxHashMap;

use super::dataset::EntityFeatures;

/// A vocabulary grew past `u32::MAX` entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VocabFull;

/// Strings interned to dense `u32` ids in order of first appearance.
#[derive(Debug, Default)]
pub(crate) struct Vocab {
    names: Vec<String>,
    index: FxHashMap<String, u32>,
}

impl Vocab {
    /// The id of `name`, interning it on first sight (one allocation per new name only).
    pub(crate) fn id(&mut self, name: &str) -> Result<u32, VocabFull> {
        if let Some(&id) = self.index.get(name) {
            return Ok(id);
        }
        let id = u32::try_from(self.names.len()).map_err(|_| VocabFull)?;
        if id == u32::MAX {
            return Err(VocabFull);
        }
        self.names.push(name.to_string());
        self.index.insert(name.to_string(), id);
        Ok(id)
    }

    pub(crate) fn into_parts(self) -> (Vec<String>, FxHashMap<String, u32>) {
        (self.names, self.index)
    }
}

/// How a feature-file column is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ColumnKind {
    /// The entity id column.
    Id,
    /// Tokenised text (`title`, `description`).
    Text,
    /// Numeric: every non-empty cell parses as a finite number.
    Numeric,
    /// Categorical `column=value` features (multi-valued cells split on `|`).
    Categorical,
    /// Not used: no header name, or no non-empty cell.
    Ignored,
}

/// Whether a column named `name` is a text column.
pub fn is_text_column(name: &str) -> bool {
    name.eq_ignore_ascii_case("title") || name.eq_ignore_ascii_case("description")
}

/// Whether a column named `name` holds the item categories.
pub fn is_category_column(name: &str) -> bool {
    ["category", "categories", "genre", "genres"]
        .iter()
        .any(|c| name.eq_ignore_ascii_case(c))
}

/// Infers column kinds from a first pass over the cells of a feature file.
#[derive(Debug)]
pub(crate) struct ColumnTyper {
    all_numeric: Vec<bool>,
    any_value: Vec<bool>,
}

impl ColumnTyper {
    pub(crate) fn new(n_columns: usize) -> Self {
        Self {
            all_numeric: vec![true; n_columns],
            any_value: vec![false; n_columns],
        }
    }

    /// Records one cell of column `col` (out-of-range columns are ignored).
    pub(crate) fn observe(&mut self, col: usize, cell: &str) {
        let cell = cell.trim();
        if cell.is_empty() || col >= self.any_value.len() {
            return;
        }
        self.any_value[col] = true;
        if self.all_numeric[col] && parse_number(cell).is_none() {
            self.all_numeric[col] = false;
        }
    }

    /// The kind of every column. `id_col` is the id; `forced_categorical` (the category column)
    /// stays categorical even when its values look numeric.
    pub(crate) fn kinds(
        &self,
        names: &[String],
        id_col: usize,
        forced_categorical: Option<usize>,
    ) -> Vec<ColumnKind> {
        names
            .iter()
            .enumerate()
            .map(|(col, name)| {
                if col == id_col {
                    ColumnKind::Id
                } else if name.is_empty() || !self.any_value.get(col).copied().unwrap_or(false) {
                    ColumnKind::Ignored
                } else if is_text_column(name) {
                    ColumnKind::Text
                } else if Some(col) != forced_categorical && self.all_numeric[col] {
                    ColumnKind::Numeric
                } else {
                    ColumnKind::Categorical
                }
            })
            .collect()
    }
}

/// A finite number as `f32`, or `None` (empty, not a number, NaN, ±inf, out of `f32` range).
pub fn parse_number(cell: &str) -> Option<f32> {
    let v: f64 = cell.trim().parse().ok()?;
    let v = v as f32;
    v.is_finite().then_some(v)
}

/// The non-empty, trimmed values of a possibly multi-valued (`a|b`) cell.
pub fn split_multi(cell: &str) -> impl Iterator<Item = &str> {
    cell.split('|').map(str::trim).filter(|v| !v.is_empty())
}

/// Calls `f` with every lower-cased alphanumeric run of `text`.
pub fn for_each_token(text: &str, buf: &mut String, mut f: impl FnMut(&str)) {
    buf.clear();
    for ch in text.chars() {
        if ch.is_alphanumeric() {
            buf.extend(ch.to_lowercase());
        } else if !buf.is_empty() {
            f(buf);
            buf.clear();
        }
    }
    if !buf.is_empty() {
        f(buf);
        buf.clear();
    }
}

/// Accumulates the features of one entity kind; entities may arrive in any order and more than
/// once (features of repeated rows are merged). Turned into [`EntityFeatures`] by [`Self::finish`].
#[derive(Debug, Default)]
pub(crate) struct FeaturesBuilder {
    cat_vocab: Vocab,
    categorical: Vec<Vec<u32>>,
    token_vocab: Vocab,
    text: Vec<Vec<u32>>,
    numeric_names: Vec<String>,
    /// (entity, numeric column, value); densified by `finish`.
    numeric: Vec<(u32, u32, f32)>,
    key: String,
    token: String,
}

impl FeaturesBuilder {
    /// Adds categorical feature `column=value` to `entity` (once: repeats are ignored).
    pub(crate) fn add_categorical(
        &mut self,
        entity: u32,
        column: &str,
        value: &str,
    ) -> Result<(), VocabFull> {
        self.key.clear();
        self.key.push_str(column);
        self.key.push('=');
        self.key.push_str(value);
        let id = self.cat_vocab.id(&self.key)?;
        let feats = slot(&mut self.categorical, entity);
        if !feats.contains(&id) {
            feats.push(id);
        }
        Ok(())
    }

    /// Adds the tokens of `text` to `entity` (repeats kept: term frequency).
    pub(crate) fn add_text(&mut self, entity: u32, text: &str) -> Result<(), VocabFull> {
        let Self {
            token_vocab,
            text: texts,
            token,
            ..
        } = self;
        let mut result = Ok(());
        for_each_token(text, token, |tok| {
            if result.is_ok() {
                match token_vocab.id(tok) {
                    Ok(id) => slot(texts, entity).push(id),
                    Err(e) => result = Err(e),
                }
            }
        });
        result
    }

    /// The index of numeric column `name`, registering it on first use.
    pub(crate) fn numeric_column(&mut self, name: &str) -> u32 {
        match self.numeric_names.iter().position(|n| n == name) {
            Some(i) => i as u32,
            None => {
                self.numeric_names.push(name.to_string());
                (self.numeric_names.len() - 1) as u32
            }
        }
    }

    /// Sets numeric column `col` (from [`Self::numeric_column`]) of `entity`; the last value wins.
    pub(crate) fn set_numeric(&mut self, entity: u32, col: u32, value: f32) {
        self.numeric.push((entity, col, value));
    }

    /// Dense features for entities `0..n` (entities never mentioned get empty features).
    pub(crate) fn finish(self, n: usize) -> EntityFeatures {
        let mut categorical = self.categorical;
        categorical.resize_with(n, Vec::new);
        let mut text = self.text;
        text.resize_with(n, Vec::new);
        let n_num = self.numeric_names.len();
        let mut numeric = vec![f32::NAN; n * n_num];
        for (entity, col, value) in self.numeric {
            if let Some(cell) = numeric.get_mut(entity as usize * n_num + col as usize) {
                *cell = value;
            }
        }
        EntityFeatures {
            cat_vocab: self.cat_vocab.into_parts().0,
            categorical,
            token_vocab: self.token_vocab.into_parts().0,
            text,
            numeric_names: self.numeric_names,
            numeric,
        }
    }
}

/// The entry of `entity` in a per-entity vector, growing it as needed.
pub(crate) fn slot<T: Default>(v: &mut Vec<T>, entity: u32) -> &mut T {
    let i = entity as usize;
    if v.len() <= i {
        v.resize_with(i + 1, T::default);
    }
    &mut v[i]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        for_each_token(text, &mut String::new(), |t| out.push(t.to_string()));
        out
    }

    #[test]
    fn tokenizer_lowercases_alphanumeric_runs() {
        assert_eq!(tokens("Toy Story (1995)"), ["toy", "story", "1995"]);
        assert_eq!(tokens("  --Émile's CAFÉ--"), ["émile", "s", "café"]);
        assert!(tokens(" ,;- ").is_empty());
    }

    #[test]
    fn numbers_must_be_finite() {
        assert_eq!(parse_number(" 4.5 "), Some(4.5));
        assert_eq!(parse_number("-3"), Some(-3.0));
        assert_eq!(parse_number("1e3"), Some(1000.0));
        for bad in ["", "NaN", "inf", "-infinity", "1e300", "4,5", "abc", "1|2"] {
            assert_eq!(parse_number(bad), None, "{bad}");
        }
    }

    #[test]
    fn multi_values_are_split_and_trimmed() {
        assert_eq!(
            split_multi(" Action | Comedy||").collect::<Vec<_>>(),
            ["Action", "Comedy"]
        );
        assert_eq!(split_multi("").count(), 0);
    }

    #[test]
    fn column_kinds_follow_the_conventions() {
        let names: Vec<String> = [
            "item_id", "price", "brand", "title", "genre", "empty", "", "mixed",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut t = ColumnTyper::new(names.len());
        for row in [
            ["i1", "3.5", "acme", "A b", "1", "", "x", "1"],
            ["i2", "", "zed", "", "2", "", "y", "z"],
        ] {
            for (c, v) in row.iter().enumerate() {
                t.observe(c, v);
            }
        }
        use ColumnKind::*;
        assert_eq!(
            t.kinds(&names, 0, Some(4)),
            [
                Id,
                Numeric,
                Categorical,
                Text,
                Categorical,
                Ignored,
                Ignored,
                Categorical
            ]
        );
        // Without forcing, a numeric-looking category column is numeric.
        assert_eq!(t.kinds(&names, 0, None)[4], Numeric);
    }

    #[test]
    fn builder_merges_and_densifies() {
        let mut b = FeaturesBuilder::default();
        b.add_categorical(2, "genre", "Action").unwrap();
        b.add_categorical(2, "genre", "Action").unwrap();
        b.add_categorical(0, "genre", "Comedy").unwrap();
        b.add_categorical(0, "genre", "Action").unwrap();
        b.add_text(2, "Die Hard, die!").unwrap();
        let year = b.numeric_column("year");
        assert_eq!(b.numeric_column("year"), year);
        b.set_numeric(2, year, 1988.0);
        let f = b.finish(4);
        assert_eq!(f.cat_vocab, ["genre=Action", "genre=Comedy"]);
        assert_eq!(f.categorical, [vec![1, 0], vec![], vec![0], vec![]]);
        assert_eq!(f.token_vocab, ["die", "hard"]);
        assert_eq!(f.text[2], [0, 1, 0]);
        assert_eq!(f.numeric_names, ["year"]);
        assert!(f.numeric[0].is_nan() && f.numeric[1].is_nan() && f.numeric[3].is_nan());
        assert_eq!(f.numeric[2], 1988.0);
        assert!(f.has_any(0) && !f.has_any(1) && f.has_any(2) && !f.has_any(3));
    }
}
