//! Start-up recovery: validate every segment, cut a torn tail off the last one, and hand
//! the writer a consistent position. Only the tail of the LAST segment may be discarded;
//! sealed segments were fsynced before the log rotated past them, so damage there is a
//! media or operator problem and opening fails instead of silently losing acknowledged data.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::record::{self, FrameError};
use super::segment::{self, SegmentInfo, SegmentItem, SegmentReader};
use super::{LogError, RecoveryReport};

/// How much of a discarded tail is searched for intact records (a diagnostic only).
const MAX_TAIL_SCAN_BYTES: u64 = 64 * 1024 * 1024;

/// What the writer needs to continue after recovery.
pub(super) struct Recovered {
    pub report: RecoveryReport,
    /// `(first_seq, bytes)` of every segment before the active one, oldest first.
    pub sealed: Vec<(u64, u64)>,
    /// The segment new records are appended to, opened for writing at its end.
    pub active: File,
    pub active_first_seq: u64,
    pub active_len: u64,
    pub next_seq: u64,
}

/// Validates and repairs the log in `dir` (which must exist).
pub(super) fn recover(dir: &Path) -> Result<Recovered, LogError> {
    let mut segments = segment::list_segments(dir)?;
    let Some(last) = segments.pop() else {
        return create_first_segment(dir);
    };
    let mut report = RecoveryReport::default();
    let mut sealed = Vec::with_capacity(segments.len());
    let mut expected_first: Option<u64> = None;
    for info in &segments {
        check_contiguous(info, expected_first)?;
        let scan = scan(info)?;
        if let Some((offset, reason)) = scan.invalid {
            return Err(LogError::Corrupt {
                path: info.path.clone(),
                offset,
                reason,
            });
        }
        report.add(info.first_seq, scan.records, scan.valid_len);
        sealed.push((info.first_seq, scan.valid_len));
        expected_first = Some(scan.next_seq);
    }

    check_contiguous(&last, expected_first)?;
    let scan = scan(&last)?;
    report.add(last.first_seq, scan.records, scan.valid_len);
    let active = open_active(&last, &scan, &mut report)?;
    Ok(Recovered {
        report,
        sealed,
        active,
        active_first_seq: last.first_seq,
        active_len: scan.valid_len,
        next_seq: scan.next_seq,
    })
}

impl RecoveryReport {
    fn add(&mut self, first_seq: u64, records: u64, bytes: u64) {
        self.segments += 1;
        self.bytes += bytes;
        if records > 0 {
            self.records += records;
            self.first_seq.get_or_insert(first_seq);
            self.last_seq = Some(first_seq + records - 1);
        }
    }
}

fn check_contiguous(info: &SegmentInfo, expected: Option<u64>) -> Result<(), LogError> {
    match expected {
        Some(expected) if expected != info.first_seq => Err(LogError::SegmentGap {
            path: info.path.clone(),
            expected,
            found: info.first_seq,
        }),
        _ => Ok(()),
    }
}

struct Scan {
    records: u64,
    /// Bytes up to the end of the last valid record.
    valid_len: u64,
    file_len: u64,
    next_seq: u64,
    invalid: Option<(u64, FrameError)>,
}

fn scan(info: &SegmentInfo) -> Result<Scan, LogError> {
    let mut reader = SegmentReader::open(info)?;
    let mut records = 0;
    let invalid = loop {
        match reader.next_item()? {
            SegmentItem::Record { .. } => records += 1,
            SegmentItem::End => break None,
            SegmentItem::Invalid { offset, reason } => break Some((offset, reason)),
        }
    };
    Ok(Scan {
        records,
        valid_len: reader.offset(),
        file_len: reader.len(),
        next_seq: reader.next_seq(),
        invalid,
    })
}

/// Opens the last segment for appending, first cutting off anything after its last valid
/// record (and making that cut durable before any new record can land behind it).
fn open_active(
    info: &SegmentInfo,
    scan: &Scan,
    report: &mut RecoveryReport,
) -> Result<File, LogError> {
    let io_err = |op| {
        move |source| LogError::Io {
            op,
            path: info.path.clone(),
            source,
        }
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&info.path)
        .map_err(io_err("open active segment"))?;
    if let Some((offset, reason)) = scan.invalid {
        let discarded = scan.file_len - offset;
        let mut tail = Vec::new();
        file.seek(SeekFrom::Start(offset))
            .and_then(|_| {
                (&mut file)
                    .take(discarded.min(MAX_TAIL_SCAN_BYTES))
                    .read_to_end(&mut tail)
            })
            .map_err(io_err("read torn tail of"))?;
        let intact = record::count_intact_frames(&tail);
        if intact > 0 {
            tracing::warn!(
                segment = %info.path.display(),
                offset,
                intact_records_discarded = intact,
                "discarded tail holds intact records: damage inside the log, not just a torn final write"
            );
        }
        tracing::warn!(
            segment = %info.path.display(),
            offset,
            truncated_bytes = discarded,
            %reason,
            "truncating torn tail of event log"
        );
        file.set_len(offset)
            .and_then(|()| file.sync_all())
            .map_err(io_err("truncate torn tail of"))?;
        report.truncated_bytes = discarded;
        report.truncation_reason = Some(reason);
        report.discarded_intact_records = intact;
    }
    file.seek(SeekFrom::Start(scan.valid_len))
        .map_err(io_err("seek in active segment"))?;
    Ok(file)
}

fn create_first_segment(dir: &Path) -> Result<Recovered, LogError> {
    const FIRST_SEQ: u64 = 1;
    let path = segment::segment_path(dir, FIRST_SEQ);
    let active = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .and_then(|file| segment::sync_dir(dir).map(|()| file))
        .map_err(|source| LogError::Io {
            op: "create segment",
            path,
            source,
        })?;
    Ok(Recovered {
        report: RecoveryReport {
            segments: 1,
            ..RecoveryReport::default()
        },
        sealed: Vec::new(),
        active,
        active_first_seq: FIRST_SEQ,
        active_len: 0,
        next_seq: FIRST_SEQ,
    })
}
