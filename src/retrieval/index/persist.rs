//! Dump and reload of the HNSW graph, so `serve` loads in seconds what `train` built in minutes.
//!
//! A dump named `name` is three files in one directory: `name.hnsw.graph` and `name.hnsw.data`
//! (hnsw_rs `file_dump`) and `name.index.json`, a sidecar recording the shape, build parameters,
//! a CRC32 fingerprint of the original vectors and bias, and the size and CRC32 of both hnsw_rs
//! files. A reload is refused unless all of them match, so a stale graph (vectors retrained) or a
//! truncated file is reported as an error instead of being served; hnsw_rs's loader asserts and
//! unwraps on malformed input, so it only ever sees checksummed files (and runs under
//! `catch_unwind` as a last resort).
//!
//! `file_dump` never overwrites and may pick another basename, and panics if it cannot create its
//! files: it writes into a fresh staging directory, then the files are renamed into place with the
//! sidecar last (an old sidecar is removed first), so a reader sees a complete dump or none.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use hnsw_rs::prelude::{AnnT, HnswIo};
use serde::{Deserialize, Serialize};

use super::mips::{AugmentedL2, EXTRA_DIMS, Graph, MipsGraph, augmentation_norm};
use super::{IndexConfig, IndexError};

/// Version of the sidecar layout and of the augmentation it describes.
const FORMAT: u32 = 1;

/// Contents of `name.index.json`.
#[derive(Debug, Serialize, Deserialize)]
struct Sidecar {
    format: u32,
    items: usize,
    dim: usize,
    has_bias: bool,
    /// `M`, the largest norm of `[x, bias]`, that augmented the stored vectors.
    augmentation_norm: f32,
    m: usize,
    ef_construction: usize,
    vectors_crc32: u32,
    graph_bytes: u64,
    graph_crc32: u32,
    data_bytes: u64,
    data_crc32: u32,
}

fn graph_file(dir: &Path, base: &str) -> PathBuf {
    dir.join(format!("{base}.hnsw.graph"))
}

fn data_file(dir: &Path, base: &str) -> PathBuf {
    dir.join(format!("{base}.hnsw.data"))
}

fn sidecar_file(dir: &Path, base: &str) -> PathBuf {
    dir.join(format!("{base}.index.json"))
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> IndexError + '_ {
    move |source| IndexError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Dump names become file names: keep them to a safe, non-hidden alphabet.
fn check_name(name: &str) -> Result<(), IndexError> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(IndexError::DumpName(name.to_owned()))
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic without message".to_owned())
}

/// CRC32 of the shape, vectors and bias, proving a dump was built from exactly these inputs.
fn fingerprint(vectors: &[f32], bias: Option<&[f32]>, dim: usize) -> u32 {
    fn update_floats(hasher: &mut crc32fast::Hasher, values: &[f32]) {
        let mut buf = [0u8; 4096];
        for chunk in values.chunks(buf.len() / 4) {
            for (dst, v) in buf.chunks_exact_mut(4).zip(chunk) {
                dst.copy_from_slice(&v.to_le_bytes());
            }
            hasher.update(&buf[..chunk.len() * 4]);
        }
    }
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&(dim as u64).to_le_bytes());
    hasher.update(&(vectors.len() as u64).to_le_bytes());
    update_floats(&mut hasher, vectors);
    hasher.update(&[u8::from(bias.is_some())]);
    if let Some(bias) = bias {
        update_floats(&mut hasher, bias);
    }
    hasher.finalize()
}

/// Size and CRC32 of a file, read in 1 MiB blocks.
fn file_crc(path: &Path) -> Result<(u64, u32), IndexError> {
    let file = File::open(path).map_err(io_error(path))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let read = reader.read(&mut buf).map_err(io_error(path))?;
        if read == 0 {
            break;
        }
        hasher.update(&buf[..read]);
        bytes += read as u64;
    }
    Ok((bytes, hasher.finalize()))
}

fn sync_file(path: &Path) -> Result<(), IndexError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io_error(path))
}

pub(crate) fn dump(
    graph: &MipsGraph,
    dir: &Path,
    name: &str,
    vectors: &[f32],
    bias: Option<&[f32]>,
    dim: usize,
) -> Result<(), IndexError> {
    check_name(name)?;
    fs::create_dir_all(dir).map_err(io_error(dir))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let staging = dir.join(format!(".{name}.staging-{}-{nanos}", std::process::id()));
    fs::create_dir(&staging).map_err(io_error(&staging))?;
    let result = dump_via(graph, dir, &staging, name, vectors, bias, dim);
    if let Err(error) = fs::remove_dir_all(&staging) {
        tracing::warn!(%error, path = %staging.display(), "could not remove index staging directory");
    }
    result
}

