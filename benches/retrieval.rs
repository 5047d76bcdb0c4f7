//! Retrieval benchmarks: the exact scan at demo scale (1,500 × 32-d, k = 200 and 100, with and
//! without ~100 excluded ids) beside a copy of the previous heap-based scan, exact scan vs graph
//! (HNSW) top-200 over 64-d item vectors, and a recall@200 table of (M, ef_search, seed_pool, seeds) settings against the exact scan, for
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
use recserve::retrieval::index::{ExcludedIds, IndexConfig, SearchScratch, VectorIndex};
use rustc_hash::FxHashSet;

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
        let index_data = uniform(n, 1);
        let index = VectorIndex::build(index_data.clone(), None, DIM, &exact_cfg()).unwrap();
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
        let mut old = old_scan::Scratch::default();
        group.bench_function(BenchmarkId::new("old_heap", n), |b| {
            b.iter(|| {
                let q = &queries[(i % QUERIES) * DIM..][..DIM];
                i += 1;
                old_scan::search(
                    &index_data,
                    None,
                    DIM,
                    black_box(q),
                    K,
                    &|_| true,
                    &mut old,
                    &mut out,
                );
                black_box(out.len())
            })
        });
    }
    group.finish();
}

/// Demo-bundle shape: 1,500 items, 32-d, with bias; 100 excluded ids (a user's history).
const DEMO_N: usize = 1_500;
const DEMO_DIM: usize = 32;

fn demo_case() -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<u32>) {
    let mut rng = StdRng::seed_from_u64(7);
    let items: Vec<f32> = (0..DEMO_N * DEMO_DIM)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect();
    let bias: Vec<f32> = (0..DEMO_N)
        .map(|_| rng.random_range(-0.5f32..0.5))
        .collect();
    let queries: Vec<f32> = (0..QUERIES * DEMO_DIM)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect();
    let mut excluded: Vec<u32> = (0..100)
        .map(|_| rng.random_range(0..DEMO_N as u32))
        .collect();
    excluded.sort_unstable();
    excluded.dedup();
    (items, bias, queries, excluded)
}

/// The exact scan at demo scale, and the previous implementation (per-item heap push, hash-set
/// filter) on the same data in the same run.
fn bench_exact_demo(c: &mut Criterion) {
    let (items, bias, queries, excluded) = demo_case();
    let index =
        VectorIndex::build(items.clone(), Some(bias.clone()), DEMO_DIM, &exact_cfg()).unwrap();
    let excluded_set: FxHashSet<u32> = excluded.iter().copied().collect();
    let excluded_ids = ExcludedIds::new(excluded.iter().copied());
    let mut group = c.benchmark_group("exact_scan_demo_1500x32");
    for k in [200, 100] {
        let (mut scratch, mut out) = (SearchScratch::new(), Vec::new());
        let mut i = 0;
        group.bench_function(BenchmarkId::new("all", k), |b| {
            b.iter(|| {
                let q = &queries[(i % QUERIES) * DEMO_DIM..][..DEMO_DIM];
                i += 1;
                index
                    .search(black_box(q), k, &mut scratch, &mut out)
                    .unwrap();
                black_box(out.len())
            })
        });
        group.bench_function(BenchmarkId::new("excluding_100", k), |b| {
            b.iter(|| {
                let q = &queries[(i % QUERIES) * DEMO_DIM..][..DEMO_DIM];
                i += 1;
                index
                    .search_excluding(
                        black_box(q),
                        k,
                        &excluded_ids,
                        |_| true,
                        &mut scratch,
                        &mut out,
                    )
                    .unwrap();
                black_box(out.len())
            })
        });
        group.bench_function(BenchmarkId::new("closure_excluding_100", k), |b| {
            b.iter(|| {
                let q = &queries[(i % QUERIES) * DEMO_DIM..][..DEMO_DIM];
                i += 1;
                index
                    .search_filtered(
                        black_box(q),
                        k,
                        |id| !excluded_set.contains(&id),
                        &mut scratch,
                        &mut out,
                    )
                    .unwrap();
                black_box(out.len())
            })
        });
        let mut old = old_scan::Scratch::default();
        group.bench_function(BenchmarkId::new("old_heap_excluding_100", k), |b| {
            b.iter(|| {
                let q = &queries[(i % QUERIES) * DEMO_DIM..][..DEMO_DIM];
                i += 1;
                old_scan::search(
                    &items,
                    Some(&bias),
                    DEMO_DIM,
                    black_box(q),
                    k,
                    &|id| !excluded_set.contains(&id),
                    &mut old,
                    &mut out,
                );
                black_box(out.len())
            })
        });
    }
    group.finish();
}

