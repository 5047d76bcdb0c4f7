//! The feedback service: appends events to the durable log (acknowledged only after fsync),
//! attributes them to served lists (server-issued impression ids, the user they were served to,
//! capped credit), credits the bandit arm that chose the list and updates the online history
//! (catalogue items only; unknown users in a bounded tier). On start it restores all of that
//! from the last snapshot and replays the log after it (`snapshot.rs`); until the replay is
//! done it is not ready and refuses writes.

use super::catalogue::Catalogue;
use super::events::{ArmRef, FeedbackIn, Record, ServedItem, validate};
use super::history::{HistoryBounds, InMemoryHistory, UserHistoryStore};
use super::impressions::{ArmTag, Attribution, CreditCaps, ImpressionBounds, Impressions, Served};
use super::log::fs::LogFs;
use super::log::{EventLog, LogError, LogMetrics};
use super::metrics::FeedbackMetrics;
use super::signing::{IdIssuer, Signer};
use super::snapshot::SnapshotFile;
use super::{FeedbackAuth, FeedbackConfig};
use crate::bandit::{ArmStats, Bandit, BanditConfig, BanditError, BlendWeights, Context};
use crate::pipeline::Strategy;
use parking_lot::Mutex;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// The bandit's pick for one request.
#[derive(Debug, Clone)]
pub struct ArmPick {
    pub context: usize,
    pub context_label: String,
    pub arm: usize,
    pub arm_name: String,
    pub weights: BlendWeights,
    /// Every arm's probability under the policy when it chose (sums to 1).
    pub probabilities: Vec<f64>,
}

impl ArmPick {
    /// The chosen arm's probability.
    pub fn propensity(&self) -> f64 {
        self.probabilities.get(self.arm).copied().unwrap_or(0.0)
    }
}

/// A served list, as the handler reports it.
#[derive(Debug, Clone)]
pub struct ImpressionIn<'a> {
    /// The server-issued impression id ([`FeedbackService::issue_id`]).
    pub id: &'a str,
    pub client_request_id: Option<&'a str>,
    pub user_id: Option<&'a str>,
    pub variant: &'a str,
    pub arm: Option<&'a ArmPick>,
    pub strategy: Strategy,
    pub model_version: &'a str,
    /// In the order shown.
    pub items: Vec<ServedItem>,
}

/// The answer to an accepted feedback post.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Ack {
    pub accepted: usize,
    /// Events attributed to a list that showed the item to this user, for the first time.
    pub attributed: usize,
    /// Events that repeated an already attributed (list, item, event).
    pub duplicates: usize,
    pub last_seq: u64,
}

/// How a batch's events were attributed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub attributed: usize,
    pub duplicates: usize,
}

