//! Tests of the item2item trainer against naive references (dense Gauss-Jordan EASE, O(n²)
//! cosine kNN), planted structure, λ validation and input errors, plus an ignored release-mode
//! timing run of EASE's scaling. Costs are measured in the debug (`cargo test`) profile; the
//! whole module runs in ~10 ms.

use std::time::Instant;

use rand::{RngExt, SeedableRng, rngs::StdRng};

use super::data::Csr;
use super::ease::Gram;
use super::eval::{self, Holdouts};
use super::*;

fn inter(user: u32, item: u32) -> Interaction {
    Interaction {
        user,
        item,
        ts: 0,
        weight: 1.0,
        count: 1,
    }
}

/// Each user takes each item with probability `p` (at least one item).
fn random_binary(n_users: u32, n_items: u32, p: f64, seed: u64) -> Vec<Interaction> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::new();
    for u in 0..n_users {
        let before = out.len();
        for i in 0..n_items {
            if rng.random_bool(p) {
                out.push(inter(u, i));
            }
        }
        if out.len() == before {
            out.push(inter(u, rng.random_range(0..n_items)));
        }
    }
    out
}

fn cfg(method: Method, lambdas: &[f64], k: usize) -> Item2ItemConfig {
    Item2ItemConfig {
        method,
        lambdas: lambdas.to_vec(),
        neighbours: k,
        ..Default::default()
    }
}

/// Rows best first, no self, ids distinct and in range, padding only at the end and -1 / 0.0.
fn assert_well_formed(nb: &Neighbours, n_items: usize) {
    assert_eq!(nb.n_items(), n_items);
    for i in 0..n_items {
        let (ids, ws) = nb.row(i);
        let filled = ids.iter().take_while(|&&j| j >= 0).count();
        assert!(ids[filled..].iter().all(|&j| j == -1), "row {i}: {ids:?}");
        assert!(ws[filled..].iter().all(|&w| w == 0.0), "row {i}: {ws:?}");
        assert!(ws[..filled].iter().all(|&w| w.is_finite() && w > 0.0));
        assert!(
            ws[..filled].windows(2).all(|p| p[0] >= p[1]),
            "row {i}: {ws:?}"
        );
        assert!(!ids[..filled].contains(&(i as i32)), "row {i} lists itself");
        let mut sorted = ids[..filled].to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), filled);
        assert!(sorted.iter().all(|&j| (j as usize) < n_items));
    }
}

/// (XᵀX + λI)⁻¹ by Gauss-Jordan with partial pivoting, then B_ij = -P_ij / P_jj, B_ii = 0.
fn naive_ease(n_items: usize, inter: &[Interaction], lambda: f64) -> Vec<Vec<f64>> {
    let n = n_items;
    let mut users: Vec<Vec<usize>> = Vec::new();
    for x in inter {
        let u = x.user as usize;
        if users.len() <= u {
            users.resize(u + 1, Vec::new());
        }
        users[u].push(x.item as usize);
    }
    let mut a = vec![vec![0.0; 2 * n]; n];
    for items in &users {
        for &i in items {
            for &j in items {
                a[i][j] += 1.0;
            }
        }
    }
    for (i, row) in a.iter_mut().enumerate() {
        row[i] += lambda;
        row[n + i] = 1.0;
    }
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&r, &s| a[r][col].abs().total_cmp(&a[s][col].abs()))
            .unwrap();
        a.swap(col, pivot);
        let d = a[col][col];
        a[col].iter_mut().for_each(|v| *v /= d);
        for r in 0..n {
            if r != col {
                let f = a[r][col];
                let pivot_row = a[col].clone();
                a[r].iter_mut()
                    .zip(&pivot_row)
                    .for_each(|(v, p)| *v -= f * p);
            }
        }
    }
    let p = |i: usize, j: usize| a[i][n + j];
    (0..n)
        .map(|i| {
            (0..n)
                .map(|j| if i == j { 0.0 } else { -p(i, j) / p(j, j) })
                .collect()
        })
        .collect()
}

