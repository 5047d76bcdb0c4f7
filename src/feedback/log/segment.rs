//! Segment files: naming, listing, and sequential validated reading. Shared by recovery
//! (which decides what to keep) and replay (which only reads); never writes.

use std::io::{BufReader, ErrorKind, Read};
use std::path::{Path, PathBuf};

use super::LogError;
use super::fs::LogFs;
use super::record::{self, Frame, FrameError};

/// Digits in a segment file name: enough for any `u64`, so names sort like their numbers.
const NAME_DIGITS: usize = 20;
const EXTENSION: &str = ".log";

/// One segment file, named by the sequence number of its first record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SegmentInfo {
    pub first_seq: u64,
    pub path: PathBuf,
}

/// `dir/00000000000000000001.log` for `first_seq = 1`.
pub(super) fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!(
        "{first_seq:0width$}{EXTENSION}",
        width = NAME_DIGITS
    ))
}

/// Largest first sequence number a segment name may carry. Sequence numbers start at 1
/// and stay far below this, so arithmetic on them can never overflow.
const MAX_FIRST_SEQ: u64 = i64::MAX as u64;

fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(EXTENSION)?;
    if digits.len() != NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits
        .parse()
        .ok()
        .filter(|seq| (1..=MAX_FIRST_SEQ).contains(seq))
}

/// Segment files of `dir` in sequence order. Files that are not named like a segment
/// (the lock file, an operator's notes, a number outside `1..=i64::MAX`) are ignored.
pub(super) fn list_segments(fs: &dyn LogFs, dir: &Path) -> Result<Vec<SegmentInfo>, LogError> {
    let io_err = |source| LogError::Io {
        op: "list segments in",
        path: dir.to_path_buf(),
        source,
    };
    let mut segments = Vec::new();
    for name in fs.list(dir).map_err(io_err)? {
        if let Some(first_seq) = parse_segment_name(&name) {
            segments.push(SegmentInfo {
                first_seq,
                path: dir.join(name),
            });
        }
    }
    segments.sort_unstable_by_key(|s| s.first_seq);
    Ok(segments)
}

/// What the next position of a segment holds.
#[derive(Debug)]
pub(super) enum SegmentItem {
    Record {
        seq: u64,
        payload: Vec<u8>,
    },
    /// Clean end of the segment (as long as it was when opened).
    End,
    /// The bytes from `offset` on are not a valid continuation of the segment.
    Invalid {
        offset: u64,
        reason: FrameError,
    },
}

/// Reads the records of one segment in order, checking framing, checksums and that
/// sequence numbers start at the file's name and grow by one.
pub(super) struct SegmentReader {
    reader: BufReader<Box<dyn Read + Send>>,
    path: PathBuf,
    /// Length of the file when it was opened; bytes appended later are not read.
    len: u64,
    offset: u64,
    next_seq: u64,
    invalid: bool,
    last: Option<SegmentItem>,
}

impl SegmentReader {
    pub fn open(fs: &dyn LogFs, info: &SegmentInfo) -> Result<Self, LogError> {
        let io_err = |source| LogError::Io {
            op: "open segment",
            path: info.path.clone(),
            source,
        };
        let (file, len) = fs.open_read(&info.path).map_err(io_err)?;
        Ok(Self {
            reader: BufReader::with_capacity(256 * 1024, file),
            path: info.path.clone(),
            len,
            offset: 0,
            next_seq: info.first_seq,
            invalid: false,
            last: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Byte offset just past the last valid record read so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// File length when opened.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Sequence number the next record must carry.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub fn next_item(&mut self) -> Result<SegmentItem, LogError> {
        loop {
            match self.next_frame()? {
                // A durability marker is bookkeeping for recovery, not a record.
                Some(marker_len) => self.offset += marker_len,
                None => return Ok(self.last.take().unwrap_or(SegmentItem::End)),
            }
        }
    }

    /// Reads one frame: `Some(len)` for a marker to skip, else the item is left in `last`.
    fn next_frame(&mut self) -> Result<Option<u64>, LogError> {
        if self.invalid {
            return Err(LogError::Io {
                op: "read past an invalid record in",
                path: self.path.clone(),
                source: ErrorKind::InvalidData.into(),
            });
        }
        let frame =
            record::read_frame(&mut self.reader, self.len - self.offset).map_err(|source| {
                LogError::Io {
                    op: "read segment",
                    path: self.path.clone(),
                    source,
                }
            })?;
        let invalid = |reader: &mut Self, reason| {
            reader.invalid = true;
            reader.last = Some(SegmentItem::Invalid {
                offset: reader.offset,
                reason,
            });
            Ok(None)
        };
        match frame {
            Frame::End => {
                self.last = Some(SegmentItem::End);
                Ok(None)
            }
            Frame::Marker { .. } => Ok(Some(record::frame_len(0))),
            Frame::Invalid(reason) => invalid(self, reason),
            Frame::Record { seq, .. } if seq != self.next_seq => {
                let reason = FrameError::UnexpectedSeq {
                    expected: self.next_seq,
                    found: seq,
                };
                invalid(self, reason)
            }
            Frame::Record { seq, payload } => {
                self.offset += record::frame_len(payload.len());
                self.next_seq = seq + 1;
                self.last = Some(SegmentItem::Record { seq, payload });
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_and_parse() {
        let dir = Path::new("/x");
        assert_eq!(
            segment_path(dir, 1),
            PathBuf::from("/x/00000000000000000001.log")
        );
        let name = |seq| {
            segment_path(dir, seq)
                .file_name()
                .and_then(|n| n.to_str())
                .map(str::to_owned)
                .unwrap()
        };
        for seq in [1, 99, 12_345_678_901, MAX_FIRST_SEQ] {
            assert_eq!(parse_segment_name(&name(seq)), Some(seq));
        }
        assert!(name(9) < name(10));
        for bad in [
            "1.log",
            "0000000000000000001x.log",
            "00000000000000000001.tmp",
            "LOCK",
            &name(0),
            &name(MAX_FIRST_SEQ + 1),
            &name(u64::MAX),
        ] {
            assert_eq!(parse_segment_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn listing_ignores_foreign_files_and_sorts() {
        use std::fs::File;
        let dir = tempfile::tempdir().unwrap();
        for seq in [30, 1, 7] {
            File::create(segment_path(dir.path(), seq)).unwrap();
        }
        File::create(dir.path().join("LOCK")).unwrap();
        File::create(dir.path().join("notes.txt")).unwrap();
        let firsts: Vec<u64> = list_segments(&super::super::fs::RealFs, dir.path())
            .unwrap()
            .iter()
            .map(|s| s.first_seq)
            .collect();
        assert_eq!(firsts, vec![1, 7, 30]);
    }
}
