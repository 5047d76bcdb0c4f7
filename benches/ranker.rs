//! Ranker scoring cost: the native scorer against LightGBM's C library on the same model.
//!
//! Two groups:
//! - `demo_ranker`: the demo bundle's ranker (`models/demo/ranker.txt`, 150 trees of 31 leaves,
//!   26 features) on real feature rows of demo users, at the batch sizes serving sees: 1 row,
//!   64 rows (`serving.rerank_depth`, the request path), 100 (the previous cut) and a whole
//!   merged candidate list.
//! - `ranker_500x20x300`: a 300-tree lambdarank model over 20 features trained here on seeded
//!   synthetic data (a few seconds), 500 rows, against LightGBM's C library (the goal there
//!   is ≥10× LightGBM's prediction cost).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use recserve::bundle::Model;
use recserve::config::Config;
use recserve::pipeline::{Deadline, Engine, Query};
use recserve::ranking::features::build_rows;
use recserve::ranking::gbdt::NativeModel;
use recserve::ranking::lgbm::{LabeledRows, LgbmBooster, train_lambdarank};
use recserve::retrieval::{cf, content, item2item, merge, popular, segment, session};
use serde_json::json;

/// Sources benched on their own run to completion (no request deadline).
const NONE: Deadline = Deadline::NONE;

const N_FEATURES: usize = 20;
const N_TREES: usize = 300;
const N_ROWS: usize = 500;

/// Rows with 5% missing values and a label that depends on several features non-linearly.
fn synthetic(rng: &mut StdRng, n_rows: usize) -> (Vec<f32>, Vec<f32>) {
    let mut rows = Vec::with_capacity(n_rows * N_FEATURES);
    let mut labels = Vec::with_capacity(n_rows);
    for _ in 0..n_rows {
        let start = rows.len();
        for _ in 0..N_FEATURES {
            rows.push(if rng.random_bool(0.05) {
                f32::NAN
            } else {
                rng.random_range(-1.0f32..1.0)
            });
        }
        let x = |f: usize| rows[start + f].max(-1.0);
        let s = x(0) + x(1) * x(2) - 0.5 * x(3).abs() + 0.3 * x(4).max(0.0) + 0.2 * x(5) * x(6);
        labels.push(
            (s + 1.5 + rng.random_range(-0.5f32..0.5))
                .clamp(0.0, 3.0)
                .floor(),
        );
    }
    (rows, labels)
}

fn trained_model() -> String {
    let mut rng = StdRng::seed_from_u64(42);
    let n_groups = 400;
    let (rows, labels) = synthetic(&mut rng, n_groups * 25);
    let groups = vec![25; n_groups];
    let train = LabeledRows {
        features: &rows,
        n_features: N_FEATURES,
        labels: &labels,
        groups: Some(&groups),
        init_score: None,
    };
    let params = json!({"num_iterations": N_TREES, "num_leaves": 31, "learning_rate": 0.05,
                        "min_data_in_leaf": 5, "seed": 7, "deterministic": true});
    let trained = train_lambdarank(&train, None, &params, None).expect("training the bench model");
    assert_eq!(
        trained.log.best_iteration, N_TREES,
        "bench model must have {N_TREES} trees"
    );
    trained.model_text
}

fn bench_ranker(c: &mut Criterion) {
    let text = trained_model();
    let native = NativeModel::parse(&text).expect("parse");
    let booster = LgbmBooster::from_string(&text).expect("load");
    let (probe, _) = synthetic(&mut StdRng::seed_from_u64(1), N_ROWS);

    let mut out = Vec::new();
    native
        .score_batch(&probe, N_FEATURES, &mut out)
        .expect("score");
    let reference = booster.predict_batch(&probe, N_FEATURES).expect("predict");
    assert_eq!(out, reference, "native and LightGBM scores differ");
    eprintln!(
        "bench model: {} trees, max depth {}, {} features",
        native.num_trees(),
        native.max_depth(),
        native.num_features()
    );

    let mut group = c.benchmark_group(format!("ranker_{N_ROWS}x{N_FEATURES}x{N_TREES}"));
    group.throughput(Throughput::Elements(N_ROWS as u64));
    group.bench_function(BenchmarkId::new("native", "score_batch"), |b| {
        b.iter(|| {
            native
                .score_batch(black_box(&probe), N_FEATURES, &mut out)
                .expect("score");
            black_box(&out);
        })
    });
    group.bench_function(BenchmarkId::new("native", "score_per_row"), |b| {
        b.iter(|| {
            let mut sum = 0.0;
            for row in black_box(&probe).chunks_exact(N_FEATURES) {
                sum += native.score(row).expect("score");
            }
            black_box(sum)
        })
    });
    group.bench_function(BenchmarkId::new("lightgbm3", "predict_batch"), |b| {
        b.iter(|| {
            black_box(
                booster
                    .predict_batch(black_box(&probe), N_FEATURES)
                    .expect("predict"),
            )
        })
    });
    group.finish();
}

/// Feature rows of the demo bundle: the merged candidate lists of a few demo users, in order.
fn demo_rows(bundle: &std::path::Path) -> Vec<f32> {
    let cfg = Config::load_with_env(None, Vec::new()).expect("config");
    let model = Model::read(bundle).expect("demo bundle");
    let e = Engine::new(model, cfg.serving.clone(), &cfg.index, Some(bundle)).expect("engine");
    let m = &e.model;
    let cat = e.catalog();
    let counts = recserve::pipeline::Treatment::default().counts;
    let mut rows = Vec::new();
    for k in 0..4 {
        let q = Query {
            user_id: Some(m.user_ids[(k * 7919) % m.n_users()].clone()),
            n: 20,
            exclude_seen: true,
            ..Default::default()
        };
        let (profile, elig) = e.prepare(&q);
        let lists = [
            cf::candidates(&cat, &profile, &elig, counts.cf, NONE).list,
            content::candidates(&cat, &profile, &elig, counts.content, NONE).list,
            session::candidates(&cat, &profile, &elig, counts.session, NONE).list,
            popular::candidates(m, &profile, &elig, counts.popular),
            item2item::candidates(m, &profile, &elig, counts.item2item, NONE).list,
            segment::candidates(m, &profile, &elig, counts.segment),
        ];
        build_rows(m, &profile, &merge(&lists), &mut rows);
    }
    rows
}

fn bench_demo(c: &mut Criterion) {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let bundle = root.join("models/demo");
    let native = NativeModel::from_file(bundle.join("ranker.txt")).expect("demo ranker");
    let nf = native.num_features();
    let all = demo_rows(&bundle);
    let booster = LgbmBooster::from_string(
        &std::fs::read_to_string(bundle.join("ranker.txt")).expect("demo ranker"),
    )
    .expect("load");
    let mut out = Vec::new();
    native.score_batch(&all, nf, &mut out).expect("score");
    let reference = booster.predict_batch(&all, nf).expect("predict");
    assert_eq!(out, reference, "native and LightGBM scores differ");
    let mut group = c.benchmark_group("demo_ranker");
    for n in [1, 7, 64, 100, 462] {
        let rows = &all[..n * nf];
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new("native", n), |b| {
            b.iter(|| {
                native
                    .score_batch(black_box(rows), nf, &mut out)
                    .expect("score");
                black_box(&out);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_demo, bench_ranker);
criterion_main!(benches);
