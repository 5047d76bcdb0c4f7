//! Behaviour of the event log as a whole: round trips, group commit, crash recovery,
//! retention, failure propagation.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use proptest::prelude::*;

use super::record::{self, HEADER_LEN};
use super::segment::{self, SegmentItem, SegmentReader};
use super::*;

fn config(dir: &Path, segment_bytes: u64) -> LogConfig {
    LogConfig {
        dir: dir.to_path_buf(),
        segment_bytes,
        ..LogConfig::default()
    }
}

fn open(cfg: &LogConfig) -> (EventLog, RecoveryReport) {
    EventLog::open(cfg.clone(), None).unwrap()
}

/// A log in `dir` whose writer lingers `linger_ms` over relaxed-only groups.
fn open_lingering(dir: &Path, linger_ms: u64) -> EventLog {
    let cfg = LogConfig {
        relaxed_linger_ms: linger_ms,
        ..config(dir, 1 << 20)
    };
    open(&cfg).0
}

/// Deterministic payload of varying size (0..=120 bytes) for record `i`.
fn payload(i: u64) -> Vec<u8> {
    let len = (i * 37 % 121) as usize;
    (0..len).map(|j| (i as usize * 31 + j) as u8).collect()
}

fn segment_paths(dir: &Path) -> Vec<PathBuf> {
    segment::list_segments(&RealFs, dir)
        .unwrap()
        .into_iter()
        .map(|s| s.path)
        .collect()
}

fn last_segment(dir: &Path) -> PathBuf {
    segment_paths(dir).pop().unwrap()
}

fn expected(range: std::ops::RangeInclusive<u64>) -> Vec<(u64, Vec<u8>)> {
    range.map(|seq| (seq, payload(seq))).collect()
}

fn write_n(cfg: &LogConfig, n: u64) {
    let (log, _) = open(cfg);
    let seqs = log
        .append_batch_blocking((1..=n).map(payload).collect())
        .unwrap();
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>());
    log.close().unwrap();
}

#[test]
fn round_trip_across_rotations() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 512);
    let (log, report) = open(&cfg);
    assert_eq!(report.records, 0);
    let mut next = 1;
    // Single appends and batches of several sizes, so rotations happen both between
    // groups and in the middle of one.
    for chunk in [1u64, 7, 1, 40, 3, 100, 1, 1, 47] {
        let seqs = if chunk == 1 {
            vec![log.append_blocking(payload(next)).unwrap()]
        } else {
            log.append_batch_blocking((next..next + chunk).map(payload).collect())
                .unwrap()
        };
        assert_eq!(seqs, (next..next + chunk).collect::<Vec<_>>());
        next += chunk;
    }
    let total = next - 1;
    assert_eq!(log.stats().durable_seq, Some(total));
    drop(log);

    let segments = segment::list_segments(&RealFs, dir.path()).unwrap();
    assert!(segments.len() > 5, "only {} segments", segments.len());
    let mut on_disk_bytes = 0;
    for info in &segments {
        let len = fs::metadata(&info.path).unwrap().len();
        on_disk_bytes += len;
        assert!(len <= 512, "{} is {len} bytes", info.path.display());
        let mut reader = SegmentReader::open(&RealFs, info).unwrap();
        match reader.next_item().unwrap() {
            SegmentItem::Record { seq, .. } => assert_eq!(seq, info.first_seq),
            other => panic!("segment without records: {other:?}"),
        }
    }
    assert_eq!(EventLog::read_all(dir.path()).unwrap(), expected(1..=total));

    let (log, report) = open(&cfg);
    assert_eq!(report.records, total);
    assert_eq!((report.first_seq, report.last_seq), (Some(1), Some(total)));
    assert_eq!(report.segments, segments.len());
    assert_eq!(report.bytes, on_disk_bytes);
    assert_eq!(report.truncated_bytes, 0);
    assert_eq!(log.stats().bytes, on_disk_bytes);
    assert_eq!(log.append_blocking(payload(total + 1)).unwrap(), total + 1);
}

