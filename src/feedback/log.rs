//! Durable, append-only event log behind `POST /feedback`: an acknowledgement (the 202)
//! means the event is on disk, fsynced. Concurrent appends share one fsync (group commit),
//! records are checksummed and segmented, and a crash can only ever cost records that
//! were never acknowledged.
//!
//! Layout: `dir/` holds segment files named by their first sequence number
//! (`00000000000000000001.log`, …) and a `LOCK` file that keeps a second process out.
//! The frame format is documented in `log/record.rs`.
//!
//! Recovery policy ([`EventLog::open`]): the tail of the LAST segment after its last valid
//! record (a short record, a bad checksum, garbage) is truncated and reported in
//! [`RecoveryReport`], as long as no durability marker after it proves the damaged records
//! had been synced (then: [`LogError::SyncedDamage`], repaired by `recserve repair-log`).
//! Damage in a sealed segment, or a gap between segments, is an error
//! ([`LogError::Corrupt`], [`LogError::SegmentGap`]): those segments were fsynced before the
//! log moved past them, so skipping would silently drop acknowledged events. Move the
//! damaged file aside to start anyway.
//!
//! All file access goes through [`fs::LogFs`], so the crash simulation tests run this very
//! code on a simulated disk ([`sim::SimFs`]).

pub mod fault;
pub mod fs;
mod pending;
mod record;
mod recovery;
mod replay;
mod segment;
#[doc(hidden)]
pub mod sim;
mod writer;

#[cfg(test)]
mod durability_tests;
#[cfg(test)]
mod tests;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use serde::Deserialize;
use tokio::sync::oneshot;

use fs::{LogFs, RealFs};
pub use pending::{PendingAppend, PendingBatch};
pub use record::FrameError;
pub use replay::Replay;
pub use writer::RELAXED_SYNC_INTERVAL;
use writer::{Ack, Payloads, Reply, Request, Shared, Writer, WriterConfig};

/// Largest `max_record_bytes` accepted by [`LogConfig::validate`].
pub const MAX_RECORD_LIMIT: u32 = 256 * 1024 * 1024;

/// Where and how the event log is stored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Directory of the segment files; created if missing.
    pub dir: PathBuf,
    /// A new segment is started when the next record would push the active one past this
    /// size (a single record larger than this still gets a segment of its own).
    pub segment_bytes: u64,
    /// Delete the oldest whole segments while the log is larger than this (default 2 GiB).
    /// `None` keeps everything. The active segment is never deleted, nor (in the server)
    /// a segment the latest snapshot does not cover yet.
    pub retention_bytes: Option<u64>,
    /// Delete sealed segments last written longer ago than this (default 7 days; `None`:
    /// no age limit), with the same exceptions as `retention_bytes`.
    pub retention_age_secs: Option<u64>,
    /// Appends with a larger payload are rejected with [`LogError::RecordTooLarge`].
    pub max_record_bytes: u32,
    /// Requests (single records or batches) waiting for the writer; when full, appends fail
    /// at once with [`LogError::QueueFull`] instead of growing memory without bound.
    pub queue_capacity: usize,
    /// Pause between attempts to reopen the log after a write or fsync error.
    pub retry_ms: u64,
    /// Detached relaxed records (the impressions the request path queues, see
    /// [`EventLog::queue_relaxed`]) wait up to this long for more before the writer writes
    /// them together: one write and one writer wake-up per interval instead of one per request.
    /// Nothing an impression guarantees depends on it (attribution reads the in-memory copy;
    /// a crash may lose the last unsynced impressions either way). 0: each group at once.
    pub relaxed_linger_ms: u64,
    /// TEST HOOK, never for production: while this file exists the log's disk behaves as if
    /// it were full (ENOSPC, see `log/fault.rs`), so end-to-end tests can fill and free the
    /// disk of the real binary. Unset (the default): the real file system, untouched.
    pub test_hook_full_disk_file: Option<PathBuf>,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("data/feedback-log"),
            segment_bytes: 64 * 1024 * 1024,
            retention_bytes: Some(2 * 1024 * 1024 * 1024),
            retention_age_secs: Some(7 * 24 * 3600),
            max_record_bytes: 1024 * 1024,
            queue_capacity: 8192,
            retry_ms: 1000,
            relaxed_linger_ms: 5,
            test_hook_full_disk_file: None,
        }
    }
}