// Cost: ~5 ms (two 12-item fits and a 12×12 Gauss-Jordan).
#[test]
fn ease_matches_naive_gauss_jordan_reference() {
    let (n_users, n_items, lambda) = (30, 12, 3.0);
    let data = random_binary(n_users, n_items as u32, 0.3, 7);
    let reference = naive_ease(n_items, &data, lambda);
    for k in [50, 3] {
        let (nb, report) = fit(n_items, &data, &cfg(Method::Ease, &[lambda], k)).unwrap();
        assert_eq!(report.method, Method::Ease);
        assert_eq!(report.lambda, Some(lambda));
        assert_well_formed(&nb, n_items);
        for (i, want) in reference.iter().enumerate() {
            let (ids, ws) = nb.row(i);
            for (&j, &w) in ids.iter().zip(ws).filter(|(j, _)| **j >= 0) {
                let expect = want[j as usize];
                assert!(
                    (f64::from(w) - expect).abs() < 1e-4,
                    "B[{i}][{j}] {w} vs {expect}"
                );
            }
            // The kept set is the reference's top min(k, #positive) (clear margins only).
            let mut positive: Vec<(f64, usize)> = want
                .iter()
                .enumerate()
                .filter(|&(j, &w)| j != i && w > 1e-6)
                .map(|(j, &w)| (w, j))
                .collect();
            positive.sort_by(|a, b| b.0.total_cmp(&a.0));
            let filled = ids.iter().filter(|&&j| j >= 0).count();
            assert_eq!(filled, positive.len().min(k), "row {i}");
            for (rank, &(w, j)) in positive.iter().take(k).enumerate() {
                let clear = positive.get(k).is_none_or(|next| w - next.0 > 1e-6);
                if clear {
                    assert!(
                        ids.contains(&(j as i32)),
                        "row {i} misses {j} (rank {rank})"
                    );
                }
            }
        }
    }
}

// Cost: ~5 ms.
#[test]
fn knn_matches_naive_reference_with_shrinkage() {
    let (n_users, n_items, shrinkage, k) = (40u32, 15usize, 2.5, 4);
    let data = random_binary(n_users, n_items as u32, 0.25, 11);
    let mut sets = vec![std::collections::BTreeSet::new(); n_items];
    for x in &data {
        sets[x.item as usize].insert(x.user);
    }
    let config = Item2ItemConfig {
        knn_shrinkage: shrinkage,
        ..cfg(Method::Knn, &[1.0], k)
    };
    let (nb, report) = fit(n_items, &data, &config).unwrap();
    assert_eq!(report.method, Method::Knn);
    assert_eq!(report.lambda, None);
    assert_eq!(report.capped_users, 0);
    assert_well_formed(&nb, n_items);
    for i in 0..n_items {
        let mut want: Vec<(f32, i32)> = (0..n_items)
            .filter(|&j| j != i)
            .filter_map(|j| {
                let c = sets[i].intersection(&sets[j]).count() as f64;
                let n = (sets[i].len() * sets[j].len()) as f64;
                (c > 0.0).then(|| ((c / (n.sqrt() + shrinkage)) as f32, j as i32))
            })
            .collect();
        want.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        want.truncate(k);
        let (ids, ws) = nb.row(i);
        let got: Vec<(f32, i32)> = ws
            .iter()
            .zip(ids)
            .filter(|(_, j)| **j >= 0)
            .map(|(&w, &j)| (w, j))
            .collect();
        assert_eq!(got, want, "row {i}");
    }
}

// Cost: ~1 ms.
#[test]
fn knn_samples_heavy_users_down_to_the_cap() {
    // Items 0..10 come in pairs, one user per pair; user 0 alone has all of items 10..20.
    let mut data: Vec<Interaction> = (10..20).map(|i| inter(0, i)).collect();
    data.extend((0..5).flat_map(|p| [inter(p + 1, 2 * p), inter(p + 1, 2 * p + 1)]));
    let config = Item2ItemConfig {
        knn_max_user_items: 4,
        ..cfg(Method::Knn, &[1.0], 9)
    };
    let (nb, report) = fit(20, &data, &config).unwrap();
    assert_eq!(report.capped_users, 1);
    assert_well_formed(&nb, 20);
    for i in 0..10 {
        assert_eq!(nb.row(i).0[..2], [(i ^ 1) as i32, -1], "row {i}");
    }
    // Only the 4 sampled items of user 0 keep neighbours: each other one, weight 1 / (1 + 10).
    let heavy: Vec<usize> = (10..20).filter(|&i| nb.row(i).0[0] >= 0).collect();
    assert_eq!(heavy.len(), 4, "{heavy:?}");
    for &i in &heavy {
        let (ids, ws) = nb.row(i);
        let mut got: Vec<usize> = ids[..3].iter().map(|&j| j as usize).collect();
        got.sort_unstable();
        let want: Vec<usize> = heavy.iter().copied().filter(|&j| j != i).collect();
        assert_eq!(got, want);
        assert_eq!(ids[3], -1);
        assert!(ws[..3].iter().all(|&w| (w - 1.0 / 11.0).abs() < 1e-7));
    }
    assert_eq!(fit(20, &data, &config).unwrap().0, nb, "sampling is seeded");
}

