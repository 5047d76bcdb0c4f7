//! Tests of the index against naive references: brute-force top-k, the key-selection scan vs the
//! heap scan it replaced (bit for bit, every kernel), exact vs HNSW, MIPS vs nearest-neighbour,
//! bias, dump/reload round trips, and inputs that must error instead of panicking.

use std::collections::HashSet;
use std::path::Path;

use hnsw_rs::prelude::Distance;
use proptest::prelude::*;
use rand::{RngExt, SeedableRng, rngs::StdRng};

use super::exact::{self, Kernel, ScanScratch, TopK};
use super::mips::{AugmentedL2, augment_item, augment_query, augmentation_norm};
use super::*;

/// Graph for any size, with a seed pool far smaller than the test catalogues so that results come
/// from walking the graph; one build thread, so the graph (hnsw_rs seeds its level generator) is
/// reproducible.
fn hnsw_cfg() -> IndexConfig {
    IndexConfig {
        exact_below: 0,
        seed_pool: 16,
        seeds: 4,
        threads: 1,
        ..IndexConfig::default()
    }
}

/// Reference: every item scored in f64, sorted by score descending then id ascending, filtered.
fn brute_force(
    vectors: &[f32],
    bias: Option<&[f32]>,
    dim: usize,
    q: &[f32],
    k: usize,
    allow: impl Fn(u32) -> bool,
) -> Vec<(u32, f64)> {
    let mut all: Vec<(u32, f64)> = vectors
        .chunks_exact(dim)
        .enumerate()
        .map(|(i, row)| {
            let dot: f64 = row
                .iter()
                .zip(q)
                .map(|(a, b)| f64::from(*a) * f64::from(*b))
                .sum();
            (i as u32, dot + bias.map_or(0.0, |b| f64::from(b[i])))
        })
        .filter(|&(i, _)| allow(i))
        .collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    all.truncate(k);
    all
}

/// `n` items and `queries` queries drawn around the same `clusters` centres on the unit sphere:
/// each point is a centre × norm in [0.5, 2] plus ±0.15 noise (queries: user vectors in the item space).
fn clustered_with_queries(
    n: usize,
    queries: usize,
    dim: usize,
    clusters: usize,
    seed: u64,
) -> (Vec<f32>, Vec<f32>) {
    let mut all = clustered(n + queries, dim, clusters, seed);
    let queries = all.split_off(n * dim);
    (all, queries)
}

/// `n` points around `clusters` centres on the unit sphere: centre × norm in [0.5, 2] plus ±0.15 noise.
fn clustered(n: usize, dim: usize, clusters: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let centres: Vec<Vec<f32>> = (0..clusters)
        .map(|_| {
            let c: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect();
            let norm = c.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-3);
            c.into_iter().map(|x| x / norm).collect()
        })
        .collect();
    let mut out = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let c = &centres[rng.random_range(0..clusters)];
        let scale = rng.random_range(0.5f32..2.0);
        out.extend(
            c.iter()
                .map(|x| x * scale + rng.random_range(-0.15f32..0.15)),
        );
    }
    out
}

fn search(index: &VectorIndex, q: &[f32], k: usize) -> Vec<(u32, f32)> {
    let mut out = Vec::new();
    index
        .search(q, k, &mut SearchScratch::new(), &mut out)
        .unwrap();
    out
}

fn recall(found: &[(u32, f32)], truth: &[(u32, f32)]) -> f64 {
    let truth: HashSet<u32> = truth.iter().map(|p| p.0).collect();
    let hits = found.iter().filter(|p| truth.contains(&p.0)).count();
    hits as f64 / truth.len().max(1) as f64
}

