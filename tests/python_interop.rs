//! The bundle is readable by the tools users already have: numpy loads every array with the right
//! shape, and Python's lightgbm loads the ranker and predicts what recserve's native scorer does on
//! real feature rows (within 1e-6). The item-to-item neighbour arrays are checked too. Needs a
//! Python with numpy and lightgbm: RECSERVE_PYTHON, or the venv scripts/test.sh installs; without
//! one the test fails (it never passes because a tool is missing).

use ndarray::{Array1, Array2};
use ndarray_npy::WriteNpyExt;
use recserve::pipeline::{Deadline, Query};
use recserve::ranking::features::{build_rows, n_features};
use recserve::retrieval::merge;
use std::sync::Arc;

mod common;

#[test]
fn numpy_and_lightgbm_read_the_bundle_and_agree_with_recserve() {
    let python = std::env::var("RECSERVE_PYTHON").ok().unwrap_or_else(|| {
        let home = std::env::var("HOME").unwrap_or_default();
        format!("{home}/.cache/recserve/tools/venv/bin/python")
    });
    assert!(
        std::path::Path::new(&python).exists(),
        "no Python at {python}: run scripts/test.sh (it installs numpy and lightgbm) or set RECSERVE_PYTHON"
    );
    let root = common::root();
    let bundle = root.join("models/demo");
    let engine = common::demo_engine(|_| {});
    let ranker = engine
        .ranker
        .as_ref()
        .expect("the demo bundle has a ranker");
    let m = &engine.model;
    assert!(
        m.item2item_k > 0 && bundle.join("item2item_ids.npy").exists(),
        "the demo bundle has an item-to-item model"
    );

    // Real candidate rows (NaNs included) from a few users' stage-1 candidates.
    let mut rows: Vec<f32> = Vec::new();
    for u in [1usize, 17, 123] {
        let q = Query {
            user_id: Some(m.user_ids[u % m.n_users()].clone()),
            n: 10,
            exclude_seen: true,
            ..Default::default()
        };
        let (p, e) = engine.prepare(&q);
        let (p, e) = (Arc::new(p), Arc::new(e));
        let lists = engine
            .retrieve(&p, &e, &Default::default(), Deadline::NONE)
            .lists;
        build_rows(m, &p, &merge(&lists), &mut rows);
    }
    let nf = n_features(m);
    let n = rows.len() / nf;
    assert!(n > 100, "enough rows ({n})");
    assert!(
        rows.iter().any(|v| v.is_nan()),
        "rows exercise missing values"
    );
    let preds = ranker.score_batch(&rows, nf).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let rows_path = dir.path().join("rows.npy");
    let preds_path = dir.path().join("preds.npy");
    Array2::from_shape_vec((n, nf), rows)
        .unwrap()
        .write_npy(std::fs::File::create(&rows_path).unwrap())
        .unwrap();
    Array1::from(preds)
        .write_npy(std::fs::File::create(&preds_path).unwrap())
        .unwrap();
    let out = std::process::Command::new(python)
        .arg(root.join("scripts/check_bundle.py"))
        .arg(&bundle)
        .arg(&rows_path)
        .arg(&preds_path)
        .output()
        .expect("run python");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains(&format!("{n} predictions match")), "{text}");
    assert!(
        text.contains("OK: 8 arrays"),
        "item2item arrays checked: {text}"
    );
}
