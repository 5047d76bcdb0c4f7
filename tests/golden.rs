//! Behaviour lock: 200 fixed requests against the demo bundle with budgets off (offline mode)
//! must give exactly the recommendation lists recorded in `tests/golden/demo_lists.json`. The
//! file was written by the code before the layering refactor; any refactor that changes a list,
//! a strategy or a score (beyond 1e-4) fails here. Cost: ~1 s (one engine, 200 requests).
//!
//! Re-record only for an intended behaviour change: `RECSERVE_BLESS=1 cargo test --test golden`.
//! The lists are recorded with new-item exposure off; the second test checks that the shipped
//! exposure only inserts new items into them.

use recserve::bandit::BlendWeights;
use recserve::bundle::Model;
use recserve::pipeline::{Deadline, Query, SourceCounts, Treatment};
use serde::{Deserialize, Serialize};

mod common;

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Golden {
    request: String,
    strategy: String,
    items: Vec<String>,
    scores: Vec<f32>,
}

/// The fixed request set: known users (with and without seen-item exclusion, with a category,
/// with a session), anonymous sessions, unknown users, and four treatments.
fn requests(m: &Model) -> Vec<(String, Query, Treatment)> {
    let treatments = [
        ("default", Treatment::default()),
        (
            "blend",
            Treatment {
                use_ranker: false,
                ..Treatment::default()
            },
        ),
        (
            "cf_only",
            Treatment {
                counts: SourceCounts {
                    cf: 100,
                    content: 0,
                    session: 0,
                    popular: 0,
                    item2item: 0,
                    segment: 0,
                },
                weights: Some(BlendWeights::default()),
                use_ranker: true,
                ..Treatment::default()
            },
        ),
        (
            "content_heavy_blend",
            Treatment {
                counts: SourceCounts::default(),
                weights: Some(BlendWeights {
                    cf: 0.15,
                    content: 0.6,
                    session: 0.15,
                    popular: 0.1,
                    item2item: 0.0,
                    segment: 0.0,
                }),
                use_ranker: false,
                ..Treatment::default()
            },
        ),
    ];
    let mut categories: Vec<&String> = m.category_index.keys().collect();
    categories.sort();
    let mut out = Vec::new();
    for k in 0..200usize {
        let (tname, t) = &treatments[k % treatments.len()];
        let user = m.user_ids[(k * 7919) % m.n_users()].clone();
        let item = |j: usize| m.item_ids[(k * 104_729 + j * 31) % m.item_ids.len()].clone();
        let mut q = Query {
            n: [10, 20, 5, 50][(k / 4) % 4],
            exclude_seen: true,
            ..Default::default()
        };
        let kind = match (k / 16) % 6 {
            0 | 1 => {
                q.user_id = Some(user);
                "user"
            }
            2 => {
                q.user_id = Some(user);
                q.exclude_seen = false;
                "user_seen_kept"
            }
            3 => {
                q.user_id = Some(user);
                q.category = categories
                    .get(k % categories.len().max(1))
                    .map(|c| c.to_string());
                "user_category"
            }
            4 => {
                q.recent = vec![item(0), item(1), item(2)];
                q.exclude = vec![item(3)];
                "anonymous_session"
            }
            _ => {
                q.user_id = Some(format!("unknown-{k}"));
                q.recent = vec![item(0)];
                q.online = vec![(((k * 13) % m.item_ids.len()) as u32, 1_700_000_000)];
                "unknown_user_online"
            }
        };
        out.push((format!("{k}:{kind}:{tname}"), q, t.clone()));
    }
    out
}

#[test]
fn demo_lists_are_unchanged_with_budgets_off() {
    // New-item exposure off: with it off the lists are exactly the recorded ones (with it on,
    // `exposure_only_inserts_new_items_into_the_recorded_lists` below).
    let engine = common::demo_engine(|c| c.serving.exposure.share = 0.0);
    let m = &engine.model;
    let got: Vec<Golden> = requests(m)
        .into_iter()
        .map(|(name, q, t)| {
            let rec = engine.recommend(&q, &t, Deadline::NONE);
            Golden {
                request: name,
                strategy: rec.strategy.as_str().to_string(),
                items: rec
                    .items
                    .iter()
                    .map(|r| m.item_ids[r.item as usize].clone())
                    .collect(),
                scores: rec.items.iter().map(|r| r.score).collect(),
            }
        })
        .collect();
    let path = common::root().join("tests/golden/demo_lists.json");
    if std::env::var_os("RECSERVE_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, serde_json::to_string_pretty(&got).unwrap()).unwrap();
        return;
    }
    let want: Vec<Golden> =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("golden file")).unwrap();
    assert_eq!(got.len(), want.len());
    let mut strategies = std::collections::BTreeSet::new();
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g.request, w.request);
        assert_eq!(g.strategy, w.strategy, "{}", g.request);
        assert_eq!(g.items, w.items, "{}", g.request);
        for (a, b) in g.scores.iter().zip(&w.scores) {
            assert!((a - b).abs() <= 1e-4, "{}: score {a} vs {b}", g.request);
        }
        strategies.insert(g.strategy.clone());
    }
    // The set exercises both ranked and blended paths, not only one.
    assert!(
        strategies.contains("ranked") && strategies.contains("blend"),
        "{strategies:?}"
    );
}

/// With the shipped exposure policy on, every list is the recorded list with new items inserted
/// at the policy's slots and its tail cut back to `n`: nothing else moves. Cost: ~1 s.
#[test]
fn exposure_only_inserts_new_items_into_the_recorded_lists() {
    let path = common::root().join("tests/golden/demo_lists.json");
    let want: Vec<Golden> =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("golden file")).unwrap();
    let engine = common::demo_engine(|_| {});
    let m = &engine.model;
    let mut exposed = 0usize;
    for ((name, q, t), w) in requests(m).into_iter().zip(&want) {
        assert_eq!(name, w.request);
        let rec = engine.recommend(&q, &t, Deadline::NONE);
        let got: Vec<String> = rec
            .items
            .iter()
            .map(|r| m.item_ids[r.item as usize].clone())
            .collect();
        let slots: Vec<usize> = rec.exposure.iter().map(|s| s.position).collect();
        for &p in &slots {
            assert!(
                engine.new_items.contains(rec.items[p].item),
                "{name}: slot {p} holds an established item"
            );
        }
        let rest: Vec<&String> = got
            .iter()
            .enumerate()
            .filter(|(p, _)| !slots.contains(p))
            .map(|(_, i)| i)
            .collect();
        let prefix: Vec<&String> = w.items.iter().take(rest.len()).collect();
        assert_eq!(
            rest, prefix,
            "{name}: the other items keep their recorded order"
        );
        assert_eq!(got.len(), w.items.len(), "{name}");
        exposed += slots.len();
    }
    assert!(
        exposed > 0,
        "the shipped policy exposes new items on the demo bundle"
    );
}
