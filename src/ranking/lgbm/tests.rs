//! Tests of the LightGBM wrapper and trainer, and the native scorer against LightGBM itself.

use std::sync::Arc;

use proptest::prelude::*;
use rand::{RngExt, SeedableRng, rngs::StdRng};
use serde_json::{Value, json};

use super::train::param_string;
use super::*;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Objective {
    Lambdarank,
    Regression,
    Binary,
}

const CAT_VALUES: i32 = 12;

/// Random rows: NaN and exact zeros in every numerical column, and (optionally) a categorical
/// column holding small integer categories. Returns the rows and a signal to derive labels from.
fn random_rows(
    rng: &mut StdRng,
    n_rows: usize,
    nf: usize,
    cat: Option<usize>,
) -> (Vec<f32>, Vec<f32>) {
    let mut rows = Vec::with_capacity(n_rows * nf);
    let mut signal = Vec::with_capacity(n_rows);
    for _ in 0..n_rows {
        let start = rows.len();
        for f in 0..nf {
            let v = if Some(f) == cat {
                if rng.random_bool(0.05) {
                    f32::NAN
                } else {
                    rng.random_range(0..CAT_VALUES) as f32
                }
            } else {
                match rng.random_range(0..10) {
                    0 => f32::NAN,
                    1 => 0.0,
                    _ => (rng.random_range(-2.0f32..2.0) * 20.0).round() / 20.0,
                }
            };
            rows.push(v);
        }
        let x = |f: usize| {
            let v = rows[start + f];
            if v.is_nan() { 0.0 } else { v }
        };
        let mut s = x(0) + 0.5 * x(1).max(0.0) - 0.7 * x(2 % nf);
        if let Some(c) = cat {
            s += if [2.0, 5.0, 7.0].contains(&rows[start + c]) {
                1.0
            } else {
                0.0
            };
        }
        signal.push(s + rng.random_range(-0.3f32..0.3));
    }
    (rows, signal)
}

fn labels_for(objective: Objective, signal: &[f32]) -> Vec<f32> {
    match objective {
        Objective::Regression => signal.to_vec(),
        Objective::Binary => signal.iter().map(|&s| f32::from(s > 0.0)).collect(),
        Objective::Lambdarank => signal
            .iter()
            .map(|&s| (s + 1.5).clamp(0.0, 3.0).floor())
            .collect(),
    }
}

fn groups_for(rng: &mut StdRng, n_rows: usize) -> Vec<i32> {
    let mut groups = Vec::new();
    let mut left = n_rows as i32;
    while left > 0 {
        let g = rng.random_range(5..20).min(left);
        groups.push(g);
        left -= g;
    }
    groups
}

/// Values that probe every split of `text`: each threshold as f32, and its f32 neighbours.
fn thresholds_of(text: &str) -> Vec<f32> {
    let mut out = Vec::new();
    for line in text.lines().filter_map(|l| l.strip_prefix("threshold=")) {
        for t in line
            .split_whitespace()
            .filter_map(|t| t.parse::<f64>().ok())
        {
            let t = t as f32;
            out.extend([t, t.next_up(), t.next_down()]);
        }
    }
    out
}

