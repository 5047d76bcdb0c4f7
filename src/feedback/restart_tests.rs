//! Restart cost: with periodic snapshots a restart replays only the log after the last one.
//! Counted, not timed, in CI; `scripts/restart_bench.sh` times a 1M-event restart (ignored
//! test `restart_with_a_million_events`, then the real binary on the log it leaves).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::FeedbackConfig;
use super::events::{FeedbackIn, ServedItem};
use super::log::LogConfig;
use super::log::fs::{LogFs, RealFs};
use super::log::sim::SimFs;
use super::service::{FeedbackService, ImpressionIn};
use crate::bandit::BanditConfig;
use crate::pipeline::Strategy;

fn fcfg(dir: PathBuf) -> FeedbackConfig {
    FeedbackConfig {
        events: ["impression", "click", "purchase"]
            .map(String::from)
            .to_vec(),
        history_per_user: 50,
        impressions_capacity: 200_000,
        impressions_max_bytes: 128 << 20,
        impressions_ttl_secs: 86_400,
        history_guest_max_bytes: 64 << 20,
        history_guest_ttl_secs: 7 * 86_400,
        max_credit_per_impression: None,
        max_credit_per_item: None,
        auth: super::FeedbackAuth::Open,
        token: String::new(),
        signing_key: String::new(),
        max_batch: 1000,
        snapshot_interval_secs: 0,
        log: LogConfig {
            dir,
            ..LogConfig::default()
        },
    }
}

fn open(cfg: &FeedbackConfig, fs: Arc<dyn LogFs>) -> FeedbackService {
    FeedbackService::open_on(
        cfg,
        &BanditConfig::default(),
        &prometheus::Registry::new(),
        fs,
    )
    .unwrap()
}

/// Serves list `i` (one impression record) and returns the click on its item.
fn serve(svc: &FeedbackService, i: u64) -> FeedbackIn {
    let rid = format!("r{i}");
    let user = format!("u{}", i % 1000);
    let pick = svc.choose_arm((i % 7) as usize, Some("desktop"), 1_700_000_000);
    let item = format!("i{}", i % 5000);
    let items = vec![ServedItem {
        item_id: item.clone(),
        position: 0,
        score: 1.0,
        explanation: None,
        exposure_propensity: None,
    }];
    svc.record_impression(ImpressionIn {
        id: &rid,
        client_request_id: None,
        user_id: Some(&user),
        variant: "control",
        arm: Some(&pick),
        strategy: Strategy::Popular,
        model_version: "v1",
        items,
    });
    FeedbackIn {
        request_id: rid,
        user_id: user,
        item_id: item,
        event: "click".into(),
        value: None,
        ts: Some(1_700_000_000 + i as i64),
        impression_token: None,
    }
}

/// Serves `n` lists and clicks each list's item (one batch, one fsync): 2n log records.
async fn rounds(svc: &FeedbackService, from: u64, n: u64) {
    let events = (from..from + n).map(|i| serve(svc, i)).collect();
    svc.ingest_for_test(events).await.unwrap();
}

/// Serves one list and clicks its first item: two log records.
async fn round(svc: &FeedbackService, i: u64) {
    let ev = serve(svc, i);
    svc.ingest_for_test(vec![ev]).await.unwrap();
}

#[tokio::test]
async fn restart_after_a_snapshot_replays_only_the_tail() {
    let fs = SimFs::new();
    let cfg = fcfg(PathBuf::from("/srv/events"));
    let svc = open(&cfg, fs.clone());
    svc.replay_pending().unwrap();
    for i in 0..300 {
        round(&svc, i).await;
    }
    let cut = svc.write_snapshot().await.unwrap();
    assert_eq!(cut, 600);
    for i in 300..320 {
        round(&svc, i).await;
    }
    let live = svc.bandit_stats();
    // A crash: no shutdown snapshot.
    svc.close(false).await;
    drop(svc);

    let restarted = open(&cfg, fs.crash_image(1));
    assert!(!restarted.is_ready());
    assert_eq!(restarted.replay_pending().unwrap(), 40);
    assert!(restarted.is_ready());
    let restored = restarted.bandit_stats();
    for (a, b) in live.iter().zip(&restored) {
        assert_eq!(a.lifetime_pulls, b.lifetime_pulls);
        assert!((a.reward_sum - b.reward_sum).abs() < 1e-9);
    }
    assert_eq!(restarted.history.recent("u7"), {
        let full = open(&cfg, {
            let image = fs.crash_image(1);
            image
                .remove(&cfg.log.dir.join("bandit.snapshot.json"))
                .unwrap();
            image
        });
        assert_eq!(full.replay_pending().unwrap(), 640);
        full.history.recent("u7")
    });
}

/// `scripts/restart_bench.sh`: 1M events in the log (500k served lists + 500k clicks) with a
/// snapshot 10k events before the end; prints how long a restart takes until ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes ~250 MB; run by scripts/restart_bench.sh"]
async fn restart_with_a_million_events() {
    let dir = std::env::var("RECSERVE_RESTART_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir().join("recserve-restart-bench"));
    let _ = std::fs::remove_dir_all(&dir);
    // The shipped feedback and bandit settings, so the binary can restart on this log too.
    let shipped = crate::config::Config::load_with_env(None, Vec::new()).unwrap();
    let cfg = FeedbackConfig {
        snapshot_interval_secs: 0,
        log: LogConfig {
            dir: dir.clone(),
            ..shipped.feedback.log.clone()
        },
        ..shipped.feedback.clone()
    };
    let bandit = shipped.bandit.clone();
    let open = |cfg: &FeedbackConfig, fs: Arc<dyn LogFs>| {
        FeedbackService::open_on(cfg, &bandit, &prometheus::Registry::new(), fs).unwrap()
    };
    let svc = open(&cfg, Arc::new(RealFs));
    svc.replay_pending().unwrap();
    let t = Instant::now();
    for chunk in 0..4950 {
        rounds(&svc, chunk * 100, 100).await;
    }
    svc.write_snapshot().await.unwrap();
    for chunk in 4950..5000 {
        rounds(&svc, chunk * 100, 100).await;
    }
    svc.close(false).await;
    drop(svc);
    let wrote = t.elapsed();
    let t = Instant::now();
    let bare =
        super::log::EventLog::open_on(cfg.log.clone(), None, Arc::new(RealFs), u64::MAX, 990_001)
            .unwrap();
    let log_open = t.elapsed();
    drop(bare);
    let t = Instant::now();
    let restarted = open(&cfg, Arc::new(RealFs));
    let opened = t.elapsed();
    let replayed = restarted.replay_pending().unwrap();
    let ready = t.elapsed();
    let stats = restarted.log_stats();
    eprintln!(
        "restart bench: {} records in the log (written in {:.1} s); open+recovery {:.3} s, \
         replayed {replayed} records, ready after {:.3} s (log open alone {:.3} s)",
        stats.durable_seq.unwrap_or(0),
        wrote.as_secs_f64(),
        opened.as_secs_f64(),
        ready.as_secs_f64(),
        log_open.as_secs_f64()
    );
    assert_eq!(replayed, 10_000);
    drop(restarted);
    // The script then times the real binary starting on this log.
    if std::env::var_os("RECSERVE_RESTART_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