/// A copy of the exact scan before "retrieval without per-item heap work": blocked dots, then
/// for each item a heap-threshold test, the filter, and a push into a bounded binary heap.
mod old_scan {
    use std::cmp::Ordering;

    const BLOCK: usize = 256;
    const LANES: usize = 16;

    fn dot(a: &[f32], b: &[f32]) -> f32 {
        let len = a.len().min(b.len());
        let (a_chunks, a_tail) = a[..len].as_chunks::<LANES>();
        let (b_chunks, b_tail) = b[..len].as_chunks::<LANES>();
        let mut acc = [0.0f32; LANES];
        for (x, y) in a_chunks.iter().zip(b_chunks) {
            for i in 0..LANES {
                acc[i] += x[i] * y[i];
            }
        }
        let mut tail = 0.0f32;
        for (x, y) in a_tail.iter().zip(b_tail) {
            tail += x * y;
        }
        let mut half = [0.0f32; LANES / 2];
        for i in 0..LANES / 2 {
            half[i] = acc[i] + acc[i + LANES / 2];
        }
        let mut quarter = [0.0f32; LANES / 4];
        for i in 0..LANES / 4 {
            quarter[i] = half[i] + half[i + LANES / 4];
        }
        ((quarter[0] + quarter[2]) + (quarter[1] + quarter[3])) + tail
    }

    fn worse(sa: f32, ia: u32, sb: f32, ib: u32) -> bool {
        match sa.total_cmp(&sb) {
            Ordering::Less => true,
            Ordering::Greater => false,
            Ordering::Equal => ia > ib,
        }
    }

    #[derive(Default)]
    pub struct Scratch {
        heap: Vec<(f32, u32)>,
        block: Vec<f32>,
    }

    #[allow(clippy::too_many_arguments)]
    pub fn search(
        vectors: &[f32],
        bias: Option<&[f32]>,
        dim: usize,
        query: &[f32],
        k: usize,
        allow: &impl Fn(u32) -> bool,
        s: &mut Scratch,
        out: &mut Vec<(u32, f32)>,
    ) {
        out.clear();
        s.heap.clear();
        s.heap.reserve(k);
        s.block.resize(BLOCK, 0.0);
        for (b, rows) in vectors.chunks(BLOCK * dim).enumerate() {
            let base = b * BLOCK;
            let count = rows.len() / dim;
            let scores = &mut s.block[..count];
            for (sc, row) in scores.iter_mut().zip(rows.chunks_exact(dim)) {
                *sc = dot(query, row);
            }
            if let Some(bias) = bias {
                for (sc, b) in scores.iter_mut().zip(&bias[base..base + count]) {
                    *sc += b;
                }
            }
            for (j, &score) in scores.iter().enumerate() {
                let id = (base + j) as u32;
                let accept = s.heap.len() < k
                    || s.heap
                        .first()
                        .is_some_and(|&(rs, ri)| worse(rs, ri, score, id));
                if accept && allow(id) {
                    push(&mut s.heap, k, score, id);
                }
            }
        }
        s.heap
            .sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        out.extend(s.heap.drain(..).map(|(sc, id)| (id, sc)));
    }

    fn push(heap: &mut Vec<(f32, u32)>, cap: usize, score: f32, id: u32) {
        if heap.len() < cap {
            heap.push((score, id));
            let mut i = heap.len() - 1;
            while i > 0 {
                let p = (i - 1) / 2;
                if !worse(heap[i].0, heap[i].1, heap[p].0, heap[p].1) {
                    break;
                }
                heap.swap(i, p);
                i = p;
            }
            return;
        }
        heap[0] = (score, id);
        let (len, mut i) = (heap.len(), 0);
        loop {
            let left = 2 * i + 1;
            if left >= len {
                break;
            }
            let right = left + 1;
            let mut child = left;
            if right < len && worse(heap[right].0, heap[right].1, heap[left].0, heap[left].1) {
                child = right;
            }
            if !worse(heap[child].0, heap[child].1, heap[i].0, heap[i].1) {
                break;
            }
            heap.swap(i, child);
            i = child;
        }
    }
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
    targets = bench_exact_demo, bench_exact, bench_hnsw
}
criterion_main!(benches);
