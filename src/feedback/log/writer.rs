//! The single writer thread: owns the active segment, turns everything queued into one
//! write and ONE `fdatasync` (group commit), and only then acknowledges. Relaxed records
//! (impressions: never acknowledged to a client) are written with the next group but do not
//! force an fsync of their own: the next durable group's sync covers them, or a sync at most
//! [`RELAXED_SYNC_INTERVAL`] after they were written. It must never
//! acknowledge a record that is not durable. After a write or sync error (a full disk, an
//! I/O error) it fails the group, reports itself unhealthy, and every `retry` interval
//! reopens the active segment, cuts it back to the last synced length (the page cache
//! state after a failed fsync is unknown, so nothing unsynced is trusted), proves the disk
//! takes writes again with a synced durability marker, and carries on from the last synced
//! record.

use std::collections::VecDeque;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::fs::{LogFile, LogFs};
use super::record::{self, frame_len};
use super::recovery::Recovered;
use super::segment::segment_path;
use super::{LogError, LogMetrics, LogStats};

/// Stop draining the queue into one group once this many bytes are collected, so one
/// group's write stays bounded in memory and latency.
const MAX_GROUP_BYTES: usize = 8 * 1024 * 1024;
/// Longest a written relaxed record waits for an fsync when no durable record comes along.
pub const RELAXED_SYNC_INTERVAL: std::time::Duration = std::time::Duration::from_millis(200);
/// The encode buffer is shrunk back to this after an unusually large group.
const BUF_KEEP_BYTES: usize = 1024 * 1024;

/// Why a request was not acknowledged.
#[derive(Debug, Clone)]
pub(super) enum WriteFailure {
    /// This request's group hit the error.
    Failed(Arc<io::Error>),
    /// An earlier group hit the error and the disk has not recovered yet.
    Stopped(Arc<io::Error>),
}

impl From<WriteFailure> for LogError {
    fn from(failure: WriteFailure) -> Self {
        match failure {
            WriteFailure::Failed(source) => LogError::WriteFailed { source },
            WriteFailure::Stopped(source) => LogError::Stopped { source },
        }
    }
}

/// Sequence number of the request's first record, or why nothing was acknowledged.
pub(super) type Reply = Result<u64, WriteFailure>;

pub(super) enum Ack {
    Async(oneshot::Sender<Reply>),
    Blocking(SyncSender<Reply>),
    /// Nobody waits (a detached relaxed record, see [`super::EventLog::queue_relaxed`]): the
    /// writer may hold it back for `relaxed_linger` to write it with the ones after it.
    Detached,
}

impl Ack {
    fn send(self, reply: Reply) {
        // A caller that stopped waiting is not an error: its records are durable anyway.
        match self {
            Ack::Async(tx) => {
                let _ = tx.send(reply);
            }
            Ack::Blocking(tx) => {
                let _ = tx.send(reply);
            }
            Ack::Detached => {}
        }
    }
}

pub(super) enum Payloads {
    One(Vec<u8>),
    Many(Vec<Vec<u8>>),
}

impl Payloads {
    pub fn as_slice(&self) -> &[Vec<u8>] {
        match self {
            Payloads::One(payload) => std::slice::from_ref(payload),
            Payloads::Many(payloads) => payloads,
        }
    }
}

pub(super) struct Request {
    pub payloads: Payloads,
    pub ack: Ack,
    /// Acknowledge only after an fsync (false: after the write; see the module docs).
    pub durable: bool,
}

