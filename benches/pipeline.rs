//! Per-stage and whole-pipeline benchmarks on the demo bundle, in-process (no HTTP): each
//! candidate source, merge, feature rows, ranker scoring and the full two-stage request.

use criterion::{Criterion, criterion_group, criterion_main};
use recserve::config::Config;
use recserve::pipeline::{Deadline, Engine, Parallelism, Query, Treatment};
use recserve::ranking::features::{build_rows, n_features};
use recserve::ranking::{Diversity, FirstPhase};
use recserve::retrieval::{cf, content, item2item, merge, popular, segment, session};
use std::hint::black_box;
use std::sync::Arc;

/// Sources benched on their own run to completion (no request deadline).
const NONE: Deadline = Deadline::NONE;

mod common;

/// The first engine runs the sources on the rayon pool; the sequential one is built below.
fn engine() -> Arc<Engine> {
    common::demo_engine(Parallelism::Parallel)
}

fn bench(c: &mut Criterion) {
    let e = engine();
    let m = &e.model;
    let users = common::bench_users(m);
    let q = |k: usize| Query {
        user_id: Some(users[k % users.len()].clone()),
        n: 20,
        exclude_seen: true,
        ..Default::default()
    };
    let t = Treatment::default();
    let (profile, elig) = e.prepare(&q(1));
    let counts = t.counts;

    let cat = e.catalog();
    let mut g = c.benchmark_group("stage");
    g.bench_function("profile", |b| b.iter(|| black_box(e.prepare(&q(1)))));
    g.bench_function("source_cf_200", |b| {
        b.iter(|| black_box(cf::candidates(&cat, &profile, &elig, counts.cf, NONE)))
    });
    g.bench_function("source_content_200", |b| {
        b.iter(|| {
            black_box(content::candidates(
                &cat,
                &profile,
                &elig,
                counts.content,
                NONE,
            ))
        })
    });
    g.bench_function("source_session_100", |b| {
        b.iter(|| {
            black_box(session::candidates(
                &cat,
                &profile,
                &elig,
                counts.session,
                NONE,
            ))
        })
    });
    g.bench_function("source_item2item_200", |b| {
        b.iter(|| {
            black_box(item2item::candidates(
                m,
                &profile,
                &elig,
                counts.item2item,
                NONE,
            ))
        })
    });
    g.bench_function("source_popular_50", |b| {
        b.iter(|| black_box(popular::candidates(m, &profile, &elig, counts.popular)))
    });
    let lists = [
        cf::candidates(&cat, &profile, &elig, counts.cf, NONE).list,
        content::candidates(&cat, &profile, &elig, counts.content, NONE).list,
        session::candidates(&cat, &profile, &elig, counts.session, NONE).list,
        popular::candidates(m, &profile, &elig, counts.popular),
        item2item::candidates(m, &profile, &elig, counts.item2item, NONE).list,
        segment::candidates(m, &profile, &elig, counts.segment),
    ];
    g.bench_function("merge", |b| b.iter(|| black_box(merge(&lists))));
    {
        let cands = merge(&lists);
        let w = e.plan.first_phase_for(&profile);
        g.bench_function(format!("first_phase_{}", cands.len()), |b| {
            b.iter(|| black_box(FirstPhase::run(&cands, w, e.cfg.rerank_depth)))
        });
    }
    let cands = merge(&lists);
    let mut rows = Vec::with_capacity(cands.len() * n_features(m));
    g.bench_function(format!("features_{}", cands.len()), |b| {
        b.iter(|| {
            rows.clear();
            build_rows(m, &profile, &cands, &mut rows);
            black_box(rows.len())
        })
    });
    if let Some(r) = &e.ranker {
        g.bench_function(format!("ranker_{}_{}", r.backend(), cands.len()), |b| {
            b.iter(|| black_box(r.score_candidates(m, &profile, &cands)))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("pipeline");
    let mut k = 0;
    g.bench_function("recommend_full_parallel_sources", |b| {
        b.iter(|| {
            k += 1;
            black_box(e.recommend(&q(k), &t, Deadline::after(e.cfg.total_budget())))
        })
    });
    // Opt-in extras, each against the default request above: explanations (TreeSHAP for the
    // ranked items) and diversity (MMR over a 3n pool plus the category cap).
    g.bench_function("recommend_explain", |b| {
        b.iter(|| {
            k += 1;
            let q = Query {
                explain: true,
                ..q(k)
            };
            black_box(e.recommend(&q, &t, Deadline::after(e.cfg.total_budget())))
        })
    });
    g.bench_function("recommend_diversity_0.3_cap_3", |b| {
        b.iter(|| {
            k += 1;
            let q = Query {
                diversity: Diversity {
                    lambda: 0.3,
                    max_per_category: Some(3),
                },
                ..q(k)
            };
            black_box(e.recommend(&q, &t, Deadline::after(e.cfg.total_budget())))
        })
    });
    let mut serial = e.cfg.clone();
    serial.parallel_sources = Parallelism::Sequential;
    let index_cfg = Config::load_with_env(None, Vec::new())
        .expect("config")
        .index;
    let seq = Arc::new(Engine::new(m.clone(), serial, &index_cfg, None).expect("engine"));
    g.bench_function("recommend_full_sequential_sources", |b| {
        b.iter(|| {
            k += 1;
            black_box(seq.recommend(&q(k), &t, Deadline::after(seq.cfg.total_budget())))
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(std::time::Duration::from_secs(5));
    targets = bench
}
criterion_main!(benches);
