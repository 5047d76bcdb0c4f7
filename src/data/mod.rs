//! Input data: readers that turn a data directory into a [`Dataset`], and the synthetic data
//! generator. Readers never panic on bad input; they return a [`DataError`] naming the file,
//! line and column, or (with [`LoadOptions::skip_bad_lines`]) skip and count bad data lines.
//!
//! # Layouts
//! [`load_dir`] detects the layout by file name, in this order:
//! 1. generic: `interactions.csv` (header `user_id,item_id,timestamp[,weight]`, located by name,
//!    extra columns ignored), optional `items.csv` (`item_id` + feature columns) and `users.csv`
//!    (`user_id` + feature columns). UTF-8.
//! 2. MovieLens 100K: `u.data`, `u.item`, `u.user` (latin-1).
//! 3. MovieLens 1M / 10M: `ratings.dat`, `movies.dat`, `users.dat` (`::`-separated, latin-1).
//! 4. MovieLens latest / 20M / 25M / 32M: `ratings.csv`, `movies.csv` (UTF-8 CSV).
//!
//! # Interactions
//! Read streaming, one record at a time, into a hash map keyed by (user, item): memory grows
//! with the number of distinct pairs and ids, not with the number of rows. Rows of the same
//! (user, item) pair are aggregated into one [`Interaction`]: `weight` is the sum of the rows'
//! weights, `ts` the latest timestamp, `count` the number of rows. The result is sorted by
//! (user, ts, item). `timestamp` is Unix seconds (a fractional value is truncated); `weight` is
//! a finite non-negative number, 1 when the column is absent or the cell empty. MovieLens
//! ratings become weights.
//!
//! # Ids
//! Ids are trimmed strings and must not be empty. Dense indices follow first appearance:
//! interactions first, then the items file, then the users file. Users and items that appear
//! only in a feature file are kept (cold start); ids that appear only in interactions get empty
//! features. Several feature rows for one id are merged.
//!
//! # Features
//! See [`features`](self::features) for the column conventions (`|` multi-values, numeric
//! detection, `title`/`description` text, `column=value` categorical names). The item
//! categories come from the first column named `category`, `categories`, `genre` or `genres`
//! (always categorical, even when its values look numeric); `title` gives `item_titles`.
//! MovieLens genres are categories (the 100K `unknown` flag is not), titles give tokens and a
//! numeric `year`, users get `age=` (bucketed), `gender=` and `occupation=` features.
//!
//! # Bad lines
//! Without `skip_bad_lines` the first bad data line fails the load. With it, data lines with the
//! wrong number of fields, an empty id, an unparsable timestamp or number, or invalid UTF-8 are
//! skipped and counted per file in [`Dataset::skipped_lines`] (files with no skipped line are
//! not listed). A missing file, a bad header and I/O errors always fail.

mod builder;
mod csvdir;
pub mod dataset;
pub mod error;
pub mod features;
pub mod generate;
mod movielens;
#[cfg(test)]
mod tests;

use std::path::Path;

pub use dataset::{Dataset, EntityFeatures, Interaction};
pub use error::DataError;
pub use generate::{GenerateConfig, GenerateSummary, generate};

/// Options of [`load_dir`].
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// Skip (and count) bad data lines instead of failing on the first one.
    pub skip_bad_lines: bool,
}

/// The input layouts [`load_dir`] understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `interactions.csv` (+ `items.csv`, `users.csv`).
    Generic,
    /// MovieLens 100K (`u.data`).
    MovieLens100K,
    /// MovieLens 1M / 10M (`ratings.dat`).
    MovieLens1M,
    /// MovieLens latest / 20M+ (`ratings.csv`).
    MovieLensLatest,
}

/// The layout of `dir`, from the file names it holds; `None` if no known interactions file.
pub fn detect_layout(dir: &Path) -> Option<Layout> {
    [
        ("interactions.csv", Layout::Generic),
        ("u.data", Layout::MovieLens100K),
        ("ratings.dat", Layout::MovieLens1M),
        ("ratings.csv", Layout::MovieLensLatest),
    ]
    .into_iter()
    .find(|(name, _)| dir.join(name).is_file())
    .map(|(_, layout)| layout)
}

/// Loads the data directory `dir` (layout detected by [`detect_layout`]).
#[tracing::instrument(skip_all, fields(dir = %dir.display()))]
pub fn load_dir(dir: &Path, opts: &LoadOptions) -> Result<Dataset, DataError> {
    if !dir.is_dir() {
        return Err(DataError::MissingFile {
            path: dir.to_path_buf(),
        });
    }
    let layout = detect_layout(dir).ok_or_else(|| DataError::UnknownLayout {
        dir: dir.to_path_buf(),
    })?;
    let dataset = match layout {
        Layout::Generic => csvdir::load(dir, opts)?,
        Layout::MovieLens100K => movielens::load_100k(dir, opts)?,
        Layout::MovieLens1M => movielens::load_1m(dir, opts)?,
        Layout::MovieLensLatest => movielens::load_latest(dir, opts)?,
    };
    tracing::info!(
        ?layout,
        users = dataset.n_users(),
        items = dataset.n_items(),
        interactions = dataset.interactions.len(),
        skipped_lines = ?dataset.skipped_lines,
        "data loaded"
    );
    Ok(dataset)
}
