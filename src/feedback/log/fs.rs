//! The few file operations the event log and the feedback snapshot use, behind a trait, so
//! that tests can run the very same code on a simulated disk ([`super::sim::SimFs`]) that
//! loses unsynced data on a crash or fills up. [`RealFs`] is a thin pass-through to
//! `std::fs`; it is called per group commit, never per record, so the indirection is free.
//! Nothing here decides what is durable: callers fsync where their guarantee needs it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::SystemTime;

/// An open file the log appends to.
pub trait LogFile: Send {
    /// Appends `buf` at the end of the file.
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    /// `fdatasync`: the data (and the size) written so far survive a power loss.
    fn sync_data(&mut self) -> io::Result<()>;
    /// Cuts (or extends) the file to `len`; the next append lands at `len`.
    fn set_len(&mut self, len: u64) -> io::Result<()>;
    /// Reads up to `max` bytes from `offset`.
    fn read_at(&mut self, offset: u64, max: u64) -> io::Result<Vec<u8>>;
}

/// Directory and file operations of the log. Paths are absolute or relative to the process.
pub trait LogFs: Send + Sync + std::fmt::Debug {
    /// Creates one directory (its entry is not durable until the parent is synced).
    fn create_dir(&self, dir: &Path) -> io::Result<()>;
    fn exists(&self, path: &Path) -> bool;
    /// Names of the entries of `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// A reader over the file and its length when opened.
    fn open_read(&self, path: &Path) -> io::Result<(Box<dyn Read + Send>, u64)>;
    /// Opens an existing file for appending at its end.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn LogFile>>;
    /// Creates a file that must not exist yet (its directory entry is not yet durable).
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn LogFile>>;
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Atomically replaces `to` with `from` (not durable until the directory is synced).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes created, renamed and removed entries of `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    fn modified(&self, path: &Path) -> io::Result<SystemTime>;
    /// Takes an exclusive lock on `dir` for the life of the returned guard; `Ok(None)` when
    /// another process holds it.
    fn lock_dir(&self, dir: &Path) -> io::Result<Option<Box<dyn Send + Sync>>>;

    /// Creates `dir` and missing parents, making each new entry durable in its parent (a
    /// log directory whose entry is lost in a crash would take every segment with it).
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut missing = Vec::new();
        let mut at = Some(dir);
        while let Some(p) = at.filter(|p| !p.as_os_str().is_empty() && !self.exists(p)) {
            missing.push(p);
            at = p.parent();
        }
        for p in missing.into_iter().rev() {
            match self.create_dir(p) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
            self.sync_dir(parent_dir(p))?;
        }
        Ok(())
    }

    /// Whole contents of a small file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let (mut reader, len) = self.open_read(path)?;
        let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        reader.read_to_end(&mut out)?;
        Ok(out)
    }

    /// Replaces `path` with `bytes` so that a crash leaves either the old or the new file,
    /// never a mix: write a temporary file, fsync it, rename it over `path`, fsync the
    /// directory (without the last step the rename itself could be lost).
    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let tmp = path.with_extension("tmp");
        match self.remove(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut file = self.create_new(&tmp)?;
        file.write_all(bytes)?;
        file.sync_data()?;
        drop(file);
        self.rename(&tmp, path)?;
        self.sync_dir(parent_dir(path))
    }
}

/// The directory holding `path` (`.` for a bare name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

struct RealFile(File);

impl LogFile for RealFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.0.set_len(len)?;
        self.0.seek(SeekFrom::Start(len)).map(drop)
    }

    fn read_at(&mut self, offset: u64, max: u64) -> io::Result<Vec<u8>> {
        let end = self.0.stream_position()?;
        self.0.seek(SeekFrom::Start(offset))?;
        let mut out = Vec::new();
        let read = (&mut self.0).take(max).read_to_end(&mut out);
        self.0.seek(SeekFrom::Start(end))?;
        read.map(|_| out)
    }
}

impl LogFs for RealFs {
    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir(dir)
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            if let Some(name) = entry?.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }

    fn open_read(&self, path: &Path) -> io::Result<(Box<dyn Read + Send>, u64)> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok((Box::new(file), len))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn LogFile>> {
        let mut file = OpenOptions::new().read(true).write(true).open(path)?;
        file.seek(SeekFrom::End(0))?;
        Ok(Box::new(RealFile(file)))
    }

    fn create_new(&self, path: &Path) -> io::Result<Box<dyn LogFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        Ok(Box::new(RealFile(file)))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn modified(&self, path: &Path) -> io::Result<SystemTime> {
        std::fs::metadata(path)?.modified()
    }

    fn lock_dir(&self, dir: &Path) -> io::Result<Option<Box<dyn Send + Sync>>> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("LOCK"))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Box::new(file))),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }
}
