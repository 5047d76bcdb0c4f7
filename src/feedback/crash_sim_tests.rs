//! Simulated power loss under the whole feedback service (log, snapshots, bandit): for each
//! seed, concurrent feedback, impressions and snapshots run on a [`SimFs`] until the
//! simulated power goes at a random operation; then the disk image a crash could leave
//! (only synced data for sure, unsynced pages lost, torn or reordered) is reopened. Checked:
//! recovery always starts, every acknowledged (202) event is in the log, and the restored
//! state (snapshot + tail) equals a full replay of the recovered log, bit for bit (bandit
//! statistics, per-user history with eviction). `RECSERVE_CRASH_SEEDS`
//! sets the number of seeds (default 200; `scripts/crash_sim.sh` runs 5,000).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::FeedbackConfig;
use super::events::{FeedbackIn, Record, ServedItem};
use super::log::LogConfig;
use super::log::fs::LogFs;
use super::log::sim::SimFs;
use super::service::{FeedbackService, ImpressionIn};
use crate::bandit::{ArmStats, BanditConfig};
use crate::pipeline::Strategy;

const DIR: &str = "/data/events";

fn fcfg() -> FeedbackConfig {
    FeedbackConfig {
        events: ["impression", "click", "add_to_cart", "purchase", "dismiss"]
            .map(String::from)
            .to_vec(),
        // Small, so eviction (which depends on the order of application) happens.
        history_per_user: 4,
        impressions_capacity: 16,
        impressions_max_bytes: 128 << 20,
        impressions_ttl_secs: 86_400,
        history_guest_max_bytes: 64 << 20,
        history_guest_ttl_secs: 7 * 86_400,
        max_credit_per_impression: None,
        max_credit_per_item: None,
        auth: super::FeedbackAuth::Open,
        token: String::new(),
        signing_key: String::new(),
        max_batch: 16,
        snapshot_interval_secs: 0,
        log: LogConfig {
            dir: PathBuf::from(DIR),
            // Small segments: rotations (new files, directory syncs) happen in every run.
            segment_bytes: 2048,
            retention_bytes: None,
            retention_age_secs: None,
            queue_capacity: 256,
            retry_ms: 2,
            ..LogConfig::default()
        },
    }
}

fn open(fs: Arc<dyn LogFs>) -> Result<FeedbackService, String> {
    let svc = FeedbackService::open_on(
        &fcfg(),
        &BanditConfig::default(),
        &prometheus::Registry::new(),
        fs,
    )
    .map_err(|e| e.to_string())?;
    svc.replay_pending().map_err(|e| e.to_string())?;
    Ok(svc)
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// One impression then feedback on it, `rounds` times; returns the acknowledged events
/// with their sequence numbers.
async fn client(svc: Arc<FeedbackService>, id: u64, seed: u64) -> Vec<(u64, FeedbackIn)> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut acked = Vec::new();
    for round in 0..40 {
        let rid = format!("r{id}-{round}");
        let user = format!("u{}", rng.below(5));
        let pick = svc.choose_arm(rng.below(4) as usize, Some("mobile"), 1_700_000_000);
        let items: Vec<ServedItem> = (0..3)
            .map(|p| ServedItem {
                item_id: format!("i{}", rng.below(20)),
                position: p,
                score: 1.0,
                explanation: None,
                exposure_propensity: None,
            })
            .collect();
        let clicked = items[rng.below(3) as usize].item_id.clone();
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
        let event = ["click", "purchase", "dismiss", "add_to_cart"][rng.below(4) as usize];
        let ev = FeedbackIn {
            request_id: rid,
            user_id: user,
            item_id: clicked,
            event: event.to_string(),
            value: None,
            ts: Some(1_700_000_000 + round),
            impression_token: None,
        };
        match svc.ingest(vec![ev.clone()]).await {
            Ok(ack) => acked.push((ack.last_seq, ev)),
            // The power is gone (or the queue is full): nothing was acknowledged.
            Err(_) => {
                if svc.log_stats().failed {
                    break;
                }
            }
        }
        tokio::task::yield_now().await;
    }
    acked
}

