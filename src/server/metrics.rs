//! Prometheus metrics: base units (`_seconds`, `_bytes`), `_total` counters, help text on every
//! family, and labels with bounded values only (route templates, stages, sources, variants,
//! strategies, reasons — never a user id, an item id or a raw URI).

use crate::retrieval::{N_SOURCES, Source};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder, exponential_buckets,
};

pub struct Metrics {
    pub registry: Registry,
    pub requests: IntCounterVec,
    pub request_seconds: HistogramVec,
    pub in_flight: IntGauge,
    pub stage_seconds: HistogramVec,
    pub source_seconds: HistogramVec,
    pub source_candidates: HistogramVec,
    pub fallbacks: IntCounterVec,
    pub budget_overruns: IntCounterVec,
    pub variant_resolution: IntCounterVec,
    /// Requests refused with 503 by admission control, by `reason` (`queue_full`,
    /// `queue_timeout`).
    pub shed: IntCounterVec,
    /// Requests waiting in the admission queue right now.
    pub admission_queue_depth: IntGauge,
    /// Time admitted requests waited for a slot (0 when one was free).
    pub admission_wait: Histogram,
    /// Source searches stopped at their deadline mid-way (their partial list was used).
    pub source_cuts: IntCounterVec,
    /// Pipeline jobs dropped unrun because their request's budget ran out while they queued.
    pub pipeline_abandoned: IntCounter,
    pub reloads: IntCounterVec,
    /// Fleet rollouts by result (announced, announce_failed, loaded, already_serving, refused).
    pub rollouts: IntCounterVec,
    pub model_info: IntGaugeVec,
    pub bandit_pulls: IntCounterVec,
    /// Served slots by variant and kind (`new_item` = an item with few or no training
    /// interactions, `established` = any other): the share of slots new items get.
    pub served_slots: IntCounterVec,
    /// Slots the new-item exposure policy filled, by variant.
    pub exposure_slots: IntCounterVec,
    /// Clicks on items that were new when served, by variant: with `served_slots` their
    /// Items the runtime catalogue overlay holds, by kind (`added`: served added items,
    /// `taken_down`: bundle items taken down).
    pub catalogue_items: IntGaugeVec,
    /// The per-request series resolved once (no label hashing on the request path).
    pub hot: HotSeries,
}

/// Pipeline stages in [`HotSeries::stage`] order.
pub const STAGES: [&str; 5] = ["profile", "retrieval", "merge", "rank", "total"];

/// Histogram children of the label sets every request observes, in fixed order: stages as
/// [`STAGES`], sources as `Source::ALL`.
pub struct HotSeries {
    pub stage: [Histogram; STAGES.len()],
    pub source_seconds: [Histogram; N_SOURCES],
    pub source_candidates: [Histogram; N_SOURCES],
}

