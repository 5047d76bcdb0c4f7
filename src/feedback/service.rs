//! The feedback service: appends events to the durable log (acknowledged only after fsync),
//! attributes them to served lists, credits the bandit arm that chose the list and updates the
//! online history. On start it restores all of that from the last snapshot and replays the
//! log after it (`snapshot.rs`); until the replay is done it is not ready and refuses writes.

use super::FeedbackConfig;
use super::events::{ArmRef, FeedbackIn, Record, ServedItem, validate};
use super::history::{InMemoryHistory, UserHistoryStore};
use super::log::fs::{LogFs, RealFs};
use super::log::{EventLog, LogError, LogMetrics};
use super::metrics::FeedbackMetrics;
use super::snapshot::SnapshotFile;
use crate::bandit::{ArmStats, Bandit, BanditConfig, BanditError, BlendWeights, Context};
use crate::pipeline::Strategy;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// What the service needs to remember of a served list.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(super) struct Served {
    arm: Option<ArmRef>,
    items: Vec<String>,
    /// (item, event) pairs already credited: a retried or repeated event earns nothing twice.
    rewarded: rustc_hash::FxHashSet<(String, String)>,
}

/// Bounded request_id → served list map; the oldest entries are forgotten first.
#[derive(Default)]
pub(super) struct Impressions {
    pub map: FxHashMap<String, Served>,
    pub order: VecDeque<String>,
}

impl Impressions {
    pub fn insert(&mut self, rid: String, s: Served, cap: usize) {
        if self.map.insert(rid.clone(), s).is_none() {
            self.order.push_back(rid);
        }
        while self.order.len() > cap.max(1) {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
    }
}

/// The bandit's pick for one request.
#[derive(Debug, Clone)]
pub struct ArmPick {
    pub context: usize,
    pub context_label: String,
    pub arm: usize,
    pub arm_name: String,
    pub weights: BlendWeights,
}

/// The answer to an accepted feedback post.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Ack {
    pub accepted: usize,
    pub attributed: usize,
    pub last_seq: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum FeedbackError {
    /// The client's fault: nothing was written.
    #[error("{0}")]
    Invalid(String),
    /// The log could not make the event durable: nothing was acknowledged.
    #[error("event log: {0}")]
    Storage(String),
    /// Not accepting writes yet (replaying the log after start); retry shortly.
    #[error("feedback state is being rebuilt from the event log")]
    Replaying,
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("event log: {0}")]
    Log(#[from] LogError),
    #[error("bandit: {0}")]
    Bandit(#[from] BanditError),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("opening the feedback service failed: {0}")]
    Task(String),
}

/// Where a restart resumes: what the snapshot restored and where the replay starts.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Resume {
    /// Replay records with seq >= this.
    pub from_seq: u64,
    /// Bandit updates only for records after this (the snapshot holds the earlier ones).
    pub bandit_after: u64,
}

pub(super) use super::apply_order::Cut;

pub struct FeedbackService {
    pub(super) log: EventLog,
    pub bandit: Bandit,
    pub history: Arc<dyn UserHistoryStore>,
    pub(super) impressions: Mutex<Impressions>,
    events: Vec<String>,
    rewards: std::collections::BTreeMap<String, f64>,
    pub(super) capacity: usize,
    pub(super) history_per_user: usize,
    pub(super) snapshot_path: PathBuf,
    metrics: FeedbackMetrics,
    dir: PathBuf,
    pub(super) cut: Mutex<Cut>,
    /// A snapshot waits for in-flight feedback to drain; new feedback waits for it meanwhile.
    pub(super) cut_wanted: AtomicBool,
    pub(super) cut_done: tokio::sync::Notify,
    /// Wakes feedback tasks whose batch another task applied (see `apply_order.rs`).
    pub(super) applied: tokio::sync::Notify,
    pub(super) resume: Resume,
    ready: AtomicBool,
    pub(super) snapshot_interval: std::time::Duration,
    /// A shared store following acknowledged feedback (`replication.rs`); unset = embedded.
    pub(super) replication: std::sync::OnceLock<Arc<dyn super::replication::Replication>>,
}

impl FeedbackService {
    /// Opens (and recovers) the log, restores the bandit from its snapshot and replays the rest.
    /// Its metrics (and the log's) are registered in `registry`.
    pub async fn open(
        fcfg: &FeedbackConfig,
        bcfg: &BanditConfig,
        registry: &prometheus::Registry,
    ) -> Result<Self, OpenError> {
        let (fcfg, bcfg, registry) = (fcfg.clone(), bcfg.clone(), registry.clone());
        tokio::task::spawn_blocking(move || Self::open_blocking(&fcfg, &bcfg, &registry))
            .await
            .map_err(|e| OpenError::Task(e.to_string()))?
    }

