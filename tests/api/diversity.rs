//! Diversity: the per-category cap always holds (ranked, blended, topped up from popularity,
//! popularity fallback; property test plus HTTP), λ = 0 leaves today's list, and intra-list
//! similarity falls as λ rises on the demo bundle (trained on generated data).

use super::helpers::{TestApp, demo_bundle, test_config};
use proptest::prelude::*;
use recserve::bundle::Model;
use recserve::pipeline::{Deadline, Engine, Query, SourceCounts, Treatment};
use recserve::ranking::Diversity;
use recserve::ranking::diversity::{intra_list_similarity, primary_category};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

fn engine() -> Arc<Engine> {
    static ENGINE: OnceLock<Arc<Engine>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let cfg = test_config(dir.path());
            let model = Model::read(&demo_bundle()).unwrap();
            Arc::new(Engine::new(model, cfg.serving, &cfg.index, Some(&demo_bundle())).unwrap())
        })
        .clone()
}

/// The largest number of items sharing a primary category.
fn max_per_category(e: &Engine, items: &[u32]) -> usize {
    let mut counts: HashMap<u32, usize> = HashMap::new();
    for &i in items {
        if let Some(c) = primary_category(&e.model, i) {
            *counts.entry(c).or_default() += 1;
        }
    }
    counts.values().copied().max().unwrap_or(0)
}

fn query(e: &Engine, user: usize, n: usize, diversity: Diversity) -> Query {
    Query {
        user_id: Some(e.model.user_ids[user % e.model.n_users()].clone()),
        n,
        exclude_seen: true,
        diversity,
        ..Default::default()
    }
}

fn items(e: &Arc<Engine>, q: &Query, t: &Treatment) -> Vec<u32> {
    e.recommend(q, t, Deadline::NONE)
        .items
        .iter()
        .map(|r| r.item)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whatever the user, list length, candidate counts (small counts force the popularity
    /// top-up), ranker or blend, λ and cap: no primary category exceeds the cap, items stay
    /// distinct, and the list is as full as the cap allows.
    #[test]
    fn the_category_cap_always_holds(
        user in 0usize..10_000,
        n in 1usize..60,
        counts in proptest::array::uniform5(0usize..40),
        use_ranker in any::<bool>(),
        lambda in prop_oneof![Just(0.0f32), 0.0f32..=1.0],
        cap in 1usize..5,
    ) {
        let e = engine();
        let d = Diversity { lambda, max_per_category: Some(cap) };
        let t = Treatment {
            counts: SourceCounts {
                cf: counts[0], content: counts[1], session: counts[2],
                popular: counts[3], item2item: counts[4], segment: counts[4],
            },
            weights: None,
            use_ranker,
            exposure: None,
        };
        let q = query(&e, user, n, d);
        let got = items(&e, &q, &t);
        prop_assert!(max_per_category(&e, &got) <= cap, "{:?}", got);
        let mut distinct = got.clone();
        distinct.sort_unstable();
        distinct.dedup();
        prop_assert_eq!(distinct.len(), got.len());
        // The demo catalogue has enough categories to fill short lists under any cap.
        let categories = e.model.categories.len();
        if n <= cap * categories / 2 {
            prop_assert_eq!(got.len(), n, "full list under cap {}", cap);
        }
        // The popularity fallback (budget exhausted) obeys the cap too.
        let fallback: Vec<u32> = e.popular_only(&q).items.iter().map(|r| r.item).collect();
        prop_assert!(max_per_category(&e, &fallback) <= cap);
    }
}

#[test]
fn lambda_zero_without_a_cap_is_todays_list() {
    let e = engine();
    let t = Treatment::default();
    for user in [1, 17, 123, 999] {
        let off = items(&e, &query(&e, user, 20, Diversity::default()), &t);
        let zero = Diversity {
            lambda: 0.0,
            max_per_category: None,
        };
        assert_eq!(items(&e, &query(&e, user, 20, zero), &t), off);
        // λ > 0 does change lists (the test above is not vacuous).
        let on = Diversity {
            lambda: 0.5,
            max_per_category: None,
        };
        assert_eq!(items(&e, &query(&e, user, 20, on), &t).len(), 20);
    }
    let changed = (0..20).any(|u| {
        let on = Diversity {
            lambda: 0.5,
            max_per_category: None,
        };
        items(&e, &query(&e, u, 20, on), &t)
            != items(&e, &query(&e, u, 20, Diversity::default()), &t)
    });
    assert!(changed, "MMR reorders some lists");
}

#[test]
fn intra_list_similarity_falls_as_lambda_rises() {
    let e = engine();
    let t = Treatment::default();
    let users: Vec<usize> = (0..60).map(|k| k * 37 + 5).collect();
    let mean_ils = |lambda: f32| -> f64 {
        let d = Diversity {
            lambda,
            max_per_category: None,
        };
        users
            .iter()
            .map(|&u| intra_list_similarity(&e.model, &items(&e, &query(&e, u, 10, d), &t)))
            .sum::<f64>()
            / users.len() as f64
    };
    let ils: Vec<f64> = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
        .into_iter()
        .map(mean_ils)
        .collect();
    eprintln!("mean intra-list similarity by lambda 0, 0.2, ..., 1: {ils:?}");
    assert!(ils.windows(2).all(|w| w[1] <= w[0]), "monotone: {ils:?}");
    assert!(ils[5] < 0.8 * ils[0], "a real effect: {ils:?}");
}

#[tokio::test]
async fn http_diversity_parameters_and_the_diverse_variant() {
    let app = TestApp::spawn().await;
    let user = app.user_with_history(20);
    let e = app.state.current().unwrap();
    let ids = |body: &serde_json::Value| -> Vec<u32> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| e.model.item_index[i["item_id"].as_str().unwrap()])
            .collect()
    };
    let (status, plain) = app
        .get_json(&format!("/recommendations?user_id={user}&n=40"))
        .await;
    assert_eq!(status, 200);
    assert!(
        max_per_category(&e, &ids(&plain)) > 2,
        "the cap below binds"
    );
    let (status, capped) = app
        .get_json(&format!(
            "/recommendations?user_id={user}&n=40&max_per_category=2&diversity=0.3"
        ))
        .await;
    assert_eq!(status, 200, "{capped}");
    assert!(max_per_category(&e, &ids(&capped)) <= 2, "{capped}");
    assert_eq!(ids(&capped).len(), 40);
    // The shipped `diverse` variant caps at 3; a request may loosen or tighten it.
    let r = app
        .client
        .get(format!("{}/recommendations?user_id={user}&n=40", app.base))
        .header("x-variant", "diverse")
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["variant"], "diverse");
    assert!(max_per_category(&e, &ids(&body)) <= 3, "{body}");
    for (q, code) in [
        ("diversity=2", "invalid_diversity"),
        ("max_per_category=0", "invalid_max_per_category"),
    ] {
        let (status, body) = app
            .get_json(&format!("/recommendations?user_id={user}&{q}"))
            .await;
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some(code)));
    }
}