fn check_native_matches_lightgbm(
    objective: Objective,
    seed: u64,
    num_leaves: usize,
    min_data: usize,
    with_cat: bool,
    max_cat_to_onehot: usize,
    zero_as_missing: bool,
) -> Result<(), TestCaseError> {
    let mut rng = StdRng::seed_from_u64(seed);
    let nf = 5;
    let cat = with_cat.then_some(4);
    let n_rows = 300;
    let (rows, signal) = random_rows(&mut rng, n_rows, nf, cat);
    let labels = labels_for(objective, &signal);
    let groups = groups_for(&mut rng, n_rows);
    let train_rows = LabeledRows {
        features: &rows,
        n_features: nf,
        labels: &labels,
        groups: (objective == Objective::Lambdarank).then_some(&groups[..]),
        init_score: None,
    };
    let mut params = json!({
        "objective": match objective {
            Objective::Lambdarank => "lambdarank",
            Objective::Regression => "regression",
            Objective::Binary => "binary",
        },
        "num_iterations": 15,
        "learning_rate": 0.3,
        "num_leaves": num_leaves,
        "min_data_in_leaf": min_data,
        "min_data_per_group": 2,
        "cat_smooth": 1,
        "max_cat_to_onehot": max_cat_to_onehot,
        "zero_as_missing": zero_as_missing,
        "num_threads": 1,
        "deterministic": true,
        "seed": seed % 10_000,
    });
    if with_cat {
        params["categorical_feature"] = json!("4");
    }
    let TrainedModel {
        model_text: text,
        log,
    } = train(&train_rows, None, &params, None).unwrap();
    prop_assert!(log.iterations_run >= 1);
    let native = NativeModel::parse(&text).unwrap();
    let booster = LgbmBooster::from_string(&text).unwrap();
    prop_assert_eq!(native.num_trees(), booster.num_trees());
    prop_assert_eq!(native.num_trees(), log.best_iteration);

    // Fresh rows, specials, unseen categories, and every threshold of the model.
    let (mut probe, _) = random_rows(&mut rng, 200, nf, cat);
    let specials = [
        f32::NAN,
        0.0,
        -0.0,
        1e-36,
        -1e-36,
        1e-30,
        50.0,
        -1.0,
        2.5,
        1e10,
        -3.0,
        11.0,
        12.0,
        31.0,
        32.0,
        64.5,
    ];
    let thresholds = thresholds_of(&text);
    let pool: Vec<f32> = specials.iter().chain(&thresholds).copied().collect();
    for _ in 0..200 {
        for _ in 0..nf {
            probe.push(pool[rng.random_range(0..pool.len())]);
        }
    }
    let mut native_scores = Vec::new();
    native.score_batch(&probe, nf, &mut native_scores).unwrap();
    let reference = booster.predict_batch(&probe, nf).unwrap();
    prop_assert_eq!(native_scores.len(), reference.len());
    for (i, (a, b)) in native_scores.iter().zip(&reference).enumerate() {
        let row = &probe[i * nf..(i + 1) * nf];
        prop_assert!(
            (a - b).abs() <= 1e-9 * b.abs().max(1.0),
            "row {:?}: native {} vs LightGBM {}",
            row,
            a,
            b
        );
        // Same summation order as LightGBM: the scores are identical, not just close.
        prop_assert_eq!(a.to_bits(), b.to_bits(), "row {:?}", row);
    }
    // The f64 input path of LightGBM sees the same values.
    let probe64: Vec<f64> = probe[..nf * 20].iter().map(|&v| f64::from(v)).collect();
    prop_assert_eq!(
        booster.predict_batch(&probe64, nf).unwrap(),
        reference[..20].to_vec()
    );
    Ok(())
}

proptest! {
    // Each case trains a small model (~50 ms).
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn native_scores_equal_lightgbm(
        objective in prop_oneof![
            Just(Objective::Lambdarank),
            Just(Objective::Regression),
            Just(Objective::Binary)
        ],
        seed in any::<u64>(),
        num_leaves in 2usize..40,
        min_data in 1usize..30,
        with_cat in any::<bool>(),
        max_cat_to_onehot in 1usize..16,
        zero_as_missing in any::<bool>(),
    ) {
        check_native_matches_lightgbm(
            objective, seed, num_leaves, min_data, with_cat, max_cat_to_onehot, zero_as_missing,
        )?;
    }
}

#[test]
fn every_objective_and_split_kind_is_covered() {
    // Deterministic cases that the random ones may miss: many-vs-many and one-hot categorical
    // splits, and zero-as-missing splits, for each objective.
    for (i, objective) in [
        Objective::Lambdarank,
        Objective::Regression,
        Objective::Binary,
    ]
    .into_iter()
    .enumerate()
    {
        check_native_matches_lightgbm(objective, 7 + i as u64, 31, 3, true, 4, false).unwrap();
        check_native_matches_lightgbm(objective, 11 + i as u64, 15, 5, true, 32, true).unwrap();
    }
}

fn ranking_data(seed: u64, n_groups: usize, noise_only: bool) -> (Vec<f32>, Vec<f32>, Vec<i32>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let groups = vec![10; n_groups];
    let (rows, signal) = random_rows(&mut rng, n_groups * 10, 6, None);
    let labels = if noise_only {
        (0..signal.len())
            .map(|_| rng.random_range(0..4) as f32)
            .collect()
    } else {
        labels_for(Objective::Lambdarank, &signal)
    };
    (rows, labels, groups)
}