    /// Opens the log and restores the snapshot off the runtime's threads; the caller runs
    /// [`Self::replay_pending`] (e.g. after the listener is up, so `/healthz` answers).
    pub async fn open_deferred(
        fcfg: &FeedbackConfig,
        bcfg: &BanditConfig,
        registry: &prometheus::Registry,
    ) -> Result<Self, OpenError> {
        let (fcfg, bcfg, registry) = (fcfg.clone(), bcfg.clone(), registry.clone());
        tokio::task::spawn_blocking(move || {
            Self::open_on(&fcfg, &bcfg, &registry, Arc::new(RealFs))
        })
        .await
        .map_err(|e| OpenError::Task(e.to_string()))?
    }

    /// Opens, restores and replays on the calling thread (blocking).
    pub fn open_blocking(
        fcfg: &FeedbackConfig,
        bcfg: &BanditConfig,
        registry: &prometheus::Registry,
    ) -> Result<Self, OpenError> {
        let svc = Self::open_on(fcfg, bcfg, registry, Arc::new(RealFs))?;
        svc.replay_pending()?;
        Ok(svc)
    }

    /// Opens (and recovers) the log on `fs` and restores the last snapshot, but does not
    /// replay yet: the service is not ready until [`Self::replay_pending`] has run.
    pub fn open_on(
        fcfg: &FeedbackConfig,
        bcfg: &BanditConfig,
        registry: &prometheus::Registry,
        fs: Arc<dyn LogFs>,
    ) -> Result<Self, OpenError> {
        let metrics = FeedbackMetrics::register(registry)?;
        let log_metrics = LogMetrics::register(registry).ok();
        let snapshot_path = fcfg.log.dir.join("bandit.snapshot.json");
        let snapshot = match fs.read(&snapshot_path) {
            Ok(bytes) => match serde_json::from_slice::<SnapshotFile>(&bytes) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, "feedback snapshot unusable; rebuilding from the whole log");
                    None
                }
            },
            Err(_) => None,
        };
        // Retention keeps every record the snapshot does not cover.
        let floor = match &snapshot {
            Some(s) if s.online.is_some() => s.last_seq + 1,
            _ => 1,
        };
        // The replay starts at the floor too: older sealed segments are not re-read at open.
        let (log, report) = EventLog::open_on(fcfg.log.clone(), log_metrics, fs, floor, floor)?;
        if report.truncated_bytes > 0 {
            tracing::warn!(
                truncated_bytes = report.truncated_bytes,
                reason = ?report.truncation_reason,
                records_kept = report.records,
                "event log: torn or corrupt tail truncated to the last good record"
            );
        }
        let mut svc = Self {
            log,
            bandit: Bandit::new(bcfg.clone())?,
            history: Arc::new(InMemoryHistory::new(fcfg.history_per_user)),
            impressions: Mutex::new(Impressions::default()),
            events: fcfg.events.clone(),
            rewards: bcfg.rewards.clone(),
            capacity: fcfg.impressions_capacity,
            history_per_user: fcfg.history_per_user,
            snapshot_path,
            metrics,
            dir: fcfg.log.dir.clone(),
            cut: Mutex::new(Cut::default()),
            cut_wanted: AtomicBool::new(false),
            cut_done: tokio::sync::Notify::new(),
            applied: tokio::sync::Notify::new(),
            resume: Resume::default(),
            ready: AtomicBool::new(false),
            snapshot_interval: std::time::Duration::from_secs(fcfg.snapshot_interval_secs),
            replication: std::sync::OnceLock::new(),
        };
        if let Some(snapshot) = snapshot {
            svc.restore(bcfg, snapshot);
        }
        Ok(svc)
    }

    /// Replays the log after the snapshot, then reports ready. Runs once; while it runs,
    /// feedback is refused with [`FeedbackError::Replaying`] and impressions are not recorded.
    pub fn replay_pending(&self) -> Result<u64, LogError> {
        if self.is_ready() {
            return Ok(0);
        }
        let Resume {
            from_seq,
            bandit_after,
        } = self.resume;
        let mut n = 0;
        for rec in self.log.replay(from_seq)? {
            let (seq, payload) = rec?;
            let Ok(record) = serde_json::from_slice::<Record>(&payload) else {
                tracing::warn!(seq, "event log record is not a known record; skipped");
                continue;
            };
            self.apply(&record, seq > bandit_after);
            n += 1;
        }
        self.ready.store(true, Ordering::Release);
        tracing::info!(
            records = n,
            from_seq,
            "feedback state rebuilt from the snapshot and the event log"
        );
        Ok(n)
    }

    /// True once the replay at start is done.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// The event log accepts appends (false after a disk error until it has reopened).
    pub fn log_healthy(&self) -> bool {
        !self.log.stats().failed
    }

    /// Log statistics (for tests and tools).
    pub fn log_stats(&self) -> super::log::LogStats {
        self.log.stats()
    }

    /// The one place a record changes in-memory state (live and during replay).
    pub(super) fn apply(&self, record: &Record, bandit: bool) -> bool {
        match record {
            Record::Impression {
                request_id,
                arm,
                items,
                ..
            } => {
                if bandit
                    && let Some(a) = arm
                    && let Some(ctx) = Context::from_index(a.context)
                {
                    let _ = self.bandit.record_pull(&ctx, a.arm);
                }
                let served = Served {
                    arm: arm.clone(),
                    items: items.iter().map(|i| i.item_id.clone()).collect(),
                    rewarded: Default::default(),
                };
                self.impressions
                    .lock()
                    .insert(request_id.clone(), served, self.capacity);
                false
            }
            Record::Feedback { event, received_at } => {
                let ts = event.ts.unwrap_or(*received_at);
                let reward = self.rewards.get(&event.event).copied().unwrap_or(0.0);
                // Only positive interactions become history (seen items, session seeds); a mere
                // impression or a dismissal does not.
                if reward > 0.0 {
                    self.history.record(&event.user_id, &event.item_id, ts);
                }
                let (shown, first_credit, arm) = {
                    let mut imps = self.impressions.lock();
                    let Some(served) = imps.map.get_mut(&event.request_id) else {
                        return false;
                    };
                    let shown = served.items.iter().any(|i| i == &event.item_id);
                    let first = shown
                        && served
                            .rewarded
                            .insert((event.item_id.clone(), event.event.clone()));
                    (shown, first, served.arm.clone())
                };
                if bandit
                    && first_credit
                    && reward > 0.0
                    && let Some(a) = &arm
                    && let Some(ctx) = Context::from_index(a.context)
                {
                    let _ = self.bandit.record_reward(&ctx, a.arm, reward);
                    self.metrics
                        .bandit_reward
                        .with_label_values(&[ctx.label().as_str(), a.arm_name.as_str()])
                        .inc_by(reward);
                }
                shown
            }
        }
    }

    /// Applies one live feedback record and counts it; true when attributed.
    pub(super) fn apply_feedback(&self, record: &Record) -> bool {
        if let Record::Feedback { event, .. } = record {
            self.metrics
                .events
                .with_label_values(&[event.event.as_str()])
                .inc();
        }
        let hit = self.apply(record, true);
        self.metrics
            .attribution
            .with_label_values(&[if hit { "attributed" } else { "unattributed" }])
            .inc();
        hit
    }

    /// The bandit's arm for a request context (and the pull is counted).
    pub fn choose_arm(&self, history_len: usize, device: Option<&str>, ts: i64) -> ArmPick {
        let ctx = Context::new(history_len, device, ts, self.bandit.config());
        let arm = self.bandit.choose_next(&ctx);
        let cfg = &self.bandit.arms()[arm.min(self.bandit.arms().len().saturating_sub(1))];
        ArmPick {
            context: ctx.index(),
            context_label: ctx.label(),
            arm,
            arm_name: cfg.name.clone(),
            weights: cfg.weights,
        }
    }

    /// Records a served list (`items` in the order shown). The impression is queued for the log's next group commit without
    /// waiting: nothing was acknowledged to anyone, and the request must not wait on the disk.
    #[allow(clippy::too_many_arguments)]
    pub fn record_impression(
        &self,
        request_id: &str,
        user_id: Option<&str>,
        variant: &str,
        arm: Option<&ArmPick>,
        strategy: Strategy,
        model_version: &str,
        items: Vec<ServedItem>,
    ) {
        let record = Record::Impression {
            request_id: request_id.to_string(),
            user_id: user_id.map(str::to_string),
            variant: variant.to_string(),
            arm: arm.map(|a| ArmRef {
                context: a.context,
                arm: a.arm,
                arm_name: a.arm_name.clone(),
            }),
            strategy: strategy.as_str().to_string(),
            model_version: model_version.to_string(),
            items,
            ts: crate::clock::now_unix(),
        };
        if !self.is_ready() {
            return;
        }
        let payload = match serde_json::to_vec(&record) {
            Ok(payload) => payload,
            Err(e) => {
                tracing::warn!(error = %e, "impression not serialisable");
                return;
            }
        };
        // Queued and applied under the cut lock (log order = apply order), so a snapshot
        // never holds a pull whose record comes after the snapshot's log position.
        let mut cut = self.cut.lock();
        match self.log.submit_relaxed(payload) {
            // Queued now as a relaxed record: it rides with the next group and the next
            // durable fsync (or a timed one), and the request waits for neither. A crash
            // before that sync only loses attribution for this list, never an acknowledged
            // event. A full queue or a failing disk drops it (counted by the log): then it is
            // not applied either, so the state stays what the log implies.
            Ok(_pending) => self.apply_impression(&mut cut, record),
            Err(e) => tracing::debug!(error = %e, "impression not logged"),
        }
    }

    /// Validates, makes durable (one group-committed fsync), then applies. All or nothing. The
    /// write-then-apply step runs in its own task: a client hanging up cannot leave an event on
    /// disk but unapplied in memory.
    pub async fn ingest(self: &Arc<Self>, events: Vec<FeedbackIn>) -> Result<Ack, FeedbackError> {
        use tracing::Instrument as _;
        let this = Arc::clone(self);
        tokio::spawn(
            async move {
                let ack = this.ingest_inner(events).await?;
                // A shared store gets a bounded wait to hold the events before the 202.
                if let Some(hook) = this.replication.get() {
                    hook.settle(ack.last_seq).await;
                }
                Ok(ack)
            }
            .instrument(tracing::Span::current()),
        )
        .await
        .map_err(|e| FeedbackError::Storage(format!("feedback task failed: {e}")))?
    }

    /// [`Self::ingest`] without the spawned task (tests that drive the service directly).
    #[cfg(test)]
    pub(super) async fn ingest_for_test(
        &self,
        events: Vec<FeedbackIn>,
    ) -> Result<Ack, FeedbackError> {
        self.ingest_inner(events).await
    }

    async fn ingest_inner(&self, events: Vec<FeedbackIn>) -> Result<Ack, FeedbackError> {
        for (i, e) in events.iter().enumerate() {
            validate(e, &self.events).map_err(|m| {
                FeedbackError::Invalid(if events.len() > 1 {
                    format!("events[{i}]: {m}")
                } else {
                    m
                })
            })?;
        }
        let received_at = crate::clock::now_unix();
        let records: Vec<Record> = events
            .into_iter()
            .map(|event| Record::Feedback { event, received_at })
            .collect();
        let payloads: Vec<Vec<u8>> = records
            .iter()
            .map(serde_json::to_vec)
            .collect::<Result<_, _>>()
            .map_err(|e| FeedbackError::Storage(e.to_string()))?;
        if !self.is_ready() {
            return Err(FeedbackError::Replaying);
        }
        // A snapshot is taking its cut: wait until it has (about one fsync).
        while self.cut_wanted.load(Ordering::Acquire) {
            let done = self.cut_done.notified();
            if !self.cut_wanted.load(Ordering::Acquire) {
                break;
            }
            done.await;
        }
        let (pending, ticket) = {
            let mut cut = self.cut.lock();
            match self.log.submit_batch(payloads) {
                Ok(pending) => (pending, self.reserve(&mut cut)),
                Err(e) => return Err(FeedbackError::Storage(e.to_string())),
            }
        };
        let accepted = records.len();
        let (last_seq, attributed) = match pending.await {
            Ok(seqs) => {
                let last = seqs.last().copied().unwrap_or(0);
                (last, self.finish(ticket, Some((seqs, records))).await?)
            }
            Err(e) => {
                let _ = self.finish(ticket, None).await;
                return Err(FeedbackError::Storage(e.to_string()));
            }
        };
        Ok(Ack {
            accepted,
            attributed,
            last_seq,
        })
    }

    pub fn bandit_stats(&self) -> Vec<ArmStats> {
        self.bandit.stats()
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Flushes pending writes and, when every handler has finished (`quiescent`), snapshots
    /// the state. After a drain timeout handlers may still be mid-way, so no snapshot is
    /// taken and the next start replays the log after the last periodic one instead.
    pub async fn close(&self, quiescent: bool) {
        let _ = self.log.flush().await;
        if !quiescent || !self.is_ready() {
            return;
        }
        if let Err(e) = self.write_snapshot().await {
            tracing::warn!(error = %e, "feedback snapshot failed; the next start replays more of the log");
        }
    }
}
