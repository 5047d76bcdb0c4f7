//! Tests of the native scorer: hand-computed cases, malformed models, and a property test
//! against a literal transcription of LightGBM's `Tree::GetLeaf` on random trees.

use proptest::prelude::*;

use super::parse::{
    DT_CATEGORICAL, DT_DEFAULT_LEFT, MISSING_NAN, MISSING_NONE, MISSING_ZERO, RawTree,
};
use super::*;

const HEADER: &str = "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\n\
max_feature_idx=2\nobjective=lambdarank\nfeature_names=a b c\nfeature_infos=none none none\n";

/// Tree 0: numerical splits (missing type None with default_left, then Zero);
/// tree 1: categorical split on `c` (categories 1 and 3 go left); tree 2: a single leaf;
/// tree 3: missing type NaN, default left, threshold 0.
const TREES: &str = "Tree=0\nnum_leaves=3\nnum_cat=0\nsplit_feature=0 1\nsplit_gain=1 1\n\
threshold=0.5 1.0000000180025095e-35\ndecision_type=2 4\nleft_child=1 -2\nright_child=-1 -3\n\
leaf_value=1 2 4\nleaf_weight=1 1 1\nleaf_count=1 1 1\ninternal_value=0 0\n\
internal_weight=0 0\ninternal_count=3 2\nis_linear=0\nshrinkage=1\n\n\n\
Tree=1\nnum_leaves=2\nnum_cat=1\nsplit_feature=2\nsplit_gain=1\nthreshold=0\n\
decision_type=1\nleft_child=-1\nright_child=-2\nleaf_value=10 20\ncat_boundaries=0 1\n\
cat_threshold=10\nis_linear=0\nshrinkage=0.1\n\n\n\
Tree=2\nnum_leaves=1\nnum_cat=0\nsplit_feature=\nsplit_gain=\nthreshold=\ndecision_type=\n\
left_child=\nright_child=\nleaf_value=0.25\nis_linear=0\nshrinkage=1\n\n\n\
Tree=3\nnum_leaves=2\nnum_cat=0\nsplit_feature=0\nthreshold=0\ndecision_type=10\n\
left_child=-1\nright_child=-2\nleaf_value=100 200\nshrinkage=1\n\n\n\
end of trees\n\nfeature_importances:\na=2\n\nparameters:\n[boosting: gbdt]\nend of parameters\n";

fn hand_model() -> NativeModel {
    NativeModel::parse(&format!("{HEADER}\n{TREES}")).unwrap()
}

#[test]
fn hand_computed_scores() {
    let m = hand_model();
    assert_eq!(m.num_trees(), 4);
    assert_eq!(m.num_features(), 3);
    assert_eq!(m.feature_names(), ["a", "b", "c"]);
    assert_eq!(m.objective(), Some("lambdarank"));
    assert_eq!(m.max_depth(), 2);
    let nan = f32::NAN;
    // (row, leaf of tree 0, leaf of tree 1, leaf of tree 3); tree 2 adds 0.25.
    let cases: [([f32; 3], f64, f64, f64); 9] = [
        ([0.6, 0.0, 1.0], 1.0, 10.0, 200.0),
        ([0.4, 5.0, 3.0], 4.0, 10.0, 200.0),
        ([0.4, -1.0, 2.0], 2.0, 20.0, 200.0),
        // NaN under missing type None is compared as 0.0; -0.0 is 0.0 for the NaN-type split.
        ([nan, -1.0, 0.0], 2.0, 20.0, 100.0),
        ([-0.0, -1.0, 0.9], 2.0, 20.0, 100.0),
        // Zero (and NaN, and |x| <= kZeroThreshold) take node 1's default (right) direction.
        ([0.4, 0.0, 1.5], 4.0, 10.0, 200.0),
        ([0.4, nan, -1.0], 4.0, 20.0, 200.0),
        ([0.4, 1e-36, 3.99], 4.0, 10.0, 200.0),
        // Categorical: NaN, unseen categories and categories beyond the bitset go right.
        ([0.5, -2e-35, nan], 2.0, 20.0, 200.0),
    ];
    for (row, t0, t1, t3) in cases {
        let expected = ((t0 + t1) + 0.25) + t3;
        assert_eq!(m.score(&row).unwrap(), expected, "row {row:?}");
    }
    assert_eq!(
        m.score(&[0.6, 0.0, 1e9]).unwrap(),
        1.0 + 20.0 + 0.25 + 200.0
    );
    assert_eq!(
        m.score(&[0.6, 0.0, 35.0]).unwrap(),
        1.0 + 20.0 + 0.25 + 200.0
    );
}

