//! The real binary under a flood of unauthenticated feedback: 1M events with distinct unknown
//! user ids (half on catalogue items, half on unknown items) leave its resident memory within
//! the configured bounds, before and after a restart. `RECSERVE_MEMORY_EVENTS` changes the
//! count (default 1,000,000; ~40 s on the 2-core reference machine).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

mod common;
use common::free_port;

const GUEST_BYTES: u64 = 16 << 20;
const IMPRESSION_BYTES: u64 = 8 << 20;
/// Allocator slack: request bodies in flight, the writer's queue, arenas that keep freed pages.
const SLACK: u64 = 40 << 20;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(port: u16, events: &Path) -> Server {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    Server(
        Command::new(env!("CARGO_BIN_EXE_recserve"))
            .arg("serve")
            .current_dir(&root)
            .env("RECSERVE_SERVER__ADDR", format!("127.0.0.1:{port}"))
            .env("RECSERVE_SERVER__WARMUP_REQUESTS", "2")
            .env("RECSERVE_FEEDBACK__LOG__DIR", events)
            .env(
                "RECSERVE_FEEDBACK__HISTORY_GUEST_MAX_BYTES",
                GUEST_BYTES.to_string(),
            )
            .env(
                "RECSERVE_FEEDBACK__IMPRESSIONS_MAX_BYTES",
                IMPRESSION_BYTES.to_string(),
            )
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start recserve"),
    )
}

async fn wait_ready(client: &reqwest::Client, base: &str) {
    for _ in 0..1200 {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("binary never became ready");
}

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}

fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(prefix)?.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

/// Posts events `from..to` in batches of 1000 from 4 clients; every batch must get 202.
async fn flood(client: &reqwest::Client, base: &str, items: &[String], from: usize, to: usize) {
    let batches: Vec<usize> = (from..to).step_by(1000).collect();
    let chunks: Vec<Vec<usize>> = batches
        .chunks(batches.len().div_ceil(4).max(1))
        .map(<[usize]>::to_vec)
        .collect();
    let mut tasks = Vec::new();
    for chunk in chunks {
        let (c, url, items) = (
            client.clone(),
            format!("{base}/feedback/batch"),
            items.to_vec(),
        );
        tasks.push(tokio::spawn(async move {
            for start in chunk {
                let events: Vec<serde_json::Value> = (start..(start + 1000).min(to))
                    .map(|i| {
                        // Even: a catalogue item (enters the guest history); odd: unknown.
                        let item = if i % 2 == 0 {
                            items[i % items.len()].clone()
                        } else {
                            format!("unknown-item-{i}")
                        };
                        serde_json::json!({
                            "request_id": format!("forged-{i}"),
                            "user_id": format!("guest-user-{i}"),
                            "item_id": item,
                            "event": "click",
                        })
                    })
                    .collect();
                let r = c
                    .post(&url)
                    .json(&serde_json::json!({ "events": events }))
                    .send()
                    .await
                    .expect("post");
                assert_eq!(r.status().as_u16(), 202, "batch at {start}");
            }
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_million_unknown_users_stay_within_the_memory_bounds_across_a_restart() {
    let total: usize = std::env::var("RECSERVE_MEMORY_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let items: Vec<String> = std::fs::read_to_string(root.join("models/demo/item_ids.txt"))
        .expect("demo item ids")
        .lines()
        .map(str::to_string)
        .collect();
    let events = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let server = start(port, events.path());
    wait_ready(&client, &base).await;
    // Warm-up: allocator arenas and connection pools settle before the baseline.
    let warm = 20_000.min(total / 10);
    flood(&client, &base, &items, 0, warm).await;
    let baseline = rss_bytes(server.0.id());
    flood(&client, &base, &items, warm, total).await;
    let after = rss_bytes(server.0.id());
    let bound = GUEST_BYTES + IMPRESSION_BYTES + SLACK;
    let m = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let guest_bytes = metric(
        &m,
        r#"recserve_feedback_store_bytes{store="history_guests"}"#,
    );
    assert!(
        guest_bytes <= GUEST_BYTES as f64,
        "guest history {guest_bytes} bytes\n{m}"
    );
    assert!(
        metric(
            &m,
            r#"recserve_feedback_store_evicted_entries{store="history_guests"}"#
        ) > 0.0
    );
    assert_eq!(
        metric(&m, "recserve_feedback_unknown_items_total"),
        (total / 2) as f64
    );
    assert!(
        after <= baseline + bound,
        "RSS grew {} MiB (from {} MiB) over {total} events; bound {} MiB",
        (after.saturating_sub(baseline)) >> 20,
        baseline >> 20,
        bound >> 20
    );

    // A graceful stop snapshots the bounded state; the restarted process holds no more.
    let pid = server.0.id();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let mut server = server;
    let _ = server.0.wait();
    let restarted = start(port, events.path());
    wait_ready(&client, &base).await;
    let m = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let restored = metric(
        &m,
        r#"recserve_feedback_store_bytes{store="history_guests"}"#,
    );
    assert!(
        restored > 0.0 && restored <= GUEST_BYTES as f64,
        "{restored}"
    );
    let after_restart = rss_bytes(restarted.0.id());
    assert!(
        after_restart <= baseline + bound,
        "RSS after restart {} MiB, baseline {} MiB, bound {} MiB",
        after_restart >> 20,
        baseline >> 20,
        bound >> 20
    );
    println!(
        "events {total}: baseline {} MiB, after {} MiB, after restart {} MiB, guest history {:.1} MiB",
        baseline >> 20,
        after >> 20,
        after_restart >> 20,
        guest_bytes / 1048576.0
    );
}
