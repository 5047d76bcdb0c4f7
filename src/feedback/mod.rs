//! The feedback loop: the durable event log behind `POST /feedback`, the impression log that
//! attributes feedback to what was served (and to the bandit arm that chose it), the online user
//! history, and the export of the log as training data.

mod apply_order;
pub mod catalogue;
mod catalogue_changes;
#[cfg(test)]
mod crash_sim_tests;
pub mod events;
pub mod export;
pub mod history;
pub mod impressions;
pub mod log;
pub mod metrics;
pub mod replication;
#[cfg(test)]
mod restart_tests;
pub mod service;
pub mod signing;
mod snapshot;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackConfig {
    /// Accepted event types.
    pub events: Vec<String>,
    /// Items kept per user in the online history.
    pub history_per_user: usize,
    /// Served lists remembered for attribution, at most (oldest forgotten first).
    pub impressions_capacity: usize,
    /// Memory the served lists may hold, in bytes (oldest forgotten first).
    #[serde(default = "default_impressions_max_bytes")]
    pub impressions_max_bytes: usize,
    /// A served list is forgotten this long after it was served: later feedback on it is
    /// unattributed.
    #[serde(default = "default_impressions_ttl_secs")]
    pub impressions_ttl_secs: u64,
    /// Memory for the online history of users the bundle does not know (least recently used
    /// forgotten first), in bytes.
    #[serde(default = "default_guest_max_bytes")]
    pub history_guest_max_bytes: usize,
    /// A user the bundle does not know is forgotten after this long without an event.
    #[serde(default = "default_guest_ttl_secs")]
    pub history_guest_ttl_secs: u64,
    /// Reward one served list can earn the bandit in all (default: the largest configured
    /// reward, so a list counts at most one success).
    #[serde(default)]
    pub max_credit_per_impression: Option<f64>,
    /// Reward one item of a list can earn (default: the largest configured reward).
    #[serde(default)]
    pub max_credit_per_item: Option<f64>,
    /// Who may send feedback: `open`, `token` (a shared bearer token) or `signed` (each
    /// event carries the `impression_token` its recommendation response returned).
    #[serde(default)]
    pub auth: FeedbackAuth,
    /// The shared token for `auth = "token"` (`Authorization: Bearer …`).
    #[serde(default)]
    pub token: String,
    /// The key for `auth = "signed"`: 32 hex digits (128 bits), the same on every replica.
    #[serde(default)]
    pub signing_key: String,
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

fn default_impressions_max_bytes() -> usize {
    128 << 20
}

fn default_impressions_ttl_secs() -> u64 {
    86_400
}

fn default_guest_max_bytes() -> usize {
    64 << 20
}

fn default_guest_ttl_secs() -> u64 {
    7 * 86_400
}

/// The feedback trust model (README, "Feedback").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackAuth {
    /// Anyone who can reach the port may post feedback; attribution still needs the
    /// server-issued impression id and the user it was served to.
    #[default]
    Open,
    /// Feedback needs `Authorization: Bearer <feedback.token>` (a trusted backend relays it).
    Token,
    /// Every event carries the `impression_token` of the response it refers to: a keyed
    /// MAC (SipHash-2-4-128) of the impression id and the user id, so a client can only report
    /// on lists it was served, under the user it was served to.
    Signed,
}

impl FeedbackConfig {
    /// Checks the settings that cannot be typed: a token or key where the trust model needs
    /// one.
    pub fn validate(&self) -> Result<(), String> {
        match self.auth {
            FeedbackAuth::Open => {}
            FeedbackAuth::Token if self.token.len() < 16 => {
                return Err(
                    "feedback.auth = \"token\" needs feedback.token of at least 16 characters"
                        .into(),
                );
            }
            FeedbackAuth::Token => {}
            FeedbackAuth::Signed => {
                signing::parse_key(&self.signing_key)?;
            }
        }
        for (name, v) in [
            ("max_credit_per_impression", self.max_credit_per_impression),
            ("max_credit_per_item", self.max_credit_per_item),
        ] {
            if let Some(v) = v
                && !(v.is_finite() && v >= 0.0)
            {
                return Err(format!("feedback.{name} must be a finite number >= 0"));
            }
        }
        Ok(())
    }
}
