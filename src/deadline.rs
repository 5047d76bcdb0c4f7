//! The time a request must be answered by, carried with the request through every stage and down
//! into the searches (a source checks it every few thousand items and stops with what it has).
//! It sits at the bottom of the stack so that retrieval, ranking and the pipeline share one type.
//! Offline callers (training labels, evaluation) pass [`Deadline::NONE`]: every stage runs to
//! completion and no budget applies.

use std::time::{Duration, Instant};

/// An instant a piece of work must finish by, or none (offline).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deadline {
    at: Option<Instant>,
}

impl Deadline {
    /// No deadline: offline work, where completeness beats latency.
    pub const NONE: Deadline = Deadline { at: None };

    /// `budget` from now.
    pub fn after(budget: Duration) -> Self {
        Self {
            at: Instant::now().checked_add(budget),
        }
    }

    pub fn at(instant: Instant) -> Self {
        Self { at: Some(instant) }
    }

    /// Whether budgets apply at all (false offline).
    pub fn is_bounded(self) -> bool {
        self.at.is_some()
    }

    pub fn instant(self) -> Option<Instant> {
        self.at
    }

    /// Whether the deadline has passed (never, offline).
    pub fn expired(self) -> bool {
        self.at.is_some_and(|t| Instant::now() >= t)
    }

    /// A stage's own deadline: `start + budget`, but never later than this one. Offline stays
    /// offline: a stage budget only applies within a bounded request.
    pub fn stage(self, start: Instant, budget: Duration) -> Deadline {
        match self.at {
            None => Deadline::NONE,
            Some(t) => Deadline {
                at: Some(start.checked_add(budget).map_or(t, |s| s.min(t))),
            },
        }
    }

    /// Whether something that finished at `finished` met this deadline (always, offline).
    pub fn met_by(self, finished: Instant) -> bool {
        self.at.is_none_or(|t| finished <= t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_never_expires_and_stays_offline() {
        let d = Deadline::NONE;
        assert!(!d.expired() && !d.is_bounded());
        let s = d.stage(Instant::now(), Duration::ZERO);
        assert!(!s.is_bounded() && s.met_by(Instant::now() + Duration::from_secs(3600)));
    }

    #[test]
    fn a_stage_deadline_is_the_earlier_of_its_budget_and_the_request() {
        let now = Instant::now();
        let req = Deadline::at(now + Duration::from_millis(100));
        assert_eq!(
            req.stage(now, Duration::from_millis(10)).instant(),
            Some(now + Duration::from_millis(10))
        );
        assert_eq!(
            req.stage(now, Duration::from_secs(5)).instant(),
            Some(now + Duration::from_millis(100))
        );
        assert!(Deadline::at(now).expired());
        assert!(
            !req.met_by(now + Duration::from_millis(101))
                && req.met_by(now + Duration::from_millis(100))
        );
    }
}
