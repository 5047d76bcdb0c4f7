//! Applies records to the in-memory state in log order. Appends are queued under one lock
//! (so their order there is their order in the log), but feedback can only be applied once
//! its fsync has returned, and concurrent batches wake up in any order. Each append takes a
//! slot in a queue; a slot is applied once every slot before it has been, by whichever task
//! gets there first. So the live state is always what a replay of the log up to some
//! position gives (a snapshot's cut is a moment when the queue is empty), which is what
//! makes "restart = snapshot + replay" equal to the state before the restart.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use super::events::Record;
use super::service::{FeedbackError, FeedbackService, Tally};

pub(super) enum Slot {
    /// Queued behind pending feedback; applied when its turn comes.
    Impression(Box<Record>),
    /// Feedback whose fsync has not returned yet.
    Pending,
    /// Feedback made durable (with its sequence numbers), to apply in its turn.
    Done(Vec<u64>, Vec<Record>),
    /// Feedback that was not made durable: skipped.
    Failed,
}

/// The apply queue; lives under the service's cut lock.
#[derive(Default)]
pub(super) struct Cut {
    slots: VecDeque<(u64, Slot)>,
    next_ticket: u64,
    /// Outcomes of applied feedback batches, until their task collects them.
    results: FxHashMap<u64, Tally>,
}

impl Cut {
    /// Nothing is between its append and its application.
    pub fn idle(&self) -> bool {
        self.slots.is_empty()
    }
}

impl FeedbackService {
    /// An impression was queued in the log: apply now, or after the feedback ahead of it.
    pub(super) fn apply_impression(&self, cut: &mut Cut, record: Record) {
        if cut.slots.is_empty() {
            self.apply(&record, true);
        } else {
            let ticket = cut.next_ticket;
            cut.next_ticket += 1;
            cut.slots
                .push_back((ticket, Slot::Impression(Box::new(record))));
        }
    }

    /// A feedback batch was queued in the log; returns its ticket.
    pub(super) fn reserve(&self, cut: &mut Cut) -> u64 {
        let ticket = cut.next_ticket;
        cut.next_ticket += 1;
        cut.slots.push_back((ticket, Slot::Pending));
        ticket
    }

    /// The batch's fsync returned (`records` is `None` if it failed): apply what is due and
    /// wait for this batch's turn; returns how its events were attributed.
    pub(super) async fn finish(
        &self,
        ticket: u64,
        records: Option<(Vec<u64>, Vec<Record>)>,
    ) -> Result<Tally, FeedbackError> {
        let failed = records.is_none();
        {
            let mut cut = self.cut.lock();
            if let Some((_, slot)) = cut.slots.iter_mut().find(|(t, _)| *t == ticket) {
                *slot = records.map_or(Slot::Failed, |(seqs, r)| Slot::Done(seqs, r));
            }
            self.drain(&mut cut);
            if failed {
                return Err(FeedbackError::Storage("not made durable".into()));
            }
            if let Some(attributed) = cut.results.remove(&ticket) {
                return Ok(attributed);
            }
        }
        loop {
            let applied = self.applied.notified();
            if let Some(attributed) = self.cut.lock().results.remove(&ticket) {
                return Ok(attributed);
            }
            applied.await;
        }
    }

    /// Applies slots from the front until one is still pending.
    fn drain(&self, cut: &mut Cut) {
        let mut delivered = false;
        while let Some((ticket, slot)) = cut.slots.pop_front() {
            match slot {
                Slot::Pending => {
                    cut.slots.push_front((ticket, Slot::Pending));
                    break;
                }
                Slot::Impression(record) => {
                    self.apply(&record, true);
                }
                Slot::Done(seqs, records) => {
                    let mut tally = Tally::default();
                    for r in &records {
                        tally.add(self.apply_feedback(r));
                    }
                    cut.results.insert(ticket, tally);
                    // In log order, so a shared store sees the same order as the log.
                    if let Some(hook) = self.replication.get() {
                        hook.applied(seqs, records);
                    }
                    delivered = true;
                }
                Slot::Failed => {}
            }
        }
        if delivered {
            self.applied.notify_waiters();
        }
    }
}