impl Tally {
    pub(super) fn add(&mut self, a: Attribution) {
        match a {
            Attribution::Attributed { .. } => self.attributed += 1,
            Attribution::Duplicate => self.duplicates += 1,
            _ => {}
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FeedbackError {
    /// The client's fault: nothing was written.
    #[error("{0}")]
    Invalid(String),
    /// The trust model refused the event (`feedback.auth = "signed"`): nothing was written.
    #[error("{0}")]
    Unauthorized(String),
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
    #[error("feedback config: {0}")]
    Config(String),
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

/// What applying one record did (feedback only).
#[derive(Debug, Clone)]
pub(super) struct Applied {
    pub attribution: Attribution,
    /// The variant and arm of the list it was attributed to (or judged against).
    pub variant: Option<String>,
    pub arm: Option<ArmTag>,
    /// Reward credited to the bandit.
    pub credit: f64,
    pub known_item: bool,
    /// An attributed positive event on an item the exposure policy placed.
    pub new_item_click: bool,
}

impl Default for Applied {
    fn default() -> Self {
        Self {
            attribution: Attribution::UnknownImpression,
            variant: None,
            arm: None,
            credit: 0.0,
            known_item: true,
            new_item_click: false,
        }
    }
}

pub struct FeedbackService {
    pub(super) log: EventLog,
    pub bandit: Bandit,
    pub history: Arc<dyn UserHistoryStore>,
    pub(super) impressions: Mutex<Impressions>,
    events: Vec<String>,
    rewards: std::collections::BTreeMap<String, f64>,
    caps: CreditCaps,
    pub(super) snapshot_path: PathBuf,
    metrics: FeedbackMetrics,
    dir: PathBuf,
    issuer: IdIssuer,
    signer: Option<Signer>,
    auth: FeedbackAuth,
    catalogue: OnceLock<Arc<dyn Catalogue>>,
    pub(super) cut: Mutex<Cut>,
    /// A snapshot waits for in-flight feedback to drain; new feedback waits for it meanwhile.
    pub(super) cut_wanted: AtomicBool,
    pub(super) cut_done: tokio::sync::Notify,
    /// Wakes feedback tasks whose batch another task applied (see `apply_order.rs`).
    pub(super) applied: tokio::sync::Notify,
    pub(super) resume: Resume,
    /// The snapshot's history and served lists, until the replay installs them.
    pub(super) pending_online: Mutex<Option<super::snapshot::OnlineState>>,
    ready: AtomicBool,
    pub(super) snapshot_interval: std::time::Duration,
    /// The fleet's served lists (`state.backend = "redis"`); unset = this replica's only.
    pub(super) shared_impressions: OnceLock<Arc<dyn super::replication::SharedImpressions>>,
    /// A shared store following acknowledged feedback (`replication.rs`); unset = embedded.
    pub(super) replication: std::sync::OnceLock<Arc<dyn super::replication::Replication>>,
    /// The runtime catalogue (`catalogue_changes.rs`).
    pub(super) changes: super::catalogue_changes::CatalogueState,
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
            Self::open_on(&fcfg, &bcfg, &registry, fcfg.log.file_layer())
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
        let svc = Self::open_on(fcfg, bcfg, registry, fcfg.log.file_layer())?;
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
        fcfg.validate().map_err(OpenError::Config)?;
        let signer = match fcfg.auth {
            FeedbackAuth::Signed => Some(Signer::new(
                super::signing::parse_key(&fcfg.signing_key).map_err(OpenError::Config)?,
            )),
            _ => None,
        };
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
        let max_reward = bcfg.max_reward();
        let history_bounds = HistoryBounds {
            per_user: fcfg.history_per_user,
            guest_max_bytes: fcfg.history_guest_max_bytes,
            guest_ttl_secs: fcfg.history_guest_ttl_secs,
        };
        let bounds = ImpressionBounds::of(fcfg);
        metrics.set_limits(bounds.max_bytes, history_bounds.guest_max_bytes);
        let mut svc = Self {
            log,
            bandit: Bandit::new(bcfg.clone())?,
            history: Arc::new(InMemoryHistory::with_bounds(history_bounds)),
            impressions: Mutex::new(Impressions::new(bounds)),
            events: fcfg.events.clone(),
            rewards: bcfg.rewards.clone(),
            caps: CreditCaps {
                per_impression: fcfg.max_credit_per_impression.unwrap_or(max_reward),
                per_item: fcfg.max_credit_per_item.unwrap_or(max_reward),
            },
            snapshot_path,
            metrics,
            dir: fcfg.log.dir.clone(),
            issuer: IdIssuer::random(),
            signer,
            auth: fcfg.auth,
            catalogue: OnceLock::new(),
            cut: Mutex::new(Cut::default()),
            cut_wanted: AtomicBool::new(false),
            cut_done: tokio::sync::Notify::new(),
            applied: tokio::sync::Notify::new(),
            resume: Resume::default(),
            pending_online: Mutex::new(None),
            ready: AtomicBool::new(false),
            snapshot_interval: std::time::Duration::from_secs(fcfg.snapshot_interval_secs),
            shared_impressions: OnceLock::new(),
            replication: std::sync::OnceLock::new(),
            changes: super::catalogue_changes::CatalogueState::new(),
        };
        if let Some(snapshot) = snapshot {
            svc.restore(bcfg, snapshot);
        }
        Ok(svc)
    }

    /// Tells the service which items and users exist (call before [`Self::replay_pending`]);
    /// without one every id counts as known. Only the first call takes effect.
    pub fn set_catalogue(&self, catalogue: Arc<dyn Catalogue>) {
        let _ = self.catalogue.set(catalogue);
    }

    /// A fresh impression id for a response (32 hex digits, unique across replicas).
    pub fn issue_id(&self) -> String {
        self.issuer.next_id()
    }

    /// The `impression_token` for a served list under `feedback.auth = "signed"`.
    pub fn impression_token(&self, id: &str, user: Option<&str>) -> Option<String> {
        self.signer
            .as_ref()
            .map(|s| s.token(id, user.unwrap_or("")))
    }

    /// The configured trust model.
    pub fn auth(&self) -> FeedbackAuth {
        self.auth
    }

    /// Replays the log after the snapshot, then reports ready. Runs once; while it runs,
    /// feedback is refused with [`FeedbackError::Replaying`] and impressions are not recorded.
    pub fn replay_pending(&self) -> Result<u64, LogError> {
        if self.is_ready() {
            return Ok(0);
        }
        if let Some(online) = self.pending_online.lock().take() {
            self.install_online(online);
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

    fn knows_item(&self, item: &str) -> bool {
        if self.changes.added(item) {
            return true;
        }
        self.catalogue
            .get()
            .and_then(|c| c.knows_item(item))
            .unwrap_or(true)
    }

    pub(super) fn knows_user(&self, user: &str) -> bool {
        self.catalogue
            .get()
            .and_then(|c| c.knows_user(user))
            .unwrap_or(false)
    }

    /// The one place a record changes in-memory state (live and during replay); returns how a
    /// feedback event was attributed (impressions return `UnknownImpression`, unused).
    pub(super) fn apply(&self, record: &Record, bandit: bool) -> Applied {
        match record {
            Record::Impression {
                request_id,
                user_id,
                variant,
                arm,
                items,
                ts,
                ..
            } => {
                if bandit
                    && let Some(a) = arm
                    && let Some(ctx) = Context::from_index(a.context)
                {
                    let _ = self.bandit.record_pull(&ctx, a.arm);
                }
                let served = Served::shown(
                    user_id.as_deref(),
                    variant,
                    arm.as_ref().map(|a| (a.context, a.arm)),
                    items,
                    *ts,
                );
                let mut imps = self.impressions.lock();
                imps.insert(request_id, served);
                Applied::default()
            }
            Record::ImpressionImport { request_id, served } => {
                let mut imps = self.impressions.lock();
                imps.insert(request_id, served.clone());
                Applied::default()
            }
            Record::Catalogue { changes } => {
                self.changes.apply(changes);
                Applied::default()
            }
            Record::Feedback { event, received_at } => {
                // Event times in the future are the receive time: the online history orders
                // and expires by them.
                let ts = event.ts.unwrap_or(*received_at).min(*received_at);
                let reward = self.rewards.get(&event.event).copied().unwrap_or(0.0);
                let known_item = self.knows_item(&event.item_id);
                // Only positive interactions with catalogue items become history (seen items,
                // session seeds); a mere impression, a dismissal or an unknown item does not.
                if reward > 0.0 && known_item {
                    let known_user = self.knows_user(&event.user_id);
                    self.history
                        .record_user(&event.user_id, &event.item_id, ts, known_user);
                }
                let (attribution, origin) = self.impressions.lock().attribute(
                    &event.request_id,
                    &event.user_id,
                    &event.item_id,
                    &event.event,
                    reward,
                    self.caps,
                );
                let credit = match attribution {
                    Attribution::Attributed { credit } => credit,
                    _ => 0.0,
                };
                let exposure = origin.as_ref().is_some_and(|o| o.exposure);
                let (variant, arm) = origin.map(|o| (o.variant, o.arm)).unzip();
                let arm = arm.flatten();
                if bandit
                    && credit > 0.0
                    && let Some(a) = arm
                    && let Some(ctx) = Context::from_index(usize::from(a.context))
                {
                    let _ = self.bandit.record_reward(&ctx, usize::from(a.arm), credit);
                }
                Applied {
                    new_item_click: exposure && reward > 0.0 && attribution.is_attributed(),
                    attribution,
                    variant,
                    arm,
                    credit,
                    known_item,
                }
            }
        }
    }

    fn arm_name(&self, arm: Option<ArmTag>) -> &str {
        arm.and_then(|a| self.bandit.arms().get(usize::from(a.arm)))
            .map_or("none", |a| a.name.as_str())
    }

    /// Applies one live feedback record and counts it.
    pub(super) fn apply_feedback(&self, record: &Record) -> Attribution {
        let applied = self.apply(record, true);
        let Record::Feedback { event, .. } = record else {
            return applied.attribution;
        };
        let m = &self.metrics;
        let variant = m.variant_label(applied.variant.as_deref());
        m.events
            .with_label_values(&[event.event.as_str(), variant])
            .inc();
        m.attribution
            .with_label_values(&[applied.attribution.label(), variant])
            .inc();
        if !applied.known_item {
            m.unknown_items.inc();
        }
        if applied.new_item_click {
            m.new_item_clicks.with_label_values(&[variant]).inc();
        }
        if applied.credit > 0.0 {
            let arm = self.arm_name(applied.arm);
            m.reward
                .with_label_values(&[variant, arm])
                .inc_by(applied.credit);
            if let Some(ctx) = applied
                .arm
                .and_then(|a| Context::from_index(usize::from(a.context)))
            {
                m.bandit_reward
                    .with_label_values(&[ctx.label().as_str(), arm])
                    .inc_by(applied.credit);
            }
        }
        applied.attribution
    }

    /// Refreshes the gauges of the bounded stores (called before a metrics scrape).
    pub fn refresh_gauges(&self) {
        let (len, bytes, evicted) = {
            let imps = self.impressions.lock();
            (imps.len(), imps.bytes(), imps.evicted())
        };
        self.metrics
            .set_usage(len, bytes, evicted, self.history.usage());
    }

    /// The bandit's arm for a request context (and the pull is counted), with every arm's
    /// probability for the impression's propensity.
    pub fn choose_arm(&self, history_len: usize, device: Option<&str>, ts: i64) -> ArmPick {
        let ctx = Context::new(history_len, device, ts, self.bandit.config());
        let choice = self.bandit.choose_next_with_probabilities(&ctx);
        let arms = self.bandit.arms();
        let cfg = &arms[choice.arm.min(arms.len().saturating_sub(1))];
        ArmPick {
            context: ctx.index(),
            context_label: ctx.label(),
            arm: choice.arm,
            arm_name: cfg.name.clone(),
            weights: cfg.weights,
            probabilities: choice.probabilities,
        }
    }

    /// Records a served list. The impression is queued for the log's next group commit without
    /// waiting: nothing was acknowledged to anyone, and the request must not wait on the disk.
    pub fn record_impression(&self, imp: ImpressionIn<'_>) {
        let (propensity, arm_probabilities) = match imp.arm {
            Some(a) => (Some(a.propensity()), Some(a.probabilities.clone())),
            // A fixed variant serves its list with certainty.
            None => (Some(1.0), None),
        };
        let record = Record::Impression {
            request_id: imp.id.to_string(),
            client_request_id: imp.client_request_id.map(str::to_string),
            user_id: imp.user_id.map(str::to_string),
            variant: imp.variant.to_string(),
            arm: imp.arm.map(|a| ArmRef {
                context: a.context,
                arm: a.arm,
                arm_name: a.arm_name.clone(),
            }),
            propensity,
            arm_probabilities,
            strategy: imp.strategy.as_str().to_string(),
            model_version: imp.model_version.to_string(),
            items: imp.items,
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
        match self.log.queue_relaxed(payload) {
            // Queued now as a detached relaxed record: it rides with the next group and the
            // next durable fsync (or a timed one), and the request waits for neither. A crash
            // before that sync only loses attribution for this list, never an acknowledged
            // event. A full queue or a failing disk drops it (counted by the log): then it is
            // not applied either, so the state stays what the log implies.
            Ok(()) => self.apply_impression(&mut cut, record),
            Err(e) => tracing::debug!(error = %e, "impression not logged"),
        }
    }

    /// The compact form of a served list, as the shared store keeps it.
    pub fn served_for(&self, imp: &ImpressionIn<'_>) -> Served {
        Served::shown(
            imp.user_id,
            imp.variant,
            imp.arm.map(|a| (a.context, a.arm)),
            &imp.items,
            crate::clock::now_unix(),
        )
    }

    /// Lists the events name that this replica does not hold, read from the fleet's store.
    async fn import_shared(&self, events: &[FeedbackIn]) -> Vec<Record> {
        let Some(shared) = self.shared_impressions.get() else {
            return Vec::new();
        };
        let mut missing: Vec<String> = {
            let imps = self.impressions.lock();
            events
                .iter()
                .filter(|e| !imps.contains(&e.request_id))
                .map(|e| e.request_id.clone())
                .collect()
        };
        missing.sort();
        missing.dedup();
        if missing.is_empty() {
            return Vec::new();
        }
        shared
            .fetch(missing)
            .await
            .into_iter()
            .map(|(request_id, served)| Record::ImpressionImport { request_id, served })
            .collect()
    }

    /// Under `feedback.auth = "signed"`: every event carries the token of the list it names,
    /// issued for its user (or for an anonymous list).
    fn check_tokens(&self, events: &[FeedbackIn]) -> Result<(), FeedbackError> {
        let Some(signer) = &self.signer else {
            return Ok(());
        };
        for (i, e) in events.iter().enumerate() {
            let ok = e.impression_token.as_deref().is_some_and(|t| {
                signer.verify(&e.request_id, &e.user_id, t) || signer.verify(&e.request_id, "", t)
            });
            if !ok {
                let at = if events.len() > 1 {
                    format!("events[{i}]: ")
                } else {
                    String::new()
                };
                return Err(FeedbackError::Unauthorized(format!(
                    "{at}impression_token missing or not valid for this request_id and user_id"
                )));
            }
        }
        Ok(())
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
        self.check_tokens(&events)?;
        let imports = self.import_shared(&events).await;
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
            // Lists read from the fleet go into the log (and the state) just before the
            // feedback naming them.
            for record in imports {
                if let Ok(payload) = serde_json::to_vec(&record)
                    && self.log.submit_relaxed(payload).is_ok()
                {
                    self.apply_impression(&mut cut, record);
                }
            }
            match self.log.submit_batch(payloads) {
                Ok(pending) => (pending, self.reserve(&mut cut)),
                Err(e) => return Err(FeedbackError::Storage(e.to_string())),
            }
        };
        let accepted = records.len();
        let (last_seq, tally) = match pending.await {
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
            attributed: tally.attributed,
            duplicates: tally.duplicates,
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