#[test]
fn lambdarank_early_stopping_keeps_the_best_iteration() {
    let (rows, labels, groups) = ranking_data(1, 60, true);
    let (vrows, vlabels, vgroups) = ranking_data(2, 30, true);
    let train_rows = LabeledRows {
        features: &rows,
        n_features: 6,
        labels: &labels,
        groups: Some(&groups),
        init_score: None,
    };
    let valid = LabeledRows {
        features: &vrows,
        n_features: 6,
        labels: &vlabels,
        groups: Some(&vgroups),
        init_score: None,
    };
    let params = json!({"num_iterations": 300, "early_stopping_round": 5, "learning_rate": 0.3,
                        "num_leaves": 31, "min_data_in_leaf": 2, "seed": 3, "deterministic": true});
    let TrainedModel {
        model_text: text,
        log,
    } = train_lambdarank(&train_rows, Some(&valid), &params, None).unwrap();
    assert_eq!(log.metric.as_deref(), Some("ndcg@10"));
    assert!(log.stopped_early, "noise labels must stop early: {log:?}");
    assert_eq!(log.valid_scores.len(), log.iterations_run);
    assert_eq!(log.iterations_run, log.best_iteration + 5);
    let best = log.valid_scores.iter().copied().fold(f64::MIN, f64::max);
    assert_eq!(log.best_score, Some(best));
    assert_eq!(log.valid_scores[log.best_iteration - 1], best);
    assert!(
        log.valid_scores[..log.best_iteration - 1]
            .iter()
            .all(|&s| s < best)
    );
    assert_eq!(
        NativeModel::parse(&text).unwrap().num_trees(),
        log.best_iteration
    );
    assert!(text.contains("objective=lambdarank"));
}

#[test]
fn lambdarank_without_validation_keeps_every_iteration() {
    let (rows, labels, groups) = ranking_data(4, 40, false);
    let train_rows = LabeledRows {
        features: &rows,
        n_features: 6,
        labels: &labels,
        groups: Some(&groups),
        init_score: None,
    };
    let TrainedModel {
        model_text: text,
        log,
    } = train_lambdarank(&train_rows, None, &json!({"num_trees": 12}), None).unwrap();
    assert_eq!((log.iterations_run, log.best_iteration), (12, 12));
    assert_eq!(log.metric, None);
    assert!(log.valid_scores.is_empty());
    let model = NativeModel::parse(&text).unwrap();
    assert_eq!(model.num_trees(), 12);
    assert_eq!(model.feature_names().len(), 6);
}

#[test]
fn training_input_errors() {
    let (rows, labels, groups) = ranking_data(5, 10, false);
    let ok = LabeledRows {
        features: &rows,
        n_features: 6,
        labels: &labels,
        groups: Some(&groups),
        init_score: None,
    };
    let rank = |rows: LabeledRows<'_>, params: Value| train_lambdarank(&rows, None, &params, None);
    let invalid =
        |r: Result<TrainedModel, RankerError>| matches!(r, Err(RankerError::InvalidInput { .. }));
    let bad_groups = [10, 10, 10];
    assert!(invalid(rank(LabeledRows { groups: None, ..ok }, json!({}))));
    assert!(invalid(rank(
        LabeledRows {
            groups: Some(&bad_groups),
            ..ok
        },
        json!({})
    )));
    assert!(invalid(rank(
        LabeledRows {
            n_features: 7,
            ..ok
        },
        json!({})
    )));
    assert!(invalid(rank(ok, json!({"num_iterations": -1}))));
    assert!(invalid(rank(
        ok,
        json!({"num_iterations": 5, "num_trees": 5})
    )));
    assert!(invalid(rank(ok, json!({"nested": {"a": 1}}))));
    assert!(invalid(rank(ok, json!({"metric": "ndcg map"}))));
    assert!(invalid(rank(ok, json!([1, 2]))));
    let names = ["a", "b", "c", "d", "e"];
    assert!(invalid(train_lambdarank(
        &ok,
        None,
        &json!({}),
        Some(&names)
    )));
    let spaced = ["a", "b", "c", "d", "e", "f g"];
    assert!(invalid(train_lambdarank(
        &ok,
        None,
        &json!({}),
        Some(&spaced)
    )));
    let valid = LabeledRows {
        n_features: 3,
        features: &rows[..30],
        labels: &labels[..10],
        groups: Some(&[10]),
        init_score: None,
    };
    assert!(matches!(
        train_lambdarank(&ok, Some(&valid), &json!({}), None),
        Err(RankerError::FeatureMismatch {
            expected: 6,
            got: 3
        })
    ));
    // LightGBM's own validation surfaces as a LightGBM error (labels beyond label_gain).
    let big = vec![100.0; labels.len()];
    assert!(matches!(
        rank(
            LabeledRows { labels: &big, ..ok },
            json!({"num_iterations": 2})
        ),
        Err(RankerError::Lightgbm(_))
    ));
}

