//! The feedback service: appends events to the durable log (acknowledged only after fsync),
//! attributes them to served lists, credits the bandit arm that chose the list and updates the
//! online history. On start it rebuilds all of that from a bandit snapshot plus the log.

use super::FeedbackConfig;
use super::events::{ArmRef, FeedbackIn, Record, ServedItem, validate};
use super::history::{InMemoryHistory, UserHistoryStore};
use super::log::{EventLog, LogError, LogMetrics};
use super::metrics::FeedbackMetrics;
use crate::bandit::{
    ArmStats, Bandit, BanditConfig, BanditError, BanditSnapshot, BlendWeights, Context,
};
use crate::pipeline::Strategy;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;

/// What the service needs to remember of a served list.
#[derive(Debug, Clone)]
struct Served {
    arm: Option<ArmRef>,
    items: Vec<String>,
    /// (item, event) pairs already credited: a retried or repeated event earns nothing twice.
    rewarded: rustc_hash::FxHashSet<(String, String)>,
}

/// Bounded request_id → served list map; the oldest entries are forgotten first.
#[derive(Default)]
struct Impressions {
    map: FxHashMap<String, Served>,
    order: VecDeque<String>,
}

impl Impressions {
    fn insert(&mut self, rid: String, s: Served, cap: usize) {
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

#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    /// Every log record with seq <= this is reflected in `bandit`.
    last_seq: u64,
    bandit: BanditSnapshot,
}

pub struct FeedbackService {
    log: EventLog,
    pub bandit: Bandit,
    pub history: Arc<dyn UserHistoryStore>,
    impressions: Mutex<Impressions>,
    events: Vec<String>,
    rewards: std::collections::BTreeMap<String, f64>,
    capacity: usize,
    snapshot_path: PathBuf,
    metrics: FeedbackMetrics,
    dir: PathBuf,
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