/// Integer-valued items, bias and query: every f32 dot product is exact, so ties are real ties.
fn int_case() -> impl Strategy<Value = (usize, Vec<f32>, Option<Vec<f32>>, Vec<f32>, usize)> {
    (1usize..12, 0usize..200, 0usize..40).prop_flat_map(|(dim, n, k)| {
        let val = (-4i8..=4).prop_map(f32::from);
        (
            Just(dim),
            proptest::collection::vec(val.clone(), n * dim),
            proptest::option::of(proptest::collection::vec(val.clone(), n)),
            proptest::collection::vec(val, dim),
            Just(k),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn exact_scan_equals_brute_force_with_ties((dim, v, b, q, k) in int_case()) {
        let index = VectorIndex::build(v.clone(), b.clone(), dim, &IndexConfig::default()).unwrap();
        prop_assert_eq!(index.kind(), "exact");
        let got = search(&index, &q, k);
        let want = brute_force(&v, b.as_deref(), dim, &q, k, |_| true);
        let got_scores: Vec<f64> = got.iter().map(|p| f64::from(p.1)).collect();
        let want_scores: Vec<f64> = want.iter().map(|p| p.1).collect();
        prop_assert_eq!(got_scores, want_scores);
        let all = brute_force(&v, b.as_deref(), dim, &q, usize::MAX, |_| true);
        let exact: std::collections::HashMap<u32, f64> = all.into_iter().collect();
        let mut seen = HashSet::new();
        for (id, score) in &got {
            prop_assert!(seen.insert(*id), "duplicate id {}", id);
            prop_assert_eq!(exact.get(id).copied(), Some(f64::from(*score)));
        }
    }

    #[test]
    fn exact_scan_equals_brute_force_continuous(
        seed in any::<u64>(), n in 1usize..700, dim in 1usize..40, k in 1usize..60, with_bias: bool,
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let v: Vec<f32> = (0..n * dim).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let b: Option<Vec<f32>> = with_bias.then(|| (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect());
        let q: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let index = VectorIndex::build(v.clone(), b.clone(), dim, &IndexConfig::default()).unwrap();
        let got = search(&index, &q, k);
        let want = brute_force(&v, b.as_deref(), dim, &q, k, |_| true);
        prop_assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            prop_assert!((f64::from(g.1) - w.1).abs() < 1e-4, "{:?} vs {:?}", g, w);
        }
        prop_assert!(got.windows(2).all(|w| w[0].1 >= w[1].1));
    }

    #[test]
    fn filtered_exact_scan_equals_filtered_brute_force((dim, v, b, q, k) in int_case(), modulus in 1u32..5) {
        let index = VectorIndex::build(v.clone(), b.clone(), dim, &IndexConfig::default()).unwrap();
        let allow = |id: u32| !id.is_multiple_of(modulus);
        let mut got = Vec::new();
        index.search_filtered(&q, k, allow, &mut SearchScratch::new(), &mut got).unwrap();
        let want = brute_force(&v, b.as_deref(), dim, &q, k, allow);
        prop_assert!(got.iter().all(|p| allow(p.0)));
        let got_scores: Vec<f64> = got.iter().map(|p| f64::from(p.1)).collect();
        let want_scores: Vec<f64> = want.iter().map(|p| p.1).collect();
        prop_assert_eq!(got_scores, want_scores);
    }

    #[test]
    fn top_k_heap_equals_sort(entries in proptest::collection::vec((-5i8..5, 0u32..1000), 0..300), k in 0usize..50) {
        let mut top = TopK::default();
        top.reset(k);
        for &(s, id) in &entries {
            top.push(f32::from(s), id);
        }
        let mut got = Vec::new();
        top.drain_sorted_into(&mut got);
        let mut want: Vec<(u32, f32)> = entries.iter().map(|&(s, id)| (id, f32::from(s))).collect();
        want.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        want.truncate(k);
        prop_assert_eq!(got, want);
    }

    #[test]
    fn augmented_distance_is_decreasing_in_score(seed in any::<u64>(), n in 1usize..50, dim in 1usize..20) {
        let mut rng = StdRng::seed_from_u64(seed);
        let v: Vec<f32> = (0..n * dim).map(|_| rng.random_range(-3.0f32..3.0)).collect();
        let b: Vec<f32> = (0..n).map(|_| rng.random_range(-2.0f32..2.0)).collect();
        let q: Vec<f32> = (0..dim).map(|_| rng.random_range(-3.0f32..3.0)).collect();
        let m = f64::from(augmentation_norm(&v, Some(&b), dim));
        let max_norm = v.chunks_exact(dim).zip(&b)
            .map(|(row, &bi)| row.iter().chain([&bi]).map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt())
            .fold(0.0, f64::max);
        prop_assert!((m - max_norm).abs() < 1e-5 * max_norm);
        let qn = (1.0 + q.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>()).sqrt();
        let mut q_aug = Vec::new();
        augment_query(&q, &mut q_aug);
        for (i, row) in v.chunks_exact(dim).enumerate() {
            let mut x_aug = Vec::new();
            augment_item(row, b[i], m as f32, &mut x_aug);
            prop_assert_eq!(x_aug.len(), dim + 2);
            let norm_sq: f64 = x_aug.iter().map(|x| f64::from(*x).powi(2)).sum();
            prop_assert!((norm_sq - 1.0).abs() < 1e-5, "augmented items have unit norm: {}", norm_sq);
            let score: f64 = row.iter().zip(&q).map(|(a, c)| f64::from(*a) * f64::from(*c)).sum::<f64>() + f64::from(b[i]);
            let dist = f64::from(AugmentedL2.eval(&q_aug, &x_aug));
            prop_assert!((dist - (2.0 - 2.0 * score / (m * qn))).abs() < 1e-4, "{} vs {}", dist, score);
        }
    }
}

/// The exact scan as it was before key selection, kept as the reference its replacement must
/// equal exactly: `dot + bias` per item (no bias: no addition), then for each item a heap-threshold
/// test, `allow`, and a push into the bounded heap.
fn heap_scan_reference(
    vectors: &[f32],
    bias: Option<&[f32]>,
    dim: usize,
    q: &[f32],
    k: usize,
    allow: impl Fn(u32) -> bool,
) -> Vec<(u32, f32)> {
    let mut top = TopK::default();
    top.reset(k);
    for (i, row) in vectors.chunks_exact(dim).enumerate() {
        let id = i as u32;
        let mut score = exact::dot(q, row);
        if let Some(b) = bias {
            score += b[i];
        }
        if top.would_accept(score, id) && allow(id) {
            top.push(score, id);
        }
    }
    let mut out = Vec::new();
    top.drain_sorted_into(&mut out);
    out
}

/// `(id, score bits)`: equality of these is bit-for-bit (`-0.0 != 0.0`).
fn bits(list: &[(u32, f32)]) -> Vec<(u32, u32)> {
    list.iter().map(|&(id, s)| (id, s.to_bits())).collect()
}

/// A random scan problem from `seed`: integer values in -2..=2 (many exact ties and signed zeros)
/// or continuous ones, optional bias, exclusions (unsorted, with duplicates and out-of-range ids)
/// covering `excluded_pct` percent of the catalogue.
struct ScanCase {
    n: usize,
    dim: usize,
    vectors: Vec<f32>,
    bias: Option<Vec<f32>>,
    query: Vec<f32>,
    excluded: Vec<u32>,
}

impl ScanCase {
    fn new(
        seed: u64,
        n: usize,
        dim: usize,
        ints: bool,
        with_bias: bool,
        excluded_pct: u32,
    ) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let value = |rng: &mut StdRng| {
            if ints {
                match rng.random_range(-2i8..=3) {
                    3 => -0.0,
                    v => f32::from(v),
                }
            } else {
                rng.random_range(-1.0f32..1.0)
            }
        };
        let vectors: Vec<f32> = (0..n * dim).map(|_| value(&mut rng)).collect();
        let bias = with_bias.then(|| (0..n).map(|_| value(&mut rng)).collect());
        let query: Vec<f32> = (0..dim).map(|_| value(&mut rng)).collect();
        let count = n * excluded_pct as usize / 100 + 3;
        let excluded = (0..count)
            .map(|_| rng.random_range(0..n as u32 + 5))
            .collect();
        Self {
            n,
            dim,
            vectors,
            bias,
            query,
            excluded,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn key_selection_scan_equals_heap_scan_bit_for_bit(
        seed in any::<u64>(),
        n in 0usize..1300,
        dim in 1usize..70,
        k in 0usize..320,
        ints: bool,
        with_bias: bool,
        excluded_pct in prop_oneof![Just(0u32), 0u32..20, 0u32..=100],
        modulus in 1u32..6,
        block in prop_oneof![1usize..40, 40usize..700],
    ) {
        let c = ScanCase::new(seed, n, dim, ints, with_bias, excluded_pct);
        let excluded = ExcludedIds::new(c.excluded.iter().copied());
        let allow = |id: u32| modulus == 1 || !id.is_multiple_of(modulus);
        let reference = heap_scan_reference(&c.vectors, c.bias.as_deref(), c.dim, &c.query, k, |id| {
            !c.excluded.contains(&id) && allow(id)
        });
        prop_assert!(reference.len() <= k);
        for kernel in Kernel::available() {
            let mut got = Vec::new();
            exact::scan(
                &c.vectors, c.bias.as_deref(), c.dim, &c.query, k, excluded.as_slice(), &allow,
                kernel, Deadline::NONE, &mut ScanScratch::default(), &mut got,
            );
            prop_assert_eq!(bits(&got), bits(&reference), "{:?}, n={}", kernel, c.n);
            // Both layouts, whatever the catalogue size: one buffer, and blocks of `block` items.
            for layout in [None, Some(block)] {
                let mut got = Vec::new();
                exact::scan_with(
                    &c.vectors, c.bias.as_deref(), c.dim, &c.query, k, excluded.as_slice(), &allow,
                    kernel, layout, Deadline::NONE, &mut ScanScratch::default(), &mut got,
                );
                prop_assert_eq!(bits(&got), bits(&reference), "{:?} {:?}, n={}", kernel, layout, c.n);
            }
        }
        if n > 0 {
            let index = VectorIndex::build(c.vectors.clone(), c.bias.clone(), c.dim, &IndexConfig::default()).unwrap();
            let mut scratch = SearchScratch::new();
            let mut got = Vec::new();
            index.search_excluding(&c.query, k, &excluded, allow, &mut scratch, &mut got).unwrap();
            prop_assert_eq!(bits(&got), bits(&reference));
            // The same scratch serves the next search unchanged by this one.
            index.search_excluding(&c.query, k, &excluded, allow, &mut scratch, &mut got).unwrap();
            prop_assert_eq!(bits(&got), bits(&reference));
        }
    }

    #[test]
    fn every_kernel_rounds_like_dot(seed in any::<u64>(), len in prop_oneof![0usize..100, Just(16), Just(32), Just(48), Just(64)], scale in prop_oneof![Just(1.0f32), Just(1e18f32), Just(1e-20f32)]) {
        let mut rng = StdRng::seed_from_u64(seed);
        let a: Vec<f32> = (0..len).map(|_| rng.random_range(-1.0f32..1.0) * scale).collect();
        let n = rng.random_range(0..40usize);
        let rows: Vec<f32> = (0..n * len).map(|_| rng.random_range(-1.0f32..1.0) * scale).collect();
        let want: Vec<u32> = rows.chunks_exact(len.max(1)).map(|r| exact::dot(&a, r).to_bits()).collect();
        if len > 0 {
            for kernel in Kernel::available() {
                let mut got = vec![0.0f32; n];
                kernel.score_rows(&a, &rows, len, &mut got);
                let got: Vec<u32> = got.iter().map(|s| s.to_bits()).collect();
                prop_assert_eq!(&got, &want, "{:?}", kernel);
                // One pair at a time (the graph walk's rows are not contiguous).
                let pairs: Vec<u32> = rows.chunks_exact(len).map(|r| kernel.dot(&a, r).to_bits()).collect();
                prop_assert_eq!(&pairs, &want, "{:?} one pair at a time", kernel);
            }
        }
    }

    #[test]
    fn keys_order_like_total_cmp_then_lower_id(a in any::<u32>(), b in any::<u32>(), ia in 0u32..u32::MAX, ib in 0u32..u32::MAX) {
        let (sa, sb) = (f32::from_bits(a), f32::from_bits(b));
        let want = sa.total_cmp(&sb).then(ib.cmp(&ia));
        prop_assert_eq!(exact::key(sa, ia).cmp(&exact::key(sb, ib)), want);
        prop_assert!(exact::key(sa, ia) > 0);
        let (id, s) = exact::unkey(exact::key(sa, ia));
        prop_assert_eq!((id, s.to_bits()), (ia, a));
    }
}

/// Catalogues above the switch to the blocked scan, through [`exact::scan`] and the index, with
/// exclusions, filters and `k` around the block size: equal to the heap scan bit for bit.
#[test]
fn blocked_scan_above_the_switch_equals_heap_scan() {
    let above = |dim: usize| exact::BLOCKED_FROM_BYTES / 4 / dim;
    let cases = [
        (above(64), 64, 200, false, 0, 1),
        (above(16) + exact::BLOCK + 5, 16, 200, true, 5, 3),
        (above(48) + 1, 48, exact::BLOCK + 3, false, 60, 2),
    ];
    for (seed, (n, dim, k, ints, excluded_pct, modulus)) in cases.into_iter().enumerate() {
        assert!(exact::is_large(n * dim));
        let c = ScanCase::new(seed as u64, n, dim, ints, seed % 2 == 0, excluded_pct);
        let excluded = ExcludedIds::new(c.excluded.iter().copied());
        let allow = |id: u32| modulus == 1 || !id.is_multiple_of(modulus);
        let reference =
            heap_scan_reference(&c.vectors, c.bias.as_deref(), dim, &c.query, k, |id| {
                !excluded.contains(id) && allow(id)
            });
        for kernel in Kernel::available() {
            let mut got = Vec::new();
            exact::scan(
                &c.vectors,
                c.bias.as_deref(),
                dim,
                &c.query,
                k,
                excluded.as_slice(),
                &allow,
                kernel,
                Deadline::NONE,
                &mut ScanScratch::default(),
                &mut got,
            );
            assert_eq!(bits(&got), bits(&reference), "{kernel:?}, n={n} k={k}");
        }
        let index = VectorIndex::build(
            c.vectors.clone(),
            c.bias.clone(),
            dim,
            &IndexConfig {
                exact_below: usize::MAX,
                ..IndexConfig::default()
            },
        )
        .unwrap();
        let mut got = Vec::new();
        index
            .search_excluding(
                &c.query,
                k,
                &excluded,
                allow,
                &mut SearchScratch::new(),
                &mut got,
            )
            .unwrap();
        assert_eq!(bits(&got), bits(&reference), "index, n={n} k={k}");
    }
}

#[test]
fn excluded_ids_are_sorted_deduplicated_and_searchable() {
    let ids = ExcludedIds::new([9, 3, 3, 700, 0, 9]);
    assert_eq!(ids.as_slice(), [0, 3, 9, 700]);
    assert_eq!(ids.len(), 4);
    assert!(ids.contains(700) && ids.contains(0) && !ids.contains(4));
    assert!(ExcludedIds::default().is_empty());
    let collected: ExcludedIds = [5, 1, 5].into_iter().collect();
    assert_eq!(collected.as_slice(), [1, 5]);
}

proptest::proptest! {
    /// The linear merge equals sorting and deduplicating both lists together.
    #[test]
    fn union_sorted_is_the_sorted_deduplicated_union(
        a in proptest::collection::vec(0u32..200, 0..60),
        b in proptest::collection::vec(0u32..200, 0..60),
    ) {
        let b = ExcludedIds::new(b);
        let got = ExcludedIds::new(a.clone()).union_sorted(b.as_slice());
        let want = ExcludedIds::new(a.into_iter().chain(b.as_slice().iter().copied()));
        proptest::prop_assert_eq!(got, want);
    }
}

#[test]
fn excluding_everything_or_all_but_a_few_still_returns_the_best_allowed() {
    let (n, dim) = (2000, 8);
    let v = clustered(n, dim, 4, 21);
    let q = [0.3, -0.2, 0.1, 0.5, -0.4, 0.2, 0.0, 0.1];
    for cfg in [IndexConfig::default(), hnsw_cfg()] {
        let index = VectorIndex::build(v.clone(), None, dim, &cfg).unwrap();
        let mut out = vec![(0, 0.0)];
        let all = ExcludedIds::new(0..n as u32);
        index
            .search_excluding(&q, 10, &all, |_| true, &mut SearchScratch::new(), &mut out)
            .unwrap();
        assert!(out.is_empty(), "{}", index.kind());
        // Keep only ids ≡ 7 (mod 100), 20 items spread over every block.
        let most = ExcludedIds::new((0..n as u32).filter(|id| id % 100 != 7));
        index
            .search_excluding(&q, 50, &most, |_| true, &mut SearchScratch::new(), &mut out)
            .unwrap();
        let want = brute_force(&v, None, dim, &q, 50, |id| id % 100 == 7);
        let ids: Vec<u32> = out.iter().map(|p| p.0).collect();
        let want_ids: Vec<u32> = want.iter().map(|p| p.0).collect();
        if index.kind() == "exact" {
            assert_eq!(ids, want_ids);
        } else {
            assert!(ids.iter().all(|id| id % 100 == 7));
        }
    }
}

#[test]
fn huge_k_is_clamped_to_the_catalogue() {
    let v = clustered(300, 4, 3, 5);
    for cfg in [IndexConfig::default(), hnsw_cfg()] {
        let index = VectorIndex::build(v.clone(), None, 4, &cfg).unwrap();
        let top = search(&index, &[0.1, 0.2, 0.3, 0.4], usize::MAX);
        assert_eq!(top.len(), 300, "{}", index.kind());
    }
}

#[test]
fn hnsw_equals_exact_on_small_clustered_data() {
    let (n, dim) = (600, 8);
    let (v, queries) = clustered_with_queries(n, 30, dim, 6, 1);
    let exact = VectorIndex::build(v.clone(), None, dim, &IndexConfig::default()).unwrap();
    let hnsw = VectorIndex::build(v.clone(), None, dim, &hnsw_cfg()).unwrap();
    assert_eq!((exact.kind(), hnsw.kind()), ("exact", "hnsw"));
    for q in queries.chunks_exact(dim) {
        for k in [1, 10, 50] {
            assert_eq!(search(&hnsw, q, k), search(&exact, q, k), "k={k}");
        }
    }
}

#[test]
fn hnsw_recall_on_5000_clustered() {
    let (n, dim, k) = (5000, 16, 50);
    let (v, queries) = clustered_with_queries(n, 40, dim, 20, 3);
    let exact = VectorIndex::build(v.clone(), None, dim, &IndexConfig::default()).unwrap();
    let hnsw = VectorIndex::build(v, None, dim, &hnsw_cfg()).unwrap();
    let total: f64 = queries
        .chunks_exact(dim)
        .map(|q| recall(&search(&hnsw, q, k), &search(&exact, q, k)))
        .sum();
    let mean = total / 40.0;
    assert!(mean >= 0.98, "recall@{k} = {mean}");
}

/// One long vector at 60° from the query beats many short vectors pointing straight at it:
/// the inner-product winner is not the Euclidean nearest neighbour.
#[test]
fn hnsw_retrieves_max_inner_product_not_nearest() {
    let mut rng = StdRng::seed_from_u64(5);
    let dim = 4;
    let mut v = Vec::new();
    for _ in 0..300 {
        let norm = rng.random_range(0.5f32..1.0);
        v.extend(
            [norm, 0.0, 0.0, 0.0]
                .iter()
                .map(|x| x + rng.random_range(-0.05f32..0.05)),
        );
    }
    v.extend([10.0 * 0.5, 10.0 * 0.866, 0.0, 0.0]); // id 300: norm 10, dot 5 with q
    let q = [1.0, 0.0, 0.0, 0.0];
    let nearest = v
        .chunks_exact(dim)
        .enumerate()
        .min_by(|a, b| {
            let d = |r: &[f32]| r.iter().zip(&q).map(|(x, y)| (x - y).powi(2)).sum::<f32>();
            d(a.1).total_cmp(&d(b.1))
        })
        .map(|p| p.0);
    assert_ne!(
        nearest,
        Some(300),
        "the test needs the MIPS winner not to be the nearest"
    );
    for cfg in [IndexConfig::default(), hnsw_cfg()] {
        let index = VectorIndex::build(v.clone(), None, dim, &cfg).unwrap();
        let top = search(&index, &q, 3);
        assert_eq!(top[0].0, 300, "{}", index.kind());
        assert!((top[0].1 - 5.0).abs() < 1e-5);
    }
}

#[test]
fn bias_is_added_to_every_score() {
    let (n, dim) = (800, 8);
    let v = clustered(n, dim, 5, 6);
    let mut b: Vec<f32> = (0..n).map(|i| (i % 7) as f32 * 0.01).collect();
    b[123] = 100.0;
    let q = &clustered(1, dim, 5, 7)[..];
    for cfg in [IndexConfig::default(), hnsw_cfg()] {
        let index = VectorIndex::build(v.clone(), Some(b.clone()), dim, &cfg).unwrap();
        let top = search(&index, q, 20);
        assert_eq!(top[0].0, 123, "{}", index.kind());
        let want = brute_force(&v, Some(&b), dim, q, 20, |_| true);
        assert_eq!(
            top.iter().map(|p| p.0).collect::<Vec<_>>(),
            want.iter().map(|p| p.0).collect::<Vec<_>>(),
            "{}",
            index.kind()
        );
        for (id, score) in top {
            let row = index.vector(id).unwrap();
            let dot: f32 = row.iter().zip(q).map(|(x, y)| x * y).sum();
            assert!((score - (dot + b[id as usize])).abs() < 1e-4);
            assert_eq!(index.bias(id), Some(b[id as usize]));
        }
    }
}

#[test]
fn filtered_graph_search_skips_excluded_items() {
    let (n, dim) = (3000, 8);
    let (v, queries) = clustered_with_queries(n, 10, dim, 5, 8);
    let hnsw = VectorIndex::build(v.clone(), None, dim, &hnsw_cfg()).unwrap();
    for (i, q) in queries.chunks_exact(dim).enumerate() {
        // Exclude the best 20 (a user's seen items), then 90% of the catalogue (a strict business rule).
        let best: HashSet<u32> = search(&hnsw, q, 20).iter().map(|p| p.0).collect();
        let filters: [&dyn Fn(u32) -> bool; 2] = [&|id| !best.contains(&id), &|id| {
            (id as usize + i).is_multiple_of(10)
        }];
        for allow in filters {
            let mut got = Vec::new();
            hnsw.search_filtered(q, 30, allow, &mut SearchScratch::new(), &mut got)
                .unwrap();
            let want = brute_force(&v, None, dim, q, 30, allow);
            assert_eq!(got.len(), 30);
            assert!(got.iter().all(|p| allow(p.0)));
            assert!(recall(&got, &want.iter().map(|p| (p.0, 0.0)).collect::<Vec<_>>()) >= 0.95);
        }
    }
}

#[test]
fn a_filter_admitting_almost_nothing_stops_at_the_expansion_cap() {
    // Cost: two 5,000-item graphs, ~2 s.
    let (n, dim) = (5000, 8);
    let (v, queries) = clustered_with_queries(n, 10, dim, 2, 9);
    let q = &queries[..dim];
    // Five admitted items: the search can never fill its top-30.
    let allow = |id: u32| id.is_multiple_of(1000);
    let calls = std::cell::Cell::new(0usize);
    let counted = |id: u32| {
        calls.set(calls.get() + 1);
        allow(id)
    };
    let search = |idx: &VectorIndex, deadline: Deadline| {
        calls.set(0);
        let mut got = Vec::new();
        let none = ExcludedIds::default();
        let mut scratch = SearchScratch::new();
        let coverage = idx
            .search_within(q, 30, &none, counted, deadline, &mut scratch, &mut got)
            .unwrap();
        assert!(got.iter().all(|p| allow(p.0)));
        (calls.get(), got.len(), coverage)
    };
    let uncapped_index = VectorIndex::build(
        v.clone(),
        None,
        dim,
        &IndexConfig {
            max_expansions: usize::MAX,
            ..hnsw_cfg()
        },
    )
    .unwrap();
    let uncapped = search(&uncapped_index, Deadline::NONE);
    let capped_index = VectorIndex::build(
        v.clone(),
        None,
        dim,
        &IndexConfig {
            max_expansions: 50,
            ..hnsw_cfg()
        },
    )
    .unwrap();
    let capped = search(&capped_index, Deadline::NONE);
    // Past its deadline the uncapped walk stops at its first check, with what it found.
    let cut = search(&uncapped_index, expired());
    assert_eq!(
        (uncapped.2, capped.2, cut.2),
        (Coverage::Complete, Coverage::Complete, Coverage::Cut)
    );
    let per_check = super::graph::EXPANSIONS_PER_CHECK;
    assert!(
        cut.0 <= 16 + per_check * 2 * 16 && cut.0 < uncapped.0,
        "a walk past its deadline scored {} (uncapped {})",
        cut.0,
        uncapped.0
    );
    // Uncapped, the search scores most of the catalogue looking for admitted items; capped, at
    // most the seed pool plus 50 expansions of at most 2m links each.
    assert!(
        uncapped.0 > n / 2,
        "uncapped walk scored only {}",
        uncapped.0
    );
    assert!(
        capped.0 <= 16 + 50 * 2 * 16,
        "capped walk scored {}",
        capped.0
    );
    assert!(capped.0 * 2 < uncapped.0);
}

/// A deadline that has already passed: a search under it stops at its first check.
fn expired() -> Deadline {
    Deadline::at(std::time::Instant::now())
}

#[test]
fn an_exact_scan_past_its_deadline_stops_and_answers_from_the_items_it_scored() {
    // Cost: 5 × 4,096 items × 16-d, a few ms.
    let (n, dim, k) = (5 * exact::CHECK_EVERY + 123, 16, 50);
    let c = ScanCase::new(21, n, dim, false, true, 10);
    let excluded = ExcludedIds::new(c.excluded.iter().copied());
    let allow = |_: u32| true;
    // The first check comes after CHECK_EVERY items: the answer is the exact top-k of those.
    let m = exact::CHECK_EVERY;
    let bias = c.bias.as_deref().map(|b| &b[..m]);
    let prefix = heap_scan_reference(&c.vectors[..m * dim], bias, dim, &c.query, k, |id| {
        !excluded.contains(id)
    });
    let whole = heap_scan_reference(&c.vectors, c.bias.as_deref(), dim, &c.query, k, |id| {
        !excluded.contains(id)
    });
    let far = Deadline::after(std::time::Duration::from_secs(3600));
    for kernel in Kernel::available() {
        // Both layouts: one buffer, and blocks (two blocks of 2,048 per check).
        for layout in [None, Some(exact::BLOCK)] {
            let scan = |deadline: Deadline| {
                let mut got = Vec::new();
                let coverage = exact::scan_with(
                    &c.vectors,
                    c.bias.as_deref(),
                    dim,
                    &c.query,
                    k,
                    excluded.as_slice(),
                    &allow,
                    kernel,
                    layout,
                    deadline,
                    &mut ScanScratch::default(),
                    &mut got,
                );
                (coverage, bits(&got))
            };
            let what = format!("{kernel:?} {layout:?}");
            assert_eq!(scan(expired()), (Coverage::Cut, bits(&prefix)), "{what}");
            assert_eq!(
                scan(Deadline::NONE),
                (Coverage::Complete, bits(&whole)),
                "{what}"
            );
            assert_eq!(scan(far), (Coverage::Complete, bits(&whole)), "{what}");
        }
    }
    // Through the index, and the exact scan of a category's members.
    let index = VectorIndex::build(
        c.vectors.clone(),
        c.bias.clone(),
        dim,
        &IndexConfig::default(),
    )
    .unwrap();
    let mut got = Vec::new();
    let mut scratch = SearchScratch::new();
    let cov = index.search_within(
        &c.query,
        k,
        &excluded,
        allow,
        expired(),
        &mut scratch,
        &mut got,
    );
    assert_eq!((cov.unwrap(), bits(&got)), (Coverage::Cut, bits(&prefix)));
    let members: Vec<u32> = (0..n as u32).filter(|i| i % 2 == 0).collect();
    let cov = index.search_among(&c.query, k, &members, &excluded, allow, expired(), &mut got);
    assert_eq!(cov.unwrap(), Coverage::Cut);
    assert!(
        got.iter().all(|&(id, _)| id < 2 * m as u32),
        "only the first {m} members were scored"
    );
    let cov = index.search_among(&c.query, k, &members, &excluded, allow, far, &mut got);
    assert_eq!(cov.unwrap(), Coverage::Complete);
    assert!(got.iter().any(|&(id, _)| id >= 2 * m as u32));
}

#[test]
fn search_among_is_the_exact_top_k_of_the_members_on_either_backend() {
    // Cost: one 3,000-item graph, ~1 s.
    let (n, dim) = (3000, 8);
    let (v, queries) = clustered_with_queries(n, 10, dim, 5, 13);
    let bias: Vec<f32> = (0..n).map(|i| (i % 7) as f32 * 0.01).collect();
    let exact =
        VectorIndex::build(v.clone(), Some(bias.clone()), dim, &IndexConfig::default()).unwrap();
    let graph = VectorIndex::build(v.clone(), Some(bias.clone()), dim, &hnsw_cfg()).unwrap();
    // A "category": every 37th item, listed out of order and with a duplicate and an id past
    // the catalogue; the user has seen a few of them; the caller also rejects multiples of 5.
    let mut members: Vec<u32> = (0..n as u32).filter(|i| i % 37 == 3).rev().collect();
    members.push(members[0]);
    members.push(n as u32 + 9);
    let seen = ExcludedIds::new([3u32, 40, 77, 3 + 37 * 50]);
    let allow = |id: u32| !id.is_multiple_of(5);
    for q in queries.chunks_exact(dim) {
        let in_members = |id: u32| id % 37 == 3 && !seen.contains(id) && allow(id);
        let want = brute_force(&v, Some(&bias), dim, q, 15, in_members);
        for idx in [&exact, &graph] {
            let mut got = Vec::new();
            let coverage = idx
                .search_among(q, 15, &members, &seen, allow, Deadline::NONE, &mut got)
                .unwrap();
            assert_eq!(coverage, Coverage::Complete);
            let ids: Vec<u32> = got.iter().map(|p| p.0).collect();
            assert_eq!(ids, want.iter().map(|p| p.0).collect::<Vec<_>>());
            for (g, w) in got.iter().zip(&want) {
                assert!((f64::from(g.1) - w.1).abs() < 1e-4);
            }
        }
    }
}

#[test]
fn k_larger_than_catalogue_returns_everything() {
    let v = clustered(40, 4, 3, 10);
    for cfg in [IndexConfig::default(), hnsw_cfg()] {
        let index = VectorIndex::build(v.clone(), None, 4, &cfg).unwrap();
        let top = search(&index, &[0.1, 0.2, 0.3, 0.4], 1000);
        let ids: HashSet<u32> = top.iter().map(|p| p.0).collect();
        assert_eq!(ids.len(), 40, "{}", index.kind());
        assert!(top.windows(2).all(|w| w[0].1 >= w[1].1));
        assert!(search(&index, &[0.1, 0.2, 0.3, 0.4], 0).is_empty());
    }
}

#[test]
fn empty_and_single_item_indexes() {
    let empty = VectorIndex::build(Vec::new(), None, 3, &hnsw_cfg()).unwrap();
    assert_eq!(
        (empty.kind(), empty.len(), empty.is_empty()),
        ("exact", 0, true)
    );
    assert!(search(&empty, &[1.0, 2.0, 3.0], 10).is_empty());
    assert!(empty.vector(0).is_none());
    let one = VectorIndex::build(vec![1.0, 2.0, 3.0], Some(vec![0.5]), 3, &hnsw_cfg()).unwrap();
    assert_eq!(one.kind(), "hnsw");
    assert_eq!(search(&one, &[1.0, 1.0, 1.0], 5), vec![(0, 6.5)]);
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let index = VectorIndex::build(vec![1.0; 12], None, 4, &IndexConfig::default()).unwrap();
    let mut out = vec![(9, 9.0)];
    let mut scratch = SearchScratch::new();
    let err = index.search(&[1.0; 3], 5, &mut scratch, &mut out);
    assert!(matches!(
        err,
        Err(IndexError::QueryDimension {
            expected: 4,
            actual: 3
        })
    ));
    assert!(out.is_empty(), "out is cleared even on error");
    let err = index.search(&[1.0, f32::NAN, 0.0, 0.0], 5, &mut scratch, &mut out);
    assert!(matches!(err, Err(IndexError::NonFiniteQuery)));
    assert_eq!(index.score(&[1.0; 3], 0), None);
    assert_eq!(index.score(&[1.0; 4], 3), None);
    assert_eq!(index.score(&[1.0; 4], 2), Some(4.0));

    let cfg = IndexConfig::default();
    let build = |v: Vec<f32>, b: Option<Vec<f32>>, dim| VectorIndex::build(v, b, dim, &cfg);
    assert!(matches!(
        build(vec![1.0; 7], None, 4),
        Err(IndexError::Shape { .. })
    ));
    assert!(matches!(
        build(vec![1.0; 8], None, 0),
        Err(IndexError::Shape { .. })
    ));
    assert!(matches!(
        build(vec![1.0; 8], Some(vec![0.0]), 4),
        Err(IndexError::BiasLength {
            expected: 2,
            actual: 1
        })
    ));
    let mut nan = vec![1.0; 8];
    nan[5] = f32::INFINITY;
    assert!(matches!(
        build(nan, None, 4),
        Err(IndexError::NonFiniteItem { item: 1 })
    ));
    assert!(matches!(
        build(vec![1.0; 8], Some(vec![0.0, f32::NAN]), 4),
        Err(IndexError::NonFiniteItem { item: 1 })
    ));
    let bad = IndexConfig {
        m: 256,
        ..IndexConfig::default()
    };
    assert!(matches!(
        VectorIndex::build(vec![1.0; 8], None, 4, &bad),
        Err(IndexError::InvalidConfig { field: "m", .. })
    ));
}

#[test]
fn concurrent_searches_agree_with_sequential_ones() {
    let dim = 8;
    let v = clustered(1000, dim, 5, 11);
    let queries = clustered(16, dim, 5, 12);
    for cfg in [IndexConfig::default(), hnsw_cfg()] {
        let index = VectorIndex::build(v.clone(), None, dim, &cfg).unwrap();
        let sequential: Vec<_> = queries
            .chunks_exact(dim)
            .map(|q| search(&index, q, 25))
            .collect();
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        queries
                            .chunks_exact(dim)
                            .map(|q| search(&index, q, 25))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            for h in handles {
                assert_eq!(h.join().unwrap(), sequential);
            }
        });
    }
}

fn dump_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn dump_then_load_gives_identical_results() {
    let (n, dim) = (1200, 8);
    let v = clustered(n, dim, 5, 13);
    let b: Vec<f32> = (0..n).map(|i| (i % 5) as f32 * 0.1).collect();
    let cfg = hnsw_cfg();
    let built = VectorIndex::build(v.clone(), Some(b.clone()), dim, &cfg).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("indexes");
    built.dump(&dir, "cf").unwrap();
    built.dump(&dir, "cf").unwrap(); // replaces, never leaves a second copy
    assert_eq!(dump_files(&dir), ["cf.graph"]);

    let loaded = VectorIndex::load(&dir, "cf", v.clone(), Some(b.clone()), dim, &cfg).unwrap();
    assert!(loaded.is_loaded_from_dump() && !built.is_loaded_from_dump());
    let again =
        VectorIndex::load_or_build(&dir, "cf", v.clone(), Some(b.clone()), dim, &cfg).unwrap();
    assert!(again.is_loaded_from_dump());
    // A reloaded graph dumps and reloads too.
    let dir2 = tmp.path().join("second");
    loaded.dump(&dir2, "cf").unwrap();
    let reloaded = VectorIndex::load(&dir2, "cf", v.clone(), Some(b.clone()), dim, &cfg).unwrap();
    let queries = clustered(20, dim, 5, 14);
    for q in queries.chunks_exact(dim) {
        let want = search(&built, q, 40);
        assert_eq!(search(&loaded, q, 40), want);
        assert_eq!(search(&again, q, 40), want);
        assert_eq!(search(&reloaded, q, 40), want);
    }
}

#[test]
fn stale_corrupt_or_missing_dumps_are_rejected_and_rebuilt() {
    let (n, dim) = (500, 6);
    let v = clustered(n, dim, 4, 15);
    let cfg = hnsw_cfg();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let load = |v: Vec<f32>, cfg: &IndexConfig| VectorIndex::load(dir, "cf", v, None, dim, cfg);

    assert!(matches!(
        load(v.clone(), &cfg),
        Err(IndexError::MissingDump(_))
    ));
    VectorIndex::build(v.clone(), None, dim, &cfg)
        .unwrap()
        .dump(dir, "cf")
        .unwrap();
    assert!(load(v.clone(), &cfg).is_ok());

    let mut changed = v.clone();
    changed[17] += 0.5;
    assert!(matches!(
        load(changed.clone(), &cfg),
        Err(IndexError::StaleDump(_))
    ));
    let rebuilt = VectorIndex::load_or_build(dir, "cf", changed, None, dim, &cfg).unwrap();
    assert_eq!(
        (rebuilt.kind(), rebuilt.is_loaded_from_dump()),
        ("hnsw", false)
    );
    assert!(matches!(
        load(v[..v.len() - dim].to_vec(), &cfg),
        Err(IndexError::StaleDump(_))
    ));
    let other_m = IndexConfig {
        m: 8,
        ..cfg.clone()
    };
    assert!(matches!(
        load(v.clone(), &other_m),
        Err(IndexError::StaleDump(_))
    ));
    assert!(matches!(
        VectorIndex::load(dir, "cf", v.clone(), Some(vec![0.0; n]), dim, &cfg),
        Err(IndexError::StaleDump(_))
    ));
    assert!(
        load(v.clone(), &cfg).is_ok(),
        "rejections must not damage the dump"
    );

    let path = dir.join("cf.graph");
    let mut bytes = std::fs::read(&path).unwrap();
    let original = bytes.clone();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        load(v.clone(), &cfg),
        Err(IndexError::CorruptDump(_))
    ));
    bytes.truncate(mid);
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        load(v.clone(), &cfg),
        Err(IndexError::CorruptDump(_))
    ));
    let rebuilt = VectorIndex::load_or_build(dir, "cf", v.clone(), None, dim, &cfg).unwrap();
    assert_eq!(
        (rebuilt.kind(), rebuilt.is_loaded_from_dump()),
        ("hnsw", false)
    );

    // A link outside the catalogue behind a valid checksum is caught by validation.
    let header = 8 + 4 + 8 + 8 + 1 + 4 + 8 + 8 + 4 + 8;
    let mut bytes = original;
    let first_link = header + (n + 1) * 8;
    bytes[first_link..first_link + 4].copy_from_slice(&(n as u32).to_le_bytes());
    let body = bytes.len() - 4;
    let crc = crc32fast::hash(&bytes[..body]);
    bytes[body..].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        load(v.clone(), &cfg),
        Err(IndexError::CorruptDump(e)) if e.contains("outside")
    ));
    std::fs::write(&path, b"short").unwrap();
    assert!(matches!(
        load(v.clone(), &cfg),
        Err(IndexError::CorruptDump(_))
    ));
    assert!(matches!(
        VectorIndex::load(dir, "../cf", v.clone(), None, dim, &cfg),
        Err(IndexError::DumpName(_))
    ));
}

