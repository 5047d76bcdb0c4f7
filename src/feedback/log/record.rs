//! On-disk record framing: one checksummed frame per event, so that recovery can tell a
//! complete record from a torn or corrupt one without trusting anything but the bytes.
//!
//! Frame layout (all integers little-endian):
//!
//! | bytes | field   | meaning                                                  |
//! |-------|---------|----------------------------------------------------------|
//! | 4     | magic   | [`MAGIC`], marks the start of a frame                    |
//! | 4     | crc     | CRC-32 (IEEE, `crc32fast`) of `len ‖ seq ‖ payload`      |
//! | 4     | len     | payload length in bytes                                  |
//! | 8     | seq     | sequence number, +1 per record across all segments       |
//! | len   | payload | opaque bytes (the caller's serialised event)             |
//!
//! The checksum covers the length and the sequence number as well as the payload, so a
//! flipped bit in the header is detected like one in the payload.
//!
//! A *durability marker* has the same layout with magic [`MARKER_MAGIC`], no payload, and
//! in the `seq` field the highest sequence number that was already fsynced when the marker
//! was written. The writer puts one in front of each group after a sync, so recovery can
//! tell a torn unsynced tail (records past every marker) from damage to records that were
//! synced and may have been acknowledged. It takes no sequence number; replay skips it.

use std::fmt;
use std::io::{self, Read};

/// Marks the start of every frame ("RSEV" read as little-endian bytes).
pub(super) const MAGIC: u32 = u32::from_le_bytes(*b"RSEV");
/// Marks a durability marker ("RSCK").
pub(super) const MARKER_MAGIC: u32 = u32::from_le_bytes(*b"RSCK");
/// Size of the fixed frame header that precedes the payload.
pub(super) const HEADER_LEN: usize = 20;

/// Total on-disk size of a frame carrying `payload_len` bytes.
pub(super) const fn frame_len(payload_len: usize) -> u64 {
    (HEADER_LEN + payload_len) as u64
}

fn checksum(len: u32, seq: u64, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len.to_le_bytes());
    hasher.update(&seq.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

/// Appends one encoded frame to `buf`. The caller guarantees `payload.len()` fits in `u32`
/// (it is bounded by `max_record_bytes`).
pub(super) fn encode(buf: &mut Vec<u8>, seq: u64, payload: &[u8]) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    buf.reserve(HEADER_LEN + payload.len());
    buf.extend_from_slice(&MAGIC.to_le_bytes());
    buf.extend_from_slice(&checksum(len, seq, payload).to_le_bytes());
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.extend_from_slice(payload);
}

/// Appends a durability marker: every record with `seq <= durable` was fsynced before it.
pub(super) fn encode_marker(buf: &mut Vec<u8>, durable: u64) {
    buf.extend_from_slice(&MARKER_MAGIC.to_le_bytes());
    buf.extend_from_slice(&checksum(0, durable, &[]).to_le_bytes());
    buf.extend_from_slice(&0u32.to_le_bytes());
    buf.extend_from_slice(&durable.to_le_bytes());
}

/// Why the bytes at some offset are not a valid frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The file ends inside the header or the payload (a write cut short).
    Truncated,
    /// The first four bytes are not [`MAGIC`].
    BadMagic,
    /// Header and payload are complete but the checksum does not match.
    BadChecksum,
    /// A valid frame, but not the sequence number that must come next.
    UnexpectedSeq { expected: u64, found: u64 },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("record cut short by end of file"),
            Self::BadMagic => f.write_str("bad record magic"),
            Self::BadChecksum => f.write_str("record checksum mismatch"),
            Self::UnexpectedSeq { expected, found } => {
                write!(f, "expected sequence number {expected}, found {found}")
            }
        }
    }
}

/// Result of reading at one position.
#[derive(Debug)]
pub(super) enum Frame {
    /// A complete, checksummed record.
    Record { seq: u64, payload: Vec<u8> },
    /// A durability marker (see the module docs).
    Marker { durable: u64 },
    /// Clean end of file exactly at a frame boundary.
    End,
    /// Not a valid frame; nothing at or after this offset can be trusted.
    Invalid(FrameError),
}

/// Reads the frame at the current position of `reader`; `remaining` is the number of bytes
/// left in the file, so that a corrupt length can never make us allocate or read past it.
pub(super) fn read_frame<R: Read>(reader: &mut R, remaining: u64) -> io::Result<Frame> {
    if remaining == 0 {
        return Ok(Frame::End);
    }
    if remaining < HEADER_LEN as u64 {
        return Ok(Frame::Invalid(FrameError::Truncated));
    }
    let mut header = [0u8; HEADER_LEN];
    reader.read_exact(&mut header)?;
    let (magic, crc, len, seq) = parse_header(&header);
    if magic == MARKER_MAGIC && len == 0 {
        if checksum(0, seq, &[]) != crc {
            return Ok(Frame::Invalid(FrameError::BadChecksum));
        }
        return Ok(Frame::Marker { durable: seq });
    }
    if magic != MAGIC {
        return Ok(Frame::Invalid(FrameError::BadMagic));
    }
    if u64::from(len) > remaining - HEADER_LEN as u64 {
        return Ok(Frame::Invalid(FrameError::Truncated));
    }
    let mut payload = vec![0u8; len as usize];
    reader.read_exact(&mut payload)?;
    if checksum(len, seq, &payload) != crc {
        return Ok(Frame::Invalid(FrameError::BadChecksum));
    }
    Ok(Frame::Record { seq, payload })
}