fn feedback_records(svc: &FeedbackService) -> Vec<(u64, Record)> {
    svc.log
        .replay(0)
        .unwrap()
        .map(|r| {
            let (seq, payload) = r.unwrap();
            (seq, serde_json::from_slice::<Record>(&payload).unwrap())
        })
        .collect()
}

fn assert_same_stats(a: &[ArmStats], b: &[ArmStats], seed: u64) {
    assert_eq!(a.len(), b.len(), "seed {seed}");
    for (x, y) in a.iter().zip(b) {
        assert_eq!((&x.context, &x.arm), (&y.context, &y.arm), "seed {seed}");
        assert_eq!(
            x.lifetime_pulls, y.lifetime_pulls,
            "seed {seed}: {x:?} vs {y:?}"
        );
        assert!(
            (x.pulls - y.pulls).abs() < 1e-9,
            "seed {seed}: {x:?} vs {y:?}"
        );
        assert!(
            (x.reward_sum - y.reward_sum).abs() < 1e-9,
            "seed {seed}: {x:?} vs {y:?}"
        );
    }
}

/// Runs one seed; returns (acknowledged events, records recovered).
async fn run_seed(seed: u64) -> (usize, usize) {
    let fs = SimFs::new();
    let svc = Arc::new(open(fs.clone()).unwrap());
    let mut rng = Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1);
    // The power goes after a random number of file operations.
    fs.crash_after(10 + rng.below(300));
    let mut tasks = Vec::new();
    for id in 0..3 {
        tasks.push(tokio::spawn(client(Arc::clone(&svc), id, seed * 7 + id)));
    }
    let snapshots = {
        let svc = Arc::clone(&svc);
        tokio::spawn(async move {
            for _ in 0..20 {
                tokio::task::yield_now().await;
                if svc.write_snapshot().await.is_err() && svc.log_stats().failed {
                    break;
                }
            }
        })
    };
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    snapshots.await.unwrap();
    drop(Arc::into_inner(svc).expect("all tasks are done"));

    // Restart on what the crash left; recovery must always start.
    let image = fs.crash_image(seed);
    let restored = open(image.clone())
        .unwrap_or_else(|e| panic!("seed {seed}: recovery refused to start: {e}"));
    let records = feedback_records(&restored);
    for (i, (seq, _)) in records.iter().enumerate() {
        assert_eq!(*seq, i as u64 + 1, "seed {seed}: gap in the recovered log");
    }
    for (seq, ev) in &acked {
        let found = records.get((*seq - 1) as usize);
        assert!(
            matches!(found, Some((s, Record::Feedback { event, .. })) if s == seq && event == ev),
            "seed {seed}: acknowledged event {seq} lost or changed: {found:?}"
        );
    }
    // The restored state (snapshot + tail) equals a full replay of the same log.
    let full_image = fs.crash_image(seed);
    let snapshot = Path::new(DIR).join("bandit.snapshot.json");
    let _ = full_image.remove(&snapshot);
    let full = open(full_image).unwrap();
    assert_same_stats(&restored.bandit_stats(), &full.bandit_stats(), seed);
    for u in 0..5 {
        let user = format!("u{u}");
        assert_eq!(
            restored.history.recent(&user),
            full.history.recent(&user),
            "seed {seed}: history of {user}"
        );
    }
    (acked.len(), records.len())
}

fn seeds() -> u64 {
    std::env::var("RECSERVE_CRASH_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_simulated_power_loss() {
    let n = seeds();
    let (mut acked, mut recovered, mut with_acks) = (0, 0, 0);
    for seed in 1..=n {
        let (a, r) = run_seed(seed).await;
        acked += a;
        recovered += r;
        with_acks += u64::from(a > 0);
    }
    eprintln!("crash sim: {n} seeds, {acked} acknowledged events, {recovered} records recovered");
    // The crash points must land mid-traffic, not before it: most runs acknowledge something.
    assert!(
        with_acks * 2 > n,
        "only {with_acks} of {n} runs acknowledged anything"
    );
}
