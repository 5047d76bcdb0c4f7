//! Dump and reload of the proximity graph, so `serve` loads in milliseconds what `train` built in
//! minutes, and never serves a graph built from other vectors.
//!
//! A dump named `name` is one file, `name.graph`: a fixed header (magic, format version, shape,
//! build parameters, the augmentation norm, a CRC32 fingerprint of the vectors and bias), the CSR
//! adjacency as little-endian integers, and a trailing CRC32 of everything before it. A reload is
//! refused (`StaleDump`) unless shape, parameters and fingerprint match the vectors it is given,
//! and refused (`CorruptDump`) unless the checksum matches and every link is a valid item id,
//! so a search can never index out of bounds. The file is written beside its final name, synced,
//! then renamed over it: a reader sees the old dump or the new one, never a mix.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::graph::{Items, ProximityGraph};
use super::mips::augmentation_norm;
use super::{IndexConfig, IndexError};

const MAGIC: &[u8; 8] = b"RSVGRAPH";
/// Version of the file layout and of the augmentation the graph was built with.
const FORMAT: u32 = 1;

fn dump_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.graph"))
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

/// Header fields, in file order.
#[derive(Debug)]
struct Header {
    format: u32,
    items: u64,
    dim: u64,
    has_bias: bool,
    vectors_crc32: u32,
    m: u64,
    ef_construction: u64,
    augmentation_norm: f32,
    edges: u64,
}

pub(crate) fn dump(
    graph: &ProximityGraph,
    dir: &Path,
    name: &str,
    vectors: &[f32],
    bias: Option<&[f32]>,
    dim: usize,
) -> Result<(), IndexError> {
    check_name(name)?;
    let n = graph.len();
    let mut buf = Vec::with_capacity(64 + 8 * (n + 1) + 4 * graph.neighbours.len());
    buf.extend_from_slice(MAGIC);
    buf.extend_from_slice(&FORMAT.to_le_bytes());
    buf.extend_from_slice(&(n as u64).to_le_bytes());
    buf.extend_from_slice(&(dim as u64).to_le_bytes());
    buf.push(u8::from(bias.is_some()));
    buf.extend_from_slice(&fingerprint(vectors, bias, dim).to_le_bytes());
    buf.extend_from_slice(&(graph.m as u64).to_le_bytes());
    buf.extend_from_slice(&(graph.ef_construction as u64).to_le_bytes());
    buf.extend_from_slice(&augmentation_norm(vectors, bias, dim).to_le_bytes());
    buf.extend_from_slice(&(graph.neighbours.len() as u64).to_le_bytes());
    for &offset in &graph.offsets {
        buf.extend_from_slice(&(offset as u64).to_le_bytes());
    }
    for &id in &graph.neighbours {
        buf.extend_from_slice(&id.to_le_bytes());
    }
    let crc = crc32fast::hash(&buf);
    buf.extend_from_slice(&crc.to_le_bytes());

    fs::create_dir_all(dir).map_err(io_error(dir))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = dir.join(format!(".{name}.graph.{}-{nanos}.tmp", std::process::id()));
    let written = File::create(&tmp)
        .and_then(|mut file| {
            file.write_all(&buf)?;
            file.sync_all()
        })
        .map_err(io_error(&tmp));
    let target = dump_path(dir, name);
    let result = written.and_then(|()| fs::rename(&tmp, &target).map_err(io_error(&target)));
    if result.is_err() {
        // Best effort: the temporary file is hidden and never read, only wasted space.
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Reads little-endian fields from a byte slice, failing instead of panicking when it runs out.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], IndexError> {
        if self.bytes.len() < len {
            return Err(IndexError::CorruptDump("file is truncated".to_owned()));
        }
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], IndexError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, IndexError> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, IndexError> {
        self.array().map(u64::from_le_bytes)
    }
}

fn corrupt(what: impl Into<String>) -> IndexError {
    IndexError::CorruptDump(what.into())
}

fn to_usize(v: u64) -> Result<usize, IndexError> {
    usize::try_from(v).map_err(|_| corrupt(format!("{v} does not fit in memory")))
}

pub(crate) fn load(
    dir: &Path,
    name: &str,
    vectors: &[f32],
    bias: Option<&[f32]>,
    dim: usize,
    cfg: &IndexConfig,
) -> Result<ProximityGraph, IndexError> {
    check_name(name)?;
    let path = dump_path(dir, name);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(IndexError::MissingDump(path)),
        Err(e) => return Err(io_error(&path)(e)),
    };
    let Some((body, crc)) = bytes.split_last_chunk::<4>() else {
        return Err(corrupt("file is truncated"));
    };
    if crc32fast::hash(body) != u32::from_le_bytes(*crc) {
        return Err(corrupt(format!("{} fails its checksum", path.display())));
    }
    let mut r = Reader { bytes: body };
    if r.take(MAGIC.len())? != MAGIC {
        return Err(corrupt(format!("{} is not a graph dump", path.display())));
    }
    let header = Header {
        format: r.u32()?,
        items: r.u64()?,
        dim: r.u64()?,
        has_bias: r.array::<1>()?[0] != 0,
        vectors_crc32: r.u32()?,
        m: r.u64()?,
        ef_construction: r.u64()?,
        augmentation_norm: f32::from_le_bytes(r.array()?),
        edges: r.u64()?,
    };
    let n = vectors.len() / dim;
    let stale = |what: &str, dumped: String, now: String| {
        Err(IndexError::StaleDump(format!(
            "{what} is {dumped} in the dump, {now} now"
        )))
    };
    if header.format != FORMAT {
        return stale("format", header.format.to_string(), FORMAT.to_string());
    }
    if (header.items, header.dim) != (n as u64, dim as u64) {
        return stale(
            "shape",
            format!("{}×{}", header.items, header.dim),
            format!("{n}×{dim}"),
        );
    }
    if (header.m, header.ef_construction) != (cfg.m as u64, cfg.ef_construction as u64) {
        return stale(
            "(m, ef_construction)",
            format!("({}, {})", header.m, header.ef_construction),
            format!("({}, {})", cfg.m, cfg.ef_construction),
        );
    }
    if header.has_bias != bias.is_some() || header.vectors_crc32 != fingerprint(vectors, bias, dim)
    {
        return Err(IndexError::StaleDump(
            "the vectors or bias changed since the dump".to_owned(),
        ));
    }

    let edges = to_usize(header.edges)?;
    let expected = n
        .checked_add(1)
        .and_then(|o| o.checked_mul(8))
        .and_then(|o| edges.checked_mul(4).and_then(|e| o.checked_add(e)));
    if expected != Some(r.bytes.len()) {
        return Err(corrupt("adjacency size does not match the header"));
    }
    let offsets = r
        .take((n + 1) * 8)?
        .chunks_exact(8)
        .map(|c| {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            to_usize(u64::from_le_bytes(a))
        })
        .collect::<Result<Vec<usize>, _>>()?;
    let neighbours: Vec<u32> = r
        .take(edges * 4)?
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let monotone = offsets.first() == Some(&0)
        && offsets.last() == Some(&edges)
        && offsets.windows(2).all(|w| w[0] <= w[1]);
    if !monotone {
        return Err(corrupt("adjacency offsets are not monotone"));
    }
    if neighbours.iter().any(|&id| id as usize >= n) {
        return Err(corrupt("a link points outside the catalogue"));
    }
    tracing::debug!(
        path = %path.display(),
        items = n,
        augmentation_norm = header.augmentation_norm,
        "loaded graph dump"
    );
    let items = Items { vectors, bias, dim };
    Ok(ProximityGraph::new(offsets, neighbours, cfg, items))
}
