//! An open-loop load generator for `scripts/overload.sh`: requests are *scheduled* at a fixed
//! rate whatever the server does (a closed-loop tool such as wrk slows down with the server and
//! hides overload), and each latency is measured from its scheduled start, so a server that
//! falls behind is charged for the queue it built (no coordinated omission).
//!
//! `cargo run --release --example openloop -- URL_BASE PATHS_FILE RATE SECONDS [CONNECTIONS]`
//! prints one JSON line: offered and achieved rates, status counts, the share of 200s that were
//! `ranked`, ranked goodput per second and latency percentiles of the 200s (ms).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    ranked: AtomicU64,
    shed: AtomicU64,
    other: AtomicU64,
    failed: AtomicU64,
    late: AtomicU64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: openloop URL_BASE PATHS_FILE RATE SECONDS [CONNECTIONS]");
        std::process::exit(2);
    }
    let base = args[1].trim_end_matches('/').to_string();
    let paths: Vec<String> = std::fs::read_to_string(&args[2])
        .expect("paths file")
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    let rate: f64 = args[3].parse().expect("rate");
    let seconds: f64 = args[4].parse().expect("seconds");
    let conns: usize = args.get(5).and_then(|c| c.parse().ok()).unwrap_or(512);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(conns)
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let tally = Arc::new(Tally::default());
    let latencies = Arc::new(parking_lot::Mutex::new(Vec::<f64>::new()));
    // At most `conns` requests in flight: past that, a due request is counted late and skipped
    // (the generator, not the server, would be the bottleneck).
    let in_flight = Arc::new(tokio::sync::Semaphore::new(conns));
    let total = (rate * seconds) as u64;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now();
    let mut handles = Vec::with_capacity(total as usize);
    for i in 0..total {
        let due = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        let Ok(permit) = Arc::clone(&in_flight).try_acquire_owned() else {
            tally.late.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let url = format!("{base}{}", paths[i as usize % paths.len()]);
        let (client, tally, latencies) =
            (client.clone(), Arc::clone(&tally), Arc::clone(&latencies));
        handles.push(tokio::spawn(async move {
            let _permit = permit;
            match client.get(&url).send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let body = r.text().await.unwrap_or_default();
                    let ms = due.elapsed().as_secs_f64() * 1e3;
                    match status {
                        200 => {
                            tally.ok.fetch_add(1, Ordering::Relaxed);
                            if body.contains("\"strategy\":\"ranked\"") {
                                tally.ranked.fetch_add(1, Ordering::Relaxed);
                            }
                            latencies.lock().push(ms);
                        }
                        503 => {
                            tally.shed.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            tally.other.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                Err(_) => {
                    tally.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for h in handles {
        let _ = h.await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut l = latencies.lock().clone();
    l.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        if l.is_empty() {
            0.0
        } else {
            l[((p * l.len() as f64).ceil() as usize).clamp(1, l.len()) - 1]
        }
    };
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let ok = get(&tally.ok);
    let ranked = get(&tally.ranked);
    println!(
        "{}",
        serde_json::json!({
            "offered_rps": rate,
            "seconds": elapsed,
            "scheduled": total,
            "late_skipped": get(&tally.late),
            "ok": ok,
            "shed_503": get(&tally.shed),
            "other_status": get(&tally.other),
            "failed": get(&tally.failed),
            "ranked_share_of_200": if ok > 0 { ranked as f64 / ok as f64 } else { 0.0 },
            "ranked_goodput_rps": ranked as f64 / elapsed,
            "p50_ms": pct(0.50),
            "p90_ms": pct(0.90),
            "p99_ms": pct(0.99),
        })
    );
}
