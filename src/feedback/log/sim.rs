//! A simulated disk for tests, in the spirit of FoundationDB's deterministic simulation: it
//! remembers what was fsynced, and [`SimFs::crash_image`] builds what a power loss could
//! leave behind: only synced data and synced directory entries for sure; of the unsynced
//! writes an arbitrary subset of pages (so later writes may land while earlier ones do
//! not), the last page possibly torn; of the unsynced directory operations a prefix. The
//! choices are deterministic from a seed. It can also refuse writes as a full disk does
//! (ENOSPC) and stop dead after a number of operations (the moment of the power loss).
//! Test support only: it never touches the real file system.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::Mutex;

use super::fs::{LogFile, LogFs};

/// Page size of the simulated disk: unsynced data is lost or kept a page at a time.
pub const PAGE: u64 = 4096;

#[derive(Debug, Default, Clone)]
struct Inode {
    /// Contents as of the last fsync.
    durable: Vec<u8>,
    /// Contents as the running process sees them.
    current: Vec<u8>,
    /// Byte ranges written since the last fsync, in write order.
    unsynced: Vec<(u64, u64)>,
}

#[derive(Debug, Clone)]
enum DirOp {
    Link(PathBuf, usize),
    Unlink(PathBuf),
}

#[derive(Debug, Default)]
struct State {
    inodes: Vec<Inode>,
    /// Names as the running process sees them.
    names: BTreeMap<PathBuf, usize>,
    /// Names that survive a crash.
    durable_names: BTreeMap<PathBuf, usize>,
    /// Directory operations not yet made durable, in order.
    pending: Vec<DirOp>,
    dirs: BTreeSet<PathBuf>,
    durable_dirs: BTreeSet<PathBuf>,
    locked: BTreeSet<PathBuf>,
    /// Mutating operations so far.
    ops: u64,
    /// After this many mutating operations every operation fails (the power is gone).
    crash_after: Option<u64>,
    /// Writes and creates fail with `StorageFull`.
    full: bool,
    /// Syncs so far (for tests that count them).
    syncs: u64,
}

/// The simulated disk; clone the `Arc` to share it with the log.
#[derive(Debug)]
pub struct SimFs {
    state: Arc<Mutex<State>>,
}

fn parent(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

impl State {
    /// Counts a mutating operation; fails once the simulated power is gone.
    fn op(&mut self) -> io::Result<()> {
        if self.crash_after.is_some_and(|limit| self.ops >= limit) {
            return Err(io::Error::other("simulated power loss"));
        }
        self.ops += 1;
        Ok(())
    }

    fn alive(&self) -> io::Result<()> {
        if self.crash_after.is_some_and(|limit| self.ops >= limit) {
            return Err(io::Error::other("simulated power loss"));
        }
        Ok(())
    }

    fn full(&self) -> io::Result<()> {
        if self.full {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "simulated disk full",
            ));
        }
        Ok(())
    }

    fn inode(&self, path: &Path) -> io::Result<usize> {
        self.names
            .get(path)
            .copied()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, path.display().to_string()))
    }

    fn check_dir(&self, path: &Path) -> io::Result<()> {
        if self.dirs.contains(&parent(path)) {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no directory for {}", path.display()),
            ))
        }
    }
}

impl SimFs {
    /// An empty disk with only the root directory `/`.
    pub fn new() -> Arc<Self> {
        let mut state = State::default();
        state.dirs.insert(PathBuf::from("/"));
        state.durable_dirs.insert(PathBuf::from("/"));
        Arc::new(Self {
            state: Arc::new(Mutex::new(state)),
        })
    }

    /// Every operation after `ops` more mutating operations fails, as if the power went.
    pub fn crash_after(&self, ops: u64) {
        let mut s = self.state.lock();
        s.crash_after = Some(s.ops + ops);
    }

    /// Makes every write and create fail with ENOSPC (`true`) or succeed again (`false`).
    pub fn set_full(&self, full: bool) {
        self.state.lock().full = full;
    }

    pub fn syncs(&self) -> u64 {
        self.state.lock().syncs
    }

    /// Mutating operations so far.
    pub fn ops(&self) -> u64 {
        self.state.lock().ops
    }

