//! Acknowledged (fsynced) feedback events per second through the event log at 1, 16 and
//! 64 concurrent tokio appenders: measures how well group commit amortises the fsync.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use recserve::feedback::log::{EventLog, LogConfig};

/// A feedback event as the handler would serialise it (~200 bytes).
fn event(i: usize) -> Vec<u8> {
    format!(
        concat!(
            r#"{{"request_id":"6f1c2a4e-0b7d-4c1e-9a53-{:012x}","user_id":"u{:07}","#,
            r#""item_id":"i{:07}","event":"click","value":1.0,"ts":"2025-01-01T00:00:00Z","#,
            r#""variant":"ranker-v2","position":{}}}"#
        ),
        i,
        i % 100_000,
        (i * 7919) % 1_000_000,
        i % 50
    )
    .into_bytes()
}

async fn round(log: &Arc<EventLog>, concurrency: usize, per_task: usize) {
    let mut tasks = Vec::with_capacity(concurrency);
    for task in 0..concurrency {
        let log = Arc::clone(log);
        tasks.push(tokio::spawn(async move {
            for i in 0..per_task {
                let seq = log.append(event(task * per_task + i)).await;
                black_box(seq.expect("append failed"));
            }
        }));
    }
    for task in tasks {
        task.await.expect("appender task panicked");
    }
}

fn appends(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = LogConfig {
        dir: dir.path().to_path_buf(),
        ..LogConfig::default()
    };
    let (log, _) = EventLog::open(cfg, None).expect("open event log");
    let log = Arc::new(log);
    println!("event payload: {} bytes", event(0).len());

    let mut group = c.benchmark_group("feedback_log_append");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    for (concurrency, per_task) in [(1usize, 32usize), (16, 32), (64, 16)] {
        let events = concurrency * per_task;
        group.throughput(Throughput::Elements(events as u64));
        let before = log.stats();
        group.bench_with_input(
            BenchmarkId::new("concurrency", concurrency),
            &concurrency,
            |b, &concurrency| {
                b.iter_custom(|iters| {
                    runtime.block_on(async {
                        let start = Instant::now();
                        for _ in 0..iters {
                            round(&log, concurrency, per_task).await;
                        }
                        start.elapsed()
                    })
                })
            },
        );
        let after = log.stats();
        let records = after.records - before.records;
        let groups = after.group_commits - before.group_commits;
        println!(
            "concurrency {concurrency}: {records} events in {groups} group commits \
             ({:.1} events per fsync)",
            records as f64 / groups.max(1) as f64
        );
    }
    group.finish();
}

criterion_group!(benches, appends);
criterion_main!(benches);
