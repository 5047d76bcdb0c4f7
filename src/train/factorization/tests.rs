//! End-to-end learning tests on a synthetic clustered data set generated in the test.

use std::cell::RefCell;

use rand::{RngExt, SeedableRng, rngs::StdRng};

use super::*;

const N_USERS: usize = 600;
const N_ITEMS: usize = 400;
const CLUSTERS: usize = 8;
/// The last item of each cluster has features but no interactions.
const COLD_ITEMS: std::ops::Range<usize> = N_ITEMS - CLUSTERS..N_ITEMS;

struct Synthetic {
    users: FeatureMatrix,
    items: FeatureMatrix,
    train: TrainInteractions,
    valid: TrainInteractions,
    test: TrainInteractions,
}

fn cluster_of(entity: usize) -> usize {
    entity % CLUSTERS
}

/// 600 users, 400 items in 8 clusters. Users draw 20 distinct items, 85% from their own cluster,
/// with a popularity skew inside each cluster; 2 go to validation and 2 to test. Items carry an
/// identity feature and a cluster feature; users only an identity feature.
fn synthetic(seed: u64) -> Synthetic {
    let mut rng = StdRng::seed_from_u64(seed);
    let warm: Vec<usize> = (0..N_ITEMS).filter(|i| !COLD_ITEMS.contains(i)).collect();
    // Zipf-like popularity: weight 1 / (1 + position within the cluster).
    let popularity = |item: usize| 1.0 / (1.0 + (item / CLUSTERS) as f64);
    let draw = |rng: &mut StdRng, candidates: &[usize]| {
        let total: f64 = candidates.iter().map(|&i| popularity(i)).sum();
        let mut x = rng.random::<f64>() * total;
        for &i in candidates {
            x -= popularity(i);
            if x <= 0.0 {
                return i;
            }
        }
        candidates[candidates.len() - 1]
    };
    let by_cluster: Vec<Vec<usize>> = (0..CLUSTERS)
        .map(|c| {
            warm.iter()
                .copied()
                .filter(|&i| cluster_of(i) == c)
                .collect()
        })
        .collect();

    let (mut train, mut valid, mut test) = (Vec::new(), Vec::new(), Vec::new());
    for user in 0..N_USERS {
        let mut chosen: Vec<usize> = Vec::new();
        while chosen.len() < 20 {
            let item = if rng.random::<f64>() < 0.85 {
                draw(&mut rng, &by_cluster[cluster_of(user)])
            } else {
                draw(&mut rng, &warm)
            };
            if !chosen.contains(&item) {
                chosen.push(item);
            }
        }
        for (k, item) in chosen.into_iter().enumerate() {
            let pair = (user as u32, item as u32);
            match k {
                0 | 1 => valid.push(pair),
                2 | 3 => test.push(pair),
                _ => train.push(pair),
            }
        }
    }

    let users = FeatureMatrix::identity(N_USERS);
    let mut items = FeatureMatrix::from_rows(
        N_ITEMS + CLUSTERS,
        (0..N_ITEMS).map(|i| [(i as u32, 1.0), ((N_ITEMS + cluster_of(i)) as u32, 1.0)]),
    );
    items.normalize_rows();
    Synthetic {
        users,
        items,
        train: TrainInteractions::unweighted(N_USERS, N_ITEMS, train),
        valid: TrainInteractions::unweighted(N_USERS, N_ITEMS, valid),
        test: TrainInteractions::unweighted(N_USERS, N_ITEMS, test),
    }
}

fn config(loss: Loss) -> FactorizationConfig {
    FactorizationConfig {
        components: 32,
        learning_rate: 0.05,
        max_epochs: 20,
        loss,
        patience: 3,
        threads: 1,
        seed: 7,
        ..FactorizationConfig::default()
    }
}

fn fit(data: &Synthetic, cfg: &FactorizationConfig) -> (HybridModel, TrainReport) {
    train(
        cfg,
        &data.users,
        &data.items,
        &data.train,
        Some(&data.valid),
        &|_| {},
    )
    .unwrap()
}