/// Counters shared between the writer thread and [`super::EventLog::stats`].
pub(super) struct Shared {
    fsyncs: AtomicU64,
    group_commits: AtomicU64,
    records: AtomicU64,
    bytes: AtomicU64,
    /// Highest acknowledged sequence number; 0 while the log is empty.
    durable_seq: AtomicU64,
    /// Segments whose records all lie below this may be deleted by retention (`u64::MAX`:
    /// no floor). The feedback service raises it after each snapshot.
    pub retain_from: AtomicU64,
    /// The error the writer is failing with, until it has reopened the log.
    failure: Mutex<Option<Arc<io::Error>>>,
    /// Write or sync errors since open.
    errors: AtomicU64,
    /// Set (before unparking the writer) when a request that someone waits for was queued:
    /// a writer lingering over detached relaxed records stops lingering.
    pub wake: AtomicBool,
    #[cfg(test)]
    pub hooks: TestHooks,
}

impl Shared {
    pub fn stats(&self) -> LogStats {
        let durable = self.durable_seq.load(Ordering::Acquire);
        LogStats {
            fsyncs: self.fsyncs.load(Ordering::Relaxed),
            group_commits: self.group_commits.load(Ordering::Relaxed),
            records: self.records.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            durable_seq: (durable > 0).then_some(durable),
            failed: self.failure.lock().is_some(),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }

    /// The error the writer is failing with, if any.
    pub fn failure(&self) -> Option<Arc<io::Error>> {
        self.failure.lock().clone()
    }

    pub fn new(retain_from: u64) -> Self {
        Self {
            fsyncs: AtomicU64::new(0),
            group_commits: AtomicU64::new(0),
            records: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            durable_seq: AtomicU64::new(0),
            retain_from: AtomicU64::new(retain_from),
            failure: Mutex::new(None),
            errors: AtomicU64::new(0),
            wake: AtomicBool::new(false),
            #[cfg(test)]
            hooks: TestHooks::default(),
        }
    }
}

/// Test-only levers: hold the writer between receiving and draining (to build a group
/// deterministically) and make the next fsync fail.
#[cfg(test)]
#[derive(Default)]
pub(super) struct TestHooks {
    pub gate: std::sync::Mutex<()>,
    pub fail_sync: AtomicBool,
    pub fail_write: AtomicBool,
}

/// How the writer stores and retains segments (from [`super::LogConfig`]).
pub(super) struct WriterConfig {
    pub dir: PathBuf,
    pub segment_bytes: u64,
    pub retention_bytes: Option<u64>,
    pub retention_age: Option<Duration>,
    /// Pause between attempts to reopen the log after a failure.
    pub retry: Duration,
    /// How long a group of only detached relaxed records (impressions) waits for more before
    /// it is written (zero: written at once). Their senders then never wake the writer: one
    /// write (and one wake-up) per linger instead of one per request.
    pub relaxed_linger: Duration,
}

/// A segment before the active one.
struct Sealed {
    first_seq: u64,
    len: u64,
    /// Last modified: retention by age deletes segments older than the limit.
    modified: SystemTime,
}

pub(super) struct Writer {
    cfg: WriterConfig,
    fs: Arc<dyn LogFs>,
    file: Box<dyn LogFile>,
    active_first_seq: u64,
    active_len: u64,
    sealed: VecDeque<Sealed>,
    sealed_bytes: u64,
    next_seq: u64,
    /// Highest sequence number written to the file (synced or not); 0 if none.
    written_seq: u64,
    /// Highest sequence number fsynced, and the active segment's length at that sync.
    synced_seq: u64,
    synced_len: u64,
    /// Highest `synced_seq` already recorded in a durability marker.
    marked_seq: u64,
    buf: Vec<u8>,
    failure: Option<Arc<io::Error>>,
    last_retry: Instant,
    shared: Arc<Shared>,
    metrics: Option<LogMetrics>,
    /// When the oldest written-but-unsynced (relaxed) record was written.
    unsynced_since: Option<Instant>,
}

impl Writer {
    pub fn new(
        cfg: WriterConfig,
        fs: Arc<dyn LogFs>,
        recovered: Recovered,
        shared: Arc<Shared>,
        metrics: Option<LogMetrics>,
    ) -> Self {
        let sealed: VecDeque<Sealed> = recovered
            .sealed
            .iter()
            .map(|&(first_seq, len)| Sealed {
                first_seq,
                len,
                modified: fs
                    .modified(&segment_path(&cfg.dir, first_seq))
                    .unwrap_or_else(|_| SystemTime::now()),
            })
            .collect();
        let sealed_bytes = sealed.iter().map(|s| s.len).sum();
        let last = recovered.next_seq - 1;
        let mut writer = Self {
            cfg,
            fs,
            file: recovered.active,
            active_first_seq: recovered.active_first_seq,
            active_len: recovered.active_len,
            sealed,
            sealed_bytes,
            next_seq: recovered.next_seq,
            written_seq: last,
            synced_seq: last,
            synced_len: recovered.active_len,
            marked_seq: 0,
            buf: Vec::new(),
            failure: None,
            last_retry: Instant::now(),
            shared,
            metrics,
            unsynced_since: None,
        };
        writer.shared.durable_seq.store(last, Ordering::Release);
        if let Some(m) = &writer.metrics {
            m.healthy.set(1);
        }
        writer.enforce_retention();
        writer.publish_bytes();
        writer
    }