/// Users take 3 random pairs {2p, 2p+1} each, so every item's partner co-occurs with it always
/// and any other item only by chance.
fn planted_pairs(n_users: u32, n_pairs: u32, seed: u64) -> Vec<Interaction> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::new();
    for u in 0..n_users {
        for _ in 0..3 {
            let p = rng.random_range(0..n_pairs);
            out.extend([inter(u, 2 * p), inter(u, 2 * p + 1)]);
        }
    }
    out
}

// Cost: ~5 ms (two 20-item fits, EASE with a 3-point validated grid).
#[test]
fn planted_pairs_are_top_neighbours_for_both_methods() {
    let data = planted_pairs(200, 10, 3);
    for method in [Method::Ease, Method::Knn] {
        let (nb, report) = fit(20, &data, &cfg(method, &[1.0, 10.0, 100.0], 5)).unwrap();
        assert_eq!(report.method, method);
        assert_well_formed(&nb, 20);
        for i in 0..20 {
            assert_eq!(nb.row(i).0[0], (i ^ 1) as i32, "{method:?} row {i}");
        }
    }
}

// Cost: ~3 ms (2 × (4 validated λ + refit) on 60 items, 300 users).
#[test]
fn lambda_validation_picks_the_best_grid_point_deterministically() {
    let data = planted_pairs(300, 30, 5);
    let grid = [2500.0, 1.0, 30.0, 300.0];
    let config = Item2ItemConfig {
        validation_users: 120,
        seed: 9,
        ..cfg(Method::Ease, &grid, 10)
    };
    let (nb, report) = fit(60, &data, &config).unwrap();
    assert_eq!(report.validation_users, 120);
    let lambdas: Vec<f64> = report.validation.iter().map(|s| s.lambda).collect();
    assert_eq!(lambdas, grid, "every grid λ is reported, in grid order");
    let best = report
        .validation
        .iter()
        .map(|s| s.ndcg_at_20)
        .fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(report.validation_metric, Some(best));
    let chosen = report.lambda.unwrap();
    assert!(grid.contains(&chosen));
    let chosen_score = report
        .validation
        .iter()
        .find(|s| s.lambda == chosen)
        .unwrap();
    assert_eq!(chosen_score.ndcg_at_20, best);
    assert!(best > 0.0, "planted pairs are recoverable: {report:?}");
    // Every λ finds the held-out item through its planted partner for most users.
    assert!(
        report.validation.iter().all(|s| s.recall_at_20 > 0.3),
        "{report:?}"
    );

    let (nb2, report2) = fit(60, &data, &config).unwrap();
    assert_eq!(nb, nb2);
    assert_eq!(report.lambda, report2.lambda);
    let metrics = |r: &Item2ItemReport| -> Vec<(f64, f64)> {
        r.validation
            .iter()
            .map(|s| (s.recall_at_20, s.ndcg_at_20))
            .collect()
    };
    assert_eq!(metrics(&report), metrics(&report2));
    // The validation sample is the seed's: same seed, same users and items; another, others.
    let users = Csr::user_lists(&data);
    assert_eq!(
        Holdouts::sample(&users, 120, 9),
        Holdouts::sample(&users, 120, 9)
    );
    assert_ne!(
        Holdouts::sample(&users, 120, 9),
        Holdouts::sample(&users, 120, 10)
    );
}

// Cost: < 1 ms.
#[test]
fn holdout_shift_gives_the_gram_of_the_remaining_pairs() {
    let data = random_binary(25, 9, 0.4, 1);
    let users = Csr::user_lists(&data);
    let holdouts = Holdouts::sample(&users, 10, 4);
    assert_eq!(holdouts.len(), 10);
    let mut gram = Gram::build(9, &users, &users.transpose(9)).unwrap();
    let full: Vec<f64> = (0..81).map(|p| gram.get(p % 9, p / 9)).collect();
    gram.shift_holdouts(&users, &holdouts, -1.0);
    let rows: Vec<Vec<u32>> = (0..users.n_rows())
        .map(|u| {
            let held = holdouts.users.binary_search(&(u as u32)).ok();
            let held = held.map(|p| holdouts.items[p]);
            users
                .row(u)
                .iter()
                .copied()
                .filter(|&i| Some(i) != held)
                .collect()
        })
        .collect();
    let train = Csr::from_rows(&rows);
    let expected = Gram::build(9, &train, &train.transpose(9)).unwrap();
    for p in 0..81 {
        assert_eq!(
            gram.get(p % 9, p / 9),
            expected.get(p % 9, p / 9),
            "entry {p}"
        );
    }
    gram.shift_holdouts(&users, &holdouts, 1.0);
    let restored: Vec<f64> = (0..81).map(|p| gram.get(p % 9, p / 9)).collect();
    assert_eq!(restored, full);
}