#[tokio::test]
async fn group_commit_shares_one_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = open(&config(dir.path(), 1 << 20));
    const N: u64 = 50;
    // Hold the writer so every request is queued before it drains the queue.
    let gate = log.shared.hooks.gate.lock().unwrap();
    let receivers: Vec<_> = (1..=N).map(|i| log.submit(payload(i)).unwrap()).collect();
    drop(gate);
    let mut seqs = Vec::new();
    for rx in receivers {
        seqs.push(rx.await.unwrap());
    }
    assert_eq!(seqs, (1..=N).collect::<Vec<_>>());
    let stats = log.stats();
    assert_eq!(
        (stats.fsyncs, stats.group_commits, stats.records),
        (1, 1, N)
    );
    assert_eq!(EventLog::read_all(dir.path()).unwrap(), expected(1..=N));
}

#[tokio::test]
async fn flush_waits_for_earlier_appends_without_an_fsync_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = open(&config(dir.path(), 1 << 20));
    let gate = log.shared.hooks.gate.lock().unwrap();
    let pending: Vec<_> = (1..=5).map(|i| log.submit(payload(i)).unwrap()).collect();
    let barrier = log.submit_batch(Vec::new()).unwrap();
    drop(gate);
    assert_eq!(barrier.await.unwrap(), Vec::<u64>::new());
    // Everything submitted before the barrier is durable by the time it resolves.
    assert_eq!(log.stats().durable_seq, Some(5));
    assert_eq!(log.stats().fsyncs, 1);
    log.flush().await.unwrap();
    assert_eq!(log.stats().fsyncs, 1);
    for (i, p) in pending.into_iter().enumerate() {
        assert_eq!(p.await.unwrap(), i as u64 + 1);
    }
    // A submitted future is `'static`: it can be awaited from a spawned task.
    let detached = log.submit(payload(6)).unwrap();
    assert_eq!(tokio::spawn(detached).await.unwrap().unwrap(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appenders_get_distinct_durable_seqs() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(open(&config(dir.path(), 1 << 20)).0);
    let (tasks, per_task) = (64u64, 10u64);
    let mut handles = Vec::new();
    for task in 0..tasks {
        let log = Arc::clone(&log);
        handles.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..per_task {
                let body = format!("task {task} event {i}").into_bytes();
                acked.push((log.append(body.clone()).await.unwrap(), body));
            }
            acked
        }));
    }
    let mut acked = Vec::new();
    for handle in handles {
        acked.extend(handle.await.unwrap());
    }
    acked.sort();
    let n = tasks * per_task;
    let seqs: Vec<u64> = acked.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>());
    assert_eq!(EventLog::read_all(dir.path()).unwrap(), acked);
    let stats = log.stats();
    assert_eq!(stats.records, n);
    assert_eq!(stats.fsyncs, stats.group_commits);
}

#[test]
fn torn_tail_is_truncated_and_seq_continues() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 1 << 20);
    write_n(&cfg, 10);
    let path = last_segment(dir.path());
    let full = fs::metadata(&path).unwrap().len();
    let last_frame = record::frame_len(payload(10).len());
    let cut = full - last_frame + 7;
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(cut)
        .unwrap();

    let registry = prometheus::Registry::new();
    let metrics = LogMetrics::register(&registry).unwrap();
    let (log, report) = EventLog::open(cfg.clone(), Some(metrics.clone())).unwrap();
    assert_eq!(report.records, 9);
    assert_eq!(report.last_seq, Some(9));
    assert_eq!(report.truncated_bytes, 7);
    assert_eq!(report.truncation_reason, Some(FrameError::Truncated));
    assert_eq!(metrics.recovered_truncations_total.get(), 1);
    assert_eq!(fs::metadata(&path).unwrap().len(), full - last_frame);
    assert_eq!(log.append_blocking(payload(10)).unwrap(), 10);
    assert_eq!(log.append_blocking(payload(11)).unwrap(), 11);
    assert_eq!(metrics.records_total.get(), 2);
    drop(log);
    assert_eq!(EventLog::read_all(dir.path()).unwrap(), expected(1..=11));
    let (_, report) = open(&cfg);
    assert_eq!((report.records, report.truncated_bytes), (11, 0));
}

#[test]
fn flipped_byte_in_last_record_drops_only_that_record() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 1 << 20);
    write_n(&cfg, 6);
    let path = last_segment(dir.path());
    let mut bytes = fs::read(&path).unwrap();
    let last_frame = record::frame_len(payload(6).len()) as usize;
    let at = bytes.len() - 3;
    bytes[at] ^= 0x10;
    fs::write(&path, &bytes).unwrap();

    let (log, report) = open(&cfg);
    assert_eq!(report.records, 5);
    assert_eq!(report.truncated_bytes, last_frame as u64);
    assert_eq!(report.truncation_reason, Some(FrameError::BadChecksum));
    assert_eq!(report.discarded_intact_records, 0);
    drop(log);
    assert_eq!(EventLog::read_all(dir.path()).unwrap(), expected(1..=5));
}