#[test]
fn feature_names_are_stored_in_the_model() {
    let (rows, labels, groups) = ranking_data(8, 20, false);
    let ok = LabeledRows {
        features: &rows,
        n_features: 6,
        labels: &labels,
        groups: Some(&groups),
        init_score: None,
    };
    let names = [
        "item_pop", "cf_score", "cf_rank", "age_days", "price", "ctr",
    ];
    let trained = train_lambdarank(&ok, None, &json!({"num_iterations": 3}), Some(&names)).unwrap();
    assert_eq!(
        NativeModel::parse(&trained.model_text)
            .unwrap()
            .feature_names(),
        names
    );
}

#[test]
fn param_string_formats_lightgbm_parameters() {
    let Value::Object(map) = json!({"a": 1, "b": "x", "c": [1, 2], "d": true, "e": 0.05}) else {
        unreachable!()
    };
    let s = param_string(&map).unwrap().into_string().unwrap();
    let mut parts: Vec<&str> = s.split(' ').collect();
    parts.sort_unstable();
    assert_eq!(parts, ["a=1", "b=x", "c=1,2", "d=true", "e=0.05"]);
}

fn small_model() -> (String, Vec<f32>) {
    let (rows, labels, groups) = ranking_data(6, 30, false);
    let train_rows = LabeledRows {
        features: &rows,
        n_features: 6,
        labels: &labels,
        groups: Some(&groups),
        init_score: None,
    };
    let text = train_lambdarank(&train_rows, None, &json!({"num_iterations": 20}), None)
        .unwrap()
        .model_text;
    (text, rows)
}

#[test]
fn booster_loads_saves_and_checks_shapes() {
    let (text, rows) = small_model();
    let booster = LgbmBooster::from_string(&text).unwrap();
    assert_eq!((booster.num_features(), booster.num_trees()), (6, 20));
    let scores = booster.predict_batch(&rows, 6).unwrap();
    assert_eq!(scores.len(), rows.len() / 6);
    assert!(
        scores.iter().any(|&s| s != scores[0]),
        "a trained model separates rows"
    );

    let again = LgbmBooster::from_string(&booster.model_to_string().unwrap()).unwrap();
    assert_eq!(again.predict_batch(&rows, 6).unwrap(), scores);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.txt");
    std::fs::write(&path, &text).unwrap();
    assert_eq!(
        LgbmBooster::from_file(&path)
            .unwrap()
            .predict_batch(&rows[..6], 6)
            .unwrap(),
        scores[..1]
    );

    assert!(booster.predict_batch::<f32>(&[], 6).unwrap().is_empty());
    assert!(matches!(
        booster.predict_batch(&rows[..10], 5),
        Err(RankerError::FeatureMismatch {
            expected: 6,
            got: 5
        })
    ));
    assert!(matches!(
        booster.predict_batch(&rows[..10], 6),
        Err(RankerError::InvalidInput { .. })
    ));
    assert!(matches!(
        LgbmBooster::from_string("garbage"),
        Err(RankerError::Parse { .. })
    ));
    let truncated = &text[..text.find("end of trees").unwrap()];
    assert!(matches!(
        LgbmBooster::from_string(truncated),
        Err(RankerError::Parse { .. })
    ));
    assert!(matches!(
        LgbmBooster::from_file(dir.path().join("none.txt")),
        Err(RankerError::Io { .. })
    ));
}

