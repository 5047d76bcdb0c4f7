//! Retrieval benchmarks: exact scan vs graph (HNSW) top-200 over 64-d item vectors, and a
//! recall@200 table of (M, ef_search, seed_pool, seeds) settings against the exact scan, for
//! queries drawn from the item clusters and for uniform random queries, plus dump/load times.
//!
//! `RECSERVE_BENCH_HNSW_N` sets the graph catalogue size (default 20 000; 100 000 takes 1–2 min
//! per graph on 2 cores) and `RECSERVE_BENCH_HNSW_M` the M values swept (default 8,16,32).
//! Graphs are built outside the timed loops; the table is printed to stderr.

use std::collections::HashSet;
use std::hint::black_box;
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use recserve::retrieval::index::{IndexConfig, SearchScratch, VectorIndex};

const DIM: usize = 64;
const K: usize = 200;
const QUERIES: usize = 200;

/// `n` items then `queries` queries around 50 shared centres: centre × norm in [0.5, 2] + ±0.15 noise.
fn clustered(n: usize, queries: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let centres: Vec<Vec<f32>> = (0..50)
        .map(|_| {
            let c: Vec<f32> = (0..DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect();
            let norm = c.iter().map(|x| x * x).sum::<f32>().sqrt();
            c.into_iter().map(|x| x / norm).collect()
        })
        .collect();
    let mut all = Vec::with_capacity((n + queries) * DIM);
    for _ in 0..n + queries {
        let c = &centres[rng.random_range(0..centres.len())];
        let scale = rng.random_range(0.5f32..2.0);
        all.extend(
            c.iter()
                .map(|x| x * scale + rng.random_range(-0.15f32..0.15)),
        );
    }
    let queries = all.split_off(n * DIM);
    (all, queries)
}

fn uniform(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n * DIM)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect()
}

fn exact_cfg() -> IndexConfig {
    IndexConfig {
        exact_below: usize::MAX,
        ..IndexConfig::default()
    }
}

fn bench_exact(c: &mut Criterion) {
    let mut group = c.benchmark_group("exact_scan_k200_64d");
    for n in [2_000, 100_000] {
        let index = VectorIndex::build(uniform(n, 1), None, DIM, &exact_cfg()).unwrap();
        let queries = uniform(QUERIES, 2);
        let (mut scratch, mut out) = (SearchScratch::new(), Vec::new());
        let mut i = 0;
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                let q = &queries[(i % QUERIES) * DIM..][..DIM];
                i += 1;
                index
                    .search(black_box(q), K, &mut scratch, &mut out)
                    .unwrap();
                black_box(out.len())
            })
        });
    }
    group.finish();
}

