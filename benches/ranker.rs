//! Ranker scoring cost: the native scorer against LightGBM's C library on the same model.
//!
//! One request scores ~500 candidates with a 300-tree lambdarank model over ~20 features; the
//! performance goal is ≥10× LightGBM's prediction cost. The model is trained here on seeded
//! synthetic data (a few seconds) so the bench needs no files.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use recserve::ranking::gbdt::NativeModel;
use recserve::ranking::lgbm::{LabeledRows, LgbmBooster, train_lambdarank};
use serde_json::json;

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

criterion_group!(benches, bench_ranker);
criterion_main!(benches);