    /// A fresh disk holding what a power loss now could leave behind (see the module docs),
    /// chosen by `seed`. The running instance is unaffected.
    pub fn crash_image(&self, seed: u64) -> Arc<Self> {
        let s = self.state.lock();
        let mut rng = crate::splitmix::SplitMix64(seed ^ 0xD1B5_4A32_D192_ED03);
        // A prefix of the unsynced directory operations reached the disk.
        let mut names = s.durable_names.clone();
        let applied = rng.below(s.pending.len() as u64 + 1) as usize;
        for op in &s.pending[..applied] {
            match op {
                DirOp::Link(path, inode) => {
                    names.insert(path.clone(), *inode);
                }
                DirOp::Unlink(path) => {
                    names.remove(path);
                }
            }
        }
        // Files in a directory whose own entry was never made durable are gone with it.
        let dirs = s.durable_dirs.clone();
        names.retain(|p, _| dirs.contains(&parent(p)));
        let mut inodes = Vec::with_capacity(s.inodes.len());
        for inode in &s.inodes {
            let mut data = inode.durable.clone();
            let last = inode.unsynced.len().saturating_sub(1);
            for (i, &(start, end)) in inode.unsynced.iter().enumerate() {
                let mut page_start = start;
                while page_start < end {
                    let page_end = ((page_start / PAGE + 1) * PAGE).min(end);
                    let keep = match rng.below(3) {
                        0 => 0,
                        // The final write's page may be torn anywhere.
                        1 if i == last => rng.below(page_end - page_start + 1),
                        _ => page_end - page_start,
                    };
                    if keep > 0 {
                        let (from, to) = (page_start as usize, (page_start + keep) as usize);
                        if let Some(bytes) = inode.current.get(from..to) {
                            if data.len() < to {
                                data.resize(to, 0);
                            }
                            data[from..to].copy_from_slice(bytes);
                        }
                    }
                    page_start = page_end;
                }
            }
            // A cut that was never synced may or may not have happened: if the durable
            // copy is longer than what the process saw, keep the durable bytes.
            inodes.push(Inode {
                durable: data.clone(),
                current: data,
                unsynced: Vec::new(),
            });
        }
        let state = State {
            inodes,
            names: names.clone(),
            durable_names: names,
            dirs: dirs.clone(),
            durable_dirs: dirs,
            ..State::default()
        };
        Arc::new(Self {
            state: Arc::new(Mutex::new(state)),
        })
    }

    /// Files of `dir` as the running process sees them, with their current contents.
    pub fn files(&self, dir: &Path) -> BTreeMap<String, Vec<u8>> {
        let s = self.state.lock();
        s.names
            .iter()
            .filter(|(p, _)| parent(p) == dir)
            .filter_map(|(p, &i)| {
                let name = p.file_name()?.to_str()?.to_owned();
                Some((name, s.inodes[i].current.clone()))
            })
            .collect()
    }

    /// Overwrites bytes of a file in place and durably (a media fault, for tests).
    pub fn corrupt(&self, path: &Path, offset: usize, bytes: &[u8]) -> io::Result<()> {
        let mut s = self.state.lock();
        let i = s.inode(path)?;
        let inode = &mut s.inodes[i];
        for (k, b) in bytes.iter().enumerate() {
            if let Some(slot) = inode.current.get_mut(offset + k) {
                *slot = *b;
            }
            if let Some(slot) = inode.durable.get_mut(offset + k) {
                *slot = *b;
            }
        }
        Ok(())
    }
}

struct SimFile {
    state: Arc<Mutex<State>>,
    inode: usize,
}

impl LogFile for SimFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut s = self.state.lock();
        s.op()?;
        s.full()?;
        let inode = &mut s.inodes[self.inode];
        let start = inode.current.len() as u64;
        inode.current.extend_from_slice(buf);
        inode.unsynced.push((start, start + buf.len() as u64));
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        let mut s = self.state.lock();
        s.op()?;
        s.syncs += 1;
        let inode = &mut s.inodes[self.inode];
        inode.durable = inode.current.clone();
        inode.unsynced.clear();
        Ok(())
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        let mut s = self.state.lock();
        s.op()?;
        let inode = &mut s.inodes[self.inode];
        let len = usize::try_from(len).map_err(io::Error::other)?;
        inode.current.resize(len, 0);
        // Unsynced ranges past the cut no longer exist; the cut itself is durable at the
        // next sync (before it, a crash keeps the durable length).
        let cut = len as u64;
        inode.unsynced.retain_mut(|(a, b)| {
            *b = (*b).min(cut);
            *a < *b
        });
        Ok(())
    }

    fn read_at(&mut self, offset: u64, max: u64) -> io::Result<Vec<u8>> {
        let s = self.state.lock();
        s.alive()?;
        let data = &s.inodes[self.inode].current;
        let from = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let to = usize::try_from(offset.saturating_add(max))
            .unwrap_or(usize::MAX)
            .min(data.len());
        Ok(data[from..to].to_vec())
    }
}

