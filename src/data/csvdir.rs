//! Reader of the generic CSV layout (`interactions.csv`, optional `items.csv` / `users.csv`),
//! plus the CSV plumbing (header lookup, record loop, skip-bad-lines policy) that the MovieLens
//! "latest" reader reuses. Interactions are streamed record by record into the aggregating
//! builder; nothing holds the raw rows.

use std::fs::File;
use std::path::Path;

use csv::ByteRecord;

use super::LoadOptions;
use super::builder::{DatasetBuilder, vocab_full};
use super::dataset::Dataset;
use super::error::{DataError, quote};
use super::features::{ColumnKind, ColumnTyper, is_category_column, parse_number, split_multi};

/// Names of the interaction columns in a CSV file with a header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InteractionColumns {
    pub(crate) user: &'static str,
    pub(crate) item: &'static str,
    pub(crate) ts: &'static str,
    /// Optional column; absent or empty cells weigh 1.
    pub(crate) weight: &'static str,
}

/// `interactions.csv` of the generic layout.
pub(crate) const GENERIC_INTERACTIONS: InteractionColumns = InteractionColumns {
    user: "user_id",
    item: "item_id",
    ts: "timestamp",
    weight: "weight",
};

/// Reads a generic layout directory (the caller checked that `interactions.csv` exists).
pub(crate) fn load(dir: &Path, opts: &LoadOptions) -> Result<Dataset, DataError> {
    let mut b = DatasetBuilder::default();
    read_interactions(
        &dir.join("interactions.csv"),
        GENERIC_INTERACTIONS,
        &mut b,
        opts,
    )?;
    let items = dir.join("items.csv");
    if items.is_file() {
        read_entity_file(&items, Entity::Item, &mut b, opts)?;
    }
    let users = dir.join("users.csv");
    if users.is_file() {
        read_entity_file(&users, Entity::User, &mut b, opts)?;
    }
    Ok(b.finish())
}

/// A CSV reader over `path` that leaves field-count checks to us (to report the line).
pub(crate) fn open_csv(path: &Path) -> Result<csv::Reader<File>, DataError> {
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    Ok(csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(file))
}

/// The trimmed header names (a UTF-8 byte-order mark is dropped); duplicates are refused.
pub(crate) fn read_header(
    rdr: &mut csv::Reader<File>,
    path: &Path,
) -> Result<Vec<String>, DataError> {
    let header = rdr.byte_headers().map_err(|e| DataError::csv(path, e))?;
    let mut names = Vec::with_capacity(header.len());
    for (col, raw) in header.iter().enumerate() {
        let raw = if col == 0 {
            raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw)
        } else {
            raw
        };
        let name = std::str::from_utf8(raw).map_err(|_| DataError::InvalidUtf8 {
            file: path.to_path_buf(),
            line: 1,
            column: format!("#{}", col + 1),
        })?;
        let name = name.trim();
        if !name.is_empty() && names.iter().any(|n: &String| n.eq_ignore_ascii_case(name)) {
            return Err(DataError::DuplicateColumn {
                file: path.to_path_buf(),
                column: name.to_string(),
            });
        }
        names.push(name.to_string());
    }
    Ok(names)
}

/// Index of the column named `name` (ASCII case-insensitive), if any.
pub(crate) fn position(names: &[String], name: &str) -> Option<usize> {
    names.iter().position(|n| n.eq_ignore_ascii_case(name))
}

/// Index of the required column `name`.
pub(crate) fn require(names: &[String], name: &str, path: &Path) -> Result<usize, DataError> {
    position(names, name).ok_or_else(|| DataError::MissingColumn {
        file: path.to_path_buf(),
        column: name.to_string(),
    })
}

