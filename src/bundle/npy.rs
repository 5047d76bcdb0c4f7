//! Typed `.npy` reading and writing with errors that name the file; shapes are checked by the caller.

use super::BundleError;
use ndarray::{Array1, Array2};
use ndarray_npy::{ReadNpyExt, WriteNpyExt};
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::Path;

fn open(path: &Path) -> Result<BufReader<File>, BundleError> {
    match File::open(path) {
        Ok(f) => Ok(BufReader::new(f)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(BundleError::Missing {
            path: path.to_path_buf(),
        }),
        Err(source) => Err(BundleError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn format_err(path: &Path, e: impl std::fmt::Display) -> BundleError {
    BundleError::Format {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Reads a 2-D array of `T` in C order; returns (rows, cols, data).
fn read_2d<T: ndarray_npy::ReadableElement + Copy>(
    path: &Path,
) -> Result<(usize, usize, Vec<T>), BundleError> {
    let a = Array2::<T>::read_npy(open(path)?).map_err(|e| format_err(path, e))?;
    let (r, c) = a.dim();
    let data = if a.is_standard_layout() {
        a.into_raw_vec_and_offset().0
    } else {
        a.iter().copied().collect()
    };
    Ok((r, c, data))
}

/// Reads a 2-D float32 array; returns (rows, cols, data).
pub fn read_f32_2d(path: &Path) -> Result<(usize, usize, Vec<f32>), BundleError> {
    read_2d(path)
}

/// Reads a 2-D int32 array; returns (rows, cols, data).
pub fn read_i32_2d(path: &Path) -> Result<(usize, usize, Vec<i32>), BundleError> {
    read_2d(path)
}

pub fn read_f32_1d(path: &Path) -> Result<Vec<f32>, BundleError> {
    let a = Array1::<f32>::read_npy(open(path)?).map_err(|e| format_err(path, e))?;
    Ok(a.to_vec())
}

pub fn read_i64_1d(path: &Path) -> Result<Vec<i64>, BundleError> {
    let a = Array1::<i64>::read_npy(open(path)?).map_err(|e| format_err(path, e))?;
    Ok(a.to_vec())
}

pub fn read_i32_1d(path: &Path) -> Result<Vec<i32>, BundleError> {
    let a = Array1::<i32>::read_npy(open(path)?).map_err(|e| format_err(path, e))?;
    Ok(a.to_vec())
}

fn create(path: &Path) -> Result<BufWriter<File>, BundleError> {
    File::create(path)
        .map(BufWriter::new)
        .map_err(|source| BundleError::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// Writes a 2-D array of `T` in C order.
fn write_2d<T: ndarray_npy::WritableElement>(
    path: &Path,
    rows: usize,
    cols: usize,
    data: &[T],
) -> Result<(), BundleError> {
    let a = ndarray::ArrayView2::from_shape((rows, cols), data).map_err(|e| format_err(path, e))?;
    a.write_npy(create(path)?).map_err(|e| format_err(path, e))
}

pub fn write_f32_2d(
    path: &Path,
    rows: usize,
    cols: usize,
    data: &[f32],
) -> Result<(), BundleError> {
    write_2d(path, rows, cols, data)
}

pub fn write_i32_2d(
    path: &Path,
    rows: usize,
    cols: usize,
    data: &[i32],
) -> Result<(), BundleError> {
    write_2d(path, rows, cols, data)
}

pub fn write_f32_1d(path: &Path, data: &[f32]) -> Result<(), BundleError> {
    ndarray::ArrayView1::from(data)
        .write_npy(create(path)?)
        .map_err(|e| format_err(path, e))
}

pub fn write_i64_1d(path: &Path, data: &[i64]) -> Result<(), BundleError> {
    ndarray::ArrayView1::from(data)
        .write_npy(create(path)?)
        .map_err(|e| format_err(path, e))
}

pub fn write_i32_1d(path: &Path, data: &[i32]) -> Result<(), BundleError> {
    ndarray::ArrayView1::from(data)
        .write_npy(create(path)?)
        .map_err(|e| format_err(path, e))
}
