//! A TEST HOOK for the real binary: a [`LogFs`] wrapper that behaves like a full disk while a
//! trigger file exists, so an end-to-end test can fill and free "the disk" of a running server
//! without root, a mount or a quota. It is enabled only by `feedback.log.test_hook_full_disk_file`
//! (env `RECSERVE_FEEDBACK__LOG__TEST_HOOK_FULL_DISK_FILE`); never set that in production.
//!
//! While the trigger exists, every append writes only the first half of its bytes and then fails
//! with ENOSPC (a real full disk also fails part-way), an fsync with unsynced appended bytes
//! fails with ENOSPC (their blocks cannot be allocated), and file creation fails. As on a real
//! full disk, an fsync with nothing new to write succeeds, and truncation (which discards the
//! unsynced tail: the log only ever cuts back to its synced length), reads, renames and removals
//! still work. It decides nothing about durability; the log above it must cope as with a real
//! device.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use super::fs::{LogFile, LogFs};

/// [`LogFs`] over `inner` that is "full" while `trigger` exists (see the module docs).
#[derive(Debug, Clone)]
pub struct FullDiskHook {
    inner: Arc<dyn LogFs>,
    trigger: Arc<PathBuf>,
}

impl FullDiskHook {
    pub fn new(inner: Arc<dyn LogFs>, trigger: PathBuf) -> Self {
        Self {
            inner,
            trigger: Arc::new(trigger),
        }
    }
}

/// One `stat` per check; the log calls the file layer per group commit, not per record.
fn check(trigger: &Path) -> io::Result<()> {
    if trigger.exists() {
        return Err(io::Error::new(
            io::ErrorKind::StorageFull,
            format!("test hook: disk full while {} exists", trigger.display()),
        ));
    }
    Ok(())
}

struct HookedFile {
    inner: Box<dyn LogFile>,
    trigger: Arc<PathBuf>,
    /// Bytes were appended since the last successful fsync.
    dirty: bool,
}

impl LogFile for HookedFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.dirty |= !buf.is_empty();
        if let Err(e) = check(&self.trigger) {
            // Part of the write lands before the device runs out of space.
            self.inner.write_all(&buf[..buf.len() / 2])?;
            return Err(e);
        }
        self.inner.write_all(buf)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        if self.dirty {
            check(&self.trigger)?;
        }
        self.inner.sync_data()?;
        self.dirty = false;
        Ok(())
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)?;
        self.dirty = false;
        Ok(())
    }

    fn read_at(&mut self, offset: u64, max: u64) -> io::Result<Vec<u8>> {
        self.inner.read_at(offset, max)
    }
}

impl FullDiskHook {
    fn wrap(&self, inner: Box<dyn LogFile>) -> Box<dyn LogFile> {
        Box::new(HookedFile {
            inner,
            trigger: Arc::clone(&self.trigger),
            dirty: false,
        })
    }
}

impl LogFs for FullDiskHook {
    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir(dir)
    }

    fn exists(&self, path: &Path) -> bool {
        self.inner.exists(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }

    fn open_read(&self, path: &Path) -> io::Result<(Box<dyn Read + Send>, u64)> {
        self.inner.open_read(path)
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn LogFile>> {
        self.inner.open_append(path).map(|f| self.wrap(f))
    }

    fn create_new(&self, path: &Path) -> io::Result<Box<dyn LogFile>> {
        check(&self.trigger)?;
        self.inner.create_new(path).map(|f| self.wrap(f))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.inner.remove(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner.sync_dir(dir)
    }

    fn modified(&self, path: &Path) -> io::Result<SystemTime> {
        self.inner.modified(path)
    }

    fn lock_dir(&self, dir: &Path) -> io::Result<Option<Box<dyn Send + Sync>>> {
        self.inner.lock_dir(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::super::fs::RealFs;
    use super::*;

    // Cost: a few file operations in a temp dir; milliseconds.
    #[test]
    fn full_while_the_trigger_exists_with_half_written_appends() {
        let dir = tempfile::tempdir().unwrap();
        let trigger = dir.path().join("FULL");
        let fs = FullDiskHook::new(Arc::new(RealFs), trigger.clone());
        let path = dir.path().join("seg");
        let mut file = fs.create_new(&path).unwrap();
        file.write_all(b"abcd").unwrap();
        file.sync_data().unwrap();

        std::fs::write(&trigger, b"").unwrap();
        let err = file.write_all(b"efgh").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"abcdef",
            "half the append landed"
        );
        assert_eq!(
            file.sync_data().unwrap_err().kind(),
            io::ErrorKind::StorageFull
        );
        assert_eq!(
            fs.create_new(&dir.path().join("other"))
                .err()
                .map(|e| e.kind()),
            Some(io::ErrorKind::StorageFull)
        );
        // Cut back to the synced length: nothing left to allocate, so an fsync succeeds even
        // on the full disk (which is why the log must probe with a real write).
        file.set_len(4).unwrap();
        file.sync_data().unwrap();
        assert!(file.write_all(b"zz").is_err());

        std::fs::remove_file(&trigger).unwrap();
        file.set_len(4).unwrap();
        file.write_all(b"xy").unwrap();
        file.sync_data().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"abcdxy");
    }
}