#[test]
fn batch_matches_single_rows_across_blocks() {
    let m = hand_model();
    let values = [0.0, -0.0, 0.4, 0.6, 1.0, 3.0, -1.0, f32::NAN, 1e-36, 5.0];
    let rows: Vec<f32> = (0..200 * 3)
        .map(|i| values[(i * 7 + i / 3) % values.len()])
        .collect();
    let mut out = vec![42.0];
    m.score_batch(&rows, 3, &mut out).unwrap();
    assert_eq!(out.len(), 200);
    for (row, &s) in rows.chunks(3).zip(&out) {
        assert_eq!(m.score(row).unwrap().to_bits(), s.to_bits());
    }
    m.score_batch(&[], 3, &mut out).unwrap();
    assert!(out.is_empty());
}

#[test]
fn batch_sizes_match_single_rows() {
    let m = hand_model();
    let values = [
        0.0,
        -0.0,
        0.4,
        0.6,
        1.0,
        3.0,
        -1.0,
        f32::NAN,
        1e-36,
        5.0,
        f32::INFINITY,
    ];
    let rows: Vec<f32> = (0..300 * 3)
        .map(|i| values[(i * 5 + i / 7) % values.len()])
        .collect();
    let single: Vec<u64> = rows
        .chunks(3)
        .map(|row| m.score(row).unwrap().to_bits())
        .collect();
    let mut out = Vec::new();
    for n in [1, 2, 3, 7, 8, 9, 15, 63, 64, 65, 100, 129, 300] {
        m.score_batch(&rows[..n * 3], 3, &mut out).unwrap();
        let got: Vec<u64> = out.iter().map(|s| s.to_bits()).collect();
        assert_eq!(got, single[..n], "{n} rows");
    }
}

#[test]
fn shape_errors() {
    let m = hand_model();
    assert!(matches!(
        m.score(&[1.0, 2.0]),
        Err(RankerError::FeatureMismatch {
            expected: 3,
            got: 2
        })
    ));
    let mut out = Vec::new();
    assert!(matches!(
        m.score_batch(&[1.0; 8], 4, &mut out),
        Err(RankerError::FeatureMismatch {
            expected: 3,
            got: 4
        })
    ));
    assert!(matches!(
        m.score_batch(&[1.0; 7], 3, &mut out),
        Err(RankerError::InvalidInput { .. })
    ));
}

