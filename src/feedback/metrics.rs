//! The feedback loop's own Prometheus families, registered by the service itself in the registry
//! the caller hands it (the way the event log's metrics are), so feedback needs nothing from the
//! HTTP edge. Outcomes carry the variant (and arm) of the list they are attributed to, so the
//! A/B framework reads click-through per treatment here.

use super::history::HistoryUsage;
use parking_lot::Mutex;
use prometheus::{CounterVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry};

/// Distinct variant label values at most; later ones are reported as `other`.
const MAX_VARIANT_LABELS: usize = 32;

#[derive(Clone)]
pub struct FeedbackMetrics {
    /// Accepted feedback events by event type and the variant they are attributed to.
    pub events: IntCounterVec,
    /// Feedback events by attribution result and variant.
    pub attribution: IntCounterVec,
    /// Reward credited per variant and bandit arm.
    pub reward: CounterVec,
    /// Rewards credited to each bandit arm by context.
    pub bandit_reward: CounterVec,
    /// Events on items the catalogue does not know (kept in the log, not in the history).
    pub unknown_items: IntCounter,
    /// Attributed positive events on items the new-item exposure policy placed, by variant.
    pub new_item_clicks: IntCounterVec,
    stores: IntGaugeVec,
    store_bytes: IntGaugeVec,
    store_limit: IntGaugeVec,
    store_evicted: IntGaugeVec,
    variants: std::sync::Arc<Mutex<Vec<String>>>,
}

impl FeedbackMetrics {
    /// Creates the families and registers them in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let events = IntCounterVec::new(
            Opts::new(
                "feedback_events_total",
                "Accepted feedback events by event type and by the variant of the list they are attributed to (none: unattributed).",
            ),
            &["event", "variant"],
        )?;
        let attribution = IntCounterVec::new(
            Opts::new(
                "feedback_attribution_total",
                "Feedback events by attribution result (attributed, duplicate, user_mismatch, not_shown, unknown_impression) and variant.",
            ),
            &["result", "variant"],
        )?;
        let reward = CounterVec::new(
            Opts::new(
                "feedback_reward_total",
                "Reward credited to served lists, after the per-list and per-item caps, by variant and bandit arm (none: no bandit).",
            ),
            &["variant", "arm"],
        )?;
        let bandit_reward = CounterVec::new(
            Opts::new(
                "bandit_reward_total",
                "Sum of rewards credited to each bandit arm by context.",
            ),
            &["context", "arm"],
        )?;
        let unknown_items = IntCounter::new(
            "feedback_unknown_items_total",
            "Feedback events naming an item the catalogue does not know: logged, not remembered.",
        )?;
        let new_item_clicks = IntCounterVec::new(
            Opts::new(
                "new_item_clicks_total",
                "Attributed positive feedback on items the new-item exposure policy placed, by variant (with exposure_slots_total: their click-through).",
            ),
            &["variant"],
        )?;
        let stores = IntGaugeVec::new(
            Opts::new(
                "feedback_store_entries",
                "Entries in the bounded feedback stores: impressions, history_guests (users the bundle does not know), history_known.",
            ),
            &["store"],
        )?;
        let store_bytes = IntGaugeVec::new(
            Opts::new(
                "feedback_store_bytes",
                "Memory held by the bounded feedback stores (estimated).",
            ),
            &["store"],
        )?;
        let store_limit = IntGaugeVec::new(
            Opts::new(
                "feedback_store_limit_bytes",
                "Configured memory bound of each feedback store.",
            ),
            &["store"],
        )?;
        let store_evicted = IntGaugeVec::new(
            Opts::new(
                "feedback_store_evicted_entries",
                "Entries dropped by a store's bounds since start.",
            ),
            &["store"],
        )?;
        registry.register(Box::new(events.clone()))?;
        registry.register(Box::new(attribution.clone()))?;
        registry.register(Box::new(reward.clone()))?;
        registry.register(Box::new(bandit_reward.clone()))?;
        registry.register(Box::new(unknown_items.clone()))?;
        registry.register(Box::new(new_item_clicks.clone()))?;
        registry.register(Box::new(stores.clone()))?;
        registry.register(Box::new(store_bytes.clone()))?;
        registry.register(Box::new(store_limit.clone()))?;
        registry.register(Box::new(store_evicted.clone()))?;
        Ok(Self {
            events,
            attribution,
            reward,
            bandit_reward,
            unknown_items,
            new_item_clicks,
            stores,
            store_bytes,
            store_limit,
            store_evicted,
            variants: Default::default(),
        })
    }

    /// The label for a variant: `none` when unattributed; the first [`MAX_VARIANT_LABELS`]
    /// distinct names as they are (variants come from config); `other` beyond.
    pub fn variant_label<'a>(&self, variant: Option<&'a str>) -> &'a str {
        let Some(v) = variant else { return "none" };
        let mut seen = self.variants.lock();
        if seen.iter().any(|s| s == v) {
            return v;
        }
        if seen.len() < MAX_VARIANT_LABELS {
            seen.push(v.to_string());
            return v;
        }
        "other"
    }

    pub(super) fn set_limits(&self, impressions: usize, guests: usize) {
        let g = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        self.store_limit
            .with_label_values(&["impressions"])
            .set(g(impressions));
        self.store_limit
            .with_label_values(&["history_guests"])
            .set(g(guests));
    }

    pub(super) fn set_usage(
        &self,
        imps: usize,
        imp_bytes: usize,
        imp_evicted: u64,
        h: HistoryUsage,
    ) {
        let g = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        let e = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.stores.with_label_values(&["impressions"]).set(g(imps));
        self.stores
            .with_label_values(&["history_guests"])
            .set(g(h.guest_users));
        self.stores
            .with_label_values(&["history_known"])
            .set(g(h.known_users));
        self.store_bytes
            .with_label_values(&["impressions"])
            .set(g(imp_bytes));
        self.store_bytes
            .with_label_values(&["history_guests"])
            .set(g(h.guest_bytes));
        self.store_evicted
            .with_label_values(&["impressions"])
            .set(e(imp_evicted));
        self.store_evicted
            .with_label_values(&["history_guests"])
            .set(e(h.guest_evicted));
    }
}
