//! The feedback loop's share of one recommendation's work: the bandit's choice (with every arm's
//! probability, for the propensity), the request id the middleware generates, the server-issued
//! impression id, and recording the served list (10 items) for attribution. The log's writer
//! thread serialises and writes the record off the request; its CPU is not in these numbers.
//! `cargo bench --bench impression`; README, Performance, has the figures before and after.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use recserve::config::Config;
use recserve::feedback::events::ServedItem;
use recserve::feedback::service::{FeedbackService, ImpressionIn};
use recserve::pipeline::Strategy;

fn per_request(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cfg = Config::load_with_env(None, Vec::new()).expect("default config");
    cfg.feedback.log.dir = dir.path().to_path_buf();
    cfg.feedback.log.queue_capacity = 1 << 20;
    cfg.feedback.snapshot_interval_secs = 0;
    let svc =
        FeedbackService::open_blocking(&cfg.feedback, &cfg.bandit, &prometheus::Registry::new())
            .expect("feedback service");
    let items: Vec<ServedItem> = (0..10)
        .map(|p| ServedItem {
            item_id: format!("i{:06}", p * 37),
            position: p,
            score: 1.0 / (1.0 + p as f32),
            explanation: None,
            exposure_propensity: None,
        })
        .collect();
    let mut group = c.benchmark_group("impression");
    group.bench_function("bandit_list", |b| {
        b.iter(|| {
            let rid = uuid::Uuid::new_v4().to_string();
            let pick = svc.choose_arm(12, Some("mobile"), 1_700_000_000);
            let id = svc.issue_id();
            svc.record_impression(ImpressionIn {
                id: &id,
                client_request_id: Some(&rid),
                user_id: Some("u000042"),
                variant: "bandit",
                arm: Some(&pick),
                strategy: Strategy::Blend,
                model_version: "v1",
                items: items.clone(),
            });
            black_box(id)
        })
    });
    group.bench_function("fixed_list", |b| {
        b.iter(|| {
            let rid = uuid::Uuid::new_v4().to_string();
            let id = svc.issue_id();
            svc.record_impression(ImpressionIn {
                id: &id,
                client_request_id: Some(&rid),
                user_id: Some("u000042"),
                variant: "control",
                arm: None,
                strategy: Strategy::Ranked,
                model_version: "v1",
                items: items.clone(),
            });
            black_box(id)
        })
    });
    group.finish();
    println!("log: {:?}", svc.log_stats());
}

criterion_group!(benches, per_request);
criterion_main!(benches);