fn dump_via(
    graph: &MipsGraph,
    dir: &Path,
    staging: &Path,
    name: &str,
    vectors: &[f32],
    bias: Option<&[f32]>,
    dim: usize,
) -> Result<(), IndexError> {
    let hnsw = graph.graph();
    let base = catch_unwind(AssertUnwindSafe(|| hnsw.file_dump(staging, name)))
        .map_err(|p| IndexError::Hnsw(format!("file_dump panicked: {}", panic_message(&*p))))?
        .map_err(|e| IndexError::Hnsw(format!("file_dump: {e:#}")))?;
    let (graph_src, data_src) = (graph_file(staging, &base), data_file(staging, &base));
    sync_file(&graph_src)?;
    sync_file(&data_src)?;
    let (graph_bytes, graph_crc32) = file_crc(&graph_src)?;
    let (data_bytes, data_crc32) = file_crc(&data_src)?;
    let sidecar = Sidecar {
        format: FORMAT,
        items: vectors.len() / dim,
        dim,
        has_bias: bias.is_some(),
        augmentation_norm: graph.norm(),
        m: usize::from(hnsw.get_max_nb_connection()),
        ef_construction: hnsw.get_ef_construction(),
        vectors_crc32: fingerprint(vectors, bias, dim),
        graph_bytes,
        graph_crc32,
        data_bytes,
        data_crc32,
    };
    let sidecar_src = sidecar_file(staging, name);
    let json = serde_json::to_vec_pretty(&sidecar).map_err(|source| IndexError::Sidecar {
        path: sidecar_src.clone(),
        source,
    })?;
    let mut file = File::create(&sidecar_src).map_err(io_error(&sidecar_src))?;
    file.write_all(&json)
        .and_then(|()| file.sync_all())
        .map_err(io_error(&sidecar_src))?;

    let sidecar_dst = sidecar_file(dir, name);
    match fs::remove_file(&sidecar_dst) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_error(&sidecar_dst)(e)),
        _ => {}
    }
    for (src, dst) in [
        (graph_src, graph_file(dir, name)),
        (data_src, data_file(dir, name)),
        (sidecar_src, sidecar_dst),
    ] {
        fs::rename(&src, &dst).map_err(io_error(&dst))?;
    }
    Ok(())
}

pub(crate) fn load(
    dir: &Path,
    name: &str,
    vectors: &[f32],
    bias: Option<&[f32]>,
    dim: usize,
    cfg: &IndexConfig,
) -> Result<MipsGraph, IndexError> {
    check_name(name)?;
    let sidecar_path = sidecar_file(dir, name);
    let json = match fs::read(&sidecar_path) {
        Ok(json) => json,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(IndexError::MissingDump(sidecar_path));
        }
        Err(e) => return Err(io_error(&sidecar_path)(e)),
    };
    let sidecar: Sidecar = serde_json::from_slice(&json).map_err(|source| IndexError::Sidecar {
        path: sidecar_path.clone(),
        source,
    })?;
    let n = vectors.len() / dim;
    let stale = |what: &str, dumped: String, now: String| {
        Err(IndexError::StaleDump(format!(
            "{what} is {dumped} in the dump, {now} now"
        )))
    };
    if sidecar.format != FORMAT {
        return stale("format", sidecar.format.to_string(), FORMAT.to_string());
    }
    if (sidecar.items, sidecar.dim) != (n, dim) {
        return stale(
            "shape",
            format!("{}×{}", sidecar.items, sidecar.dim),
            format!("{n}×{dim}"),
        );
    }
    if (sidecar.m, sidecar.ef_construction) != (cfg.m, cfg.ef_construction) {
        return stale(
            "(m, ef_construction)",
            format!("({}, {})", sidecar.m, sidecar.ef_construction),
            format!("({}, {})", cfg.m, cfg.ef_construction),
        );
    }
    if sidecar.has_bias != bias.is_some()
        || sidecar.vectors_crc32 != fingerprint(vectors, bias, dim)
    {
        return Err(IndexError::StaleDump(
            "the vectors or bias changed since the dump".to_owned(),
        ));
    }
    let norm = augmentation_norm(vectors, bias, dim);
    if (norm - sidecar.augmentation_norm).abs() > 1e-6 * norm {
        return stale(
            "augmentation norm",
            sidecar.augmentation_norm.to_string(),
            norm.to_string(),
        );
    }
    for (path, bytes, crc) in [
        (
            graph_file(dir, name),
            sidecar.graph_bytes,
            sidecar.graph_crc32,
        ),
        (data_file(dir, name), sidecar.data_bytes, sidecar.data_crc32),
    ] {
        if file_crc(&path)? != (bytes, crc) {
            return Err(IndexError::CorruptDump(format!(
                "{} does not match its size or checksum in the sidecar",
                path.display()
            )));
        }
    }
    let loaded = LoadedGraph::load(dir, name)?;
    let graph = loaded.graph();
    let (points, aug_dim) = (
        graph.get_nb_point(),
        graph.get_point_indexation().get_data_dimension(),
    );
    if (points, aug_dim) != (n, dim + EXTRA_DIMS) {
        return Err(IndexError::CorruptDump(format!(
            "graph holds {points} points of dimension {aug_dim}, expected {n} of {}",
            dim + EXTRA_DIMS
        )));
    }
    Ok(MipsGraph::from_loaded(
        loaded,
        sidecar.augmentation_norm,
        cfg,
    ))
}

