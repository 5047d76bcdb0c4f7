//! The runtime catalogue's durable half: admin changes are stamped, made durable in the event
//! log (one fsync, like feedback) and only then applied and acknowledged; changes merged from
//! the fleet are logged too, so a restart rebuilds the same change set from the snapshot and
//! the log alone. The serving overlay is derived from this state by the server.

use super::events::Record;
use super::service::{FeedbackError, FeedbackService};
use crate::catalogue::changes::{Limits, validate};
use crate::catalogue::{Change, ChangeSet, Entry, StampClock, StampedChange};
use parking_lot::RwLock;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The change set, its version (bumped whenever it changes) and the clock that stamps new
/// changes.
pub(super) struct CatalogueState {
    set: RwLock<Arc<ChangeSet>>,
    version: AtomicU64,
    clock: StampClock,
    origin: String,
}

impl CatalogueState {
    pub(super) fn new() -> Self {
        Self {
            set: RwLock::new(Arc::new(ChangeSet::default())),
            version: AtomicU64::new(0),
            clock: StampClock::default(),
            origin: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
        }
    }

    /// Applies logged changes (live or in the replay); returns how many changed the set.
    pub(super) fn apply(&self, changes: &[StampedChange]) -> usize {
        let mut guard = self.set.write();
        let set = Arc::make_mut(&mut guard);
        let mut n = 0;
        for c in changes {
            self.clock.observe(&c.stamp);
            n += usize::from(set.apply(&c.change, &c.stamp));
        }
        if n > 0 {
            self.version.fetch_add(1, Ordering::AcqRel);
        }
        n
    }

    /// Whether `item` was added at runtime (it has runtime features).
    pub(super) fn added(&self, item: &str) -> bool {
        let set = self.set.read();
        !set.is_empty() && set.get(item).is_some_and(|e| e.features.is_some())
    }
}

/// What a catalogue request did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CatalogueAck {
    pub accepted: usize,
    /// Whether the catalogue changed (repeating a change does not change it).
    pub changed: bool,
    /// The log position that holds them.
    pub last_seq: u64,
    #[serde(skip)]
    pub stamped: Vec<StampedChange>,
}

impl FeedbackService {
    /// Validates, stamps, makes durable (one fsync), then applies `changes` in log order.
    pub async fn change_catalogue(
        &self,
        changes: Vec<Change>,
    ) -> Result<CatalogueAck, FeedbackError> {
        validate(&changes, Limits::default()).map_err(FeedbackError::Invalid)?;
        if !self.is_ready() {
            return Err(FeedbackError::Replaying);
        }
        let st = &self.changes;
        let stamped: Vec<StampedChange> = changes
            .into_iter()
            .map(|change| StampedChange {
                change,
                stamp: st.clock.next(&st.origin),
            })
            .collect();
        let before = st.version.load(Ordering::Acquire);
        let record = Record::Catalogue {
            changes: stamped.clone(),
        };
        let payload =
            serde_json::to_vec(&record).map_err(|e| FeedbackError::Storage(e.to_string()))?;
        // The same path as feedback: queued in log order, applied once durable, in order.
        let (pending, ticket) = {
            let mut cut = self.cut.lock();
            match self.log.submit_batch(vec![payload]) {
                Ok(pending) => (pending, self.reserve(&mut cut)),
                Err(e) => return Err(FeedbackError::Storage(e.to_string())),
            }
        };
        let last_seq = match pending.await {
            Ok(seqs) => {
                let last = seqs.last().copied().unwrap_or(0);
                self.finish(ticket, Some((seqs, vec![record]))).await?;
                last
            }
            Err(e) => {
                let _ = self.finish(ticket, None).await;
                return Err(FeedbackError::Storage(e.to_string()));
            }
        };
        Ok(CatalogueAck {
            accepted: stamped.len(),
            changed: st.version.load(Ordering::Acquire) != before,
            last_seq,
            stamped,
        })
    }

    /// Merges entries another replica published: those that change the set here are logged
    /// (relaxed, like impressions) and applied, so a restart knows them even without Redis.
    /// Returns how many entries changed the set.
    pub fn merge_catalogue(&self, entries: &[(String, Entry)]) -> usize {
        let current = self.catalogue_snapshot();
        let mut changes = Vec::new();
        for (id, e) in entries {
            let mut probe = current.get(id).cloned().unwrap_or_default();
            if !probe.merge(e) {
                continue;
            }
            let here = current.get(id).cloned().unwrap_or_default();
            if e.features_stamp > here.features_stamp
                && let Some(features) = &e.features
            {
                changes.push(StampedChange {
                    change: Change::Upsert {
                        item_id: id.clone(),
                        features: features.clone(),
                    },
                    stamp: e.features_stamp.clone(),
                });
            }
            if e.status_stamp > here.status_stamp {
                let item_id = id.clone();
                changes.push(StampedChange {
                    change: if e.taken_down {
                        Change::TakeDown { item_id }
                    } else {
                        Change::Restore { item_id }
                    },
                    stamp: e.status_stamp.clone(),
                });
            }
        }
        if changes.is_empty() {
            return 0;
        }
        let n = changes.len();
        let record = Record::Catalogue { changes };
        match serde_json::to_vec(&record) {
            Ok(payload) => {
                let mut cut = self.cut.lock();
                // Not logged (a full queue, a failing disk): not applied either, so the state
                // stays what the log implies; the next sync offers the entries again.
                if self.log.submit_relaxed(payload).is_ok() {
                    self.apply_impression(&mut cut, record);
                } else {
                    return 0;
                }
            }
            Err(e) => tracing::warn!(error = %e, "catalogue changes not serialisable"),
        }
        n
    }

    /// The current change set (cheap: shared until the next change).
    pub fn catalogue_snapshot(&self) -> Arc<ChangeSet> {
        Arc::clone(&self.changes.set.read())
    }

    /// Bumped whenever the change set changes.
    pub fn catalogue_version(&self) -> u64 {
        self.changes.version.load(Ordering::Acquire)
    }

    /// A copy for the snapshot file.
    pub(super) fn catalogue_changes(&self) -> ChangeSet {
        (**self.changes.set.read()).clone()
    }

    /// Installs a snapshot's change set (before the replay).
    pub(super) fn install_catalogue(&self, set: ChangeSet) {
        for e in set.entries.values() {
            self.changes.clock.observe(e.newest());
        }
        *self.changes.set.write() = Arc::new(set);
        self.changes.version.fetch_add(1, Ordering::AcqRel);
    }
}