impl LogConfig {
    pub fn validate(&self) -> Result<(), LogError> {
        if self.dir.as_os_str().is_empty() {
            return Err(LogError::InvalidConfig("dir must not be empty".into()));
        }
        if self.segment_bytes == 0 {
            return Err(LogError::InvalidConfig("segment_bytes must be > 0".into()));
        }
        if self.queue_capacity == 0 {
            return Err(LogError::InvalidConfig("queue_capacity must be > 0".into()));
        }
        if self.max_record_bytes == 0 || self.max_record_bytes > MAX_RECORD_LIMIT {
            return Err(LogError::InvalidConfig(format!(
                "max_record_bytes must be in 1..={MAX_RECORD_LIMIT}, got {}",
                self.max_record_bytes
            )));
        }
        Ok(())
    }

    /// The file layer this config asks for: the real file system, or (only when the test
    /// hook `test_hook_full_disk_file` is set) the real one behind [`fault::FullDiskHook`].
    pub fn file_layer(&self) -> Arc<dyn LogFs> {
        match &self.test_hook_full_disk_file {
            None => Arc::new(RealFs),
            Some(trigger) => {
                tracing::warn!(
                    trigger = %trigger.display(),
                    "TEST HOOK feedback.log.test_hook_full_disk_file is set: the event log fails \
                     with ENOSPC while that file exists"
                );
                Arc::new(fault::FullDiskHook::new(Arc::new(RealFs), trigger.clone()))
            }
        }
    }
}

/// Prometheus handles the log updates; the caller creates and registers them (or uses
/// [`LogMetrics::register`]).
#[derive(Debug, Clone)]
pub struct LogMetrics {
    /// Duration of each `fdatasync`.
    pub fsync_seconds: Histogram,
    /// Total bytes of all segment files.
    pub bytes: IntGauge,
    /// Records acknowledged since start.
    pub records_total: IntCounter,
    /// Opens that had to truncate a torn tail.
    pub recovered_truncations_total: IntCounter,
    /// Records per group commit.
    pub group_size: Histogram,
    /// 1 while the writer can append, 0 after a write or fsync error until it reopened.
    pub healthy: IntGauge,
    /// Write or fsync errors.
    pub errors_total: IntCounter,
    /// Appends refused because the writer queue was full, by `kind` (`relaxed`: dropped
    /// impressions; `durable`: feedback answered with 503).
    pub queue_full_total: IntCounterVec,
}

impl LogMetrics {
    /// Creates the metrics as `feedback_log_*` and registers them in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let fsync_buckets = vec![
            0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
        ];
        let group_buckets = vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0];
        let metrics = Self {
            fsync_seconds: Histogram::with_opts(
                HistogramOpts::new("feedback_log_fsync_seconds", "Duration of event log fsyncs")
                    .buckets(fsync_buckets),
            )?,
            bytes: IntGauge::new("feedback_log_bytes", "Total bytes of event log segments")?,
            records_total: IntCounter::new(
                "feedback_log_records_total",
                "Events durably appended to the event log",
            )?,
            recovered_truncations_total: IntCounter::new(
                "feedback_log_recovered_truncations_total",
                "Event log opens that truncated a torn tail",
            )?,
            group_size: Histogram::with_opts(
                HistogramOpts::new(
                    "feedback_log_group_size",
                    "Records per event log group commit",
                )
                .buckets(group_buckets),
            )?,
            healthy: IntGauge::new(
                "feedback_log_healthy",
                "1 while the event log accepts appends, 0 after a disk error until it reopens",
            )?,
            errors_total: IntCounter::new(
                "feedback_log_errors_total",
                "Event log write or fsync errors",
            )?,
            queue_full_total: IntCounterVec::new(
                Opts::new(
                    "feedback_log_queue_full_total",
                    "Event log appends refused because the writer queue was full",
                ),
                &["kind"],
            )?,
        };
        registry.register(Box::new(metrics.healthy.clone()))?;
        registry.register(Box::new(metrics.errors_total.clone()))?;
        registry.register(Box::new(metrics.queue_full_total.clone()))?;
        registry.register(Box::new(metrics.fsync_seconds.clone()))?;
        registry.register(Box::new(metrics.bytes.clone()))?;
        registry.register(Box::new(metrics.records_total.clone()))?;
        registry.register(Box::new(metrics.recovered_truncations_total.clone()))?;
        registry.register(Box::new(metrics.group_size.clone()))?;
        Ok(metrics)
    }
}