fn latency_buckets() -> Vec<f64> {
    // 50 µs … ~1.6 s
    exponential_buckets(0.00005, 2.0, 16).unwrap_or_default()
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let r = Registry::new_custom(Some("recserve".into()), None)?;
        let counter_vec =
            |name: &str, help: &str, labels: &[&str]| -> Result<IntCounterVec, prometheus::Error> {
                let c = IntCounterVec::new(Opts::new(name, help), labels)?;
                r.register(Box::new(c.clone()))?;
                Ok(c)
            };
        let hist_vec = |name: &str,
                        help: &str,
                        labels: &[&str],
                        b: Vec<f64>|
         -> Result<HistogramVec, prometheus::Error> {
            let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(b), labels)?;
            r.register(Box::new(h.clone()))?;
            Ok(h)
        };
        let requests = counter_vec(
            "http_requests_total",
            "HTTP requests by route template, status class, variant and strategy.",
            &["route", "status", "variant", "strategy"],
        )?;
        let request_seconds = hist_vec(
            "http_request_duration_seconds",
            "HTTP request latency by route template, status class, variant and strategy.",
            &["route", "status", "variant", "strategy"],
            latency_buckets(),
        )?;
        let in_flight = IntGauge::new(
            "http_requests_in_flight",
            "HTTP requests being served right now.",
        )?;
        r.register(Box::new(in_flight.clone()))?;
        let stage_seconds = hist_vec(
            "pipeline_stage_duration_seconds",
            "Wall time of each pipeline stage (profile, retrieval, merge, rank, total).",
            &["stage"],
            latency_buckets(),
        )?;
        let source_seconds = hist_vec(
            "source_duration_seconds",
            "Wall time of each candidate source.",
            &["source"],
            latency_buckets(),
        )?;
        let source_candidates = hist_vec(
            "source_candidates",
            "Candidates each source contributed to a request.",
            &["source"],
            vec![0.0, 1.0, 10.0, 25.0, 50.0, 100.0, 200.0, 400.0, 800.0],
        )?;
        let fallbacks = counter_vec(
            "fallbacks_total",
            "Requests served by a fallback, by the reason the better path was skipped.",
            &["reason"],
        )?;
        let budget_overruns = counter_vec(
            "budget_overruns_total",
            "Stages or sources dropped for exceeding their latency budget.",
            &["stage"],
        )?;
        let variant_resolution = counter_vec(
            "variant_resolutions_total",
            "How the A/B variant was chosen: requested, missing header (default) or unknown name (default).",
            &["resolution"],
        )?;
        let shed = counter_vec(
            "requests_shed_total",
            "Requests refused with 503 by admission control: the queue was full (queue_full) or no slot freed within server.admission_queue_timeout_ms (queue_timeout).",
            &["reason"],
        )?;
        let admission_queue_depth = IntGauge::new(
            "admission_queue_depth",
            "Requests waiting in the admission queue for an in-flight slot.",
        )?;
        r.register(Box::new(admission_queue_depth.clone()))?;
        let admission_wait = Histogram::with_opts(
            HistogramOpts::new(
                "admission_queue_wait_seconds",
                "Time an admitted request waited for an in-flight slot (0 when one was free).",
            )
            .buckets(latency_buckets()),
        )?;
        r.register(Box::new(admission_wait.clone()))?;
        let source_cuts = counter_vec(
            "source_searches_cut_total",
            "Candidate source searches stopped at their deadline mid-way; the partial list was used (degraded <source>:cut).",
            &["source"],
        )?;
        let pipeline_abandoned = IntCounter::new(
            "pipeline_jobs_abandoned_total",
            "Pipeline jobs dropped unrun: the request's budget ran out while they were queued (the request was answered from popularity).",
        )?;
        r.register(Box::new(pipeline_abandoned.clone()))?;
        let reloads = counter_vec(
            "reloads_total",
            "Model bundle reloads by result (ok, refused).",
            &["result"],
        )?;
        let rollouts = counter_vec(
            "rollouts_total",
            "Fleet model rollouts seen by this replica, by result (announced, announce_failed, loaded, already_serving, refused).",
            &["result"],
        )?;
        let model_info = IntGaugeVec::new(
            Opts::new(
                "model_info",
                "The loaded bundle: 1 for the model version and ranker backend serving now.",
            ),
            &["model_version", "ranker"],
        )?;
        r.register(Box::new(model_info.clone()))?;
        let bandit_pulls = counter_vec(
            "bandit_pulls_total",
            "Bandit arm selections by context and arm.",
            &["context", "arm"],
        )?;
        let served_slots = counter_vec(
            "served_slots_total",
            "Served recommendation slots by variant and kind (new_item: few or no training interactions; established).",
            &["variant", "kind"],
        )?;
        let exposure_slots = counter_vec(
            "exposure_slots_total",
            "Slots the new-item exposure policy filled, by variant.",
            &["variant"],
        )?;
        let catalogue_items = IntGaugeVec::new(
            Opts::new(
                "catalogue_overlay_items",
                "Items the runtime catalogue overlay holds over the bundle, by kind (added, taken_down).",
            ),
            &["kind"],
        )?;
        r.register(Box::new(catalogue_items.clone()))?;
        let hot = HotSeries {
            stage: STAGES.map(|s| stage_seconds.with_label_values(&[s])),
            source_seconds: Source::ALL.map(|s| source_seconds.with_label_values(&[s.as_str()])),
            source_candidates: Source::ALL
                .map(|s| source_candidates.with_label_values(&[s.as_str()])),
        };
        Ok(Self {
            hot,
            registry: r,
            requests,
            request_seconds,
            in_flight,
            stage_seconds,
            source_seconds,
            source_candidates,
            fallbacks,
            budget_overruns,
            variant_resolution,
            shed,
            admission_queue_depth,
            admission_wait,
            source_cuts,
            pipeline_abandoned,
            reloads,
            rollouts,
            model_info,
            bandit_pulls,
            served_slots,
            exposure_slots,
            catalogue_items,
        })
    }

    /// Prometheus text exposition of every family.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf)?;
        String::from_utf8(buf).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }

    /// Marks `version` as the serving model (and clears the previous one).
    pub fn set_overlay(&self, overlay: Option<&crate::catalogue::Overlay>) {
        let (added, down) = overlay.map_or((0, 0), |o| (o.n_added(), o.taken_down.len()));
        self.catalogue_items
            .with_label_values(&["added"])
            .set(added as i64);
        self.catalogue_items
            .with_label_values(&["taken_down"])
            .set(down as i64);
    }

    pub fn set_model(&self, version: &str, ranker: &str) {
        self.model_info.reset();
        self.model_info.with_label_values(&[version, ranker]).set(1);
    }
}