#[test]
fn booster_is_shared_across_threads() {
    let (text, rows) = small_model();
    let booster = Arc::new(LgbmBooster::from_string(&text).unwrap());
    let expected = booster.predict_batch(&rows, 6).unwrap();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let (booster, rows, expected) = (Arc::clone(&booster), &rows, &expected);
            scope.spawn(move || {
                for round in 0..20 {
                    // Alternate the batch and the single-row paths of LightGBM.
                    if (t + round) % 2 == 0 {
                        assert_eq!(&booster.predict_batch(rows, 6).unwrap(), expected);
                    } else {
                        let i = (t * 7 + round) % expected.len();
                        let one = booster.predict_batch(&rows[i * 6..i * 6 + 6], 6).unwrap();
                        assert_eq!(one, [expected[i]]);
                    }
                }
            });
        }
    });
}

/// TreeSHAP on the native scorer against LightGBM's own `pred_contrib`, on models trained with
/// NaNs (every numerical column), exact zeros, categorical features and zero-as-missing.
#[test]
fn native_tree_shap_matches_lightgbm_pred_contrib() {
    let nf = 5;
    let cases = [
        (Objective::Lambdarank, 3, true, false, 31, 4),
        (Objective::Lambdarank, 4, true, true, 15, 16),
        (Objective::Regression, 5, true, false, 63, 4),
        (Objective::Binary, 6, false, true, 7, 4),
    ];
    for (objective, seed, with_cat, zero_as_missing, num_leaves, onehot) in cases {
        let mut rng = StdRng::seed_from_u64(seed);
        let cat = with_cat.then_some(4);
        let (rows, signal) = random_rows(&mut rng, 400, nf, cat);
        let labels = labels_for(objective, &signal);
        let groups = groups_for(&mut rng, 400);
        let mut params = json!({
            "objective": match objective {
                Objective::Lambdarank => "lambdarank",
                Objective::Regression => "regression",
                Objective::Binary => "binary",
            },
            "num_iterations": 25,
            "learning_rate": 0.2,
            "num_leaves": num_leaves,
            "min_data_in_leaf": 3,
            "min_data_per_group": 2,
            "cat_smooth": 1,
            "cat_l2": 1,
            "max_cat_to_onehot": onehot,
            "zero_as_missing": zero_as_missing,
            "num_threads": 1,
            "deterministic": true,
            "seed": seed,
        });
        if with_cat {
            params["categorical_feature"] = json!("4");
        }
        let train_rows = LabeledRows {
            features: &rows,
            n_features: nf,
            labels: &labels,
            groups: (objective == Objective::Lambdarank).then_some(&groups[..]),
            init_score: None,
        };
        let text = train(&train_rows, None, &params, None).unwrap().model_text;
        if with_cat {
            assert!(
                text.lines()
                    .any(|l| l.starts_with("num_cat=") && l != "num_cat=0"),
                "case {seed}: the model has categorical splits"
            );
        }
        let native = NativeModel::parse(&text).unwrap();
        assert!(native.explainable());
        let booster = LgbmBooster::from_string(&text).unwrap();
        // Rows the model never saw, NaNs and unseen categories included.
        let (probe, _) = random_rows(&mut rng, 300, nf, cat);
        assert!(probe.iter().any(|v| v.is_nan()));
        let reference = booster
            .inner
            .predict_contrib(&probe, nf as i32, true)
            .unwrap();
        let scores = booster.predict_batch(&probe, nf).unwrap();
        let mut worst: f64 = 0.0;
        for (r, row) in probe.chunks_exact(nf).enumerate() {
            let c = native.contributions(row).unwrap();
            let want = &reference[r * (nf + 1)..(r + 1) * (nf + 1)];
            for (f, (got, want)) in c.values.iter().chain([&c.bias]).zip(want).enumerate() {
                assert!(
                    (got - want).abs() <= 1e-4,
                    "case {seed}, row {row:?}, column {f}: native {got} vs LightGBM {want}"
                );
                worst = worst.max((got - want).abs());
            }
            assert!((c.total() - scores[r]).abs() <= 1e-4);
        }
        // The contributions are not trivially zero: features matter for these models.
        let spread = reference
            .chunks_exact(nf + 1)
            .map(|c| c[..nf].iter().map(|v| v.abs()).sum::<f64>())
            .sum::<f64>();
        assert!(
            spread > 1.0,
            "case {seed}: contributions carry signal ({spread})"
        );
        eprintln!("case {seed}: largest difference to pred_contrib {worst:e}");
    }
}
