//! Quality claims from real training on generated data, computed by the code under test:
//! the factorization beats popularity, cold items are reachable through their features, the
//! ranker beats its best single source, and the full hybrid beats popularity-only and the blend.

use recserve::data::generate::{GenerateConfig, generate};
use recserve::eval::ablation::{EvalInput, ablation_rows, evaluate};
use recserve::eval::split::{SplitKind, split};
use recserve::pipeline::{Engine, SourceCounts, Treatment};
use recserve::train::Holdout;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

struct Trained {
    engine: Arc<Engine>,
    ranker: recserve::train::ranker::RankerEval,
    train: Vec<recserve::data::dataset::Interaction>,
    test: Vec<recserve::data::dataset::Interaction>,
    cold_items: Vec<u32>,
}

mod common;

/// Generates, splits (temporal) and trains once for all tests of this binary.
fn trained() -> &'static Trained {
    static T: OnceLock<Trained> = OnceLock::new();
    T.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let gcfg = GenerateConfig {
            users: 1500,
            items: 800,
            interactions: 45_000,
            seed: 11,
            ..Default::default()
        };
        generate(&gcfg, dir.path()).unwrap();
        let ds = recserve::data::load_dir(dir.path(), &Default::default()).unwrap();
        let (train, test) = split(&ds.interactions, SplitKind::Temporal, 0.8, 11).unwrap();
        let train_ds = ds.with_interactions(train.clone());
        let (engine, ranker) = common::train_engine(&train_ds, dir.path(), Holdout::Temporal, 11);
        let with: std::collections::HashSet<u32> = ds.interactions.iter().map(|x| x.item).collect();
        let cold_items = (0..ds.n_items() as u32)
            .filter(|i| !with.contains(i) && ds.item_features.has_any(*i as usize))
            .collect();
        Trained {
            engine,
            ranker,
            train,
            test,
            cold_items,
        }
    })
}

fn ndcg_of(report: &recserve::eval::report::EvalReport, row: &str) -> f64 {
    report
        .rows
        .iter()
        .find(|r| r.name == row)
        .unwrap_or_else(|| panic!("row {row}"))
        .metrics
        .ndcg
}

#[test]
fn ranker_beats_its_best_single_source_on_held_out_users() {
    let r = &trained().ranker;
    assert!(r.users >= 100, "validated on {} users", r.users);
    assert!(
        r.ranker_ndcg > r.best_source_ndcg * 1.05,
        "ranker NDCG@10 {:.4} must beat the best source {} {:.4} by 5%",
        r.ranker_ndcg,
        r.best_source,
        r.best_source_ndcg
    );
}

