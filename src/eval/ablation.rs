//! The evaluation run: split, train with the same code as `recserve train`, then run the REAL
//! pipeline in-process (the server's code path) for every test user under each ablation row, and
//! measure sources' recall@K, slices, and per-stage latency next to quality.

use super::metrics::{CatalogueStats, MetricAccumulator, RecallCurve, UserRanking};
use super::report::{AblationRow, EvalReport, FULL_ROW, SourceRecall, StageLatency};
use crate::bandit::BlendWeights;
use crate::data::dataset::Interaction;
use crate::pipeline::{Deadline, Engine, Query, SourceCounts, Treatment};
use crate::retrieval::{Source, merge, popular};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::Arc;

/// Users with at most this many training interactions form the `cold_users` slice.
pub const COLD_USER_MAX: usize = 5;
/// Cutoffs of the recall curves.
pub const RECALL_CUTOFFS: [usize; 6] = [10, 20, 50, 100, 150, 200];

/// The ablation rows: (name, treatment).
pub fn ablation_rows(base: &Treatment) -> Vec<(String, Treatment)> {
    let mut rows = vec![(FULL_ROW.to_string(), base.clone())];
    for s in Source::ALL {
        let mut t = base.clone();
        match s {
            Source::Cf => t.counts.cf = 0,
            Source::Content => t.counts.content = 0,
            Source::Session => t.counts.session = 0,
            Source::Popular => t.counts.popular = 0,
        }
        rows.push((format!("without_{}", s.as_str()), t));
    }
    rows.push((
        "without_ranker".into(),
        Treatment {
            use_ranker: false,
            ..base.clone()
        },
    ));
    rows.push((
        "popularity_only".into(),
        Treatment {
            counts: SourceCounts {
                cf: 0,
                content: 0,
                session: 0,
                popular: base.counts.popular.max(200),
            },
            weights: BlendWeights {
                cf: 0.0,
                content: 0.0,
                session: 0.0,
                popular: 1.0,
            },
            use_ranker: false,
        },
    ));
    rows
}

/// One user's evaluation: (user, recommended items, stage latencies in ms).
type UserResult = (u32, Vec<u32>, [f64; 5]);
/// Per source name, its candidate items best first.
type SourceLists = Vec<(&'static str, Vec<u32>)>;

pub struct EvalInput<'a> {
    pub engine: Arc<Engine>,
    /// The training part (for popularity statistics, cold slices).
    pub train: &'a [Interaction],
    pub test: &'a [Interaction],
    pub k: usize,
    pub max_users: usize,
    pub seed: u64,
    pub quiet: bool,
}