/// Calls `f(record, line)` for every data record; applies the skip-bad-lines policy to the line
/// errors `f` (or the CSV parser) reports. Returns the number of skipped lines.
pub(crate) fn for_each_record(
    rdr: &mut csv::Reader<File>,
    path: &Path,
    n_columns: usize,
    opts: &LoadOptions,
    mut f: impl FnMut(&ByteRecord, u64) -> Result<(), DataError>,
) -> Result<u64, DataError> {
    let mut rec = ByteRecord::new();
    let mut skipped = 0u64;
    loop {
        let result = match rdr.read_byte_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {
                let line = rec.position().map_or(0, csv::Position::line);
                if rec.len() == n_columns {
                    f(&rec, line)
                } else {
                    Err(DataError::FieldCount {
                        file: path.to_path_buf(),
                        line,
                        expected: n_columns,
                        found: rec.len(),
                    })
                }
            }
            Err(e) => Err(DataError::csv(path, e)),
        };
        if let Err(e) = result {
            if !(opts.skip_bad_lines && e.is_line_error()) {
                return Err(e);
            }
            if skipped == 0 {
                tracing::warn!(error = %e, "skipping bad line (further ones in this file are only counted)");
            }
            skipped += 1;
        }
    }
    Ok(skipped)
}

/// Field `col` of `rec` as trimmed UTF-8.
pub(crate) fn field<'r>(
    rec: &'r ByteRecord,
    col: usize,
    names: &[String],
    path: &Path,
    line: u64,
) -> Result<&'r str, DataError> {
    let raw = rec.get(col).unwrap_or_default();
    std::str::from_utf8(raw)
        .map(str::trim)
        .map_err(|_| DataError::InvalidUtf8 {
            file: path.to_path_buf(),
            line,
            column: column_name(names, col),
        })
}

/// Field `col` of `rec` as a non-empty id.
pub(crate) fn id_field<'r>(
    rec: &'r ByteRecord,
    col: usize,
    names: &[String],
    path: &Path,
    line: u64,
) -> Result<&'r str, DataError> {
    let id = field(rec, col, names, path, line)?;
    if id.is_empty() {
        return Err(DataError::EmptyId {
            file: path.to_path_buf(),
            line,
            column: column_name(names, col),
        });
    }
    Ok(id)
}

fn column_name(names: &[String], col: usize) -> String {
    match names.get(col) {
        Some(n) if !n.is_empty() => n.clone(),
        _ => format!("#{}", col + 1),
    }
}

/// A Unix timestamp in seconds; a fractional value is truncated.
pub(crate) fn parse_timestamp(cell: &str) -> Option<i64> {
    if let Ok(ts) = cell.parse::<i64>() {
        return Some(ts);
    }
    let v: f64 = cell.parse().ok()?;
    // `i64::MAX as f64` rounds up to 2^63, hence the strict upper bound.
    (v.is_finite() && v >= i64::MIN as f64 && v < i64::MAX as f64).then(|| v.trunc() as i64)
}

/// A weight: empty means 1; otherwise a finite non-negative number.
pub(crate) fn parse_weight(
    cell: &str,
    column: &str,
    path: &Path,
    line: u64,
) -> Result<f32, DataError> {
    if cell.is_empty() {
        return Ok(1.0);
    }
    match parse_number(cell) {
        Some(w) if w >= 0.0 => Ok(w),
        _ => Err(DataError::InvalidNumber {
            file: path.to_path_buf(),
            line,
            column: column.to_string(),
            value: quote(cell),
            expected: "a finite non-negative number",
        }),
    }
}

/// Streams an interactions CSV into `b`.
pub(crate) fn read_interactions(
    path: &Path,
    cols: InteractionColumns,
    b: &mut DatasetBuilder,
    opts: &LoadOptions,
) -> Result<(), DataError> {
    let mut rdr = open_csv(path)?;
    let names = read_header(&mut rdr, path)?;
    let user_col = require(&names, cols.user, path)?;
    let item_col = require(&names, cols.item, path)?;
    let ts_col = require(&names, cols.ts, path)?;
    let weight_col = position(&names, cols.weight);
    let skipped = for_each_record(&mut rdr, path, names.len(), opts, |rec, line| {
        let user = id_field(rec, user_col, &names, path, line)?;
        let item = id_field(rec, item_col, &names, path, line)?;
        let ts_cell = field(rec, ts_col, &names, path, line)?;
        let ts = parse_timestamp(ts_cell).ok_or_else(|| DataError::InvalidTimestamp {
            file: path.to_path_buf(),
            line,
            column: names[ts_col].clone(),
            value: quote(ts_cell),
        })?;
        let weight = match weight_col {
            Some(c) => parse_weight(field(rec, c, &names, path, line)?, &names[c], path, line)?,
            None => 1.0,
        };
        let user = b.user(user, path)?;
        let item = b.item(item, path)?;
        b.add_interaction(user, item, ts, weight);
        Ok(())
    })?;
    b.record_skipped(path, skipped);
    Ok(())
}

