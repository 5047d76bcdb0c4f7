//! The feedback state snapshot: bandit statistics, online history and the served lists kept
//! for attribution, with the log position they reflect. Written atomically (temporary file,
//! fsync, rename, directory fsync) so a crash leaves the old snapshot or the new one; a
//! restart restores it and replays only the log after `last_seq`.

use serde::{Deserialize, Serialize};

use crate::bandit::BanditSnapshot;

use super::impressions::Served;

#[derive(Serialize, Deserialize)]
pub(super) struct SnapshotFile {
    /// Every log record with seq <= this is reflected in the state, and no later one.
    pub last_seq: u64,
    pub bandit: BanditSnapshot,
    /// Absent in snapshots written before the online state was snapshotted: the whole log
    /// is then replayed for history and attribution.
    #[serde(default)]
    pub online: Option<OnlineState>,
    /// The runtime catalogue (absent in older snapshots: the log holds all of it).
    #[serde(default)]
    pub catalogue: Option<crate::catalogue::ChangeSet>,
}

#[derive(Serialize, Deserialize, Default)]
pub struct OnlineState {
    /// Each user's recent items, oldest first.
    pub history: super::history::HistoryExport,
    /// Served lists by the hash of their impression id, oldest first. (Snapshots written
    /// before impressions were compact hold `impressions` instead, which is ignored: those
    /// lists are no longer attributable after the upgrade.)
    #[serde(default)]
    pub served: Vec<(u64, Served)>,
}

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::service::{FeedbackService, Resume};
use crate::bandit::{Bandit, BanditConfig};

/// How long a snapshot waits for in-flight feedback before giving up this round.
const CUT_WAIT: Duration = Duration::from_secs(5);

impl FeedbackService {
    /// Restores the state of `snapshot` (called before the replay).
    pub(super) fn restore(&mut self, bcfg: &BanditConfig, snapshot: SnapshotFile) {
        match Bandit::restore(bcfg.clone(), &snapshot.bandit) {
            Ok(bandit) => self.bandit = bandit,
            Err(e) => {
                tracing::warn!(error = %e, "bandit snapshot unusable; rebuilding from the whole log");
                return;
            }
        }
        let Some(online) = snapshot.online else {
            // An older snapshot: the bandit is restored, everything else is replayed.
            self.resume = Resume {
                from_seq: 0,
                bandit_after: snapshot.last_seq,
            };
            return;
        };
        if let Some(set) = snapshot.catalogue {
            self.install_catalogue(set);
        }
        // Installed by the replay, once the catalogue is known (it decides which users are
        // the bundle's and which are guests).
        *self.pending_online.get_mut() = Some(online);
        self.resume = Resume {
            from_seq: snapshot.last_seq + 1,
            bandit_after: snapshot.last_seq,
        };
    }

    /// Installs the snapshot's history and served lists (before the replay of the log).
    pub(super) fn install_online(&self, online: OnlineState) {
        for (user, items) in &online.history {
            let known = self.knows_user(user);
            for (item, ts) in items {
                self.history.record_user(user, item, *ts, known);
            }
        }
        let mut imps = self.impressions.lock();
        imps.restore(online.served);
    }

    /// Takes a consistent cut of the state and writes it with the log position it reflects;
    /// returns that position. Feedback waits for the cut (about one fsync), impressions only
    /// for the copy. Afterwards retention may delete the log up to that position.
    pub async fn write_snapshot(&self) -> Result<u64, String> {
        self.cut_wanted.store(true, Ordering::Release);
        let taken = self.take_cut().await;
        self.cut_wanted.store(false, Ordering::Release);
        self.cut_done.notify_waiters();
        let (mut file, barrier) = taken?;
        let next = barrier.await.map_err(|e| e.to_string())?;
        file.last_seq = next.saturating_sub(1);
        let last_seq = file.last_seq;
        let bytes = serde_json::to_vec(&file).map_err(|e| e.to_string())?;
        let fs = Arc::clone(self.log.fs());
        let path = self.snapshot_path.clone();
        tokio::task::spawn_blocking(move || fs.write_atomic(&path, &bytes))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("write {}: {e}", self.snapshot_path.display()))?;
        self.log.set_retention_floor(last_seq + 1);
        tracing::info!(last_seq, "feedback snapshot written");
        Ok(last_seq)
    }

    /// Waits until no feedback is between its append and its application, then copies the
    /// state and queues a barrier whose position is the cut's.
    async fn take_cut(&self) -> Result<(SnapshotFile, super::log::PendingAppend), String> {
        let start = std::time::Instant::now();
        loop {
            {
                let cut = self.cut.lock();
                if cut.idle() {
                    let served = self.impressions.lock().export();
                    let file = SnapshotFile {
                        last_seq: 0,
                        bandit: self.bandit.snapshot(),
                        online: Some(OnlineState {
                            history: self.history.export().unwrap_or_default(),
                            served,
                        }),
                        catalogue: Some(self.catalogue_changes()),
                    };
                    let barrier = self.log.submit_barrier().map_err(|e| e.to_string())?;
                    return Ok((file, barrier));
                }
            }
            if start.elapsed() > CUT_WAIT {
                return Err("feedback kept arriving; snapshot skipped this round".into());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Snapshots every `feedback.snapshot_interval_secs` until the service is dropped.
    pub async fn run_snapshots(self: Arc<Self>) {
        if self.snapshot_interval.is_zero() {
            return;
        }
        let weak = Arc::downgrade(&self);
        let every = self.snapshot_interval;
        drop(self);
        loop {
            tokio::time::sleep(every).await;
            let Some(svc) = weak.upgrade() else { return };
            if svc.is_ready()
                && let Err(e) = svc.write_snapshot().await
            {
                tracing::warn!(error = %e, "periodic feedback snapshot failed");
            }
        }
    }
}