#[test]
fn garbage_after_last_record_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 1 << 20);
    write_n(&cfg, 4);
    let path = last_segment(dir.path());
    let garbage: Vec<u8> = (0..100u32).map(|i| (i * 7 + 3) as u8).collect();
    OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(&garbage)
        .unwrap();
    // Reading the directory without opening the log stops at the garbage too.
    assert_eq!(EventLog::read_all(dir.path()).unwrap(), expected(1..=4));

    let (log, report) = open(&cfg);
    assert_eq!((report.records, report.truncated_bytes), (4, 100));
    assert_eq!(report.truncation_reason, Some(FrameError::BadMagic));
    assert_eq!(log.append_blocking(payload(5)).unwrap(), 5);
    drop(log);
    assert_eq!(EventLog::read_all(dir.path()).unwrap(), expected(1..=5));
}

#[test]
fn intact_record_behind_damage_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 1 << 20);
    write_n(&cfg, 3);
    let path = last_segment(dir.path());
    let mut tail = vec![0u8; 16];
    record::encode(&mut tail, 5, b"out of place");
    OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(&tail)
        .unwrap();
    let (_, report) = open(&cfg);
    assert_eq!(report.records, 3);
    assert_eq!(report.truncated_bytes, tail.len() as u64);
    assert_eq!(report.discarded_intact_records, 1);

    // A checksummed record with the wrong sequence number is not accepted either.
    let (log, _) = open(&cfg);
    drop(log);
    let mut wrong_seq = Vec::new();
    record::encode(&mut wrong_seq, 9, b"skips ahead");
    OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(&wrong_seq)
        .unwrap();
    let (_, report) = open(&cfg);
    assert_eq!(report.records, 3);
    assert_eq!(
        report.truncation_reason,
        Some(FrameError::UnexpectedSeq {
            expected: 4,
            found: 9
        })
    );
}

#[test]
fn empty_directory_starts_at_one() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir.path().join("nested/log"), 1 << 20);
    let (log, report) = open(&cfg);
    assert_eq!(
        report,
        RecoveryReport {
            segments: 1,
            ..RecoveryReport::default()
        }
    );
    assert_eq!(log.stats().durable_seq, None);
    assert_eq!(log.replay(0).unwrap().count(), 0);
    assert!(cfg.dir.join("00000000000000000001.log").is_file());
    assert_eq!(log.append_blocking(b"first".to_vec()).unwrap(), 1);
}

#[test]
fn retention_deletes_oldest_whole_segments() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        retention_bytes: Some(1024),
        ..config(dir.path(), 256)
    };
    let (log, _) = open(&cfg);
    let body = |seq: u64| vec![seq as u8; 40];
    for seq in 1..=200 {
        assert_eq!(log.append_blocking(body(seq)).unwrap(), seq);
    }
    let sizes: Vec<u64> = segment_paths(dir.path())
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .collect();
    let total: u64 = sizes.iter().sum();
    assert!(total <= 1024, "{total} bytes left in {sizes:?}");
    // Only whole segments of at most 256 bytes are deleted, and only while over the limit.
    assert!(total > 1024 - 256, "{total} bytes left in {sizes:?}");
    assert_eq!(log.stats().bytes, total);
    drop(log);

    let records = EventLog::read_all(dir.path()).unwrap();
    let first = segment::list_segments(&RealFs, dir.path()).unwrap()[0].first_seq;
    assert!(first > 1);
    let want: Vec<(u64, Vec<u8>)> = (first..=200).map(|s| (s, body(s))).collect();
    assert_eq!(records, want);
    let (log, report) = open(&cfg);
    assert_eq!(
        (report.first_seq, report.last_seq),
        (Some(first), Some(200))
    );
    assert_eq!(log.append_blocking(body(201)).unwrap(), 201);
}