fn parse_header(header: &[u8; HEADER_LEN]) -> (u32, u32, u32, u64) {
    let word = |at: usize| {
        u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&header[12..20]);
    (word(0), word(4), word(8), u64::from_le_bytes(seq))
}

/// What a search of damaged bytes found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct TailScan {
    /// Complete, checksummed records.
    pub intact_records: u64,
    /// Highest `durable` of any intact durability marker.
    pub durable: Option<u64>,
}

/// Searches every offset of `bytes` for intact frames. Recovery uses it on the bytes after
/// a bad frame: a marker there proves which records before it had been synced.
pub(super) fn scan_tail(bytes: &[u8]) -> TailScan {
    let magics = [MAGIC.to_le_bytes(), MARKER_MAGIC.to_le_bytes()];
    let mut found = TailScan::default();
    let mut at = 0;
    while at + HEADER_LEN <= bytes.len() {
        if !magics.iter().any(|m| bytes[at..at + 4] == *m) {
            at += 1;
            continue;
        }
        let mut rest = &bytes[at..];
        match read_frame(&mut rest, (bytes.len() - at) as u64) {
            Ok(Frame::Record { payload, .. }) => {
                found.intact_records += 1;
                at += HEADER_LEN + payload.len();
            }
            Ok(Frame::Marker { durable }) => {
                found.durable = found.durable.max(Some(durable));
                at += HEADER_LEN;
            }
            _ => at += 1,
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(bytes: &[u8]) -> (Vec<(u64, Vec<u8>)>, Option<FrameError>) {
        let mut rest = bytes;
        let mut out = Vec::new();
        loop {
            let remaining = rest.len() as u64;
            match read_frame(&mut rest, remaining).unwrap() {
                Frame::Record { seq, payload } => out.push((seq, payload)),
                Frame::Marker { .. } => {}
                Frame::End => return (out, None),
                Frame::Invalid(e) => return (out, Some(e)),
            }
        }
    }

    #[test]
    fn encode_decode_round_trip() {
        let mut buf = Vec::new();
        let records: Vec<(u64, Vec<u8>)> = (0..5u64)
            .map(|i| (i + 7, vec![i as u8; i as usize * 13]))
            .collect();
        for (seq, payload) in &records {
            encode(&mut buf, *seq, payload);
        }
        let expected_len: u64 = records.iter().map(|(_, p)| frame_len(p.len())).sum();
        assert_eq!(buf.len() as u64, expected_len);
        assert_eq!(decode_all(&buf), (records, None));
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let mut buf = Vec::new();
        encode(&mut buf, 42, b"{\"event\":\"click\"}");
        for byte in 0..buf.len() {
            for bit in 0..8 {
                let mut corrupt = buf.clone();
                corrupt[byte] ^= 1 << bit;
                let (records, err) = decode_all(&corrupt);
                // A flip in `len` may turn into a truncation or a checksum error; any of
                // them is fine as long as the record is not accepted.
                assert!(records.is_empty(), "flip at byte {byte} bit {bit} accepted");
                assert!(err.is_some());
            }
        }
    }

    #[test]
    fn every_truncation_is_detected() {
        let mut buf = Vec::new();
        encode(&mut buf, 1, b"hello world");
        for cut in 1..buf.len() {
            assert_eq!(
                decode_all(&buf[..cut]),
                (vec![], Some(FrameError::Truncated))
            );
        }
    }

    #[test]
    fn finds_intact_frames_and_markers_behind_garbage() {
        let mut buf = vec![0xAB; 37];
        encode(&mut buf, 3, b"x");
        buf.extend_from_slice(&[0; 5]);
        encode_marker(&mut buf, 3);
        encode(&mut buf, 4, b"");
        let scan = scan_tail(&buf);
        assert_eq!(scan.intact_records, 2);
        assert_eq!(scan.durable, Some(3));
        assert_eq!(scan_tail(&buf[..buf.len() - 1]).intact_records, 1);
        assert_eq!(scan_tail(b"RSEV"), TailScan::default());
    }

    #[test]
    fn every_single_bit_flip_in_a_marker_is_detected() {
        let mut buf = Vec::new();
        encode_marker(&mut buf, 77);
        assert_eq!(scan_tail(&buf).durable, Some(77));
        for byte in 0..buf.len() {
            for bit in 0..8 {
                let mut corrupt = buf.clone();
                corrupt[byte] ^= 1 << bit;
                assert_eq!(scan_tail(&corrupt).durable, None, "byte {byte} bit {bit}");
            }
        }
    }
}