fn parse_error(text: &str) -> (usize, String) {
    match NativeModel::parse(text) {
        Err(RankerError::Parse { line, reason }) => (line, reason),
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn malformed_models_are_rejected_with_their_line() {
    let good = format!("{HEADER}\n{TREES}");
    let line_of = |needle: &str| good.lines().position(|l| l == needle).unwrap() + 1;
    let cases: Vec<(String, usize, &str)> = vec![
        (good.replace("end of trees\n", ""), 0, "end of trees"),
        (
            good.replace("num_class=1", "num_class=3"),
            3,
            "single-output",
        ),
        (
            good.replace("feature_names=a b c", "feature_names=a b"),
            8,
            "feature names",
        ),
        (
            good.replace("left_child=1 -2", "left_child=1 -2 -3"),
            line_of("left_child=1 -2"),
            "3 values",
        ),
        // node 1's left child points back at node 1: a cycle.
        (
            good.replace("left_child=1 -2", "left_child=1 1"),
            line_of("Tree=0"),
            "reached twice",
        ),
        (
            good.replace("split_feature=0 1\n", "split_feature=0 3\n"),
            line_of("Tree=0"),
            "split_feature 3",
        ),
        (
            good.replace("threshold=0.5 1", "threshold=0.5x 1"),
            line_of("threshold=0.5 1.0000000180025095e-35"),
            "cannot parse",
        ),
        (
            good.replace("decision_type=2 4", "decision_type=2 12"),
            line_of("decision_type=2 4"),
            "decision_type 12",
        ),
        (
            good.replace("is_linear=0\nshrinkage=0.1", "is_linear=1\nshrinkage=0.1"),
            line_of("Tree=1") + 12,
            "linear trees",
        ),
        (
            good.replace("cat_threshold=10\n", "cat_threshold=10 3\n"),
            line_of("cat_threshold=10"),
            "partition",
        ),
        (
            good.replace("Tree=2", "Tree=7"),
            line_of("Tree=2"),
            "Tree=2",
        ),
        (
            good.replace("\nversion=v4", "\naverage_output"),
            2,
            "random forest",
        ),
        (
            good.replace("max_feature_idx=2\n", ""),
            1,
            "max_feature_idx",
        ),
    ];
    for (text, line, needle) in cases {
        let (got_line, reason) = parse_error(&text);
        assert!(
            reason.contains(needle),
            "{reason:?} should mention {needle:?}"
        );
        if line > 0 {
            assert_eq!(got_line, line, "{reason}");
        }
    }
    assert!(NativeModel::parse("").is_err());
    assert!(NativeModel::parse("\u{0}\n=\n").is_err());
}

#[test]
fn tree_sizes_must_match_the_blocks() {
    let sizes: Vec<String> = TREES
        .split("Tree=")
        .skip(1)
        .map(|block| {
            let block = block.split("end of trees").next().unwrap();
            (block.len() + "Tree=".len()).to_string()
        })
        .collect();
    let with_sizes = |sizes: &str| format!("{HEADER}tree_sizes={sizes}\n\n{TREES}");
    let ok = NativeModel::parse(&with_sizes(&sizes.join(" "))).unwrap();
    assert_eq!(ok.num_trees(), 4);
    let mut wrong = sizes.clone();
    wrong[1] = "7".into();
    assert!(
        parse_error(&with_sizes(&wrong.join(" ")))
            .1
            .contains("tree_sizes[1]")
    );
    assert!(
        parse_error(&with_sizes(&sizes[..3].join(" ")))
            .1
            .contains("3 trees")
    );
    let crlf = with_sizes(&sizes.join(" ")).replace('\n', "\r\n");
    assert!(parse_error(&crlf).1.contains("line endings"));
}

#[test]
fn from_file_reports_io_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.txt");
    assert!(matches!(
        NativeModel::from_file(&missing),
        Err(RankerError::Io { path, .. }) if path == missing
    ));
    let path = dir.path().join("model.txt");
    std::fs::write(&path, format!("{HEADER}\n{TREES}")).unwrap();
    assert_eq!(NativeModel::from_file(&path).unwrap().num_trees(), 4);
}

// ---- reference: LightGBM's prediction, transcribed literally (tree.h, c_api.cpp) ----

/// `RowPairFunctionFromDenseMatrix` + `CopyToPredictBuffer`: values with
/// `|v| <= kZeroThreshold` are dropped, i.e. read back as 0.0.
fn reference_input(row: &[f32]) -> Vec<f64> {
    row.iter()
        .map(|&v| {
            let v = f64::from(v);
            if v.abs() > K_ZERO_THRESHOLD || v.is_nan() {
                v
            } else {
                0.0
            }
        })
        .collect()
}

fn reference_tree(t: &RawTree, x: &[f64]) -> f64 {
    if t.num_leaves <= 1 {
        return t.leaf_value[0];
    }
    let mut node: i32 = 0;
    while node >= 0 {
        let k = node as usize;
        let fval = x[t.split_feature[k]];
        node = if t.num_cat > 0 && t.decision_type[k] & DT_CATEGORICAL != 0 {
            reference_categorical(t, k, fval)
        } else {
            reference_numerical(t, k, fval)
        };
    }
    t.leaf_value[!node as usize]
}

fn reference_numerical(t: &RawTree, k: usize, mut fval: f64) -> i32 {
    let dt = t.decision_type[k];
    let missing_type = (dt >> 2) & 3;
    if fval.is_nan() && missing_type != 2 {
        fval = 0.0;
    }
    let is_zero = (-K_ZERO_THRESHOLD..=K_ZERO_THRESHOLD).contains(&fval);
    if (missing_type == 1 && is_zero) || (missing_type == 2 && fval.is_nan()) {
        return if dt & DT_DEFAULT_LEFT != 0 {
            t.left_child[k]
        } else {
            t.right_child[k]
        };
    }
    if fval <= t.threshold[k] {
        t.left_child[k]
    } else {
        t.right_child[k]
    }
}

fn reference_categorical(t: &RawTree, k: usize, fval: f64) -> i32 {
    if fval.is_nan() {
        return t.right_child[k];
    }
    // x86 cvttsd2si: out-of-range conversions give i32::MIN.
    let int_fval = if fval > -2_147_483_649.0 && fval < 2_147_483_648.0 {
        fval as i32
    } else {
        i32::MIN
    };
    if int_fval < 0 {
        return t.right_child[k];
    }
    let cat_idx = t.threshold[k] as i32 as usize;
    let (lo, hi) = (t.cat_boundaries[cat_idx], t.cat_boundaries[cat_idx + 1]);
    let i1 = (int_fval / 32) as usize;
    if i1 < hi - lo && (t.cat_threshold[lo + i1] >> (int_fval % 32)) & 1 == 1 {
        t.left_child[k]
    } else {
        t.right_child[k]
    }
}

fn reference_score(trees: &[RawTree], row: &[f32]) -> f64 {
    let x = reference_input(row);
    let mut out = 0.0;
    for t in trees {
        out += reference_tree(t, &x);
    }
    out
}

/// Renders trees the way `GBDT::SaveModelToString` does, including `tree_sizes`.
fn render(trees: &[RawTree], num_features: usize) -> String {
    fn join<T: std::fmt::Debug>(v: &[T]) -> String {
        v.iter()
            .map(|x| format!("{x:?}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
    let blocks: Vec<String> = trees
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut s = format!(
                "Tree={i}\nnum_leaves={}\nnum_cat={}\n",
                t.num_leaves, t.num_cat
            );
            s += &format!("split_feature={}\n", join(&t.split_feature));
            s += &format!("threshold={}\n", join(&t.threshold));
            s += &format!("decision_type={}\n", join(&t.decision_type));
            s += &format!("left_child={}\n", join(&t.left_child));
            s += &format!("right_child={}\n", join(&t.right_child));
            s += &format!("leaf_value={}\n", join(&t.leaf_value));
            if !t.leaf_count.is_empty() {
                s += &format!("leaf_count={}\n", join(&t.leaf_count));
            }
            if !t.internal_count.is_empty() {
                s += &format!("internal_count={}\n", join(&t.internal_count));
            }
            if t.num_cat > 0 {
                s += &format!("cat_boundaries={}\n", join(&t.cat_boundaries));
                s += &format!("cat_threshold={}\n", join(&t.cat_threshold));
            }
            s + "is_linear=0\nshrinkage=0.1\n\n\n"
        })
        .collect();
    let names: Vec<String> = (0..num_features).map(|i| format!("Column_{i}")).collect();
    let sizes: Vec<usize> = blocks.iter().map(String::len).collect();
    format!(
        "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\n\
         max_feature_idx={}\nobjective=regression\nfeature_names={}\nfeature_infos={}\n\
         tree_sizes={}\n\n{}end of trees\n\nparameters:\nend of parameters\n",
        num_features - 1,
        names.join(" "),
        vec!["none"; num_features].join(" "),
        join(&sizes),
        blocks.concat()
    )
}

/// Thresholds that stress exact comparisons: f32-representable values that inputs can equal,
/// kZeroThreshold itself, doubles between f32 values (rounded down to f32 by the bitmask
/// scorer), beyond the f32 range, and infinite (LightGBM writes `inf`).
const THRESHOLDS: [f64; 16] = [
    0.0,
    -0.0,
    0.5,
    -1.25,
    K_ZERO_THRESHOLD,
    -K_ZERO_THRESHOLD,
    0.1,
    2.0,
    -0.3,
    1e300,
    -1e300,
    f64::INFINITY,
    f64::NEG_INFINITY,
    3.000_000_1,
    -2.000_000_1,
    3.4028235677973366e38,
];
const INPUTS: [f32; 16] = [
    0.0,
    -0.0,
    0.5,
    -1.25,
    0.1,
    2.0,
    1e-36,
    -1e-36,
    1e-30,
    3.0,
    35.0,
    -2.0,
    4e9,
    0.7,
    f32::INFINITY,
    f32::NEG_INFINITY,
];

/// A random tree grown like LightGBM grows them: split leaf `l` into internal node `i`
/// whose left child keeps leaf `l` and whose right child is the new leaf `i + 1`.
fn arb_tree(num_features: usize) -> impl Strategy<Value = RawTree> {
    (
        prop_oneof![4 => 1usize..10, 1 => 30usize..34, 1 => 34usize..40],
        any::<bool>(),
    )
        .prop_flat_map(move |(num_leaves, special)| {
            let n = num_leaves - 1;
            (
                Just(num_leaves),
                proptest::collection::vec(0..usize::MAX, n), // leaf chosen for each split
                proptest::collection::vec(0..num_features, n),
                proptest::collection::vec(0..THRESHOLDS.len(), n),
                // decision kind: missing type None/NaN (0..2), then only in "special" trees
                // (walked one by one, not in lock-step) Zero (2) and categorical (3..5)
                proptest::collection::vec(0u8..if special { 5 } else { 2 }, n),
                proptest::collection::vec(any::<bool>(), n),
                proptest::collection::vec(proptest::collection::vec(any::<u32>(), 1..3), n),
                proptest::collection::vec(-10.0f64..10.0, num_leaves),
            )
        })
        .prop_map(
            |(num_leaves, picks, features, thresholds, kinds, defaults, bitsets, leaves)| {
                let n = num_leaves - 1;
                let mut t = RawTree {
                    num_leaves,
                    leaf_value: leaves,
                    split_feature: features,
                    left_child: vec![0; n],
                    right_child: vec![0; n],
                    cat_boundaries: vec![0],
                    ..RawTree::default()
                };
                let mut leaf_parent: Vec<Option<(usize, bool)>> = vec![None];
                for i in 0..n {
                    let leaf = picks[i] % (i + 1);
                    match leaf_parent[leaf] {
                        Some((p, true)) => t.left_child[p] = i as i32,
                        Some((p, false)) => t.right_child[p] = i as i32,
                        None => {}
                    }
                    t.left_child[i] = !(leaf as i32);
                    t.right_child[i] = !(i as i32 + 1);
                    leaf_parent[leaf] = Some((i, true));
                    leaf_parent.push(Some((i, false)));
                    let default_left = u8::from(defaults[i]) * DT_DEFAULT_LEFT;
                    if kinds[i] >= 3 {
                        t.threshold.push(t.num_cat as f64);
                        t.decision_type.push(DT_CATEGORICAL | default_left);
                        t.cat_threshold.extend(&bitsets[i]);
                        t.cat_boundaries.push(t.cat_threshold.len());
                        t.num_cat += 1;
                    } else {
                        t.threshold.push(THRESHOLDS[thresholds[i]]);
                        let missing_type =
                            [MISSING_NONE, MISSING_NAN, MISSING_ZERO][kinds[i] as usize];
                        t.decision_type.push((missing_type << 2) | default_left);
                    }
                }
                if t.num_cat == 0 {
                    t.cat_boundaries.clear();
                }
                t
            },
        )
}

fn arb_input() -> impl Strategy<Value = f32> {
    prop_oneof![
        3 => proptest::sample::select(INPUTS.to_vec()),
        1 => Just(f32::NAN),
        2 => (0i32..70).prop_map(|c| c as f32),
        2 => -3.0f32..3.0,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn matches_lightgbm_reference_on_random_trees(
        (num_features, trees, rows) in (1usize..5).prop_flat_map(|nf| (
            Just(nf),
            proptest::collection::vec(arb_tree(nf), 1..20),
            proptest::collection::vec(arb_input(), nf..nf * 140),
        ))
    ) {
        let model = NativeModel::parse(&render(&trees, num_features)).unwrap();
        prop_assert_eq!(model.num_trees(), trees.len());
        let rows = &rows[..rows.len() / num_features * num_features];
        let expected: Vec<u64> = rows
            .chunks(num_features)
            .map(|row| reference_score(&trees, row).to_bits())
            .collect();
        for (row, &e) in rows.chunks(num_features).zip(&expected) {
            prop_assert_eq!(model.score(row).unwrap().to_bits(), e, "row {:?}", row);
        }
        let mut batch = Vec::new();
        model.score_batch(rows, num_features, &mut batch).unwrap();
        prop_assert_eq!(batch.iter().map(|b| b.to_bits()).collect::<Vec<_>>(), expected.clone());
        // The portable (non-AVX2) build of the block scorer.
        let mut portable = vec![0.0; expected.len()];
        model.score_blocks(rows, &mut portable);
        prop_assert_eq!(portable.iter().map(|b| b.to_bits()).collect::<Vec<_>>(), expected.clone());
        // Every block shape: walked tiny batches, a partial block, full blocks and a tail.
        for n in [1, 2, 3, 7, 9, 63, 64, 65, 100, 129] {
            let n = n.min(expected.len());
            model.score_batch(&rows[..n * num_features], num_features, &mut batch).unwrap();
            prop_assert_eq!(batch.iter().map(|b| b.to_bits()).collect::<Vec<_>>(), &expected[..n]);
        }
    }
}

// ---- TreeSHAP against exact Shapley values by enumeration ----

/// Gives `t` consistent node counts: random leaf counts, each internal node the sum below it.
fn with_counts(mut t: RawTree, leaf_counts: &[u32]) -> RawTree {
    fn fill(t: &mut RawTree, child: i32) -> f64 {
        if child < 0 {
            return t.leaf_count[!child as usize];
        }
        let k = child as usize;
        let c = fill(t, t.left_child[k]) + fill(t, t.right_child[k]);
        t.internal_count[k] = c;
        c
    }
    t.leaf_count = (0..t.num_leaves)
        .map(|l| f64::from(leaf_counts[l % leaf_counts.len()]))
        .collect();
    if t.num_leaves > 1 {
        t.internal_count = vec![0.0; t.num_leaves - 1];
        fill(&mut t, 0);
    }
    t
}

/// The path-dependent expectation of a tree when only the features in `known` (a bit set) are
/// known: known features follow the row, unknown ones average the children by cover (the
/// conditional expectation TreeSHAP's Algorithm 2 defines).
fn expectation(t: &RawTree, x: &[f64], known: u32, child: i32) -> f64 {
    if child < 0 {
        return t.leaf_value[!child as usize];
    }
    let k = child as usize;
    let (l, r) = (t.left_child[k], t.right_child[k]);
    if known & (1 << t.split_feature[k]) != 0 {
        let next = if t.num_cat > 0 && t.decision_type[k] & DT_CATEGORICAL != 0 {
            reference_categorical(t, k, x[t.split_feature[k]])
        } else {
            reference_numerical(t, k, x[t.split_feature[k]])
        };
        return expectation(t, x, known, next);
    }
    let count = |c: i32| {
        if c < 0 {
            t.leaf_count[!c as usize]
        } else {
            t.internal_count[c as usize]
        }
    };
    (count(l) * expectation(t, x, known, l) + count(r) * expectation(t, x, known, r))
        / t.internal_count[k]
}

/// Shapley values by enumerating every subset of features, and the expectation with none known.
fn brute_force_shapley(trees: &[RawTree], row: &[f32], nf: usize) -> (Vec<f64>, f64) {
    let x = reference_input(row);
    let value = |known: u32| -> f64 {
        trees
            .iter()
            .map(|t| {
                if t.num_leaves == 1 {
                    t.leaf_value[0]
                } else {
                    expectation(t, &x, known, 0)
                }
            })
            .sum()
    };
    let fact = |n: usize| (1..=n).map(|k| k as f64).product::<f64>();
    let mut phi = vec![0.0; nf];
    for (i, p) in phi.iter_mut().enumerate() {
        for s in 0u32..(1 << nf) {
            if s & (1 << i) != 0 {
                continue;
            }
            let size = s.count_ones() as usize;
            let weight = fact(size) * fact(nf - size - 1) / fact(nf);
            *p += weight * (value(s | (1 << i)) - value(s));
        }
    }
    (phi, value(0))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// TreeSHAP equals the Shapley values of the path-dependent expectation (by enumeration)
    /// on random trees with every split kind, and the contributions add up to the raw score.
    #[test]
    fn tree_shap_equals_enumerated_shapley_values(
        (num_features, trees, rows, counts) in (1usize..5).prop_flat_map(|nf| (
            Just(nf),
            proptest::collection::vec(arb_tree(nf), 1..8),
            proptest::collection::vec(arb_input(), nf..nf * 12),
            proptest::collection::vec(1u32..1000, 1..40),
        ))
    ) {
        let trees: Vec<RawTree> = trees.into_iter().map(|t| with_counts(t, &counts)).collect();
        let model = NativeModel::parse(&render(&trees, num_features)).unwrap();
        prop_assert!(model.explainable());
        for row in rows.chunks_exact(num_features) {
            let c = model.contributions(row).unwrap();
            let (phi, bias) = brute_force_shapley(&trees, row, num_features);
            prop_assert!((c.bias - bias).abs() <= 1e-9 * bias.abs().max(1.0), "bias {} vs {}", c.bias, bias);
            for (f, (got, want)) in c.values.iter().zip(&phi).enumerate() {
                prop_assert!((got - want).abs() <= 1e-9 * want.abs().max(1.0),
                    "feature {} of row {:?}: {} vs {}", f, row, got, want);
            }
            let score = model.score(row).unwrap();
            prop_assert!((c.total() - score).abs() <= 1e-4, "sum {} vs score {}", c.total(), score);
        }
    }
}

#[test]
fn models_without_counts_are_not_explained() {
    // The hand model's trees 1 and 3 have no leaf_count/internal_count.
    let m = hand_model();
    assert!(!m.explainable());
    assert!(matches!(
        m.contributions(&[0.1, 0.2, 1.0]),
        Err(RankerError::Unexplainable { .. })
    ));
    let trees = [with_counts(
        RawTree {
            num_leaves: 2,
            split_feature: vec![0],
            threshold: vec![0.5],
            decision_type: vec![0],
            left_child: vec![-1],
            right_child: vec![-2],
            leaf_value: vec![1.0, 3.0],
            ..RawTree::default()
        },
        &[1, 3],
    )];
    let m = NativeModel::parse(&render(&trees, 2)).unwrap();
    // A quarter of the rows go left (value 1), three quarters right (value 3): E = 2.5.
    let c = m.contributions(&[0.0, 7.0]).unwrap();
    assert_eq!((c.bias, c.values.clone()), (2.5, vec![-1.5, 0.0]));
    assert!(matches!(
        m.contributions(&[0.0]),
        Err(RankerError::FeatureMismatch {
            expected: 2,
            got: 1
        })
    ));
    // Negative or non-numeric counts are a parse error with their line.
    let bad = render(&trees, 2).replace("leaf_count=1.0 3.0", "leaf_count=1.0 -3.0");
    assert!(
        NativeModel::parse(&bad)
            .unwrap_err()
            .to_string()
            .contains("invalid count")
    );
}
