//! Errors of the data readers and the generator. Every data error names the file, and where it
//! applies the 1-based line (as an editor shows it) and the column, so that a bad input can be
//! fixed without guessing.

use std::path::{Path, PathBuf};

use thiserror::Error;

/// Longest cell value quoted in an error message; longer values are cut (with `…`).
const MAX_QUOTED: usize = 64;

#[derive(Debug, Error)]
pub enum DataError {
    #[error("{}: no such file or directory", path.display())]
    MissingFile { path: PathBuf },

    #[error(
        "{}: no interactions file found (expected interactions.csv, or MovieLens u.data, ratings.dat or ratings.csv)",
        dir.display()
    )]
    UnknownLayout { dir: PathBuf },

    #[error("{}: header has no column `{column}`", file.display())]
    MissingColumn { file: PathBuf, column: String },

    #[error("{}: header names column `{column}` more than once", file.display())]
    DuplicateColumn { file: PathBuf, column: String },

    #[error(
        "{}:{line}: column `{column}`: `{value}` is not a Unix timestamp in seconds",
        file.display()
    )]
    InvalidTimestamp {
        file: PathBuf,
        line: u64,
        column: String,
        value: String,
    },

    #[error("{}:{line}: column `{column}`: `{value}` is not {expected}", file.display())]
    InvalidNumber {
        file: PathBuf,
        line: u64,
        column: String,
        value: String,
        expected: &'static str,
    },

    #[error("{}:{line}: column `{column}`: empty id", file.display())]
    EmptyId {
        file: PathBuf,
        line: u64,
        column: String,
    },

    #[error("{}:{line}: expected {expected} fields, found {found}", file.display())]
    FieldCount {
        file: PathBuf,
        line: u64,
        expected: usize,
        found: usize,
    },

    #[error("{}:{line}: column `{column}`: invalid UTF-8", file.display())]
    InvalidUtf8 {
        file: PathBuf,
        line: u64,
        column: String,
    },

    #[error("{}:{line}: malformed CSV: {message}", file.display())]
    Csv {
        file: PathBuf,
        line: u64,
        message: String,
    },

    #[error("{}: more distinct {what} than fit in a 32-bit index", file.display())]
    TooManyIds { file: PathBuf, what: &'static str },

    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("invalid generator configuration: {reason}")]
    InvalidConfig { reason: String },
}

impl DataError {
    /// An I/O error on `path`; "not found" becomes [`DataError::MissingFile`].
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        if source.kind() == std::io::ErrorKind::NotFound {
            DataError::MissingFile {
                path: path.to_path_buf(),
            }
        } else {
            DataError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    }

    /// Maps an error of the `csv` crate met while reading `file`.
    pub(crate) fn csv(file: &Path, err: csv::Error) -> Self {
        let line = err.position().map_or(0, csv::Position::line);
        let message = err.to_string();
        match err.into_kind() {
            csv::ErrorKind::Io(source) => DataError::io(file, source),
            _ => DataError::Csv {
                file: file.to_path_buf(),
                line,
                message,
            },
        }
    }

    /// Whether this error is about one data line (skippable with `skip_bad_lines`), as opposed
    /// to the file as a whole (missing, unreadable, bad header).
    pub(crate) fn is_line_error(&self) -> bool {
        match self {
            DataError::InvalidTimestamp { .. }
            | DataError::InvalidNumber { .. }
            | DataError::EmptyId { .. }
            | DataError::FieldCount { .. }
            | DataError::InvalidUtf8 { .. }
            | DataError::Csv { .. } => true,
            DataError::MissingFile { .. }
            | DataError::UnknownLayout { .. }
            | DataError::MissingColumn { .. }
            | DataError::DuplicateColumn { .. }
            | DataError::TooManyIds { .. }
            | DataError::Io { .. }
            | DataError::InvalidConfig { .. } => false,
        }
    }
}

/// A cell value as quoted in an error message: at most [`MAX_QUOTED`] characters.
pub(crate) fn quote(value: &str) -> String {
    match value.char_indices().nth(MAX_QUOTED) {
        Some((cut, _)) => format!("{}…", &value[..cut]),
        None => value.to_string(),
    }
}
