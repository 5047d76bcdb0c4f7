//! A full disk under the real binary: the event log's disk is filled and freed through the
//! `feedback.log.test_hook_full_disk_file` test hook (ENOSPC while a file exists, half of each
//! write landing first; see `src/feedback/log/fault.rs`), so no root, mount or quota is needed
//! and nothing can skip. While full, `/readyz` stays 503 and feedback gets 503 with
//! `Retry-After`; once space returns both recover on their own; after a SIGKILL and a restart
//! every event that got a 202 (also those acknowledged just before and after the fault, under
//! concurrent posting) is in `recserve export-events`, and nothing that was refused is.
//! Cost: ~2 s (two binary starts, one export, ~1 s of posting). Without the writer's reopen
//! probe the `/readyz` check fails (checked by removing it).

use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

mod common;
use common::free_port;

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(port: u16, events: &Path, full_disk_trigger: Option<&Path>) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_recserve"));
    cmd.arg("serve")
        .current_dir(common::root())
        .env("RECSERVE_SERVER__ADDR", format!("127.0.0.1:{port}"))
        .env("RECSERVE_SERVER__WARMUP_REQUESTS", "2")
        .env("RECSERVE_SERVING__TOTAL_BUDGET_MS", "5000")
        .env("RECSERVE_FEEDBACK__LOG__DIR", events)
        .env("RECSERVE_FEEDBACK__LOG__RETRY_MS", "50")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(trigger) = full_disk_trigger {
        cmd.env("RECSERVE_FEEDBACK__LOG__TEST_HOOK_FULL_DISK_FILE", trigger);
    }
    Server(cmd.spawn().expect("start recserve"))
}

async fn status_of(client: &reqwest::Client, url: &str) -> Option<(u16, Option<String>)> {
    let r = client.get(url).send().await.ok()?;
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Some((r.status().as_u16(), retry))
}

async fn wait_ready(client: &reqwest::Client, base: &str) {
    for _ in 0..600 {
        if let Some((200, _)) = status_of(client, &format!("{base}/readyz")).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("binary never became ready");
}

/// Posts one click for user `dfu{n}`: the status and `Retry-After`.
async fn post(client: &reqwest::Client, base: &str, n: u64) -> (u16, Option<String>) {
    let body = serde_json::json!({
        "request_id": format!("df-{n}"),
        "user_id": format!("dfu{n}"),
        "item_id": "i1",
        "event": "click",
    });
    match client
        .post(format!("{base}/feedback"))
        .json(&body)
        .send()
        .await
    {
        Ok(r) => {
            let retry = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            (r.status().as_u16(), retry)
        }
        Err(e) => panic!("feedback post failed at the transport: {e}"),
    }
}

/// Result of the posters: ids that got 202, ids refused with 503 (+ whether every 503 carried
/// `Retry-After`), and any other status seen.
#[derive(Default)]
struct Posted {
    acked: HashSet<u64>,
    refused: HashSet<u64>,
    refused_without_retry_after: u64,
    other: Vec<u16>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_makes_the_binary_unready_and_refuse_feedback_and_loses_nothing_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    let events = tmp.path().join("events");
    let trigger = tmp.path().join("DISK_FULL");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let server = start(port, &events, Some(&trigger));
    wait_ready(&client, &base).await;

    // Four posters run through the whole fault: before, during and after the disk is full.
    let stop = Arc::new(AtomicBool::new(false));
    let paused = Arc::new(AtomicBool::new(false));
    let mut posters = Vec::new();
    for p in 0..4u64 {
        let (client, base) = (client.clone(), base.clone());
        let (stop, paused) = (Arc::clone(&stop), Arc::clone(&paused));
        posters.push(tokio::spawn(async move {
            let mut out = Posted::default();
            let mut n = p * 1_000_000;
            while !stop.load(Ordering::Relaxed) {
                if paused.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
                match post(&client, &base, n).await {
                    (202, _) => {
                        out.acked.insert(n);
                    }
                    (503, retry) => {
                        if retry.is_none() {
                            out.refused_without_retry_after += 1;
                        }
                        out.refused.insert(n);
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    (other, _) => out.other.push(other),
                }
                n += 1;
            }
            out
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The disk fills up.
    std::fs::write(&trigger, b"").unwrap();
    let mut refused = None;
    for n in 0..400 {
        let (status, retry) = post(&client, &base, 9_000_000 + n).await;
        if status == 503 {
            refused = Some(retry);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        refused,
        Some(Some("1".to_string())),
        "feedback on a full disk must get 503 with Retry-After"
    );
    // Not ready, and it stays so across many reopen attempts (retry_ms = 50) while full, also
    // with no write arriving to fail again (a reopen that only truncates would succeed).
    paused.store(true, Ordering::Relaxed);
    for _ in 0..10 {
        let ready = status_of(&client, &format!("{base}/readyz")).await;
        assert_eq!(
            ready,
            Some((503, Some("1".to_string()))),
            "/readyz on a full disk"
        );
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("feedback_log_healthy 0"), "{metrics}");
    assert!(
        !metrics.contains("feedback_log_errors_total 0\n"),
        "errors not counted"
    );
    let healthz = status_of(&client, &format!("{base}/healthz")).await;
    assert_eq!(
        healthz.map(|h| h.0),
        Some(200),
        "alive while the disk is full"
    );

    paused.store(false, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Space returns: the log reopens by itself.
    std::fs::remove_file(&trigger).unwrap();
    let mut accepted_again = false;
    for n in 0..400 {
        if post(&client, &base, 9_500_000 + n).await.0 == 202 {
            accepted_again = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        accepted_again,
        "feedback never accepted after space returned"
    );
    wait_ready(&client, &base).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Posted::default();
    for p in posters {
        let out = p.await.unwrap();
        all.acked.extend(out.acked);
        all.refused.extend(out.refused);
        all.refused_without_retry_after += out.refused_without_retry_after;
        all.other.extend(out.other);
    }
    assert!(all.other.is_empty(), "unexpected statuses {:?}", all.other);
    assert_eq!(all.refused_without_retry_after, 0);
    assert!(
        !all.refused.is_empty(),
        "the posters never saw the full disk"
    );
    assert!(
        all.acked.len() > 20,
        "too few acknowledged: {}",
        all.acked.len()
    );

    // Power cut (SIGKILL), restart without the hook: recovery starts and the server is ready.
    drop(server);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let restarted = start(port, &events, None);
    wait_ready(&client, &base).await;
    drop(restarted);

    let out = tmp.path().join("export");
    let status = Command::new(env!("CARGO_BIN_EXE_recserve"))
        .args(["export-events", "--out"])
        .arg(&out)
        .current_dir(common::root())
        .env("RECSERVE_FEEDBACK__LOG__DIR", &events)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let csv = std::fs::read_to_string(out.join("interactions.csv")).unwrap();
    let exported: HashSet<u64> = csv
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next()?.strip_prefix("dfu")?.parse().ok())
        .collect();
    let lost: Vec<_> = all.acked.difference(&exported).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    let phantom: Vec<_> = all.refused.intersection(&exported).collect();
    assert!(
        phantom.is_empty(),
        "refused with 503 yet in the log: {phantom:?}"
    );
}