#[test]
fn hybrid_beats_popularity_and_blend_and_every_source_has_recall() {
    let t = trained();
    let input = EvalInput {
        engine: Arc::clone(&t.engine),
        train: &t.train,
        test: &t.test,
        k: 10,
        max_users: 800,
        seed: 3,
        quiet: true,
        recent_days: 30.0,
        rerank_all: None,
    };
    let mut rows = ablation_rows(&Treatment::default());
    rows.push((
        "cf_only".into(),
        Treatment {
            counts: SourceCounts {
                cf: 200,
                content: 0,
                session: 0,
                popular: 0,
                item2item: 0,
                segment: 0,
            },
            weights: Some(recserve::bandit::BlendWeights {
                cf: 1.0,
                content: 0.0,
                session: 0.0,
                popular: 0.0,
                item2item: 0.0,
                segment: 0.0,
            }),
            use_ranker: false,
            ..Treatment::default()
        },
    ));
    let report = evaluate(&input, &rows, BTreeMap::new()).unwrap();
    let full = ndcg_of(&report, "full");
    let pop = ndcg_of(&report, "popularity_only");
    let blend = ndcg_of(&report, "without_ranker");
    let cf = report
        .rows
        .iter()
        .find(|r| r.name == "cf_only")
        .unwrap()
        .metrics
        .recall;
    let pop_recall = report
        .rows
        .iter()
        .find(|r| r.name == "popularity_only")
        .unwrap()
        .metrics
        .recall;
    assert!(
        full > pop * 1.3,
        "full {full:.4} vs popularity-only {pop:.4}"
    );
    // The ranker adds value over the learned blend it re-ranks (the strongest first phase), with
    // the paired per-user bootstrap 95% CI of the difference above zero.
    let ranker_gain = report
        .rows
        .iter()
        .find(|r| r.name == "without_ranker")
        .and_then(|r| r.ndcg_vs_full)
        .expect("a CI for the blend row");
    assert!(
        ranker_gain.lo > 0.0,
        "full {full:.4} vs learned blend {blend:.4}: {ranker_gain:?}"
    );
    assert!(
        cf > pop_recall * 1.2,
        "factorization recall@10 {cf:.4} vs popularity {pop_recall:.4}"
    );
    // The price of diversity on generated data: MMR's lists are more varied as λ rises, the
    // category cap too, and the accuracy given up is reported with its interval.
    let ils = |name: &str| {
        report
            .rows
            .iter()
            .find(|r| r.name == name)
            .and_then(|r| r.intra_list_similarity)
            .unwrap_or_else(|| panic!("intra-list similarity of {name}"))
    };
    let (ils_full, ils_03, ils_06, ils_cap) = (
        ils("full"),
        ils("diversity_0.3"),
        ils("diversity_0.6"),
        ils("max_per_category_2"),
    );
    assert!(
        ils_06 < ils_03 && ils_03 < ils_full && ils_cap < ils_full,
        "ILS full {ils_full:.4}, λ=0.3 {ils_03:.4}, λ=0.6 {ils_06:.4}, cap 2 {ils_cap:.4}"
    );
    for name in ["diversity_0.3", "diversity_0.6", "max_per_category_2"] {
        let row = report.rows.iter().find(|r| r.name == name).unwrap();
        assert!(row.ndcg_vs_full.is_some(), "{name} is priced against full");
    }
    for s in &report.source_recall {
        let at100 = s
            .recall_at
            .iter()
            .find(|(k, _)| *k == 100)
            .map(|x| x.1)
            .unwrap();
        assert!(at100 > 0.02, "source {} recall@100 = {at100:.4}", s.source);
    }
}

#[test]
fn cold_items_are_reachable_through_their_features() {
    let t = trained();
    let m = &t.engine.model;
    assert!(
        !t.cold_items.is_empty(),
        "the generator plants items without interactions"
    );
    // Their CF vectors come from feature embeddings alone: close to warm items of their category.
    let warm: Vec<u32> = (0..m.n_items() as u32)
        .filter(|i| !t.cold_items.contains(i))
        .collect();
    let cos = |a: &[f32], b: &[f32]| {
        let d: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        d / (n(a) * n(b))
    };
    let mut same = 0usize;
    let mut total = 0usize;
    for &c in &t.cold_items {
        let cats = m.item_categories(c);
        let mut nn: Vec<(f32, u32)> = warm
            .iter()
            .map(|&w| (cos(m.item_cf(c), m.item_cf(w)), w))
            .collect();
        nn.sort_by(|a, b| b.0.total_cmp(&a.0));
        for &(_, w) in nn.iter().take(10) {
            total += 1;
            same += usize::from(m.item_categories(w).iter().any(|x| cats.contains(x)));
        }
    }
    let share = same as f64 / total as f64;
    let chance = 1.0 / m.categories.len().max(1) as f64;
    assert!(
        share > 0.5 && share > 4.0 * chance,
        "same-category share of cold items' CF neighbours {share:.3} (chance {chance:.3})"
    );
    // And the content source proposes them to users.
    let mut proposed = 0;
    for u in 0..300u32.min(m.n_users() as u32) {
        let q = recserve::pipeline::Query {
            user_id: Some(m.user_ids[u as usize].clone()),
            n: 10,
            exclude_seen: true,
            ..Default::default()
        };
        let (p, e) = t.engine.prepare(&q);
        let list = recserve::retrieval::content::candidates(
            &t.engine.catalog(),
            &p,
            &e,
            200,
            recserve::deadline::Deadline::NONE,
        )
        .list;
        proposed += list
            .iter()
            .filter(|(i, _)| t.cold_items.contains(i))
            .count();
    }
    assert!(
        proposed > 0,
        "the content source retrieves items that have only features"
    );
}