/// What [`EventLog::open`] found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segment files in the log.
    pub segments: usize,
    /// Valid records kept.
    pub records: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// Total segment bytes after truncation.
    pub bytes: u64,
    /// Bytes cut off the end of the last segment (0 after a clean shutdown).
    pub truncated_bytes: u64,
    /// Why the tail was cut, if it was.
    pub truncation_reason: Option<FrameError>,
    /// Intact records found inside (the first 64 MiB of) the cut tail. Non-zero means the
    /// damage was not just a torn final write (those records may have been acknowledged);
    /// it is logged as a warning.
    pub discarded_intact_records: u64,
}

/// Counters since [`EventLog::open`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStats {
    /// `fdatasync` calls on segment files (one per group commit, two when it rotates).
    pub fsyncs: u64,
    pub group_commits: u64,
    /// Records acknowledged since open.
    pub records: u64,
    /// Total bytes of all segments.
    pub bytes: u64,
    /// Highest acknowledged sequence number (including records recovered at open).
    pub durable_seq: Option<u64>,
    /// The writer hit an I/O error and accepts nothing until it has reopened the log.
    pub failed: bool,
    /// Write or fsync errors since open.
    pub errors: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("invalid event log config: {0}")]
    InvalidConfig(String),
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("corrupt record in sealed segment {} at byte {offset}: {reason} (acknowledged events may be lost; move the segment and all later ones aside to start)", path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: FrameError,
    },
    #[error("segment {} starts at sequence {found}, expected {expected} (missing or overlapping segment)", path.display())]
    SegmentGap {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error(
        "record {seq} at byte {offset} of {} is damaged ({reason}) although records up to {durable} had been synced: acknowledged events were lost to media damage. Refusing to start; run `recserve repair-log --dir {}` to cut the log there (the cut bytes are kept beside the segment)",
        path.display(), dir.display()
    )]
    SyncedDamage {
        path: PathBuf,
        offset: u64,
        seq: u64,
        durable: u64,
        reason: FrameError,
        dir: PathBuf,
    },
    #[error("event log {} is locked by another process", path.display())]
    Locked { path: PathBuf },
    #[error("record of {len} bytes exceeds max_record_bytes ({max})")]
    RecordTooLarge { len: usize, max: u32 },
    #[error("event log write failed, nothing in this group was acknowledged: {source}")]
    WriteFailed {
        #[source]
        source: Arc<io::Error>,
    },
    #[error("event log unavailable after a write failure (it retries): {source}")]
    Stopped {
        #[source]
        source: Arc<io::Error>,
    },
    #[error("event log writer queue is full")]
    QueueFull,
    #[error("event log writer is not running")]
    Closed,
}

/// Handle to an open log. Share it behind an `Arc`; dropping it completes every pending
/// append, stops the writer thread and releases the directory lock.
pub struct EventLog {
    tx: Option<mpsc::SyncSender<Request>>,
    writer: Option<JoinHandle<()>>,
    /// The writer thread, unparked when a waited-for request is queued while it lingers.
    writer_thread: std::thread::Thread,
    shared: Arc<Shared>,
    fs: Arc<dyn LogFs>,
    dir: PathBuf,
    max_record_bytes: u32,
    queue_full: Option<IntCounterVec>,
    _lock: Box<dyn Send + Sync>,
}

impl EventLog {
    /// Locks `cfg.dir` (creating it), recovers the log and starts the writer thread.
    pub fn open(
        cfg: LogConfig,
        metrics: Option<LogMetrics>,
    ) -> Result<(Self, RecoveryReport), LogError> {
        Self::open_on(cfg, metrics, Arc::new(RealFs), u64::MAX, 0)
    }

