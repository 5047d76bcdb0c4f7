//! Durability behaviour of the log: damage to synced records is refused (and repairable),
//! an unsynced torn tail is cut, a full disk fails appends and the log reopens once space
//! returns, a full queue refuses at once, retention keeps the log within its size.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::fs::LogFs;
use super::record::{self, HEADER_LEN};
use super::sim::SimFs;
use super::*;

fn cfg(dir: &Path) -> LogConfig {
    LogConfig {
        dir: dir.to_path_buf(),
        segment_bytes: 1 << 20,
        retention_bytes: None,
        retention_age_secs: None,
        retry_ms: 1,
        ..LogConfig::default()
    }
}

fn body(i: u64) -> Vec<u8> {
    format!("event-{i:04}").into_bytes()
}

fn only_segment(dir: &Path) -> PathBuf {
    let mut segs = segment::list_segments(&RealFs, dir).unwrap();
    assert_eq!(segs.len(), 1);
    segs.remove(0).path
}

#[test]
fn damage_to_synced_records_refuses_to_start_and_repair_cuts_it() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = EventLog::open(cfg(dir.path()), None).unwrap();
    // One fsync per append: every later group carries a marker covering the earlier ones.
    for i in 1..=10 {
        assert_eq!(log.append_blocking(body(i)).unwrap(), i);
    }
    drop(log);
    let path = only_segment(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    let first = record::frame_len(body(1).len()) as usize;
    // Flip a payload byte of record 3 (after record 1, a marker, record 2, a marker).
    let at = 2 * first + 2 * HEADER_LEN + HEADER_LEN + 2;
    bytes[at] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();

    let err = EventLog::open(cfg(dir.path()), None).unwrap_err();
    assert!(
        matches!(err, LogError::SyncedDamage { seq: 3, .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("recserve repair-log --dir"),
        "{err}"
    );
    // Refusing left the file as it was.
    assert_eq!(std::fs::read(&path).unwrap(), bytes);

    let cut = EventLog::repair(dir.path()).unwrap();
    assert!(cut > 0);
    let aside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.contains(".damaged-"))
        .collect();
    assert_eq!(aside.len(), 1);
    let (log, report) = EventLog::open(cfg(dir.path()), None).unwrap();
    assert_eq!(report.last_seq, Some(2));
    assert_eq!(log.append_blocking(body(99)).unwrap(), 3);
}

#[test]
fn unsynced_tail_with_intact_records_behind_a_hole_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = EventLog::open(cfg(dir.path()), None).unwrap();
    for i in 1..=5 {
        log.append_blocking(body(i)).unwrap();
    }
    drop(log);
    // What a crash with reordered unsynced writes leaves: record 6 lost (zeros), record 7
    // landed, and no marker after them (nothing after 5 was ever synced).
    let path = only_segment(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend(std::iter::repeat_n(
        0u8,
        record::frame_len(body(6).len()) as usize,
    ));
    record::encode(&mut bytes, 7, &body(7));
    std::fs::write(&path, &bytes).unwrap();

    let (log, report) = EventLog::open(cfg(dir.path()), None).unwrap();
    assert_eq!(report.last_seq, Some(5));
    assert_eq!(report.discarded_intact_records, 1);
    assert_eq!(log.append_blocking(body(6)).unwrap(), 6);
}

#[tokio::test]
async fn full_disk_fails_appends_then_the_log_reopens_and_keeps_every_ack() {
    let fs = SimFs::new();
    let registry = prometheus::Registry::new();
    let metrics = LogMetrics::register(&registry).unwrap();
    let dir = Path::new("/var/events");
    let (log, _) =
        EventLog::open_on(cfg(dir), Some(metrics.clone()), fs.clone(), u64::MAX, 0).unwrap();
    let mut acked = Vec::new();
    for i in 1..=5 {
        acked.push((log.append(body(i)).await.unwrap(), body(i)));
    }
    fs.set_full(true);
    assert!(matches!(
        log.append(body(100)).await,
        Err(LogError::WriteFailed { .. })
    ));
    assert!(log.stats().failed);
    assert_eq!(metrics.healthy.get(), 0);
    assert!(metrics.errors_total.get() >= 1);
    // Still full: every attempt fails, none is acknowledged.
    for _ in 0..3 {
        assert!(log.append(body(101)).await.is_err());
    }
    fs.set_full(false);
    let mut reopened = None;
    for _ in 0..1000 {
        if let Ok(seq) = log.append(body(6)).await {
            reopened = Some(seq);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    // The sequence continues right after the last acknowledged record.
    assert_eq!(reopened, Some(6));
    acked.push((6, body(6)));
    assert!(!log.stats().failed);
    assert_eq!(metrics.healthy.get(), 1);
    drop(log);
    // Every acknowledged record, and nothing else, survives a power loss.
    let image = fs.crash_image(7);
    let (log, _) = EventLog::open_on(cfg(dir), None, image, u64::MAX, 0).unwrap();
    let all: Vec<(u64, Vec<u8>)> = log.replay(0).unwrap().map(Result::unwrap).collect();
    assert_eq!(all, acked);
}

#[tokio::test]
async fn full_queue_refuses_at_once_and_counts_dropped_impressions() {
    let dir = tempfile::tempdir().unwrap();
    let registry = prometheus::Registry::new();
    let metrics = LogMetrics::register(&registry).unwrap();
    let config = LogConfig {
        queue_capacity: 2,
        ..cfg(dir.path())
    };
    let (log, _) = EventLog::open(config, Some(metrics.clone())).unwrap();
    // Hold the writer so nothing drains.
    let first = log.submit(body(1)).unwrap();
    let gate = log.shared.hooks.gate.lock().unwrap();
    let mut queued = Vec::new();
    let mut dropped = 0;
    for i in 0..10 {
        match log.submit_relaxed(body(i)) {
            Ok(p) => queued.push(p),
            Err(LogError::QueueFull) => dropped += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(matches!(log.submit(body(50)), Err(LogError::QueueFull)));
    drop(gate);
    first.await.unwrap();
    for p in queued {
        p.await.unwrap();
    }
    assert!(dropped >= 7, "{dropped}");
    let relaxed = metrics
        .queue_full_total
        .with_label_values(&["relaxed"])
        .get();
    let durable = metrics
        .queue_full_total
        .with_label_values(&["durable"])
        .get();
    assert_eq!((relaxed, durable), (dropped, 1));
}

#[tokio::test]
async fn retention_keeps_the_log_within_its_size_under_a_stream_of_impressions() {
    let fs = SimFs::new();
    let dir = Path::new("/var/events");
    let limit = 64 * 1024;
    let config = LogConfig {
        segment_bytes: 8 * 1024,
        retention_bytes: Some(limit),
        ..cfg(dir)
    };
    let (log, _) = EventLog::open_on(config, None, fs.clone(), u64::MAX, 0).unwrap();
    let mut max_seen = 0;
    for round in 0..200u64 {
        for i in 0..50 {
            log.submit_relaxed(body(round * 50 + i))
                .unwrap()
                .await
                .unwrap();
        }
        log.flush().await.unwrap();
        let on_disk: u64 = fs.files(dir).values().map(|f| f.len() as u64).sum();
        max_seen = max_seen.max(on_disk);
        assert!(on_disk <= limit, "round {round}: {on_disk} bytes on disk");
    }
    // 10,000 records of ~30 bytes were written: retention really deleted.
    assert!(log.stats().records * 30 > 4 * limit);
    assert!(max_seen > limit / 2);
}

#[test]
fn retention_never_deletes_what_the_snapshot_floor_still_needs() {
    let fs = SimFs::new();
    let dir = Path::new("/var/events");
    let config = LogConfig {
        segment_bytes: 512,
        retention_bytes: Some(1024),
        ..cfg(dir)
    };
    let (log, _) = EventLog::open_on(config, None, fs.clone() as Arc<dyn LogFs>, 1, 0).unwrap();
    for i in 1..=200 {
        log.append_blocking(body(i)).unwrap();
    }
    // Floor 1: nothing may go, whatever the size.
    assert_eq!(log.replay(0).unwrap().count(), 200);
    log.set_retention_floor(150);
    log.append_blocking(body(201)).unwrap();
    let kept: Vec<u64> = log.replay(0).unwrap().map(|r| r.unwrap().0).collect();
    assert!(kept[0] > 1 && kept[0] <= 150, "first kept {}", kept[0]);
    assert_eq!(*kept.last().unwrap(), 201);
}

#[test]
fn segments_below_check_from_are_trusted_at_open_and_still_validated_by_replay() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 256,
        ..cfg(dir.path())
    };
    let (log, _) = EventLog::open(config.clone(), None).unwrap();
    for i in 1..=60 {
        log.append_blocking(body(i)).unwrap();
    }
    drop(log);
    let first = segment::list_segments(&RealFs, dir.path())
        .unwrap()
        .remove(0)
        .path;
    let mut bytes = std::fs::read(&first).unwrap();
    bytes[HEADER_LEN + 1] ^= 0x01;
    std::fs::write(&first, &bytes).unwrap();
    // Checking everything finds the damage at open.
    assert!(matches!(
        EventLog::open(config.clone(), None),
        Err(LogError::Corrupt { .. })
    ));
    // Trusting what a snapshot covers (here: below 50) opens, counts every record, and a
    // replay that reads the damaged segment still reports it.
    let (log, report) = EventLog::open_on(config, None, Arc::new(RealFs), u64::MAX, 50).unwrap();
    assert_eq!(report.last_seq, Some(60));
    assert_eq!(report.records, 60);
    assert!(log.replay(50).unwrap().all(|r| r.is_ok()));
    assert!(matches!(
        log.replay(0).unwrap().find_map(Result::err),
        Some(LogError::Corrupt { .. })
    ));
}
