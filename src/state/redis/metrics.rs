//! The Redis layer's Prometheus families: `redis_commands_total {family, result}`,
//! `redis_command_duration_seconds {family}`, `redis_up`, and the stream shipper's position.
//! Labels are the closed sets of [`super::Family`] and `ok|error|timeout`.

use std::time::Duration;

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};

use super::Family;

#[derive(Clone)]
pub struct RedisMetrics {
    commands: IntCounterVec,
    duration: HistogramVec,
    pub up: IntGauge,
    /// How far (in log sequence numbers) stream shipping is behind the log.
    pub stream_behind: IntGauge,
    /// Events this replica appended to the stream.
    pub stream_events: prometheus::IntCounter,
}

impl RedisMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let commands = IntCounterVec::new(
            Opts::new(
                "redis_commands_total",
                "Redis commands by key family and result (ok, error, timeout).",
            ),
            &["family", "result"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "redis_command_duration_seconds",
                "Latency of Redis commands by key family, including timeouts.",
            )
            .buckets(vec![
                0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ]),
            &["family"],
        )?;
        let up = IntGauge::new(
            "redis_up",
            "1 when the last Redis command got an answer, else 0.",
        )?;
        let stream_behind = IntGauge::new(
            "redis_stream_behind_seqs",
            "Event-log sequence numbers this replica's stream shipping is behind (0 = caught up).",
        )?;
        let stream_events = prometheus::IntCounter::new(
            "redis_stream_events_total",
            "Feedback events this replica appended to the Redis stream.",
        )?;
        registry.register(Box::new(commands.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(up.clone()))?;
        registry.register(Box::new(stream_behind.clone()))?;
        registry.register(Box::new(stream_events.clone()))?;
        for f in Family::ALL {
            for r in ["ok", "error", "timeout"] {
                commands.with_label_values(&[f.as_str(), r]);
            }
            duration.with_label_values(&[f.as_str()]);
        }
        Ok(Self {
            commands,
            duration,
            up,
            stream_behind,
            stream_events,
        })
    }

    pub(super) fn observe(&self, family: Family, result: &str, took: Duration) {
        self.commands
            .with_label_values(&[family.as_str(), result])
            .inc();
        self.duration
            .with_label_values(&[family.as_str()])
            .observe(took.as_secs_f64());
    }
}