    /// Serves requests until every sender is gone. Requests still queued at that point
    /// are received and committed first, so dropping the log completes pending writes.
    pub fn run(mut self, rx: Receiver<Request>) {
        let mut group = Vec::new();
        loop {
            // Relaxed records written but not synced bound the wait for the next request.
            if self.failure.is_some() {
                match rx.recv_timeout(self.cfg.retry) {
                    Ok(first) => group.push(first),
                    Err(RecvTimeoutError::Timeout) => {
                        self.retry();
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                }
                self.retry();
                while let Ok(request) = rx.try_recv() {
                    group.push(request);
                }
                self.commit(&mut group);
                continue;
            }
            let first = match self.unsynced_since {
                None => match rx.recv() {
                    Ok(first) => first,
                    Err(_) => break,
                },
                Some(since) => {
                    let wait = RELAXED_SYNC_INTERVAL.saturating_sub(since.elapsed());
                    match rx.recv_timeout(wait) {
                        Ok(first) => first,
                        Err(RecvTimeoutError::Timeout) => {
                            self.sync_relaxed();
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
            };
            #[cfg(test)]
            let shared = Arc::clone(&self.shared);
            #[cfg(test)]
            let gate = shared
                .hooks
                .gate
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let mut bytes = payload_bytes(&first);
            group.push(first);
            drain(&rx, &mut group, &mut bytes);
            if self.should_linger(&group, bytes) {
                self.linger(&rx, &mut group, &mut bytes);
            }
            self.commit(&mut group);
            #[cfg(test)]
            drop(gate);
        }
        // Shutting down: what was written is made durable too.
        self.sync_relaxed();
    }

    /// Only detached relaxed records so far, and room for more: worth waiting for company.
    fn should_linger(&self, group: &[Request], bytes: usize) -> bool {
        !self.cfg.relaxed_linger.is_zero()
            && bytes < MAX_GROUP_BYTES
            && group
                .iter()
                .all(|r| !r.durable && matches!(r.ack, Ack::Detached))
    }

    /// Waits up to `relaxed_linger` for more records, ending early when a request someone
    /// waits for arrives (its sender sets `wake` and unparks this thread), then drains the
    /// queue into `group`. Detached senders do not wake a parked writer: the channel has no
    /// blocked receiver to notify, so their send is a plain enqueue.
    fn linger(&self, rx: &Receiver<Request>, group: &mut Vec<Request>, bytes: &mut usize) {
        // Cleared before the drain: a waited-for request sent before the clear is in the
        // queue (senders set `wake` after queueing), one sent after it sets `wake` again.
        // Closing is seen on the channel itself, not only through `wake`: a shutdown that set
        // `wake` before the clear above would otherwise be lost, and the writer would linger out
        // the whole interval before exiting.
        self.shared.wake.store(false, Ordering::SeqCst);
        let mut closing = drain(rx, group, bytes);
        let deadline = Instant::now() + self.cfg.relaxed_linger;
        while !closing && self.should_linger(group, *bytes) {
            if self.shared.wake.load(Ordering::SeqCst) {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            std::thread::park_timeout(deadline - now);
            closing = drain(rx, group, bytes);
        }
        drain(rx, group, bytes);
    }

    /// Syncs written relaxed records (if any), publishing them as durable.
    fn sync_relaxed(&mut self) {
        if self.unsynced_since.is_none() || self.failure.is_some() {
            return;
        }
        match self.sync() {
            Ok(()) => {
                self.unsynced_since = None;
                self.publish_durable();
            }
            Err(error) => {
                self.stop(error);
            }
        }
    }

    fn publish_durable(&self) {
        self.shared
            .durable_seq
            .store(self.synced_seq, Ordering::Release);
    }

    /// After a write or sync error: fail until [`Self::retry`] reopens the log.
    fn stop(&mut self, error: io::Error) -> Arc<io::Error> {
        tracing::error!(
            %error,
            dir = %self.cfg.dir.display(),
            "event log write failed; retrying every {:?} until the disk recovers",
            self.cfg.retry
        );
        let cause = Arc::new(error);
        self.failure = Some(Arc::clone(&cause));
        *self.shared.failure.lock() = Some(Arc::clone(&cause));
        self.shared.errors.fetch_add(1, Ordering::Relaxed);
        if let Some(m) = &self.metrics {
            m.errors_total.inc();
            m.healthy.set(0);
        }
        self.last_retry = Instant::now();
        cause
    }

    /// Reopens the active segment and cuts it back to the last synced length, at most once
    /// per retry interval. Everything written after the last sync was never acknowledged as
    /// durable, so it is dropped and its sequence numbers are reused.
    fn retry(&mut self) {
        if self.failure.is_none() || self.last_retry.elapsed() < self.cfg.retry {
            return;
        }
        self.last_retry = Instant::now();
        let path = segment_path(&self.cfg.dir, self.active_first_seq);
        // Truncating succeeds even on a disk that is still full, so the log is healthy again
        // only once a probe (a durability marker for what is already synced: replay skips
        // it) has been written and synced too. Otherwise `/readyz` would flap while full.
        let mut probe = Vec::with_capacity(record::HEADER_LEN);
        record::encode_marker(&mut probe, self.synced_seq);
        let reopened = self.fs.open_append(&path).and_then(|mut file| {
            file.set_len(self.synced_len)?;
            file.write_all(&probe)?;
            file.sync_data()?;
            Ok(file)
        });
        match reopened {
            Ok(file) => {
                tracing::info!(dir = %self.cfg.dir.display(), next_seq = self.synced_seq + 1, "event log reopened after a write failure");
                self.file = file;
                self.synced_len += probe.len() as u64;
                self.marked_seq = self.synced_seq;
                self.active_len = self.synced_len;
                self.next_seq = self.synced_seq + 1;
                self.written_seq = self.synced_seq;
                self.unsynced_since = None;
                self.failure = None;
                *self.shared.failure.lock() = None;
                self.publish_durable();
                self.publish_bytes();
                if let Some(m) = &self.metrics {
                    m.healthy.set(1);
                }
            }
            Err(error) => {
                tracing::warn!(%error, dir = %self.cfg.dir.display(), "event log still failing");
            }
        }
    }

    fn commit(&mut self, group: &mut Vec<Request>) {
        if let Some(cause) = &self.failure {
            for request in group.drain(..) {
                request
                    .ack
                    .send(Err(WriteFailure::Stopped(Arc::clone(cause))));
            }
            return;
        }
        match self.write_group(group) {
            Ok((firsts, records)) => {
                if self.unsynced_since.is_none() {
                    self.publish_durable();
                }
                if records > 0 {
                    self.shared.records.fetch_add(records, Ordering::Relaxed);
                    self.shared.group_commits.fetch_add(1, Ordering::Relaxed);
                    if let Some(metrics) = &self.metrics {
                        metrics.records_total.inc_by(records);
                        metrics.group_size.observe(records as f64);
                    }
                    self.publish_bytes();
                }
                // Before acknowledging, so the log is within its limits whenever a caller looks.
                self.enforce_retention();
                for (request, first) in group.drain(..).zip(firsts) {
                    request.ack.send(Ok(first));
                }
            }
            Err(error) => {
                let cause = self.stop(error);
                for request in group.drain(..) {
                    request
                        .ack
                        .send(Err(WriteFailure::Failed(Arc::clone(&cause))));
                }
            }
        }
        if self.buf.capacity() > BUF_KEEP_BYTES {
            self.buf = Vec::with_capacity(BUF_KEEP_BYTES);
        }
    }

    /// Writes and syncs a whole group; returns each request's first sequence number and
    /// the number of records written.
    fn write_group(&mut self, group: &[Request]) -> io::Result<(Vec<u64>, u64)> {
        let mut firsts = Vec::with_capacity(group.len());
        let mut seq = self.next_seq;
        self.buf.clear();
        let has_records = group.iter().any(|r| !r.payloads.as_slice().is_empty());
        if has_records && self.synced_seq > self.marked_seq {
            record::encode_marker(&mut self.buf, self.synced_seq);
            self.marked_seq = self.synced_seq;
        }
        for request in group {
            firsts.push(seq);
            for payload in request.payloads.as_slice() {
                let pending = self.active_len + self.buf.len() as u64;
                if pending > 0 && pending + frame_len(payload.len()) > self.cfg.segment_bytes {
                    self.write_buf(seq - 1)?;
                    self.sync()?;
                    // Synced records before the rotation are durable (if not yet
                    // acknowledged): the sequence continues after them whatever happens next.
                    self.next_seq = seq;
                    self.rotate(seq)?;
                }
                record::encode(&mut self.buf, seq, payload);
                seq += 1;
            }
        }
        let records = seq - self.next_seq;
        if records > 0 {
            self.write_buf(seq - 1)?;
            let durable = group.iter().any(|r| r.durable);
            let overdue = self
                .unsynced_since
                .is_some_and(|t| t.elapsed() >= RELAXED_SYNC_INTERVAL);
            if durable || overdue {
                self.sync()?;
                self.unsynced_since = None;
            } else {
                self.unsynced_since.get_or_insert_with(Instant::now);
            }
        } else if group.iter().any(|r| r.durable) && self.unsynced_since.is_some() {
            // A barrier (empty durable batch) covers the relaxed records before it.
            self.sync()?;
            self.unsynced_since = None;
        }
        self.next_seq = seq;
        Ok((firsts, records))
    }

    /// Writes the encoded frames; `last_seq` is the highest record among them.
    fn write_buf(&mut self, last_seq: u64) -> io::Result<()> {
        #[cfg(test)]
        if self.shared.hooks.fail_write.load(Ordering::Relaxed) {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "injected ENOSPC",
            ));
        }
        if self.buf.is_empty() {
            return Ok(());
        }
        self.file.write_all(&self.buf)?;
        self.active_len += self.buf.len() as u64;
        self.written_seq = self.written_seq.max(last_seq);
        self.buf.clear();
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        #[cfg(test)]
        if self.shared.hooks.fail_sync.load(Ordering::Relaxed) {
            return Err(io::Error::other("injected fsync failure"));
        }
        let start = Instant::now();
        self.file.sync_data()?;
        self.synced_seq = self.written_seq;
        self.synced_len = self.active_len;
        self.shared.fsyncs.fetch_add(1, Ordering::Relaxed);
        if let Some(metrics) = &self.metrics {
            metrics.fsync_seconds.observe(start.elapsed().as_secs_f64());
        }
        Ok(())
    }

    /// Seals the (already synced) active segment and starts `first_seq.log`. The new
    /// directory entry is made durable before anything in it can be acknowledged.
    fn rotate(&mut self, first_seq: u64) -> io::Result<()> {
        let path = segment_path(&self.cfg.dir, first_seq);
        // A leftover of a rotation that failed half-way (no record can be in it: its
        // records would have sequence numbers that were never acknowledged).
        match self.fs.remove(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let file = self
            .fs
            .create_new(&path)
            .and_then(|file| self.fs.sync_dir(&self.cfg.dir).map(|()| file))
            .map_err(|e| io::Error::new(e.kind(), format!("create {}: {e}", path.display())))?;
        self.sealed.push_back(Sealed {
            first_seq: self.active_first_seq,
            len: self.active_len,
            modified: SystemTime::now(),
        });
        self.sealed_bytes += self.active_len;
        self.file = file;
        self.active_first_seq = first_seq;
        self.active_len = 0;
        self.synced_len = 0;
        Ok(())
    }

    /// Deletes the oldest sealed segments while the log is over `retention_bytes` or they
    /// are older than `retention_age`, but never one holding a record at or above the
    /// retention floor (not yet covered by a snapshot), nor the active segment. A failed
    /// delete is logged and retried next time.
    fn enforce_retention(&mut self) {
        if self.cfg.retention_bytes.is_none() && self.cfg.retention_age.is_none() {
            return;
        }
        let floor = self.shared.retain_from.load(Ordering::Acquire);
        let now = SystemTime::now();
        let mut deleted = false;
        while let Some(front) = self.sealed.front() {
            let over_size = self
                .cfg
                .retention_bytes
                .is_some_and(|limit| self.sealed_bytes + self.active_len > limit);
            let too_old = self.cfg.retention_age.is_some_and(|age| {
                now.duration_since(front.modified)
                    .is_ok_and(|elapsed| elapsed > age)
            });
            let next_first = self
                .sealed
                .get(1)
                .map_or(self.active_first_seq, |s| s.first_seq);
            if !(over_size || too_old) || next_first > floor {
                break;
            }
            let (first_seq, len) = (front.first_seq, front.len);
            let path = segment_path(&self.cfg.dir, first_seq);
            match self.fs.remove(&path) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => {
                    tracing::warn!(%error, segment = %path.display(), "retention could not delete segment");
                    break;
                }
            }
            tracing::info!(segment = %path.display(), bytes = len, "retention deleted segment");
            self.sealed.pop_front();
            self.sealed_bytes -= len;
            deleted = true;
        }
        if deleted {
            if let Err(error) = self.fs.sync_dir(&self.cfg.dir) {
                tracing::warn!(%error, "could not sync event log directory after retention");
            }
            self.publish_bytes();
        }
    }

    fn publish_bytes(&self) {
        let total = self.sealed_bytes + self.active_len;
        self.shared.bytes.store(total, Ordering::Relaxed);
        if let Some(metrics) = &self.metrics {
            metrics.bytes.set(i64::try_from(total).unwrap_or(i64::MAX));
        }
    }
}

/// On-disk bytes a request will take (payloads plus frame headers).
/// Moves what is queued into `group`, up to [`MAX_GROUP_BYTES`].
/// Moves queued requests into `group` while it has room; `true` once the log is closing (every
/// sender gone and the queue empty).
fn drain(rx: &Receiver<Request>, group: &mut Vec<Request>, bytes: &mut usize) -> bool {
    while *bytes < MAX_GROUP_BYTES {
        match rx.try_recv() {
            Ok(request) => {
                *bytes += payload_bytes(&request);
                group.push(request);
            }
            Err(TryRecvError::Empty) => return false,
            Err(TryRecvError::Disconnected) => return true,
        }
    }
    false
}

fn payload_bytes(request: &Request) -> usize {
    let payloads = request.payloads.as_slice();
    payloads.iter().map(Vec::len).sum::<usize>() + payloads.len() * record::HEADER_LEN
}