/// Test-set recall@10, excluding train and validation items from the ranking.
fn test_recall(data: &Synthetic, model: &HybridModel, items: &FeatureMatrix) -> f32 {
    let seen: Vec<(u32, u32)> = data
        .train
        .pairs
        .iter()
        .chain(&data.valid.pairs)
        .copied()
        .collect();
    let seen = UserItems::new(N_USERS, &seen);
    RecallEvaluator::new(&seen, &data.test, 10, N_USERS, 0).recall(model, &data.users, items, &seen)
}

/// Popularity baseline: zero embeddings, item bias = log(1 + training count).
fn popularity_recall(data: &Synthetic) -> f32 {
    let mut counts = vec![0.0f32; N_ITEMS];
    for &(_, item) in &data.train.pairs {
        counts[item as usize] += 1.0;
    }
    let model = HybridModel {
        components: 1,
        user_feature_emb: vec![0.0; N_USERS],
        user_feature_bias: vec![0.0; N_USERS],
        item_feature_emb: vec![0.0; N_ITEMS],
        item_feature_bias: counts.iter().map(|c| c.ln_1p()).collect(),
    };
    test_recall(data, &model, &FeatureMatrix::identity(N_ITEMS))
}

#[test]
fn warp_beats_popularity_and_reduces_loss() {
    let data = synthetic(1);
    let epochs = RefCell::new(Vec::new());
    let (model, report) = train(
        &config(Loss::Warp),
        &data.users,
        &data.items,
        &data.train,
        Some(&data.valid),
        &|r| epochs.borrow_mut().push(r),
    )
    .unwrap();
    let warp = test_recall(&data, &model, &data.items);
    let popularity = popularity_recall(&data);
    eprintln!("WARP test recall@10 {warp:.4}, popularity {popularity:.4}, report {report:?}");
    assert!(popularity > 0.0);
    assert!(
        warp >= 1.5 * popularity,
        "WARP {warp} vs popularity {popularity}"
    );

    let epochs = epochs.into_inner();
    assert_eq!(epochs.len(), report.epochs_run);
    assert!(epochs.iter().all(|e| e.metric.is_some()));
    assert!(report.train_loss[report.epochs_run - 1] < 0.7 * report.train_loss[0]);
}

#[test]
fn validation_recall_improves_over_epochs() {
    let data = synthetic(8);
    // A small learning rate, so that learning spreads over several epochs.
    let cfg = FactorizationConfig {
        learning_rate: 0.005,
        max_epochs: 6,
        patience: 0,
        ..config(Loss::Warp)
    };
    let (_, report) = fit(&data, &cfg);
    eprintln!("{:?} {:?}", report.history, report.train_loss);
    let untrained = {
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let params = Params {
            components: cfg.components,
            users: SideParams::init(data.users.n_features, cfg.components, &mut rng),
            items: SideParams::init(data.items.n_features, cfg.components, &mut rng),
        };
        let positives = UserItems::new(N_USERS, &data.train.pairs);
        RecallEvaluator::new(&positives, &data.valid, 10, 2000, cfg.seed).recall(
            &snapshot(&params),
            &data.users,
            &data.items,
            &positives,
        )
    };
    let recalls: Vec<f32> = report.history.iter().map(|h| h.1).collect();
    assert_eq!(recalls.len(), 6);
    assert!(recalls[0] > untrained, "{untrained} -> {recalls:?}");
    assert!(recalls[5] > 1.2 * recalls[0], "{recalls:?}");
    assert!(report.train_loss[5] < report.train_loss[0]);
}

#[test]
fn bpr_learns_too() {
    let data = synthetic(2);
    let (model, report) = fit(&data, &config(Loss::Bpr));
    let bpr = test_recall(&data, &model, &data.items);
    let popularity = popularity_recall(&data);
    eprintln!("BPR test recall@10 {bpr:.4}, popularity {popularity:.4}, report {report:?}");
    assert!(
        bpr >= 1.3 * popularity,
        "BPR {bpr} vs popularity {popularity}"
    );
    assert!(report.train_loss[report.epochs_run - 1] < report.train_loss[0]);
}