#[test]
fn damage_in_sealed_segment_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 256);
    write_n(&cfg, 40);
    let first = segment_paths(dir.path())[0].clone();
    let mut bytes = fs::read(&first).unwrap();
    bytes[HEADER_LEN + 1] ^= 0xFF;
    fs::write(&first, &bytes).unwrap();

    match EventLog::open(cfg.clone(), None) {
        Err(LogError::Corrupt { path, offset, .. }) => {
            assert_eq!((path, offset), (first.clone(), 0));
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(matches!(
        EventLog::read_all(dir.path()),
        Err(LogError::Corrupt { .. })
    ));
    // Nothing was truncated or repaired.
    assert_eq!(fs::read(&first).unwrap(), bytes);
}

#[test]
fn missing_middle_segment_is_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 256);
    write_n(&cfg, 40);
    let paths = segment_paths(dir.path());
    assert!(paths.len() >= 3);
    fs::remove_file(&paths[1]).unwrap();
    assert!(matches!(
        EventLog::open(cfg, None),
        Err(LogError::SegmentGap { path, .. }) if path == paths[2]
    ));
    let replayed: Vec<_> = EventLog::replay_dir(dir.path(), 0).unwrap().collect();
    assert!(matches!(
        replayed.last(),
        Some(Err(LogError::SegmentGap { .. }))
    ));
}

#[test]
fn second_open_of_same_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 1 << 20);
    let (log, _) = open(&cfg);
    assert!(matches!(
        EventLog::open(cfg.clone(), None),
        Err(LogError::Locked { .. })
    ));
    drop(log);
    assert!(EventLog::open(cfg, None).is_ok());
}

#[tokio::test]
async fn fsync_failure_fails_every_waiter_and_stops_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 1 << 20);
    let (log, _) = open(&cfg);
    assert_eq!(log.append(payload(1)).await.unwrap(), 1);

    let gate = log.shared.hooks.gate.lock().unwrap();
    let receivers: Vec<_> = (2..=6).map(|i| log.submit(payload(i)).unwrap()).collect();
    log.shared.hooks.fail_sync.store(true, Ordering::Relaxed);
    drop(gate);
    for rx in receivers {
        assert!(matches!(rx.await, Err(LogError::WriteFailed { .. })));
    }
    assert!(log.stats().failed);
    assert_eq!(log.stats().durable_seq, Some(1));
    assert!(matches!(
        log.append(payload(7)).await,
        Err(LogError::Stopped { .. })
    ));
    assert!(matches!(log.close(), Err(LogError::Stopped { .. })));
    // The acknowledged record survives a reopen.
    let replayed = EventLog::read_all(dir.path()).unwrap();
    assert_eq!(replayed.first(), Some(&(1, payload(1))));
}

#[test]
fn oversized_records_are_rejected_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        max_record_bytes: 100,
        ..config(dir.path(), 1 << 20)
    };
    let (log, _) = open(&cfg);
    assert!(matches!(
        log.append_blocking(vec![0; 101]),
        Err(LogError::RecordTooLarge { len: 101, max: 100 })
    ));
    assert!(matches!(
        log.append_batch_blocking(vec![vec![1; 10], vec![2; 500]]),
        Err(LogError::RecordTooLarge { len: 500, .. })
    ));
    assert_eq!(log.append_blocking(vec![7; 100]).unwrap(), 1);
    assert_eq!(
        log.append_batch_blocking(Vec::new()).unwrap(),
        Vec::<u64>::new()
    );
    assert_eq!(log.stats().records, 1);
}

#[test]
fn drop_completes_pending_appends() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 300);
    let (log, _) = open(&cfg);
    let gate = log.shared.hooks.gate.lock().unwrap();
    let receivers: Vec<_> = (1..=20).map(|i| log.submit(payload(i)).unwrap()).collect();
    drop(gate);
    drop(log);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let seqs: Vec<u64> = receivers
        .into_iter()
        .map(|pending| runtime.block_on(pending).unwrap())
        .collect();
    assert_eq!(seqs, (1..=20).collect::<Vec<_>>());
    assert_eq!(EventLog::read_all(dir.path()).unwrap(), expected(1..=20));
}

#[test]
fn replay_from_seq_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 300);
    write_n(&cfg, 100);
    for from in [0, 1, 2, 37, 99, 100, 101, 1000] {
        let got: Vec<_> = EventLog::replay_dir(dir.path(), from)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(got, expected(from.max(1)..=100), "from {from}");
    }
}

