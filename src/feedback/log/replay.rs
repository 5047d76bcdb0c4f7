//! Sequential replay of the log for state rebuild and `export-events`. Read-only: it never
//! truncates or repairs (that is recovery's job), so it is safe on a live log directory.

use std::path::Path;
use std::sync::Arc;
use std::vec;

use super::LogError;
use super::fs::LogFs;
use super::segment::{self, SegmentInfo, SegmentItem, SegmentReader};

/// Iterator over `(seq, payload)` in sequence order, from [`super::EventLog::replay`] or
/// [`super::EventLog::replay_dir`].
///
/// An invalid record in a sealed segment yields [`LogError::Corrupt`], a missing segment
/// [`LogError::SegmentGap`]; after an error the iterator ends. An invalid record in the
/// last segment ends the iteration silently: it is a torn tail (or a write in progress)
/// that recovery will cut off, never an acknowledged record.
pub struct Replay {
    fs: Arc<dyn LogFs>,
    segments: vec::IntoIter<SegmentInfo>,
    current: Option<(SegmentReader, bool)>,
    from_seq: u64,
    upto: Option<u64>,
    expected_first: Option<u64>,
    done: bool,
}

impl Replay {
    /// Replays records with `from_seq <= seq` (and `seq <= upto` when given) from `dir`.
    pub(super) fn new(
        fs: Arc<dyn LogFs>,
        dir: &Path,
        from_seq: u64,
        upto: Option<u64>,
    ) -> Result<Self, LogError> {
        let mut segments = segment::list_segments(fs.as_ref(), dir)?;
        // Skip whole segments that end before `from_seq`: those followed by a segment
        // that starts at or before it.
        let start = segments
            .iter()
            .rposition(|s| s.first_seq <= from_seq)
            .unwrap_or(0);
        segments.drain(..start);
        Ok(Self {
            fs,
            segments: segments.into_iter(),
            current: None,
            from_seq,
            upto,
            expected_first: None,
            done: false,
        })
    }

    fn fail(&mut self, error: LogError) -> Option<Result<(u64, Vec<u8>), LogError>> {
        self.done = true;
        Some(Err(error))
    }
}

impl Iterator for Replay {
    type Item = Result<(u64, Vec<u8>), LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let Some((reader, is_last)) = &mut self.current else {
                let Some(info) = self.segments.next() else {
                    self.done = true;
                    break;
                };
                if self.upto.is_some_and(|upto| info.first_seq > upto) {
                    self.done = true;
                    break;
                }
                if let Some(expected) = self.expected_first.filter(|&e| e != info.first_seq) {
                    return self.fail(LogError::SegmentGap {
                        path: info.path,
                        expected,
                        found: info.first_seq,
                    });
                }
                match SegmentReader::open(self.fs.as_ref(), &info) {
                    Ok(reader) => self.current = Some((reader, self.segments.len() == 0)),
                    Err(error) => return self.fail(error),
                }
                continue;
            };
            match reader.next_item() {
                Err(error) => return self.fail(error),
                Ok(SegmentItem::Record { seq, payload }) => {
                    if self.upto.is_some_and(|upto| seq > upto) {
                        self.done = true;
                    } else if seq >= self.from_seq {
                        return Some(Ok((seq, payload)));
                    }
                }
                Ok(SegmentItem::End) => {
                    self.expected_first = Some(reader.next_seq());
                    self.current = None;
                }
                Ok(SegmentItem::Invalid { .. }) if *is_last => self.done = true,
                Ok(SegmentItem::Invalid { offset, reason }) => {
                    let path = reader.path().to_path_buf();
                    return self.fail(LogError::Corrupt {
                        path,
                        offset,
                        reason,
                    });
                }
            }
        }
        None
    }
}