#[test]
fn cold_item_is_retrieved_through_its_cluster_feature() {
    let data = synthetic(3);
    let (model, _) = fit(&data, &config(Loss::Warp));
    let user_vecs = model.user_vectors(&data.users);
    let (item_vecs, item_bias) = model.item_vectors(&data.items);
    let d = model.components;
    let score = |u: usize, i: usize| -> f32 {
        let uv = &user_vecs[u * d..(u + 1) * d];
        let iv = &item_vecs[i * d..(i + 1) * d];
        uv.iter().zip(iv).map(|(a, b)| a * b).sum::<f32>() + item_bias[i]
    };
    let seen = UserItems::new(N_USERS, &data.train.pairs);
    for cold in COLD_ITEMS {
        let (mut own, mut other) = (Vec::new(), Vec::new());
        for user in 0..N_USERS {
            let s = score(user, cold);
            let candidates = (0..N_ITEMS).filter(|&i| !seen.contains(user, i as u32));
            let better = candidates.clone().filter(|&i| score(user, i) > s).count();
            let relative = better as f64 / candidates.count() as f64;
            if cluster_of(user) == cluster_of(cold) {
                own.push(relative);
            } else {
                other.push(relative);
            }
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let (own, other) = (mean(&own), mean(&other));
        eprintln!(
            "cold item {cold}: mean relative rank {own:.3} in its cluster, {other:.3} elsewhere"
        );
        assert!(own < 0.2, "cold item {cold}: {own}");
        assert!(
            other > 0.5,
            "cold item {cold} should not rank high elsewhere: {other}"
        );
    }
}

#[test]
fn single_thread_training_is_deterministic() {
    let data = synthetic(4);
    let cfg = FactorizationConfig {
        max_epochs: 3,
        ..config(Loss::Warp)
    };
    let (a, ra) = fit(&data, &cfg);
    let (b, rb) = fit(&data, &cfg);
    assert_eq!(a, b);
    assert_eq!(ra.history, rb.history);
    assert_eq!(ra.train_loss, rb.train_loss);
    let (c, _) = fit(&data, &FactorizationConfig { seed: 8, ..cfg });
    assert_ne!(a, c, "a different seed must give a different model");
}

#[test]
fn multi_threaded_hogwild_learns() {
    let data = synthetic(5);
    let cfg = FactorizationConfig {
        threads: 2,
        ..config(Loss::Warp)
    };
    let (model, _) = fit(&data, &cfg);
    let recall = test_recall(&data, &model, &data.items);
    let popularity = popularity_recall(&data);
    assert!(recall >= 1.5 * popularity, "{recall} vs {popularity}");
}

#[test]
fn returns_the_best_epoch_and_stops_early() {
    let data = synthetic(6);
    // A very high learning rate overfits quickly, so validation recall peaks early.
    let cfg = FactorizationConfig {
        learning_rate: 0.5,
        max_epochs: 40,
        patience: 2,
        ..config(Loss::Warp)
    };
    let (model, report) = fit(&data, &cfg);
    eprintln!("{:?}", report.history);
    let (best_epoch, best) = report
        .history
        .iter()
        .copied()
        .fold((0, f32::MIN), |acc, h| if h.1 > acc.1 { h } else { acc });
    assert_eq!(report.best_epoch, best_epoch);
    assert!(report.stopped_early, "{report:?}");
    assert_eq!(report.epochs_run, best_epoch + cfg.patience);
    // The returned parameters are the best epoch's: re-evaluating them reproduces its recall.
    let positives = UserItems::new(N_USERS, &data.train.pairs);
    let evaluator = RecallEvaluator::new(&positives, &data.valid, 10, 2000, cfg.seed);
    let again = evaluator.recall(&model, &data.users, &data.items, &positives);
    assert_eq!(again, best);
}

#[test]
fn without_validation_runs_all_epochs() {
    let data = synthetic(7);
    let cfg = FactorizationConfig {
        max_epochs: 2,
        ..config(Loss::Bpr)
    };
    let (_, report) = train(&cfg, &data.users, &data.items, &data.train, None, &|_| {}).unwrap();
    assert_eq!(report.epochs_run, 2);
    assert_eq!(report.best_epoch, 2);
    assert!(report.history.is_empty());
    assert!(!report.stopped_early);
}

#[test]
fn zero_weight_interactions_are_not_trained_on() {
    let users = FeatureMatrix::identity(3);
    let items = FeatureMatrix::identity(5);
    let interactions = TrainInteractions {
        n_users: 3,
        n_items: 5,
        pairs: vec![(0, 0), (1, 1), (2, 2)],
        weights: vec![1.0, 0.0, 0.0],
    };
    let cfg = FactorizationConfig {
        components: 4,
        max_epochs: 5,
        threads: 1,
        ..FactorizationConfig::default()
    };
    let (model, _) = train(&cfg, &users, &items, &interactions, None, &|_| {}).unwrap();
    let init = SideParams::init(3, 4, &mut StdRng::seed_from_u64(cfg.seed))
        .snapshot()
        .0;
    assert_ne!(model.user_feature_emb[..4], init[..4], "user 0 trained");
    assert_eq!(
        model.user_feature_emb[4..],
        init[4..],
        "users 1 and 2 untouched"
    );

    let all_zero = TrainInteractions {
        weights: vec![0.0; 3],
        ..interactions
    };
    assert!(matches!(
        train(&cfg, &users, &items, &all_zero, None, &|_| {}),
        Err(FactorizationError::NoInteractions)
    ));
}

#[test]
fn rejects_inconsistent_inputs() {
    let users = FeatureMatrix::identity(2);
    let items = FeatureMatrix::identity(3);
    let ok = TrainInteractions::unweighted(2, 3, vec![(0, 1)]);
    let cfg = FactorizationConfig::default();
    let run = |cfg: &FactorizationConfig, u: &FeatureMatrix, t: &TrainInteractions, v| {
        train(cfg, u, &items, t, v, &|_| {}).map(|_| ())
    };
    assert!(run(&cfg, &users, &ok, None).is_ok());
    assert!(matches!(
        run(&cfg, &FeatureMatrix::identity(3), &ok, None),
        Err(FactorizationError::ShapeMismatch {
            entity: "users",
            ..
        })
    ));
    let wider = TrainInteractions::unweighted(2, 4, vec![]);
    assert!(matches!(
        run(&cfg, &users, &ok, Some(&wider)),
        Err(FactorizationError::ShapeMismatch {
            set: "validation",
            ..
        })
    ));
    let zero_lr = FactorizationConfig {
        learning_rate: 0.0,
        ..cfg.clone()
    };
    assert!(matches!(
        run(&zero_lr, &users, &ok, None),
        Err(FactorizationError::InvalidConfig {
            field: "learning_rate",
            ..
        })
    ));
    let mut broken = users.clone();
    broken.indices[0] = 9;
    assert!(matches!(
        run(&cfg, &broken, &ok, None),
        Err(FactorizationError::MalformedFeatures { matrix: "user", .. })
    ));
}

#[test]
fn sample_weights_are_median_normalised_and_capped() {
    let w = normalized_weights(&[2.0, 4.0, 0.0, 400.0, 4.0, 8.0], 10.0);
    // Median of the positive weights [2, 4, 4, 8, 400] is 4.
    assert_eq!(w, vec![0.5, 1.0, 0.0, 10.0, 1.0, 2.0]);
}

#[test]
fn config_deserialises_with_defaults() {
    let cfg: FactorizationConfig =
        serde_json::from_str(r#"{"components": 16, "loss": "bpr"}"#).unwrap();
    assert_eq!(cfg.components, 16);
    assert_eq!(cfg.loss, Loss::Bpr);
    assert_eq!(cfg.max_sampled, FactorizationConfig::default().max_sampled);
    assert!(serde_json::from_str::<FactorizationConfig>(r#"{"componets": 16}"#).is_err());
}