#[test]
fn live_replay_stops_at_what_was_acknowledged() {
    // One segment (later records land in the file being replayed) and many segments.
    for segment_bytes in [1 << 20, 200] {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = open(&config(dir.path(), segment_bytes));
        log.append_batch_blocking((1..=5).map(payload).collect())
            .unwrap();
        let replay = log.replay(3).unwrap();
        log.append_batch_blocking((6..=30).map(payload).collect())
            .unwrap();
        let got: Vec<_> = replay.collect::<Result<_, _>>().unwrap();
        assert_eq!(got, expected(3..=5), "segment_bytes {segment_bytes}");
        let got: Vec<_> = log.replay(0).unwrap().collect::<Result<_, _>>().unwrap();
        assert_eq!(got, expected(1..=30));
    }
}

#[test]
fn config_defaults_and_validation() {
    let cfg: LogConfig = toml::from_str("dir = \"/var/lib/recserve/log\"").unwrap();
    assert_eq!(cfg.segment_bytes, 64 * 1024 * 1024);
    assert_eq!(cfg.max_record_bytes, 1024 * 1024);
    assert_eq!(cfg.retention_bytes, Some(2 << 30));
    assert_eq!(cfg.retention_age_secs, Some(7 * 24 * 3600));
    assert_eq!(cfg.queue_capacity, 8192);
    assert!(cfg.validate().is_ok());
    assert!(toml::from_str::<LogConfig>("segment_byte = 1").is_err());
    let bad = LogConfig {
        max_record_bytes: 0,
        ..LogConfig::default()
    };
    assert!(matches!(bad.validate(), Err(LogError::InvalidConfig(_))));
    let bad = LogConfig {
        segment_bytes: 0,
        ..LogConfig::default()
    };
    assert!(matches!(
        EventLog::open(bad, None),
        Err(LogError::InvalidConfig(_))
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Whatever the crash point inside the last segment, recovery keeps exactly the
    /// records that ended before it, in order, and the log continues after them.
    #[test]
    fn recovery_after_any_truncation_keeps_exactly_the_complete_prefix(
        sizes in proptest::collection::vec(0usize..150, 1..40),
        segment_bytes in prop_oneof![Just(400u64), Just(1u64 << 20)],
        cut_fraction in 0.0f64..=1.0,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), segment_bytes);
        let written: Vec<(u64, Vec<u8>)> = sizes
            .iter()
            .enumerate()
            .map(|(i, &len)| (i as u64 + 1, vec![i as u8 ^ 0x5A; len]))
            .collect();
        {
            let (log, _) = open(&cfg);
            log.append_batch_blocking(written.iter().map(|(_, p)| p.clone()).collect())
                .unwrap();
        }
        let last = segment::list_segments(&RealFs, dir.path()).unwrap().pop().unwrap();
        let file_len = fs::metadata(&last.path).unwrap().len();
        let cut = (file_len as f64 * cut_fraction) as u64;
        OpenOptions::new().write(true).open(&last.path).unwrap().set_len(cut).unwrap();

        // Reference: records before the last segment survive; in the last segment, those
        // whose frame ends at or before the cut.
        let mut end = 0;
        let mut want = Vec::new();
        for (seq, body) in &written {
            if *seq >= last.first_seq {
                end += record::frame_len(body.len());
                if end > cut {
                    break;
                }
            }
            want.push((*seq, body.clone()));
        }
        let kept_in_last: u64 = want
            .iter()
            .filter(|(seq, _)| *seq >= last.first_seq)
            .map(|(_, body)| record::frame_len(body.len()))
            .sum();

        let (log, report) = open(&cfg);
        prop_assert_eq!(report.records, want.len() as u64);
        prop_assert_eq!(report.truncated_bytes, cut - kept_in_last);
        let next = want.len() as u64 + 1;
        prop_assert_eq!(log.append_blocking(b"after".to_vec()).unwrap(), next);
        drop(log);
        want.push((next, b"after".to_vec()));
        prop_assert_eq!(EventLog::read_all(dir.path()).unwrap(), want);
    }
}

