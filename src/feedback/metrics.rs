//! The feedback loop's own Prometheus families, registered by the service itself in the registry
//! the caller hands it (the way the event log's metrics are), so feedback needs nothing from the
//! HTTP edge.

use prometheus::{CounterVec, IntCounterVec, Opts, Registry};

#[derive(Clone)]
pub struct FeedbackMetrics {
    /// Accepted feedback events by event type.
    pub events: IntCounterVec,
    /// Feedback events by attribution to a served list.
    pub attribution: IntCounterVec,
    /// Rewards credited to each bandit arm by context.
    pub bandit_reward: CounterVec,
}

impl FeedbackMetrics {
    /// Creates `feedback_events_total`, `feedback_attribution_total` and `bandit_reward_total`
    /// and registers them in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let events = IntCounterVec::new(
            Opts::new(
                "feedback_events_total",
                "Accepted feedback events by event type.",
            ),
            &["event"],
        )?;
        let attribution = IntCounterVec::new(
            Opts::new(
                "feedback_attribution_total",
                "Feedback events by attribution to a served list: attributed or unattributed.",
            ),
            &["result"],
        )?;
        let bandit_reward = CounterVec::new(
            Opts::new(
                "bandit_reward_total",
                "Sum of rewards credited to each bandit arm by context.",
            ),
            &["context", "arm"],
        )?;
        registry.register(Box::new(events.clone()))?;
        registry.register(Box::new(attribution.clone()))?;
        registry.register(Box::new(bandit_reward.clone()))?;
        Ok(Self {
            events,
            attribution,
            bandit_reward,
        })
    }
}