    /// [`Self::open`] on any file layer; retention never deletes a segment holding a record
    /// `>= retain_from` (see [`Self::set_retention_floor`]). Sealed segments holding only
    /// records below `check_from` (covered by the caller's snapshot, so never replayed at
    /// start) are not re-read at open: their names and sizes are trusted, and replay and
    /// export still validate every frame they read. 0 checks everything.
    pub fn open_on(
        cfg: LogConfig,
        metrics: Option<LogMetrics>,
        fs: Arc<dyn LogFs>,
        retain_from: u64,
        check_from: u64,
    ) -> Result<(Self, RecoveryReport), LogError> {
        cfg.validate()?;
        let dir = cfg.dir.clone();
        fs.create_dir_all(&dir).map_err(|source| LogError::Io {
            op: "create",
            path: dir.clone(),
            source,
        })?;
        let lock = match fs.lock_dir(&dir) {
            Ok(Some(lock)) => lock,
            Ok(None) => return Err(LogError::Locked { path: dir }),
            Err(source) => {
                return Err(LogError::Io {
                    op: "lock",
                    path: dir.join("LOCK"),
                    source,
                });
            }
        };
        let recovered = recovery::recover(fs.as_ref(), &dir, check_from)?;
        let report = recovered.report.clone();
        if let Some(metrics) = &metrics
            && report.truncated_bytes > 0
        {
            metrics.recovered_truncations_total.inc();
        }
        let queue_full = metrics.as_ref().map(|m| m.queue_full_total.clone());
        let shared = Arc::new(Shared::new(retain_from));
        let writer = Writer::new(
            WriterConfig {
                dir: dir.clone(),
                segment_bytes: cfg.segment_bytes,
                retention_bytes: cfg.retention_bytes,
                retention_age: cfg.retention_age_secs.map(Duration::from_secs),
                retry: Duration::from_millis(cfg.retry_ms.max(1)),
                relaxed_linger: Duration::from_millis(cfg.relaxed_linger_ms),
            },
            Arc::clone(&fs),
            recovered,
            Arc::clone(&shared),
            metrics,
        );
        let (tx, rx) = mpsc::sync_channel(cfg.queue_capacity);
        let handle = std::thread::Builder::new()
            .name("event-log-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|source| LogError::Io {
                op: "start writer thread for",
                path: dir.clone(),
                source,
            })?;
        tracing::info!(
            dir = %dir.display(),
            segments = report.segments,
            records = report.records,
            last_seq = ?report.last_seq,
            truncated_bytes = report.truncated_bytes,
            "event log opened"
        );
        let log = Self {
            tx: Some(tx),
            writer_thread: handle.thread().clone(),
            writer: Some(handle),
            shared,
            fs,
            dir,
            max_record_bytes: cfg.max_record_bytes,
            queue_full,
            _lock: lock,
        };
        Ok((log, report))
    }

    /// Cuts the damaged end of the last segment of the (closed) log in `dir`, keeping the cut
    /// bytes beside it; what `recserve repair-log` runs after [`LogError::SyncedDamage`].
    /// Returns the number of bytes cut.
    pub fn repair(dir: &Path) -> Result<u64, LogError> {
        let fs = RealFs;
        let _lock = match fs.lock_dir(dir) {
            Ok(Some(lock)) => lock,
            Ok(None) => {
                return Err(LogError::Locked {
                    path: dir.to_path_buf(),
                });
            }
            Err(source) => {
                return Err(LogError::Io {
                    op: "lock",
                    path: dir.join("LOCK"),
                    source,
                });
            }
        };
        recovery::repair(&fs, dir)
    }

    /// Lets retention delete segments whose records all lie below `seq` (and no others).
    /// The feedback service raises it after each snapshot, so a restart always finds every
    /// record after its snapshot.
    pub fn set_retention_floor(&self, seq: u64) {
        self.shared.retain_from.store(seq, Ordering::Release);
    }

    /// Queues one record that needs no fsync of its own (for example an impression, which is
    /// never acknowledged to a client): it is written with the next group and made durable by
    /// the next durable group's fsync, or within [`RELAXED_SYNC_INTERVAL`] at the latest. The
    /// future resolves to its sequence number once it is written (not necessarily synced).
    /// Order is kept: it gets its sequence number like any other record.
    pub fn submit_relaxed(&self, payload: Vec<u8>) -> Result<PendingAppend, LogError> {
        let payloads = Payloads::One(payload);
        self.check_sizes(&payloads)?;
        let (ack, rx) = oneshot::channel();
        self.send_with(payloads, Ack::Async(ack), false)?;
        Ok(PendingAppend::new(rx))
    }

    /// [`Self::submit_relaxed`] for a caller that never waits for the record (the request
    /// path's impressions): nothing to resolve, so no channel per record, and the writer may
    /// hold it for `relaxed_linger_ms` to write it with the next ones (without being woken for
    /// it). Same order, same durability as any relaxed record; a full queue is
    /// [`LogError::QueueFull`] at once.
    pub fn queue_relaxed(&self, payload: Vec<u8>) -> Result<(), LogError> {
        let payloads = Payloads::One(payload);
        self.check_sizes(&payloads)?;
        self.send_with(payloads, Ack::Detached, false)
    }

    /// Queues one record and returns a `'static` future that resolves to its sequence
    /// number once it is durable. Sequence numbers follow submission order: a record
    /// submitted before another (from any thread) gets the lower one.
    pub fn submit(&self, payload: Vec<u8>) -> Result<PendingAppend, LogError> {
        let rx = self.submit_async(Payloads::One(payload))?;
        Ok(PendingAppend::new(rx))
    }

    /// Queues records with consecutive sequence numbers, acknowledged together. After a
    /// crash before the acknowledgement, a prefix of them may survive. An empty batch is
    /// a barrier: it resolves once everything submitted before it is durable.
    pub fn submit_batch(&self, payloads: Vec<Vec<u8>>) -> Result<PendingBatch, LogError> {
        let count = payloads.len() as u64;
        let rx = self.submit_async(Payloads::Many(payloads))?;
        Ok(PendingBatch::new(rx, count))
    }

    /// A barrier that resolves to the sequence number the next record will get, once
    /// everything submitted before it is durable (what a snapshot's cut needs).
    pub fn submit_barrier(&self) -> Result<PendingAppend, LogError> {
        let rx = self.submit_async(Payloads::Many(Vec::new()))?;
        Ok(PendingAppend::new(rx))
    }

    /// Appends one record; resolves to its sequence number once it is durable. Dropping
    /// the future before its first poll writes nothing; after that the record may still
    /// become durable.
    pub async fn append(&self, payload: Vec<u8>) -> Result<u64, LogError> {
        self.submit(payload)?.await
    }

    /// [`Self::submit_batch`] and wait.
    pub async fn append_batch(&self, payloads: Vec<Vec<u8>>) -> Result<Vec<u64>, LogError> {
        self.submit_batch(payloads)?.await
    }

    /// Resolves once every record submitted before the call is durable, or fails if the
    /// writer has stopped. Costs no fsync of its own.
    pub async fn flush(&self) -> Result<(), LogError> {
        self.submit_batch(Vec::new())?.await.map(drop)
    }

    /// [`Self::append`] for synchronous callers; blocks the calling thread (do not call
    /// it on an async runtime's worker thread).
    pub fn append_blocking(&self, payload: Vec<u8>) -> Result<u64, LogError> {
        self.submit_blocking(Payloads::One(payload))
    }

    /// [`Self::append_batch`] for synchronous callers; blocks the calling thread.
    pub fn append_batch_blocking(&self, payloads: Vec<Vec<u8>>) -> Result<Vec<u64>, LogError> {
        let count = payloads.len() as u64;
        let first = self.submit_blocking(Payloads::Many(payloads))?;
        Ok((first..first + count).collect())
    }

    /// Replays acknowledged records with `seq >= from_seq`, up to the last one
    /// acknowledged when this is called (later appends are not included).
    pub fn replay(&self, from_seq: u64) -> Result<Replay, LogError> {
        let upto = self.shared.stats().durable_seq.unwrap_or(0);
        Replay::new(Arc::clone(&self.fs), &self.dir, from_seq, Some(upto))
    }

    /// Replays the log in `dir` without opening it (no lock, no repair), e.g. for
    /// `export-events`. A torn tail in the last segment ends the iteration.
    pub fn replay_dir(dir: &Path, from_seq: u64) -> Result<Replay, LogError> {
        Replay::new(Arc::new(RealFs), dir, from_seq, None)
    }

    /// The file layer the log runs on.
    pub fn fs(&self) -> &Arc<dyn LogFs> {
        &self.fs
    }

    /// Every record of the log in `dir`, see [`Self::replay_dir`].
    pub fn read_all(dir: &Path) -> Result<Vec<(u64, Vec<u8>)>, LogError> {
        Self::replay_dir(dir, 0)?.collect()
    }

    pub fn stats(&self) -> LogStats {
        self.shared.stats()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Completes pending appends and stops the writer, reporting whether it had failed.
    pub fn close(mut self) -> Result<(), LogError> {
        self.shutdown();
        match self.shared.failure() {
            Some(source) => Err(LogError::Stopped { source }),
            None => Ok(()),
        }
    }

    fn check_sizes(&self, payloads: &Payloads) -> Result<(), LogError> {
        let max = self.max_record_bytes;
        match payloads.as_slice().iter().find(|p| p.len() > max as usize) {
            Some(payload) => Err(LogError::RecordTooLarge {
                len: payload.len(),
                max,
            }),
            None => Ok(()),
        }
    }

    fn send(&self, payloads: Payloads, ack: Ack) -> Result<(), LogError> {
        self.send_with(payloads, ack, true)
    }

    /// Queues without waiting: a full queue is [`LogError::QueueFull`], counted by kind. (A
    /// failed writer still gets the request: it decides whether the disk is back.)
    fn send_with(&self, payloads: Payloads, ack: Ack, durable: bool) -> Result<(), LogError> {
        let tx = self.tx.as_ref().ok_or(LogError::Closed)?;
        let request = Request {
            payloads,
            ack,
            durable,
        };
        let blocking = matches!(request.ack, Ack::Blocking(_));
        let detached = matches!(request.ack, Ack::Detached);
        let sent = if blocking {
            // Synchronous callers (benches, tools) wait for room instead.
            tx.send(request).map_err(|_| LogError::Closed)
        } else {
            tx.try_send(request).map_err(|e| match e {
                mpsc::TrySendError::Full(_) => LogError::QueueFull,
                mpsc::TrySendError::Disconnected(_) => LogError::Closed,
            })
        };
        if matches!(sent, Err(LogError::QueueFull))
            && let Some(counter) = &self.queue_full
        {
            let kind = if durable { "durable" } else { "relaxed" };
            counter.with_label_values(&[kind]).inc();
        }
        if sent.is_ok() && !detached {
            // Someone waits for this one: a writer lingering over detached records stops now.
            self.shared.wake.store(true, Ordering::SeqCst);
            self.writer_thread.unpark();
        }
        sent
    }

    fn submit_async(&self, payloads: Payloads) -> Result<oneshot::Receiver<Reply>, LogError> {
        self.check_sizes(&payloads)?;
        let (ack, rx) = oneshot::channel();
        self.send(payloads, Ack::Async(ack))?;
        Ok(rx)
    }

    fn submit_blocking(&self, payloads: Payloads) -> Result<u64, LogError> {
        self.check_sizes(&payloads)?;
        let (ack, rx) = mpsc::sync_channel(1);
        self.send(payloads, Ack::Blocking(ack))?;
        Ok(rx.recv().map_err(|_| LogError::Closed)??)
    }

    fn shutdown(&mut self) {
        // Closing the channel lets the writer drain and commit what is queued, then exit (a
        // lingering writer is told at once).
        self.tx.take();
        self.shared.wake.store(true, Ordering::SeqCst);
        self.writer_thread.unpark();
        if let Some(handle) = self.writer.take()
            && handle.join().is_err()
        {
            tracing::error!(dir = %self.dir.display(), "event log writer thread panicked");
        }
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLog")
            .field("dir", &self.dir)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}