#[tokio::test]
async fn relaxed_records_need_no_fsync_of_their_own_and_ride_the_next_durable_one() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = open(&config(dir.path(), 1 << 20));
    // Relaxed records, one group each: written (their futures resolve), never synced alone.
    for i in 1..=3 {
        assert_eq!(log.submit_relaxed(payload(i)).unwrap().await.unwrap(), i);
    }
    let stats = log.stats();
    assert_eq!(stats.fsyncs, 0, "no fsync for relaxed-only groups");
    assert_eq!(stats.durable_seq, None, "written is not durable");
    // A durable record behind them: one fsync makes all four durable, in order.
    assert_eq!(log.submit(payload(4)).unwrap().await.unwrap(), 4);
    let stats = log.stats();
    assert_eq!((stats.fsyncs, stats.durable_seq), (1, Some(4)));
    // A barrier covers relaxed records before it.
    log.submit_relaxed(payload(5)).unwrap().await.unwrap();
    log.flush().await.unwrap();
    assert_eq!(log.stats().durable_seq, Some(5));
    assert_eq!(log.stats().fsyncs, 2);
    assert_eq!(EventLog::read_all(dir.path()).unwrap(), expected(1..=5));
}

#[tokio::test]
async fn relaxed_records_are_synced_by_the_timer_without_further_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = open(&config(dir.path(), 1 << 20));
    log.submit_relaxed(payload(1)).unwrap().await.unwrap();
    // A liveness bound, not a timing assertion: the writer's own timer syncs it.
    let mut waited = std::time::Duration::ZERO;
    while log.stats().durable_seq.is_none() {
        assert!(waited < std::time::Duration::from_secs(30), "never synced");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        waited += std::time::Duration::from_millis(20);
    }
    assert_eq!(log.stats().fsyncs, 1);
    // Closing syncs what is written, too.
    log.submit_relaxed(payload(2)).unwrap().await.unwrap();
    log.close().unwrap();
    let (log, _) = open(&config(dir.path(), 1 << 20));
    assert_eq!(log.stats().durable_seq, Some(2));
}

#[tokio::test]
async fn detached_relaxed_records_linger_into_one_group_and_a_waited_for_request_ends_the_wait() {
    let dir = tempfile::tempdir().unwrap();
    // A linger far beyond the test's life: only the durable request can end it.
    let log = open_lingering(dir.path(), 600_000);
    for i in 1..=3 {
        log.queue_relaxed(payload(i)).unwrap();
    }
    assert_eq!(log.submit(payload(4)).unwrap().await.unwrap(), 4);
    let stats = log.stats();
    assert_eq!(
        (stats.group_commits, stats.records, stats.fsyncs),
        (1, 4, 1),
        "the relaxed records waited and went out with the durable one"
    );
    assert_eq!(stats.durable_seq, Some(4));
    // Closing does not wait out a linger either, and writes what lingers.
    log.queue_relaxed(payload(5)).unwrap();
    log.close().unwrap();
    assert_eq!(EventLog::read_all(dir.path()).unwrap(), expected(1..=5));
}

#[tokio::test]
async fn detached_relaxed_records_are_written_after_the_linger_without_other_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_lingering(dir.path(), 1);
    log.queue_relaxed(payload(1)).unwrap();
    // A liveness bound, not a timing assertion.
    let mut waited = std::time::Duration::ZERO;
    while log.stats().records == 0 {
        assert!(waited < std::time::Duration::from_secs(30), "never written");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        waited += std::time::Duration::from_millis(5);
    }
    assert_eq!(log.stats().fsyncs, 0, "written, not synced on its own");
}

/// Closing right after queueing detached records never waits out the linger. The race it pins:
/// a shutdown that set `wake` before the lingering writer cleared it was lost, and the writer
/// parked for the whole linger (seen once as a 600 s test). Cost: 200 open/close cycles, ~1 s.
#[test]
fn close_right_after_detached_records_does_not_wait_out_the_linger() {
    for round in 0..200u64 {
        let dir = tempfile::tempdir().unwrap();
        let log = open_lingering(dir.path(), 600_000);
        log.queue_relaxed(payload(1)).unwrap();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done_tx.send(log.close());
        });
        // A liveness bound, not a timing assertion: the linger is 600 s.
        let closed = done_rx.recv_timeout(std::time::Duration::from_secs(30));
        assert!(
            matches!(closed, Ok(Ok(()))),
            "round {round}: close waited out the linger"
        );
        assert_eq!(EventLog::read_all(dir.path()).unwrap(), expected(1..=1));
    }
}
