//! Readers of the MovieLens layouts (100K `u.*`, 1M/10M `*.dat`, "latest" `*.csv`), mapped onto
//! the same [`Dataset`] as the generic CSV layout: ratings become weights, genres become the item
//! categories and `genre=` features, titles give tokens and a numeric `year`, demographics give
//! `age=` (bucketed), `gender=` and `occupation=` features. The 100K and 1M files are latin-1.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use super::LoadOptions;
use super::builder::{DatasetBuilder, vocab_full};
use super::csvdir::{self, InteractionColumns};
use super::dataset::Dataset;
use super::error::{DataError, quote};

/// The 19 genre flags of the 100K `u.item`, in file order.
const GENRES_100K: [&str; 19] = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
];

/// Occupation codes of the 1M `users.dat`.
const OCCUPATIONS_1M: [&str; 21] = [
    "other",
    "academic/educator",
    "artist",
    "clerical/admin",
    "college/grad student",
    "customer service",
    "doctor/health care",
    "executive/managerial",
    "farmer",
    "homemaker",
    "K-12 student",
    "lawyer",
    "programmer",
    "retired",
    "sales/marketing",
    "scientist",
    "self-employed",
    "technician/engineer",
    "tradesman/craftsman",
    "unemployed",
    "writer",
];

/// MovieLens 100K: `u.data` (required), `u.item`, `u.user`.
pub(crate) fn load_100k(dir: &Path, opts: &LoadOptions) -> Result<Dataset, DataError> {
    let mut b = DatasetBuilder::default();
    read_ratings(&dir.join("u.data"), Sep::Whitespace, &mut b, opts)?;
    let items = dir.join("u.item");
    if items.is_file() {
        let expected = 5 + GENRES_100K.len();
        let path = items.as_path();
        let skipped = for_each_line(path, opts, |line, no| {
            let f: Vec<&str> = line.split('|').collect();
            if f.len() != expected {
                return Err(field_count(path, no, expected, f.len()));
            }
            let item = item_id(&mut b, f[0], path, no)?;
            let year = release_year(f[2]).or_else(|| year_from_title(f[1]));
            add_movie(&mut b, item, f[1], year, path)?;
            for (flag, genre) in f[5..].iter().zip(GENRES_100K).skip(1) {
                if flag.trim() == "1" {
                    add_genre(&mut b, item, genre, path)?;
                }
            }
            Ok(())
        })?;
        b.record_skipped(path, skipped);
    }
    let users = dir.join("u.user");
    if users.is_file() {
        let path = users.as_path();
        let skipped = for_each_line(path, opts, |line, no| {
            let [id, age, gender, occupation, _zip] = split_n(line, Sep::Str("|"), path, no)?;
            let age = parse_age(age, path, no)?;
            add_user(&mut b, id, age, gender, occupation, path, no)
        })?;
        b.record_skipped(path, skipped);
    }
    Ok(b.finish())
}

/// MovieLens 1M (and 10M): `ratings.dat` (required), `movies.dat`, `users.dat`; `::`-separated.
pub(crate) fn load_1m(dir: &Path, opts: &LoadOptions) -> Result<Dataset, DataError> {
    let mut b = DatasetBuilder::default();
    read_ratings(&dir.join("ratings.dat"), Sep::Str("::"), &mut b, opts)?;
    let movies = dir.join("movies.dat");
    if movies.is_file() {
        let path = movies.as_path();
        let skipped = for_each_line(path, opts, |line, no| {
            let [id, title, genres] = split_n(line, Sep::Str("::"), path, no)?;
            let item = item_id(&mut b, id, path, no)?;
            add_movie(&mut b, item, title, year_from_title(title), path)?;
            add_genres(&mut b, item, genres, path)
        })?;
        b.record_skipped(path, skipped);
    }
    let users = dir.join("users.dat");
    if users.is_file() {
        let path = users.as_path();
        let skipped = for_each_line(path, opts, |line, no| {
            let [id, gender, age, occupation, _zip] = split_n(line, Sep::Str("::"), path, no)?;
            let age = parse_age(age, path, no)?;
            let occupation = match occupation.parse::<usize>() {
                Ok(code) if code < OCCUPATIONS_1M.len() => OCCUPATIONS_1M[code],
                _ => occupation,
            };
            add_user(&mut b, id, age, gender, occupation, path, no)
        })?;
        b.record_skipped(path, skipped);
    }
    Ok(b.finish())
}

