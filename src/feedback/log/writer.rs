//! The single writer thread: owns the active segment, turns everything queued into one
//! write and ONE `fdatasync` (group commit), and only then acknowledges. Relaxed records
//! (impressions: never acknowledged to a client) are written with the next group but do not
//! force an fsync of their own: the next durable group's sync covers them, or a sync at most
//! [`RELAXED_SYNC_INTERVAL`] after they were written. It must never
//! acknowledge a record that is not durable, and after any write or sync error it stops
//! accepting records for good (the page cache state is unknown; a restart re-runs recovery).

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
#[cfg(test)]
use std::sync::atomic::AtomicBool;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use tokio::sync::oneshot;

use super::record::{self, frame_len};
use super::recovery::Recovered;
use super::segment::{segment_path, sync_dir};
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
    /// An earlier group hit the error; the writer accepts nothing any more.
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
#[derive(Default)]
pub(super) struct Shared {
    fsyncs: AtomicU64,
    group_commits: AtomicU64,
    records: AtomicU64,
    bytes: AtomicU64,
    /// Highest acknowledged sequence number; 0 while the log is empty.
    durable_seq: AtomicU64,
    /// Set once, by the first failed write or sync.
    failure: OnceLock<Arc<io::Error>>,
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
            failed: self.failure.get().is_some(),
        }
    }

    /// The error that stopped the writer, if any.
    pub fn failure(&self) -> Option<Arc<io::Error>> {
        self.failure.get().cloned()
    }
}

/// Test-only levers: hold the writer between receiving and draining (to build a group
/// deterministically) and make the next fsync fail.
#[cfg(test)]
#[derive(Default)]
pub(super) struct TestHooks {
    pub gate: std::sync::Mutex<()>,
    pub fail_sync: AtomicBool,
}

pub(super) struct Writer {
    dir: PathBuf,
    segment_bytes: u64,
    retention_bytes: Option<u64>,
    file: File,
    active_first_seq: u64,
    active_len: u64,
    sealed: VecDeque<(u64, u64)>,
    sealed_bytes: u64,
    next_seq: u64,
    buf: Vec<u8>,
    failure: Option<Arc<io::Error>>,
    shared: Arc<Shared>,
    metrics: Option<LogMetrics>,
    /// When the oldest written-but-unsynced (relaxed) record was written.
    unsynced_since: Option<Instant>,
}

impl Writer {
    pub fn new(
        dir: PathBuf,
        segment_bytes: u64,
        retention_bytes: Option<u64>,
        recovered: Recovered,
        shared: Arc<Shared>,
        metrics: Option<LogMetrics>,
    ) -> Self {
        let sealed_bytes = recovered.sealed.iter().map(|&(_, len)| len).sum();
        let mut writer = Self {
            dir,
            segment_bytes,
            retention_bytes,
            file: recovered.active,
            active_first_seq: recovered.active_first_seq,
            active_len: recovered.active_len,
            sealed: recovered.sealed.into(),
            sealed_bytes,
            next_seq: recovered.next_seq,
            buf: Vec::new(),
            failure: None,
            shared,
            metrics,
            unsynced_since: None,
        };
        writer
            .shared
            .durable_seq
            .store(writer.next_seq - 1, Ordering::Release);
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
            while bytes < MAX_GROUP_BYTES {
                match rx.try_recv() {
                    Ok(request) => {
                        bytes += payload_bytes(&request);
                        group.push(request);
                    }
                    Err(_) => break,
                }
            }
            self.commit(&mut group);
            #[cfg(test)]
            drop(gate);
            self.enforce_retention();
        }
        // Shutting down: what was written is made durable too.
        self.sync_relaxed();
    }

    /// Syncs written relaxed records (if any), publishing them as durable.
    fn sync_relaxed(&mut self) {
        if self.unsynced_since.is_none() || self.failure.is_some() {
            return;
        }
        match self.sync() {
            Ok(()) => {
                self.unsynced_since = None;
                self.shared
                    .durable_seq
                    .store(self.next_seq - 1, Ordering::Release);
            }
            Err(error) => {
                self.stop(error);
            }
        }
    }

    /// After a write or sync error: the writer accepts nothing more (see the module docs).
    fn stop(&mut self, error: io::Error) -> Arc<io::Error> {
        tracing::error!(
            %error,
            dir = %self.dir.display(),
            "event log write failed; log stops accepting records until restart"
        );
        let cause = Arc::new(error);
        self.failure = Some(Arc::clone(&cause));
        let _ = self.shared.failure.set(Arc::clone(&cause));
        cause
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
                    self.shared
                        .durable_seq
                        .store(self.next_seq - 1, Ordering::Release);
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
        for request in group {
            firsts.push(seq);
            for payload in request.payloads.as_slice() {
                let pending = self.active_len + self.buf.len() as u64;
                if pending > 0 && pending + frame_len(payload.len()) > self.segment_bytes {
                    self.write_buf()?;
                    self.sync()?;
                    self.rotate(seq)?;
                }
                record::encode(&mut self.buf, seq, payload);
                seq += 1;
            }
        }
        let records = seq - self.next_seq;
        if records > 0 {
            self.write_buf()?;
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

    fn write_buf(&mut self) -> io::Result<()> {
        self.file.write_all(&self.buf)?;
        self.active_len += self.buf.len() as u64;
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
        self.shared.fsyncs.fetch_add(1, Ordering::Relaxed);
        if let Some(metrics) = &self.metrics {
            metrics.fsync_seconds.observe(start.elapsed().as_secs_f64());
        }
        Ok(())
    }

    /// Seals the (already synced) active segment and starts `first_seq.log`. The new
    /// directory entry is made durable before anything in it can be acknowledged.
    fn rotate(&mut self, first_seq: u64) -> io::Result<()> {
        let path = segment_path(&self.dir, first_seq);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|file| sync_dir(&self.dir).map(|()| file))
            .map_err(|e| io::Error::new(e.kind(), format!("create {}: {e}", path.display())))?;
        self.sealed
            .push_back((self.active_first_seq, self.active_len));
        self.sealed_bytes += self.active_len;
        self.file = file;
        self.active_first_seq = first_seq;
        self.active_len = 0;
        Ok(())
    }

    /// Deletes the oldest sealed segments while the log is over `retention_bytes`. The
    /// active segment is never deleted. A failed delete is logged and retried next time.
    fn enforce_retention(&mut self) {
        let Some(limit) = self.retention_bytes else {
            return;
        };
        let mut deleted = false;
        while self.sealed_bytes + self.active_len > limit {
            let Some(&(first_seq, len)) = self.sealed.front() else {
                break;
            };
            let path = segment_path(&self.dir, first_seq);
            match fs::remove_file(&path) {
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
            if let Err(error) = sync_dir(&self.dir) {
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
fn payload_bytes(request: &Request) -> usize {
    let payloads = request.payloads.as_slice();
    payloads.iter().map(Vec::len).sum::<usize>() + payloads.len() * record::HEADER_LEN
}