fn hnsw_n() -> usize {
    std::env::var("RECSERVE_BENCH_HNSW_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

fn recall(found: &[(u32, f32)], truth: &[(u32, f32)]) -> f64 {
    let truth: HashSet<u32> = truth.iter().map(|p| p.0).collect();
    found.iter().filter(|p| truth.contains(&p.0)).count() as f64 / truth.len() as f64
}

/// M values swept by the recall table: `RECSERVE_BENCH_HNSW_M` (comma-separated), default 8,16,32.
fn m_values() -> Vec<usize> {
    std::env::var("RECSERVE_BENCH_HNSW_M")
        .ok()
        .map(|v| v.split(',').filter_map(|m| m.trim().parse().ok()).collect())
        .filter(|v: &Vec<usize>| !v.is_empty())
        .unwrap_or_else(|| vec![8, 16, 32])
}

/// Exact top-200 of every query, the ground truth for recall.
fn ground_truth(exact: &VectorIndex, queries: &[f32]) -> Vec<Vec<(u32, f32)>> {
    let (mut scratch, mut out) = (SearchScratch::new(), Vec::new());
    queries
        .chunks_exact(DIM)
        .map(|q| {
            exact.search(q, K, &mut scratch, &mut out).unwrap();
            out.clone()
        })
        .collect()
}

/// Mean recall@200 and mean single-thread latency (ms) of `index` over `queries`.
fn measure(index: &VectorIndex, queries: &[f32], truth: &[Vec<(u32, f32)>]) -> (f64, f64) {
    let (mut scratch, mut out) = (SearchScratch::new(), Vec::new());
    let started = Instant::now();
    let mut total = 0.0;
    for (q, t) in queries.chunks_exact(DIM).zip(truth) {
        index.search(q, K, &mut scratch, &mut out).unwrap();
        total += recall(&out, t);
    }
    let ms = started.elapsed().as_secs_f64() * 1e3 / truth.len() as f64;
    (total / truth.len() as f64, ms)
}

/// Prints recall@200 and latency per (M, ef_search) for queries drawn from the item clusters
/// ("in-dist", like user vectors trained with the items) and for uniform random queries
/// ("random", a harder case for the MIPS reduction), then times the default configuration.
fn bench_hnsw(c: &mut Criterion) {
    let n = hnsw_n();
    let (items, queries) = clustered(n, QUERIES, 3);
    let random_queries = uniform(QUERIES, 4);
    let exact = VectorIndex::build(items.clone(), None, DIM, &exact_cfg()).unwrap();
    let truth = ground_truth(&exact, &queries);
    let random_truth = ground_truth(&exact, &random_queries);
    let (_, exact_ms) = measure(&exact, &queries, &truth);
    eprintln!("exact n={n} dim={DIM}: {exact_ms:.2} ms/query");

    let mut default_index = None;
    for m in m_values() {
        let cfg = IndexConfig {
            exact_below: 0,
            m,
            ..IndexConfig::default()
        };
        let started = Instant::now();
        let mut index = VectorIndex::build(items.clone(), None, DIM, &cfg).unwrap();
        let build_s = started.elapsed().as_secs_f64();
        let grid = [
            (128, 1024, 32),
            (128, 4096, 32),
            (128, 4096, 128),
            (256, 4096, 64),
            (400, 4096, 128),
            (400, 16384, 128),
        ];
        for (ef_search, seed_pool, seeds) in grid {
            let search_cfg = IndexConfig {
                ef_search,
                seed_pool,
                seeds,
                ..cfg.clone()
            };
            index.set_search_config(&search_cfg).unwrap();
            let (r, ms) = measure(&index, &queries, &truth);
            let (rr, rms) = measure(&index, &random_queries, &random_truth);
            eprintln!(
                "graph n={n} dim={DIM} M={m} ef_construction=200 (build {build_s:.1} s) \
                 ef_search={ef_search} seed_pool={seed_pool} seeds={seeds}: in-dist recall@{K}={r:.4} \
                 {ms:.3} ms/query; random recall@{K}={rr:.4} {rms:.3} ms/query"
            );
        }
        if m == 16 {
            index.set_search_config(&cfg).unwrap();
            let dir = tempfile::tempdir().unwrap();
            let started = Instant::now();
            index.dump(dir.path(), "bench").unwrap();
            let dump_s = started.elapsed().as_secs_f64();
            let bytes = std::fs::metadata(dir.path().join("bench.graph"))
                .unwrap()
                .len();
            let started = Instant::now();
            let loaded = VectorIndex::load(dir.path(), "bench", items.clone(), None, DIM, &cfg);
            let load_s = started.elapsed().as_secs_f64();
            assert!(loaded.unwrap().is_loaded_from_dump());
            eprintln!(
                "graph n={n} M={m}: dump {dump_s:.3} s, {:.1} MB, load {load_s:.3} s",
                bytes as f64 / 1e6
            );
            default_index = Some(index);
        }
    }

    if let Some(index) = default_index {
        let (mut scratch, mut out) = (SearchScratch::new(), Vec::new());
        let mut i = 0;
        c.bench_function(&format!("hnsw_k200_64d_clustered/{n}"), |b| {
            b.iter(|| {
                let q = &queries[(i % QUERIES) * DIM..][..DIM];
                i += 1;
                index
                    .search(black_box(q), K, &mut scratch, &mut out)
                    .unwrap();
                black_box(out.len())
            })
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = bench_exact, bench_hnsw
}
criterion_main!(benches);