/// Runs every ablation row and the component evaluation; returns the report body.
pub fn evaluate(
    input: &EvalInput,
    rows: &[(String, Treatment)],
    mut data_summary: std::collections::BTreeMap<String, serde_json::Value>,
) -> Result<EvalReport, String> {
    let engine = &input.engine;
    let model = &engine.model;
    let k = input.k;
    let stats = CatalogueStats::from_interactions(input.train, model.n_items());
    let mut train_len: FxHashMap<u32, usize> = FxHashMap::default();
    let mut train_items: FxHashSet<u32> = FxHashSet::default();
    for x in input.train {
        *train_len.entry(x.user).or_default() += 1;
        train_items.insert(x.item);
    }
    let mut relevant: FxHashMap<u32, FxHashSet<u32>> = FxHashMap::default();
    for x in input.test {
        relevant.entry(x.user).or_default().insert(x.item);
    }
    let mut users: Vec<u32> = relevant.keys().copied().collect();
    users.sort_unstable();
    {
        use rand::{SeedableRng, seq::SliceRandom};
        users.shuffle(&mut rand::rngs::StdRng::seed_from_u64(input.seed));
    }
    users.truncate(input.max_users);

    let pb = if input.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new((rows.len() * users.len() + users.len()) as u64)
    };
    pb.set_style(
        ProgressStyle::with_template(
            "{bar:40} {pos}/{len} user evaluations [{elapsed_precise}<{eta_precise}] {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );

    let query = |u: u32| Query {
        user_id: Some(model.user_ids[u as usize].clone()),
        n: k,
        exclude_seen: true,
        ..Default::default()
    };
    // The "obvious" recommender (popularity plus the user's own category profile) does not depend
    // on the ablation row: computed once per user.
    let obvious: FxHashMap<u32, Vec<u32>> = users
        .par_iter()
        .map(|&u| {
            let (profile, elig) = engine.prepare(&query(u));
            let list = popular::candidates(model, &profile, &elig, k)
                .into_iter()
                .map(|(i, _)| i)
                .collect();
            (u, list)
        })
        .collect();
    let mut out_rows = Vec::new();
    let mut latency: Vec<StageLatency> = Vec::new();
    for (name, t) in rows {
        pb.set_message(name.clone());
        let results: Vec<UserResult> = users
            .par_iter()
            .map(|&u| {
                let rec = engine.recommend(&query(u), t, Deadline::NONE);
                let items: Vec<u32> = rec.items.iter().map(|r| r.item).collect();
                let tm = &rec.timings;
                let secs = |d: std::time::Duration| d.as_secs_f64() * 1e3;
                let lat = [
                    secs(tm.profile),
                    secs(tm.retrieval),
                    secs(tm.merge),
                    secs(tm.rank),
                    secs(tm.total),
                ];
                pb.inc(1);
                (u, items, lat)
            })
            .collect();
        let mut acc = MetricAccumulator::new(k, stats.clone()).map_err(|e| e.to_string())?;
        for (u, items, _) in &results {
            let rel = &relevant[u];
            let mut slices = vec!["all"];
            if train_len.get(u).copied().unwrap_or(0) <= COLD_USER_MAX {
                slices.push("cold_users");
            }
            acc.add(
                &slices,
                &UserRanking {
                    ranked: items,
                    relevant: rel,
                    obvious: obvious.get(u).map(Vec::as_slice),
                },
            );
            let cold_rel: FxHashSet<u32> = rel
                .iter()
                .copied()
                .filter(|i| !train_items.contains(i))
                .collect();
            if !cold_rel.is_empty() {
                acc.add(
                    &["cold_items"],
                    &UserRanking {
                        ranked: items,
                        relevant: &cold_rel,
                        obvious: None,
                    },
                );
            }
        }
        let mut summaries = acc.summaries();
        let metrics = summaries.remove("all").ok_or("no users to evaluate")?;
        out_rows.push(AblationRow {
            name: name.clone(),
            metrics,
            slices: summaries,
        });
        if name.as_str() == FULL_ROW {
            for (i, stage) in ["profile", "retrieval", "merge", "rank", "total"]
                .iter()
                .enumerate()
            {
                let samples: Vec<f64> = results.iter().map(|r| r.2[i]).collect();
                latency.extend(StageLatency::from_samples(*stage, &samples));
            }
        }
    }

    // Component evaluation: recall@K of each source and of the merged candidate set.
    pb.set_message("source recall");
    let counts = SourceCounts {
        cf: 200,
        content: 200,
        session: 200,
        popular: 200,
    };
    let per_user: Vec<(u32, SourceLists)> = users
        .par_iter()
        .map(|&u| {
            let (profile, elig) = engine.prepare(&query(u));
            let (profile, elig) = (Arc::new(profile), Arc::new(elig));
            let lists = engine
                .retrieve(&profile, &elig, &counts, Deadline::NONE)
                .lists;
            let mut out: Vec<(&'static str, Vec<u32>)> = Source::ALL
                .iter()
                .map(|&s| {
                    (
                        s.as_str(),
                        lists[s as usize].iter().map(|&(i, _)| i).collect(),
                    )
                })
                .collect();
            // The merged set ordered by each item's best per-source rank (interleaving).
            let mut merged = merge(&lists);
            let best = |c: &crate::retrieval::Candidate| {
                c.rank
                    .iter()
                    .copied()
                    .filter(|r| !r.is_nan())
                    .fold(f32::INFINITY, f32::min)
            };
            merged.sort_by(|a, b| best(a).total_cmp(&best(b)));
            out.push(("merged", merged.iter().map(|c| c.item).collect()));
            pb.inc(1);
            (u, out)
        })
        .collect();
    pb.finish_with_message("done");
    let mut total = RecallCurve::new(RECALL_CUTOFFS.to_vec()).map_err(|e| e.to_string())?;
    for (u, lists) in &per_user {
        for (name, items) in lists {
            total.add(name, items, &relevant[u]);
        }
    }

    data_summary.insert(
        "train_interactions".into(),
        serde_json::json!(input.train.len()),
    );
    data_summary.insert(
        "test_interactions".into(),
        serde_json::json!(input.test.len()),
    );
    data_summary.insert("evaluated_users".into(), serde_json::json!(users.len()));
    data_summary.insert(
        "model_version".into(),
        serde_json::json!(model.manifest.model_version),
    );
    Ok(EvalReport {
        data_summary,
        config: serde_json::Value::Null,
        rows: out_rows,
        source_recall: SourceRecall::from_curve(&total),
        latency,
        k,
    })
}