#[test]
fn exact_indexes_neither_write_nor_read_dumps() {
    let v = clustered(100, 4, 2, 16);
    let tmp = tempfile::tempdir().unwrap();
    let exact = VectorIndex::build(v.clone(), None, 4, &IndexConfig::default()).unwrap();
    exact.dump(tmp.path(), "cf").unwrap();
    assert!(dump_files(tmp.path()).is_empty());
    let index =
        VectorIndex::load_or_build(tmp.path(), "cf", v, None, 4, &IndexConfig::default()).unwrap();
    assert_eq!(index.kind(), "exact");
}

#[test]
fn config_deserialises_with_defaults() {
    let cfg: IndexConfig = serde_json::from_str(r#"{"m": 32}"#).unwrap();
    assert_eq!(
        cfg,
        IndexConfig {
            m: 32,
            ..IndexConfig::default()
        }
    );
    assert!(serde_json::from_str::<IndexConfig>(r#"{"mm": 32}"#).is_err());
}

#[test]
fn search_config_changes_apply_without_rebuild() {
    let (n, dim) = (2000, 8);
    let (v, queries) = clustered_with_queries(n, 10, dim, 8, 17);
    let exact = VectorIndex::build(v.clone(), None, dim, &IndexConfig::default()).unwrap();
    let mut hnsw = VectorIndex::build(v, None, dim, &hnsw_cfg()).unwrap();
    // A seed pool covering the catalogue scores every item: the graph search becomes exact.
    let everything = IndexConfig {
        seed_pool: n * 2,
        ..hnsw_cfg()
    };
    hnsw.set_search_config(&everything).unwrap();
    for q in queries.chunks_exact(dim) {
        assert_eq!(search(&hnsw, q, 100), search(&exact, q, 100));
    }
    let invalid = IndexConfig {
        seeds: 0,
        ..hnsw_cfg()
    };
    assert!(matches!(
        hnsw.set_search_config(&invalid),
        Err(IndexError::InvalidConfig { field: "seeds", .. })
    ));
}