    pub fn open_blocking(
        fcfg: &FeedbackConfig,
        bcfg: &BanditConfig,
        registry: &prometheus::Registry,
    ) -> Result<Self, OpenError> {
        let metrics = FeedbackMetrics::register(registry)?;
        let log_metrics = LogMetrics::register(registry).ok();
        let (log, report) = EventLog::open(fcfg.log.clone(), log_metrics)?;
        if report.truncated_bytes > 0 {
            tracing::warn!(
                truncated_bytes = report.truncated_bytes,
                reason = ?report.truncation_reason,
                records_kept = report.records,
                "event log: torn or corrupt tail truncated to the last good record"
            );
        }
        let snapshot_path = fcfg.log.dir.join("bandit.snapshot.json");
        let (bandit, snap_seq) = match std::fs::read(&snapshot_path) {
            Ok(bytes) => match serde_json::from_slice::<SnapshotFile>(&bytes)
                .map_err(|e| e.to_string())
                .and_then(|s| {
                    Bandit::restore(bcfg.clone(), &s.bandit)
                        .map(|b| (b, s.last_seq))
                        .map_err(|e| e.to_string())
                }) {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "bandit snapshot unusable; rebuilding from the whole log");
                    (Bandit::new(bcfg.clone())?, 0)
                }
            },
            Err(_) => (Bandit::new(bcfg.clone())?, 0),
        };
        let svc = Self {
            log,
            bandit,
            history: Arc::new(InMemoryHistory::new(fcfg.history_per_user)),
            impressions: Mutex::new(Impressions::default()),
            events: fcfg.events.clone(),
            rewards: bcfg.rewards.clone(),
            capacity: fcfg.impressions_capacity,
            snapshot_path,
            metrics,
            dir: fcfg.log.dir.clone(),
        };
        let replayed = svc.replay(snap_seq)?;
        tracing::info!(
            records = replayed,
            snapshot_seq = snap_seq,
            "feedback state rebuilt from the event log"
        );
        Ok(svc)
    }

    /// Applies every log record: impressions and history always, bandit updates only after `snap_seq`.
    fn replay(&self, snap_seq: u64) -> Result<u64, LogError> {
        let mut n = 0;
        for rec in self.log.replay(0)? {
            let (seq, payload) = rec?;
            let Ok(record) = serde_json::from_slice::<Record>(&payload) else {
                tracing::warn!(seq, "event log record is not a known record; skipped");
                continue;
            };
            self.apply(&record, seq > snap_seq);
            n += 1;
        }
        Ok(n)
    }

    /// The one place a record changes in-memory state (live and during replay).
    fn apply(&self, record: &Record, bandit: bool) -> bool {
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
        let queued = serde_json::to_vec(&record);
        // Applied after it is queued (log order), so a snapshot never holds a pull whose record
        // could come after the snapshot's log position.
        let queued = queued.map(|payload| self.log.submit_relaxed(payload));
        self.apply(&record, true);
        match queued {
            // Queued now (log order = call order) as a relaxed record: it rides with the next
            // group and the next durable fsync (or a timed one), and the request waits for
            // neither. A crash before that sync only loses attribution for this list, never an
            // acknowledged event. A write failure is logged by the writer (and stops it).
            Ok(Ok(_pending)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "impression not logged"),
            Err(e) => tracing::warn!(error = %e, "impression not serialisable"),
        }
    }

    /// Validates, makes durable (one group-committed fsync), then applies. All or nothing. The
    /// write-then-apply step runs in its own task: a client hanging up cannot leave an event on
    /// disk but unapplied in memory.
    pub async fn ingest(self: &Arc<Self>, events: Vec<FeedbackIn>) -> Result<Ack, FeedbackError> {
        use tracing::Instrument as _;
        let this = Arc::clone(self);
        tokio::spawn(
            async move { this.ingest_inner(events).await }.instrument(tracing::Span::current()),
        )
        .await
        .map_err(|e| FeedbackError::Storage(format!("feedback task failed: {e}")))?
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
        let seqs = self
            .log
            .append_batch(payloads)
            .await
            .map_err(|e| FeedbackError::Storage(e.to_string()))?;
        let mut attributed = 0;
        for r in &records {
            if let Record::Feedback { event, .. } = r {
                self.metrics
                    .events
                    .with_label_values(&[event.event.as_str()])
                    .inc();
            }
            let hit = self.apply(r, true);
            attributed += usize::from(hit);
            self.metrics
                .attribution
                .with_label_values(&[if hit { "attributed" } else { "unattributed" }])
                .inc();
        }
        Ok(Ack {
            accepted: records.len(),
            attributed,
            last_seq: seqs.last().copied().unwrap_or(0),
        })
    }

    /// Writes the bandit state with the log position it reflects (atomically, via rename).
    /// Called at clean shutdown, after every queued write is durable, so the in-memory state is
    /// exactly the log's; after a crash the log is replayed from the last snapshot instead.
    pub fn write_snapshot(&self) -> Result<(), String> {
        let Some(last_seq) = self.log.stats().durable_seq else {
            return Ok(());
        };
        let file = SnapshotFile {
            last_seq,
            bandit: self.bandit.snapshot(),
        };
        let tmp = self.snapshot_path.with_extension("tmp");
        let bytes = serde_json::to_vec(&file).map_err(|e| e.to_string())?;
        std::fs::write(&tmp, bytes).map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, &self.snapshot_path).map_err(|e| e.to_string())
    }

    pub fn bandit_stats(&self) -> Vec<ArmStats> {
        self.bandit.stats()
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Flushes pending writes and, when every handler has finished (`quiescent`), snapshots the
    /// bandit. After a drain timeout handlers may still be mid-way, so no snapshot is taken and
    /// the next start replays the log instead.
    pub async fn close(&self, quiescent: bool) {
        let _ = self.log.flush().await;
        if !quiescent {
            return;
        }
        if let Err(e) = self.write_snapshot() {
            tracing::warn!(error = %e, "bandit snapshot failed; the next start replays the log");
        }
    }
}