/// A graph reloaded by hnsw_rs together with the `HnswIo` it borrows from.
///
/// `HnswIo::load_hnsw(&'a mut self) -> Hnsw<'b, ..>` with `'a: 'b`: the graph may point into the
/// loader (its memory map, when enabled), so the loader must outlive it. Leaking the loader would
/// leak on every engine reload; instead this struct owns both: the loader lives in a heap
/// allocation held by a raw pointer (it never moves, and no `Box` uniqueness is asserted over it
/// while the graph exists), the graph's borrow is extended to `'static`, and `Drop` drops the graph
/// before freeing the loader. The `'static` graph never leaves this module except as `&Graph`
/// borrowed from `self`.
pub(crate) struct LoadedGraph {
    graph: ManuallyDrop<Graph>,
    /// From `Box::into_raw`; freed in `Drop` only.
    io: *mut HnswIo,
}

impl LoadedGraph {
    fn load(dir: &Path, name: &str) -> Result<Self, IndexError> {
        let io: *mut HnswIo = Box::into_raw(Box::new(HnswIo::new(dir, name)));
        // SAFETY: `io` comes from `Box::into_raw`, so it is valid, aligned and not aliased. The
        // allocation is freed only in `Drop` (after the graph) or below when no graph exists.
        let io_ref: &'static mut HnswIo = unsafe { &mut *io };
        let loaded = catch_unwind(AssertUnwindSafe(move || {
            let io_ref = io_ref; // moved in: the graph borrows it for `'static`
            io_ref.load_hnsw::<f32, AugmentedL2>()
        }));
        let error = match loaded {
            Ok(Ok(mut graph)) => {
                graph.set_searching_mode(true);
                return Ok(Self {
                    graph: ManuallyDrop::new(graph),
                    io,
                });
            }
            Ok(Err(e)) => IndexError::CorruptDump(format!("hnsw_rs load: {e:#}")),
            Err(p) => {
                IndexError::CorruptDump(format!("hnsw_rs load panicked: {}", panic_message(&*p)))
            }
        };
        // SAFETY: no graph borrows the loader: the load returned an error or unwound, and
        // `io_ref` was moved into the finished closure. `io` is freed exactly once, here.
        drop(unsafe { Box::from_raw(io) });
        Err(error)
    }

    pub(crate) fn graph(&self) -> &Graph {
        &self.graph
    }
}

impl Drop for LoadedGraph {
    fn drop(&mut self) {
        // SAFETY: the graph is dropped first and never touched again (we are in `drop`); then the
        // loader it may borrow is freed exactly once through the `Box` it came from.
        unsafe {
            ManuallyDrop::drop(&mut self.graph);
            drop(Box::from_raw(self.io));
        }
    }
}

// SAFETY: `LoadedGraph` is semantically `(Box<HnswIo>, Graph)`. Both are `Send` and `Sync`
// (asserted below); the raw pointer only opts out of the auto traits. The loader is not accessed
// through `&self` at all, and is only freed in `Drop`, which has exclusive access.
unsafe impl Send for LoadedGraph {}
// SAFETY: see `Send` above.
unsafe impl Sync for LoadedGraph {}

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Graph>();
    assert_send_sync::<HnswIo>();
};
