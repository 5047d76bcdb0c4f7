//! Start-up recovery: validate every segment, cut a torn tail off the last one, and hand
//! the writer a consistent position. Only an UNSYNCED tail of the LAST segment may be
//! discarded. Sealed segments were fsynced before the log rotated past them, and a bad
//! frame in the last segment followed by a durability marker that covers it (see
//! `record.rs`) is damage to synced, possibly acknowledged records: in both cases opening
//! fails with a message naming the repair, instead of silently losing acknowledged data.
//! Resyncing past the damage is not an option: the damaged record's sequence number is
//! gone, and the log's contract is a gap-free sequence.

use std::path::Path;

use super::fs::{LogFile, LogFs};
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
    pub active: Box<dyn LogFile>,
    pub active_first_seq: u64,
    pub active_len: u64,
    pub next_seq: u64,
}

/// Validates and repairs the log in `dir` (which must exist). Sealed segments whose records
/// all lie below `check_from` are trusted by name and size instead of being read.
pub(super) fn recover(fs: &dyn LogFs, dir: &Path, check_from: u64) -> Result<Recovered, LogError> {
    let mut segments = segment::list_segments(fs, dir)?;
    let Some(last) = segments.pop() else {
        return create_first_segment(fs, dir);
    };
    let mut report = RecoveryReport::default();
    let mut sealed = Vec::with_capacity(segments.len());
    let mut expected_first: Option<u64> = None;
    for (i, info) in segments.iter().enumerate() {
        check_contiguous(info, expected_first)?;
        let next_first = segments.get(i + 1).unwrap_or(&last).first_seq;
        if next_first <= check_from {
            let (_, len) = fs.open_read(&info.path).map_err(|source| LogError::Io {
                op: "open segment",
                path: info.path.clone(),
                source,
            })?;
            let records = next_first.saturating_sub(info.first_seq);
            report.add(info.first_seq, records, len);
            sealed.push((info.first_seq, len));
            expected_first = Some(next_first);
            continue;
        }
        let scan = scan(fs, info)?;
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
    let scan = scan(fs, &last)?;
    report.add(last.first_seq, scan.records, scan.valid_len);
    let active = open_active(fs, dir, &last, &scan, &mut report)?;
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

fn scan(fs: &dyn LogFs, info: &SegmentInfo) -> Result<Scan, LogError> {
    let mut reader = SegmentReader::open(fs, info)?;
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
/// record (and making that cut durable before any new record can land behind it). Refuses
/// when the bytes after the bad frame prove that the bad record had been synced.
fn open_active(
    fs: &dyn LogFs,
    dir: &Path,
    info: &SegmentInfo,
    scan: &Scan,
    report: &mut RecoveryReport,
) -> Result<Box<dyn LogFile>, LogError> {
    let io_err = |op| {
        move |source| LogError::Io {
            op,
            path: info.path.clone(),
            source,
        }
    };
    let mut file = fs
        .open_append(&info.path)
        .map_err(io_err("open active segment"))?;
    if let Some((offset, reason)) = scan.invalid {
        let discarded = scan.file_len - offset;
        let tail = file
            .read_at(offset, discarded.min(MAX_TAIL_SCAN_BYTES))
            .map_err(io_err("read torn tail of"))?;
        let found = record::scan_tail(&tail);
        if let Some(durable) = found.durable.filter(|&d| d >= scan.next_seq) {
            return Err(LogError::SyncedDamage {
                path: info.path.clone(),
                offset,
                seq: scan.next_seq,
                durable,
                reason,
                dir: dir.to_path_buf(),
            });
        }
        if found.intact_records > 0 {
            tracing::warn!(
                segment = %info.path.display(),
                offset,
                intact_records_discarded = found.intact_records,
                "discarded tail holds intact records, none of them ever synced (so never acknowledged)"
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
            .and_then(|()| file.sync_data())
            .map_err(io_err("truncate torn tail of"))?;
        report.truncated_bytes = discarded;
        report.truncation_reason = Some(reason);
        report.discarded_intact_records = found.intact_records;
    } else {
        // What survived a process crash may sit only in the page cache: sync it before the
        // writer's first durability marker claims it is on disk.
        file.sync_data().map_err(io_err("sync active segment"))?;
    }
    Ok(file)
}

/// `recserve repair-log`: cuts the last segment at its first bad frame like recovery does,
/// but also when the damage hit synced records, first copying the cut bytes to
/// `<segment>.damaged-<offset>` for forensics. Returns the number of bytes cut.
pub(super) fn repair(fs: &dyn LogFs, dir: &Path) -> Result<u64, LogError> {
    let segments = segment::list_segments(fs, dir)?;
    let Some(last) = segments.last() else {
        return Ok(0);
    };
    let scan = scan(fs, last)?;
    let Some((offset, _)) = scan.invalid else {
        return Ok(0);
    };
    let io_err = |op, path: &Path| {
        let path = path.to_path_buf();
        move |source| LogError::Io { op, path, source }
    };
    let mut file = fs
        .open_append(&last.path)
        .map_err(io_err("open", &last.path))?;
    let cut = scan.file_len - offset;
    let bytes = file
        .read_at(offset, cut)
        .map_err(io_err("read", &last.path))?;
    let aside = last.path.with_extension(format!("damaged-{offset}"));
    let mut copy = fs.create_new(&aside).map_err(io_err("create", &aside))?;
    copy.write_all(&bytes)
        .and_then(|()| copy.sync_data())
        .and_then(|()| fs.sync_dir(dir))
        .map_err(io_err("write", &aside))?;
    file.set_len(offset)
        .and_then(|()| file.sync_data())
        .map_err(io_err("truncate", &last.path))?;
    Ok(cut)
}

fn create_first_segment(fs: &dyn LogFs, dir: &Path) -> Result<Recovered, LogError> {
    const FIRST_SEQ: u64 = 1;
    let path = segment::segment_path(dir, FIRST_SEQ);
    let active = fs
        .create_new(&path)
        .and_then(|file| fs.sync_dir(dir).map(|()| file))
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
