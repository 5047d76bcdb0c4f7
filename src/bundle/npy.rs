//! Typed `.npy` reading and writing with errors that name the file; shapes are checked by the caller.

use super::BundleError;
use ndarray::{Array1, Array2};
use ndarray_npy::{ReadNpyExt, WriteNpyExt};
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::Path;
use std::sync::Arc;

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

/// Reads a 2-D little-endian float32 array in C order straight into shared storage: the data
/// is read from the file into the `Arc` that serving keeps, so loading never holds a second
/// copy (for item vectors, the largest arrays of a bundle). Returns (rows, cols, data).
pub fn read_f32_2d_shared(path: &Path) -> Result<(usize, usize, Arc<[f32]>), BundleError> {
    use std::io::Read;
    let mut f = open(path)?;
    let io = |source| BundleError::Io {
        path: path.to_path_buf(),
        source,
    };
    let (rows, cols) = read_header_2d_f32(&mut f).map_err(|m| format_err(path, m))?;
    let n = rows
        .checked_mul(cols)
        .filter(|n| n.checked_mul(4).is_some())
        .ok_or_else(|| format_err(path, format!("shape ({rows}, {cols}) is too large")))?;
    let mut data: Arc<[std::mem::MaybeUninit<f32>]> = Arc::new_uninit_slice(n);
    let slots = Arc::get_mut(&mut data).ok_or_else(|| format_err(path, "unshared buffer"))?;
    // SAFETY: `MaybeUninit<f32>` has the size and alignment of `f32` and every byte pattern
    // is a valid `f32`; the byte view covers exactly the `n` slots, which are fully written by
    // `read_exact` (or the buffer is dropped on error) before `assume_init`.
    let bytes = unsafe { std::slice::from_raw_parts_mut(slots.as_mut_ptr().cast::<u8>(), n * 4) };
    f.read_exact(bytes).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            format_err(
                path,
                format!("data shorter than its shape ({rows}, {cols})"),
            )
        } else {
            io(e)
        }
    })?;
    let mut rest = [0u8; 1];
    if f.read(&mut rest).map_err(io)? != 0 {
        return Err(format_err(
            path,
            format!("data longer than its shape ({rows}, {cols})"),
        ));
    }
    // SAFETY: every slot was written above.
    let data = unsafe { data.assume_init() };
    Ok((rows, cols, data))
}

/// Parses a `.npy` header (versions 1–3) that must describe a C-order 2-D `<f4` array.
fn read_header_2d_f32(r: &mut impl std::io::Read) -> Result<(usize, usize), String> {
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic).map_err(|e| e.to_string())?;
    if &magic[..6] != b"\x93NUMPY" {
        return Err("not an .npy file".into());
    }
    let len = match magic[6] {
        1 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b).map_err(|e| e.to_string())?;
            u16::from_le_bytes(b) as usize
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            r.read_exact(&mut b).map_err(|e| e.to_string())?;
            u32::from_le_bytes(b) as usize
        }
        v => return Err(format!("unsupported .npy version {v}")),
    };
    if len > 1 << 20 {
        return Err("header too long".into());
    }
    let mut h = vec![0u8; len];
    r.read_exact(&mut h).map_err(|e| e.to_string())?;
    let h = String::from_utf8(h).map_err(|_| "header is not text".to_string())?;
    let squeezed: String = h.chars().filter(|c| !c.is_whitespace()).collect();
    if !(squeezed.contains("'descr':'<f4'")
        || cfg!(target_endian = "little") && squeezed.contains("'descr':'=f4'"))
    {
        return Err(format!(
            "expected little-endian float32 ('<f4'), header {h:?}"
        ));
    }
    if !squeezed.contains("'fortran_order':False") {
        return Err("expected C order".into());
    }
    let shape = squeezed
        .split("'shape':(")
        .nth(1)
        .and_then(|t| t.split(')').next())
        .ok_or_else(|| format!("no shape in header {h:?}"))?;
    let dims: Vec<usize> = shape
        .split(',')
        .filter(|d| !d.is_empty())
        .map(|d| {
            d.parse::<usize>()
                .map_err(|_| format!("bad shape {shape:?}"))
        })
        .collect::<Result<_, _>>()?;
    match dims[..] {
        [rows, cols] => Ok((rows, cols)),
        _ => Err(format!("expected a 2-D array, shape ({shape})")),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn write<T: ndarray_npy::WritableElement>(
        dir: &Path,
        name: &str,
        a: &Array2<T>,
    ) -> std::path::PathBuf {
        let p = dir.join(name);
        a.write_npy(File::create(&p).unwrap()).unwrap();
        p
    }

    #[test]
    fn the_shared_reader_matches_ndarray_npy_and_refuses_what_it_cannot_read() {
        let dir = tempfile::tempdir().unwrap();
        for (rows, cols) in [(0, 3), (1, 1), (7, 5), (300, 32)] {
            let a = Array2::from_shape_fn((rows, cols), |(r, c)| (r * 31 + c) as f32 * 0.25 - 3.0);
            let p = write(dir.path(), "a.npy", &a);
            let (r, c, shared) = read_f32_2d_shared(&p).unwrap();
            let (r2, c2, plain) = read_f32_2d(&p).unwrap();
            assert_eq!((r, c), (rows, cols));
            assert_eq!((r2, c2), (rows, cols));
            assert_eq!(&shared[..], &plain[..]);
        }
        // float64 is refused with the file named.
        let p = write(dir.path(), "d.npy", &Array2::<f64>::zeros((2, 2)));
        let e = read_f32_2d_shared(&p).unwrap_err().to_string();
        assert!(e.contains("d.npy") && e.contains("<f4"), "{e}");
        // A truncated file and one with trailing bytes are refused.
        let p = write(dir.path(), "t.npy", &Array2::<f32>::ones((4, 4)));
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 3]).unwrap();
        let e = read_f32_2d_shared(&p).unwrap_err().to_string();
        assert!(e.contains("shorter"), "{e}");
        let mut longer = bytes.clone();
        longer.extend_from_slice(&[0, 0, 0, 0]);
        std::fs::write(&p, &longer).unwrap();
        let e = read_f32_2d_shared(&p).unwrap_err().to_string();
        assert!(e.contains("longer"), "{e}");
        // Not an .npy file at all, and a 1-D array.
        std::fs::write(&p, b"hello world, not numpy").unwrap();
        assert!(read_f32_2d_shared(&p).is_err());
        let p1 = dir.path().join("one.npy");
        Array1::<f32>::zeros(5)
            .write_npy(File::create(&p1).unwrap())
            .unwrap();
        let e = read_f32_2d_shared(&p1).unwrap_err().to_string();
        assert!(e.contains("2-D"), "{e}");
        assert!(matches!(
            read_f32_2d_shared(&dir.path().join("missing.npy")),
            Err(BundleError::Missing { .. })
        ));
    }
}