/// MovieLens "latest" (and 20M/25M/32M): `ratings.csv` (required) and `movies.csv`, UTF-8 CSV.
pub(crate) fn load_latest(dir: &Path, opts: &LoadOptions) -> Result<Dataset, DataError> {
    let mut b = DatasetBuilder::default();
    let cols = InteractionColumns {
        user: "userId",
        item: "movieId",
        ts: "timestamp",
        weight: "rating",
    };
    csvdir::read_interactions(&dir.join("ratings.csv"), cols, &mut b, opts)?;
    let movies = dir.join("movies.csv");
    if movies.is_file() {
        let path = movies.as_path();
        let mut rdr = csvdir::open_csv(path)?;
        let names = csvdir::read_header(&mut rdr, path)?;
        let id_col = csvdir::require(&names, "movieId", path)?;
        let title_col = csvdir::require(&names, "title", path)?;
        let genres_col = csvdir::require(&names, "genres", path)?;
        let skipped = csvdir::for_each_record(&mut rdr, path, names.len(), opts, |rec, line| {
            let id = csvdir::id_field(rec, id_col, &names, path, line)?;
            let title = csvdir::field(rec, title_col, &names, path, line)?;
            let genres = csvdir::field(rec, genres_col, &names, path, line)?;
            let item = b.item(id, path)?;
            add_movie(&mut b, item, title, year_from_title(title), path)?;
            add_genres(&mut b, item, genres, path)
        })?;
        b.record_skipped(path, skipped);
    }
    Ok(b.finish())
}

/// Field separator of a line-oriented MovieLens file.
#[derive(Debug, Clone, Copy)]
enum Sep {
    Str(&'static str),
    Whitespace,
}

/// Streams `user item rating timestamp` lines.
fn read_ratings(
    path: &Path,
    sep: Sep,
    b: &mut DatasetBuilder,
    opts: &LoadOptions,
) -> Result<(), DataError> {
    let skipped = for_each_line(path, opts, |line, no| {
        let [user, item, rating, ts] = split_n(line, sep, path, no)?;
        let user = non_empty(user, "user", path, no)?;
        let item = non_empty(item, "item", path, no)?;
        let weight = csvdir::parse_weight(rating, "rating", path, no)?;
        let ts = csvdir::parse_timestamp(ts).ok_or_else(|| DataError::InvalidTimestamp {
            file: path.to_path_buf(),
            line: no,
            column: "timestamp".to_string(),
            value: quote(ts),
        })?;
        let user = b.user(user, path)?;
        let item = b.item(item, path)?;
        b.add_interaction(user, item, ts, weight);
        Ok(())
    })?;
    b.record_skipped(path, skipped);
    Ok(())
}

/// Calls `f(line, line_number)` for every non-blank line of a latin-1 file, reusing buffers,
/// and applies the skip-bad-lines policy to the line errors `f` reports.
fn for_each_line(
    path: &Path,
    opts: &LoadOptions,
    mut f: impl FnMut(&str, u64) -> Result<(), DataError>,
) -> Result<u64, DataError> {
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut rdr = BufReader::with_capacity(1 << 16, file);
    let mut raw = Vec::new();
    let mut text = String::new();
    let mut line_no = 0u64;
    let mut skipped = 0u64;
    loop {
        raw.clear();
        if rdr
            .read_until(b'\n', &mut raw)
            .map_err(|e| DataError::io(path, e))?
            == 0
        {
            return Ok(skipped);
        }
        line_no += 1;
        // Latin-1: every byte is the code point of the same value.
        text.clear();
        text.extend(raw.iter().map(|&b| char::from(b)));
        let line = text.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            continue;
        }
        if let Err(e) = f(line, line_no) {
            if !(opts.skip_bad_lines && e.is_line_error()) {
                return Err(e);
            }
            if skipped == 0 {
                tracing::warn!(error = %e, "skipping bad line (further ones in this file are only counted)");
            }
            skipped += 1;
        }
    }
}

/// Exactly `N` trimmed fields of `line`.
fn split_n<'a, const N: usize>(
    line: &'a str,
    sep: Sep,
    path: &Path,
    no: u64,
) -> Result<[&'a str; N], DataError> {
    let mut out = [""; N];
    let mut n = 0;
    let mut put = |field: &'a str| {
        if let Some(slot) = out.get_mut(n) {
            *slot = field.trim();
        }
        n += 1;
    };
    match sep {
        Sep::Str(s) => line.split(s).for_each(&mut put),
        Sep::Whitespace => line.split_whitespace().for_each(&mut put),
    }
    if n != N {
        return Err(field_count(path, no, N, n));
    }
    Ok(out)
}

fn field_count(path: &Path, line: u64, expected: usize, found: usize) -> DataError {
    DataError::FieldCount {
        file: path.to_path_buf(),
        line,
        expected,
        found,
    }
}

fn non_empty<'a>(id: &'a str, column: &str, path: &Path, line: u64) -> Result<&'a str, DataError> {
    let id = id.trim();
    if id.is_empty() {
        return Err(DataError::EmptyId {
            file: path.to_path_buf(),
            line,
            column: column.to_string(),
        });
    }
    Ok(id)
}

fn item_id(b: &mut DatasetBuilder, id: &str, path: &Path, line: u64) -> Result<u32, DataError> {
    let id = non_empty(id, "item", path, line)?;
    b.item(id, path)
}

