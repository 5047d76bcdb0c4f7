//! The runtime catalogue's per-request cost on the demo bundle, in-process: the default
//! pipeline without an overlay, with 10,000 added items (all exposure candidates, scored per
//! request), and with 1,000 bundle items taken down; and the cost of rebuilding the overlay
//! after a change (paid once per change, off the request path).

use criterion::{Criterion, criterion_group, criterion_main};
use recserve::bundle::Model;
use recserve::catalogue::{Change, ChangeSet, FeatureVectors, Overlay, Stamp};
use recserve::pipeline::{Deadline, Engine, Parallelism, Query, Treatment};
use std::hint::black_box;
use std::sync::Arc;

mod common;

fn engine() -> Arc<Engine> {
    common::demo_engine(Parallelism::Sequential)
}

fn changes(m: &Model, added: usize, down: usize) -> ChangeSet {
    let mut set = ChangeSet::default();
    let stamp = |k: usize| Stamp {
        ms: k as i64 + 1,
        origin: "bench".into(),
    };
    for k in 0..added {
        let features = [
            (
                "category".to_string(),
                m.categories[k % m.categories.len()].clone(),
            ),
            ("title".to_string(), format!("added item {k}")),
        ]
        .into();
        set.apply(
            &Change::Upsert {
                item_id: format!("added-{k}"),
                features,
            },
            &stamp(k),
        );
    }
    for k in 0..down {
        let item_id = m.item_ids[(k * 7) % m.n_items()].clone();
        set.apply(&Change::TakeDown { item_id }, &stamp(added + k));
    }
    set
}

fn bench(c: &mut Criterion) {
    let e = engine();
    let m = &e.model;
    let users = common::bench_users(m);
    let t = Treatment::default();
    let fv: &FeatureVectors = &e.feature_vectors;
    let added = Arc::new(Overlay::build(m, fv, &changes(m, 10_000, 0), 1));
    let down = Arc::new(Overlay::build(m, fv, &changes(m, 0, 1_000), 2));
    let q = |k: usize, overlay: Option<Arc<Overlay>>| Query {
        user_id: Some(users[k % users.len()].clone()),
        n: 20,
        exclude_seen: true,
        overlay,
        ..Default::default()
    };
    let mut g = c.benchmark_group("overlay");
    let mut k = 0;
    g.bench_function("recommend_no_overlay", |b| {
        b.iter(|| {
            k += 1;
            black_box(e.recommend(&q(k, None), &t, Deadline::after(e.cfg.total_budget())))
        })
    });
    g.bench_function("recommend_10000_added", |b| {
        b.iter(|| {
            k += 1;
            let q = q(k, Some(Arc::clone(&added)));
            black_box(e.recommend(&q, &t, Deadline::after(e.cfg.total_budget())))
        })
    });
    g.bench_function("recommend_1000_taken_down", |b| {
        b.iter(|| {
            k += 1;
            let q = q(k, Some(Arc::clone(&down)));
            black_box(e.recommend(&q, &t, Deadline::after(e.cfg.total_budget())))
        })
    });
    let set = changes(m, 10_000, 1_000);
    g.sample_size(10);
    g.bench_function("build_10000_added_1000_down", |b| {
        b.iter(|| black_box(Overlay::build(m, fv, &set, 3)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
