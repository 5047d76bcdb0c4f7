//! The feedback loop: the durable event log behind `POST /feedback`, the impression log that
//! attributes feedback to what was served (and to the bandit arm that chose it), the online user
//! history, and the export of the log as training data.

mod apply_order;
#[cfg(test)]
mod crash_sim_tests;
pub mod events;
pub mod export;
pub mod history;
pub mod log;
pub mod metrics;
pub mod replication;
#[cfg(test)]
mod restart_tests;
pub mod service;
mod snapshot;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackConfig {
    /// Accepted event types.
    pub events: Vec<String>,
    /// Items kept per user in the online history.
    pub history_per_user: usize,
    /// Served lists remembered for attribution (oldest forgotten first).
    pub impressions_capacity: usize,
    /// Largest `/feedback/batch`.
    pub max_batch: usize,
    /// Seconds between snapshots of the bandit and the online state (history, served lists),
    /// so a restart replays only the log after the last one; 0 snapshots only at shutdown.
    #[serde(default = "default_snapshot_interval_secs")]
    pub snapshot_interval_secs: u64,
    pub log: log::LogConfig,
}

fn default_snapshot_interval_secs() -> u64 {
    60
}
