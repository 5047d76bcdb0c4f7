//! The hook through which a shared store (Redis, in `crate::state`) follows the feedback
//! service: acknowledged feedback is handed over in log order with its sequence numbers, and a
//! post may wait, bounded, until its events have reached the store. The local group-committed
//! log stays the only guarantee behind a 202; a hook never fails or delays an acknowledgement
//! beyond its own bound, and catches up from the log ([`FeedbackService::acknowledged_from`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::events::Record;
use super::log::{LogError, Replay};
use super::service::FeedbackService;

pub trait Replication: Send + Sync {
    /// An acknowledged feedback batch was applied: called in log order, under the service's
    /// apply lock, so it must only queue (never block or do I/O).
    fn applied(&self, seqs: Vec<u64>, records: Vec<Record>);
    /// Waits until the events up to `last_seq` have reached the shared store, or the hook's
    /// own bound has passed, or the store is known to be unavailable.
    fn settle(&self, last_seq: u64) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// What a [`SharedImpressions`] lookup resolves to: the lists found, by impression id.
pub type Fetched<'a> =
    Pin<Box<dyn Future<Output = Vec<(String, super::impressions::Served)>> + Send + 'a>>;

/// Served lists shared by the fleet: feedback naming a list this replica does not hold is
/// looked up here (bounded by the store's own budget) before it is logged.
pub trait SharedImpressions: Send + Sync {
    /// The lists found among `ids` (missing ones are left out; errors give none).
    fn fetch<'a>(&'a self, ids: Vec<String>) -> Fetched<'a>;
}

impl FeedbackService {
    /// Installs the shared served-list store (once; later calls are ignored).
    pub fn set_shared_impressions(&self, store: Arc<dyn SharedImpressions>) {
        let _ = self.shared_impressions.set(store);
    }

    /// Installs the replication hook (once; later calls are ignored).
    pub fn set_replication(&self, hook: Arc<dyn Replication>) {
        let _ = self.replication.set(hook);
    }

    /// Acknowledged records with `seq >= from`, up to the last acknowledged one now (catch-up).
    pub fn acknowledged_from(&self, from: u64) -> Result<Replay, LogError> {
        self.log.replay(from)
    }
}