fn parse_age(cell: &str, path: &Path, line: u64) -> Result<u32, DataError> {
    cell.trim().parse().map_err(|_| DataError::InvalidNumber {
        file: path.to_path_buf(),
        line,
        column: "age".to_string(),
        value: quote(cell),
        expected: "an age in years",
    })
}

/// Title (display + tokens) and release year of a movie.
fn add_movie(
    b: &mut DatasetBuilder,
    item: u32,
    title: &str,
    year: Option<f32>,
    path: &Path,
) -> Result<(), DataError> {
    let title = title.trim();
    if !title.is_empty() {
        b.set_item_title(item, title);
        b.item_features
            .add_text(item, title)
            .map_err(vocab_full(path))?;
    }
    if let Some(year) = year {
        let col = b.item_features.numeric_column("year");
        b.item_features.set_numeric(item, col, year);
    }
    Ok(())
}

/// `|`-separated genres; `(no genres listed)` means none.
fn add_genres(
    b: &mut DatasetBuilder,
    item: u32,
    genres: &str,
    path: &Path,
) -> Result<(), DataError> {
    for genre in super::features::split_multi(genres) {
        if genre != "(no genres listed)" {
            add_genre(b, item, genre, path)?;
        }
    }
    Ok(())
}

fn add_genre(b: &mut DatasetBuilder, item: u32, genre: &str, path: &Path) -> Result<(), DataError> {
    b.item_features
        .add_categorical(item, "genre", genre)
        .map_err(vocab_full(path))?;
    b.add_item_category(item, genre, path)
}

fn add_user(
    b: &mut DatasetBuilder,
    id: &str,
    age: u32,
    gender: &str,
    occupation: &str,
    path: &Path,
    line: u64,
) -> Result<(), DataError> {
    let id = non_empty(id, "user", path, line)?;
    let user = b.user(id, path)?;
    let f = &mut b.user_features;
    f.add_categorical(user, "age", age_bucket(age))
        .map_err(vocab_full(path))?;
    for (column, value) in [("gender", gender), ("occupation", occupation)] {
        let value = value.trim();
        if !value.is_empty() {
            f.add_categorical(user, column, value)
                .map_err(vocab_full(path))?;
        }
    }
    Ok(())
}

/// The MovieLens 1M age groups; 100K ages in years map onto the same buckets (and so do the 1M
/// age codes, which are the lower bounds of their groups).
pub(crate) fn age_bucket(age: u32) -> &'static str {
    match age {
        0..=17 => "under 18",
        18..=24 => "18-24",
        25..=34 => "25-34",
        35..=44 => "35-44",
        45..=49 => "45-49",
        50..=55 => "50-55",
        _ => "56+",
    }
}

/// The year of a `Title (1995)` title.
pub(crate) fn year_from_title(title: &str) -> Option<f32> {
    let inner = title.trim().strip_suffix(')')?;
    let open = inner.rfind('(')?;
    parse_year(&inner[open + 1..])
}

/// The year of a 100K release date such as `01-Jan-1995`.
fn release_year(date: &str) -> Option<f32> {
    parse_year(date.trim().rsplit('-').next()?)
}

fn parse_year(s: &str) -> Option<f32> {
    let s = s.trim();
    if s.len() == 4 && s.bytes().all(|c| c.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn years_and_ages() {
        assert_eq!(year_from_title("Toy Story (1995)"), Some(1995.0));
        assert_eq!(year_from_title("Brother (Otouto) (1999) "), Some(1999.0));
        assert_eq!(year_from_title("Babylon 5"), None);
        assert_eq!(year_from_title("Film (In Progress)"), None);
        assert_eq!(release_year("01-Jan-1995"), Some(1995.0));
        assert_eq!(release_year(""), None);
        assert_eq!(
            [1, 17, 18, 24, 25, 35, 45, 50, 56, 73].map(age_bucket),
            [
                "under 18", "under 18", "18-24", "18-24", "25-34", "35-44", "45-49", "50-55",
                "56+", "56+"
            ]
        );
    }

    #[test]
    fn split_n_checks_the_count() {
        let p = Path::new("r.dat");
        let [a, b, c] = split_n::<3>(
            "1::Toy Story (1995)::Animation|Comedy",
            Sep::Str("::"),
            p,
            7,
        )
        .unwrap();
        assert_eq!((a, b, c), ("1", "Toy Story (1995)", "Animation|Comedy"));
        let [u, i, r, t] = split_n::<4>("196\t242\t3\t881250949", Sep::Whitespace, p, 1).unwrap();
        assert_eq!((u, i, r, t), ("196", "242", "3", "881250949"));
        match split_n::<4>("1::2::3", Sep::Str("::"), p, 7) {
            Err(DataError::FieldCount {
                line: 7,
                expected: 4,
                found: 3,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        assert!(split_n::<2>("1::2::3", Sep::Str("::"), p, 7).is_err());
    }
}