/// Which entity a feature file describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Entity {
    User,
    Item,
}

/// Reads `items.csv` / `users.csv`: one pass to type the columns, one to build the features.
pub(crate) fn read_entity_file(
    path: &Path,
    entity: Entity,
    b: &mut DatasetBuilder,
    opts: &LoadOptions,
) -> Result<(), DataError> {
    let id_name = match entity {
        Entity::User => "user_id",
        Entity::Item => "item_id",
    };
    // Pass 1: column kinds. Lines that fail the checks here fail (or are skipped) in pass 2 too.
    let mut rdr = open_csv(path)?;
    let names = read_header(&mut rdr, path)?;
    let id_col = require(&names, id_name, path)?;
    let category_col = match entity {
        Entity::Item => names.iter().position(|n| is_category_column(n)),
        Entity::User => None,
    };
    let mut typer = ColumnTyper::new(names.len());
    for_each_record(&mut rdr, path, names.len(), opts, |rec, line| {
        id_field(rec, id_col, &names, path, line)?;
        for col in 0..rec.len() {
            let cell = field(rec, col, &names, path, line)?;
            typer.observe(col, cell);
        }
        Ok(())
    })?;
    let kinds = typer.kinds(&names, id_col, category_col);
    let numeric_cols: Vec<u32> = {
        let feats = features_of(b, entity);
        names
            .iter()
            .zip(&kinds)
            .map(|(n, k)| {
                if *k == ColumnKind::Numeric {
                    feats.numeric_column(n)
                } else {
                    0
                }
            })
            .collect()
    };

    // Pass 2: features.
    let mut rdr = open_csv(path)?;
    read_header(&mut rdr, path)?;
    let skipped = for_each_record(&mut rdr, path, names.len(), opts, |rec, line| {
        // Validate the whole line before touching the builder, so a skipped line adds nothing.
        for col in 0..rec.len() {
            field(rec, col, &names, path, line)?;
        }
        let id = id_field(rec, id_col, &names, path, line)?;
        let e = match entity {
            Entity::User => b.user(id, path)?,
            Entity::Item => b.item(id, path)?,
        };
        for (col, kind) in kinds.iter().enumerate() {
            let cell = field(rec, col, &names, path, line)?;
            if cell.is_empty() {
                continue;
            }
            let name = &names[col];
            match kind {
                ColumnKind::Id | ColumnKind::Ignored => {}
                ColumnKind::Text => {
                    if entity == Entity::Item && name.eq_ignore_ascii_case("title") {
                        b.set_item_title(e, cell);
                    }
                    features_of(b, entity)
                        .add_text(e, cell)
                        .map_err(vocab_full(path))?;
                }
                ColumnKind::Numeric => {
                    if let Some(v) = parse_number(cell) {
                        features_of(b, entity).set_numeric(e, numeric_cols[col], v);
                    }
                }
                ColumnKind::Categorical => {
                    for value in split_multi(cell) {
                        features_of(b, entity)
                            .add_categorical(e, name, value)
                            .map_err(vocab_full(path))?;
                        if Some(col) == category_col {
                            b.add_item_category(e, value, path)?;
                        }
                    }
                }
            }
        }
        Ok(())
    })?;
    b.record_skipped(path, skipped);
    Ok(())
}

fn features_of(b: &mut DatasetBuilder, entity: Entity) -> &mut super::features::FeaturesBuilder {
    match entity {
        Entity::User => &mut b.user_features,
        Entity::Item => &mut b.item_features,
    }
}
