//! The serving plan training writes into the manifest is obeyed: a failed ranker gate serves the
//! validated alternative as `blend` and says `ranker:gated`; a passed gate ranks only the
//! first-phase cut, so items outside the learned blend's top `rerank_depth` never come from the
//! ranker. Cost: one demo engine, a few dozen requests (well under a second).

use recserve::bandit::BlendWeights;
use recserve::pipeline::{Deadline, Degraded, Engine, Query, Strategy, Treatment};
use recserve::ranking::{blend_scores, top_indices};
use recserve::retrieval::merge;
use std::sync::Arc;

mod common;

fn engine(edit: impl FnOnce(&mut Engine)) -> Arc<Engine> {
    let mut e = common::demo_engine(|_| {});
    edit(Arc::get_mut(&mut e).expect("a fresh engine is not shared"));
    e
}

fn users(e: &Engine) -> Vec<Query> {
    (0..20)
        .map(|k| Query {
            user_id: Some(e.model.user_ids[(k * 131) % e.model.n_users()].clone()),
            n: 10,
            exclude_seen: true,
            ..Default::default()
        })
        .collect()
}

#[test]
fn a_failed_gate_serves_the_validated_alternative_and_says_so() {
    let item2item_alone = BlendWeights {
        cf: 0.0,
        content: 0.0,
        session: 0.0,
        popular: 0.0,
        item2item: 1.0,
        segment: 0.0,
    };
    let e = engine(|e| {
        e.plan.ranker_gate_passed = false;
        e.plan.fallback = item2item_alone;
    });
    assert!(e.ranker.is_some());
    for q in users(&e) {
        let rec = e.recommend(&q, &Treatment::default(), Deadline::NONE);
        assert_eq!(rec.strategy, Strategy::Blend);
        assert!(
            rec.degraded.contains(&Degraded::RankerGated),
            "{:?}",
            rec.degraded
        );
        // The fallback is item2item's own order (ties aside): the same list as asking for it.
        let explicit = e.recommend(
            &q,
            &Treatment {
                weights: Some(item2item_alone),
                use_ranker: false,
                ..Treatment::default()
            },
            Deadline::NONE,
        );
        let ids = |r: &recserve::pipeline::Recommendation| {
            r.items.iter().map(|i| i.item).collect::<Vec<_>>()
        };
        assert_eq!(ids(&rec), ids(&explicit));
    }
}

#[test]
fn a_passed_gate_ranks_only_the_first_phase_cut() {
    let depth = 30;
    let e = engine(|e| {
        e.plan.ranker_gate_passed = true;
        e.cfg.rerank_depth = depth;
    });
    let t = Treatment::default();
    for q in users(&e) {
        let rec = e.recommend(&q, &t, Deadline::NONE);
        assert_eq!(rec.strategy, Strategy::Ranked, "{:?}", rec.degraded);
        // Recompute phase 1 offline: every ranked item is in the learned blend's top `depth`.
        let (p, el) = e.prepare(&q);
        let lists = e
            .retrieve(&Arc::new(p), &Arc::new(el), &t.counts, Deadline::NONE)
            .lists;
        let cands = merge(&lists);
        assert!(cands.len() > depth, "enough candidates to cut");
        let scores = blend_scores(&cands, &e.plan.first_phase);
        let cut: Vec<u32> = top_indices(&cands, &scores, depth)
            .into_iter()
            .map(|i| cands[i].item)
            .collect();
        // New-item exposure slots hold items from outside the candidates by design.
        let slots: Vec<usize> = rec.exposure.iter().map(|s| s.position).collect();
        for (pos, it) in rec.items.iter().enumerate() {
            if slots.contains(&pos) {
                continue;
            }
            assert!(
                cut.contains(&it.item),
                "item {} outside the first-phase cut",
                it.item
            );
        }
    }
}
