//! Per-request cost of the bandit: `choose` + `record_pull` for both policies on a warmed-up
//! state, plus a contended variant and a snapshot. Seeded, so runs are comparable.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use rand::{SeedableRng, rngs::SmallRng};
use recserve::bandit::{Bandit, BanditConfig, Context, NUM_CONTEXTS, PolicyConfig};

fn warmed(policy: PolicyConfig, discount: Option<f64>) -> Bandit {
    let bandit = Bandit::new(BanditConfig {
        policy,
        discount,
        ..BanditConfig::default()
    })
    .expect("default bandit config is valid");
    let mut rng = SmallRng::seed_from_u64(1);
    for i in 0..50_000usize {
        let ctx = Context::from_index(i % NUM_CONTEXTS).expect("index in range");
        let arm = bandit.choose(&ctx, &mut rng);
        bandit.record_pull(&ctx, arm).expect("valid arm");
        if i % 7 == 0 {
            bandit.record_reward(&ctx, arm, 1.0).expect("valid reward");
        }
    }
    bandit
}

fn contexts() -> Vec<Context> {
    let cfg = BanditConfig::default();
    (0..64)
        .map(|i| {
            let device = ["mobile", "desktop", "tablet", "tv"][i % 4];
            Context::new(i * 3, Some(device), (i as i64) * 5_003, &cfg)
        })
        .collect()
}

fn per_request(c: &mut Criterion) {
    let ctxs = contexts();
    let mut group = c.benchmark_group("bandit_request");
    for (name, policy, discount) in [
        (
            "epsilon_greedy",
            PolicyConfig::EpsilonGreedy { epsilon: 0.1 },
            None,
        ),
        ("thompson", PolicyConfig::Thompson, None),
        ("thompson_discounted", PolicyConfig::Thompson, Some(0.999)),
    ] {
        let bandit = warmed(policy, discount);
        let mut rng = SmallRng::seed_from_u64(2);
        let mut i = 0usize;
        group.bench_function(format!("{name}/choose+record_pull"), |b| {
            b.iter(|| {
                let ctx = &ctxs[i % ctxs.len()];
                i += 1;
                let arm = bandit.choose(black_box(ctx), &mut rng);
                bandit.record_pull(ctx, arm).expect("valid arm");
                black_box(arm)
            })
        });
        group.bench_function(format!("{name}/choose_next+record_pull"), |b| {
            b.iter(|| {
                let ctx = &ctxs[i % ctxs.len()];
                i += 1;
                let arm = bandit.choose_next(black_box(ctx));
                bandit.record_pull(ctx, arm).expect("valid arm");
                black_box(arm)
            })
        });
    }
    group.bench_function("context_new", |b| {
        let cfg = BanditConfig::default();
        b.iter(|| {
            Context::new(
                black_box(7),
                black_box(Some(
                    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) Mobile/15E148",
                )),
                black_box(1_700_000_000),
                &cfg,
            )
        })
    });
    group.finish();
}

/// The same request loop while another thread hammers the same context rows.
fn contended(c: &mut Criterion) {
    let bandit = Arc::new(warmed(PolicyConfig::Thompson, None));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let noise = {
        let (bandit, stop) = (Arc::clone(&bandit), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut rng = SmallRng::seed_from_u64(3);
            let ctx = Context::from_index(0).expect("index in range");
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let arm = bandit.choose(&ctx, &mut rng);
                bandit.record_pull(&ctx, arm).expect("valid arm");
            }
        })
    };
    let ctx = Context::from_index(0).expect("index in range");
    let mut rng = SmallRng::seed_from_u64(4);
    c.bench_function("bandit_request/thompson_contended_same_row", |b| {
        b.iter(|| {
            let arm = bandit.choose(&ctx, &mut rng);
            bandit.record_pull(&ctx, arm).expect("valid arm");
            black_box(arm)
        })
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    noise.join().expect("noise thread");
}

fn snapshot(c: &mut Criterion) {
    let bandit = warmed(PolicyConfig::Thompson, Some(0.999));
    c.bench_function("bandit_snapshot_json", |b| {
        b.iter(|| serde_json::to_vec(&bandit.snapshot()).expect("serializable"))
    });
}

criterion_group!(benches, per_request, contended, snapshot);
criterion_main!(benches);