impl LogFs for SimFs {
    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.state.lock();
        s.op()?;
        s.full()?;
        if s.dirs.contains(dir) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "directory exists",
            ));
        }
        if !s.dirs.contains(&parent(dir)) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "no parent directory",
            ));
        }
        s.dirs.insert(dir.to_path_buf());
        Ok(())
    }

    fn exists(&self, path: &Path) -> bool {
        let s = self.state.lock();
        s.dirs.contains(path) || s.names.contains_key(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let s = self.state.lock();
        s.alive()?;
        if !s.dirs.contains(dir) {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no such directory"));
        }
        Ok(s.names
            .keys()
            .filter(|p| parent(p) == dir)
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect())
    }

    fn open_read(&self, path: &Path) -> io::Result<(Box<dyn Read + Send>, u64)> {
        let s = self.state.lock();
        s.alive()?;
        let data = s.inodes[s.inode(path)?].current.clone();
        let len = data.len() as u64;
        Ok((Box::new(Cursor::new(data)), len))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn LogFile>> {
        let s = self.state.lock();
        s.alive()?;
        let inode = s.inode(path)?;
        Ok(Box::new(SimFile {
            state: Arc::clone(&self.state),
            inode,
        }))
    }

    fn create_new(&self, path: &Path) -> io::Result<Box<dyn LogFile>> {
        let mut s = self.state.lock();
        s.op()?;
        s.full()?;
        s.check_dir(path)?;
        if s.names.contains_key(path) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, "file exists"));
        }
        let inode = s.inodes.len();
        s.inodes.push(Inode::default());
        s.names.insert(path.to_path_buf(), inode);
        s.pending.push(DirOp::Link(path.to_path_buf(), inode));
        Ok(Box::new(SimFile {
            state: Arc::clone(&self.state),
            inode,
        }))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut s = self.state.lock();
        s.op()?;
        s.inode(path)?;
        s.names.remove(path);
        s.pending.push(DirOp::Unlink(path.to_path_buf()));
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.state.lock();
        s.op()?;
        let inode = s.inode(from)?;
        s.check_dir(to)?;
        s.names.remove(from);
        s.names.insert(to.to_path_buf(), inode);
        // Atomic on disk: the link of the new name comes first, so a prefix never loses both.
        s.pending.push(DirOp::Link(to.to_path_buf(), inode));
        s.pending.push(DirOp::Unlink(from.to_path_buf()));
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.state.lock();
        s.op()?;
        s.syncs += 1;
        let pending = std::mem::take(&mut s.pending);
        let mut rest = Vec::new();
        for op in pending {
            let path = match &op {
                DirOp::Link(p, _) | DirOp::Unlink(p) => p.clone(),
            };
            if parent(&path) != dir {
                rest.push(op);
                continue;
            }
            match op {
                DirOp::Link(p, inode) => {
                    s.durable_names.insert(p, inode);
                }
                DirOp::Unlink(p) => {
                    s.durable_names.remove(&p);
                }
            }
        }
        s.pending = rest;
        let children: Vec<PathBuf> = s
            .dirs
            .iter()
            .filter(|d| parent(d) == dir)
            .cloned()
            .collect();
        s.durable_dirs.extend(children);
        Ok(())
    }

    fn modified(&self, path: &Path) -> io::Result<SystemTime> {
        let s = self.state.lock();
        s.alive()?;
        s.inode(path)?;
        Ok(SystemTime::now())
    }

    fn lock_dir(&self, dir: &Path) -> io::Result<Option<Box<dyn Send + Sync>>> {
        let mut s = self.state.lock();
        s.alive()?;
        if !s.locked.insert(dir.to_path_buf()) {
            return Ok(None);
        }
        Ok(Some(Box::new(SimLock {
            state: Arc::clone(&self.state),
            dir: dir.to_path_buf(),
        })))
    }
}

struct SimLock {
    state: Arc<Mutex<State>>,
    dir: PathBuf,
}

impl Drop for SimLock {
    fn drop(&mut self) {
        self.state.lock().locked.remove(&self.dir);
    }
}