// Cost: < 1 ms.
#[test]
fn evaluate_ranks_reached_items_and_excludes_fit_items() {
    // Item 0 → [2 (0.5), 1 (0.4), 3 (0.1)], item 1 → [3 (0.9), 0 (0.6)], items 2, 3 → none.
    let nb = Neighbours {
        k: 3,
        ids: vec![2, 1, 3, 3, 0, -1, -1, -1, -1, -1, -1, -1],
        weights: vec![0.5, 0.4, 0.1, 0.9, 0.6, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    };
    // User 0 = {0, 1, 3} holding out 3: 3 scores 1.0, best of all → rank 0.
    // User 1 = {0, 1, 2} holding out 2 (0.5): 3 (1.0) is above; the fit items 0 (0.6) and
    //   1 (0.4) are reached but never ranked → rank 1.
    // User 2 = {1, 2} holding out 2: only 3 and 0 are reached → miss.
    // User 3 = {0, 3} holding out 3 (0.1): 2 (0.5) and 1 (0.4) are above → rank 2.
    let users = Csr::from_rows(&[vec![0, 1, 3], vec![0, 1, 2], vec![1, 2], vec![0, 3]]);
    let holdouts = Holdouts {
        users: vec![0, 1, 2, 3],
        items: vec![3, 2, 2, 3],
    };
    let (recall, ndcg) = eval::evaluate(&nb, &users, &holdouts);
    assert!((recall - 0.75).abs() < 1e-12, "{recall}");
    let want = (1.0 + 1.0 / 3f64.log2() + 0.0 + 1.0 / 4f64.log2()) / 4.0;
    assert!((ndcg - want).abs() < 1e-12, "{ndcg} vs {want}");
}

// Cost: ~1 ms.
#[test]
fn auto_uses_ease_up_to_ease_max_items() {
    let data = planted_pairs(50, 5, 1);
    let auto = |max| Item2ItemConfig {
        ease_max_items: max,
        ..cfg(Method::Auto, &[10.0], 3)
    };
    assert_eq!(fit(10, &data, &auto(10)).unwrap().1.method, Method::Ease);
    assert_eq!(fit(10, &data, &auto(9)).unwrap().1.method, Method::Knn);
    // Items beyond the data get padding-only rows; single-item users are fine.
    let (nb, _) = fit(12, &[inter(0, 1), inter(0, 2), inter(5, 4)], &auto(100)).unwrap();
    assert_well_formed(&nb, 12);
    assert_eq!(nb.row(1).0[0], 2);
    assert!(nb.row(11).0.iter().all(|&j| j == -1));
    assert_eq!(
        nb.row(12),
        (&[][..], &[][..]),
        "out-of-range rows are empty"
    );
    // No user has 2 items: no validation, the grid's median λ.
    let single = [inter(0, 1), inter(1, 2), inter(2, 1)];
    let (_, report) = fit(
        3,
        &single,
        &cfg(Method::Ease, &[100.0, 1.0, 10.0, 1000.0], 3),
    )
    .unwrap();
    assert_eq!(report.lambda, Some(10.0));
    assert!(report.validation.is_empty() && report.validation_metric.is_none());
    assert_eq!(report.validation_users, 0);
}

// Cost: < 1 ms.
#[test]
fn bad_inputs_are_errors_not_panics() {
    let ok = cfg(Method::Ease, &[10.0], 5);
    let data = [inter(0, 0), inter(0, 1)];
    for method in [Method::Ease, Method::Knn] {
        let c = cfg(method, &[10.0], 5);
        assert!(matches!(
            fit(3, &[], &c),
            Err(Item2ItemError::NoInteractions)
        ));
        let err = fit(2, &[inter(0, 0), inter(1, 2)], &c).unwrap_err();
        assert!(
            matches!(
                err,
                Item2ItemError::ItemOutOfRange {
                    index: 1,
                    item: 2,
                    n_items: 2
                }
            ),
            "{err}"
        );
        assert!(matches!(
            fit(0, &data, &c),
            Err(Item2ItemError::ItemOutOfRange { .. })
        ));
    }
    let bad = [
        Item2ItemConfig {
            lambdas: vec![],
            ..ok.clone()
        },
        Item2ItemConfig {
            lambdas: vec![10.0, 0.0],
            ..ok.clone()
        },
        Item2ItemConfig {
            lambdas: vec![f64::NAN],
            ..ok.clone()
        },
        Item2ItemConfig {
            neighbours: 0,
            ..ok.clone()
        },
        Item2ItemConfig {
            knn_shrinkage: -1.0,
            ..ok.clone()
        },
        Item2ItemConfig {
            knn_max_user_items: 1,
            ..ok.clone()
        },
        Item2ItemConfig {
            neighbours: usize::MAX,
            ..ok.clone()
        },
    ];
    for c in &bad {
        assert!(
            matches!(fit(2, &data, c), Err(Item2ItemError::InvalidConfig { .. })),
            "{c:?}"
        );
    }
    assert!(fit(2, &data, &ok).is_ok());
}

// Cost: < 1 ms.
#[test]
fn config_defaults_and_unknown_fields() {
    let c: Item2ItemConfig = toml::from_str("method = \"knn\"\nneighbours = 20").unwrap();
    assert_eq!(c.method, Method::Knn);
    assert_eq!(c.neighbours, 20);
    assert_eq!(c.lambdas, Item2ItemConfig::default().lambdas);
    assert!(toml::from_str::<Item2ItemConfig>("neighbors = 20").is_err());
    assert!(toml::from_str::<Item2ItemConfig>("method = \"svd\"").is_err());
    Item2ItemConfig::default().validate().unwrap();
}

/// Synthetic data for the timing run: 8 users per item, ~60 items each, drawn with a skewed
/// (squared-uniform) popularity so the Gram matrix is dense-ish like real data.
fn synthetic(n_items: usize, seed: u64) -> Vec<Interaction> {
    let mut rng = StdRng::seed_from_u64(seed);
    let n_users = 8 * n_items as u32;
    let mut out = Vec::new();
    for u in 0..n_users {
        let len = rng.random_range(10..110);
        for _ in 0..len {
            let x: f64 = rng.random();
            out.push(inter(u, ((x * x) * n_items as f64) as u32));
        }
    }
    out
}

/// `cargo test --release --lib train::item2item::tests::ease_scaling -- --ignored --nocapture`
/// Prints, per n_items: Gram, one Cholesky + inverse, one top-K, the whole default-grid
/// validation and the whole fit. No wall-clock assertion. `I2I_SIZES=1500,3000` and
/// `I2I_LAMBDAS=250` (one λ: no validation) override the defaults.
#[test]
#[ignore = "timing run, release mode, minutes"]
fn ease_scaling() {
    let sizes: Vec<usize> = std::env::var("I2I_SIZES")
        .ok()
        .map(|s| s.split(',').map(|x| x.trim().parse().unwrap()).collect())
        .unwrap_or_else(|| vec![1500, 3000, 5000, 8000]);
    // I2I_LAMBDAS=250 times the fit without validation (one inverse).
    let lambdas: Vec<f64> = std::env::var("I2I_LAMBDAS")
        .ok()
        .map(|s| s.split(',').map(|x| x.trim().parse().unwrap()).collect())
        .unwrap_or_else(|| Item2ItemConfig::default().lambdas);
    println!("threads: {}", rayon::current_num_threads());
    println!(
        "| n_items | pairs | gram s | 1× inverse s | 1× top-K s | validation ({} λ) s | total s |",
        lambdas.len()
    );
    for n in sizes {
        let data = synthetic(n, 1);
        let config = Item2ItemConfig {
            method: Method::Ease,
            lambdas: lambdas.clone(),
            ..Default::default()
        };
        let t = Instant::now();
        let (nb, report) = fit(n, &data, &config).unwrap();
        let total = t.elapsed().as_secs_f64();
        assert_eq!(nb.n_items(), n);
        let s = &report.seconds;
        println!(
            "| {n} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            report.n_pairs, s.gram, s.inverse, s.neighbours, s.validation, total
        );
        println!("  λ = {:?}, per λ: {:?}", report.lambda, report.validation);
    }
}
