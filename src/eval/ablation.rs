//! The evaluation run: split, train with the same code as `recserve train`, then run the REAL
//! pipeline in-process (the server's code path) for every test user under each ablation row, and
//! measure sources' recall@K, slices, and per-stage latency next to quality.

use super::bootstrap::{BOOTSTRAP_RESAMPLES, paired_bootstrap_ci};
use super::coldstart;
use super::diversity::{DIVERSITY_ROWS, mean_ils};
use super::metrics::{CatalogueStats, MetricAccumulator, RecallCurve, UserRanking, rank_metrics};
use super::report::{AblationRow, EvalReport, FULL_ROW, ONLY_PREFIX, SourceRecall, StageLatency};
use crate::bandit::BlendWeights;
use crate::data::dataset::Interaction;
use crate::pipeline::{Deadline, Engine, Query, SourceCounts, Treatment};
use crate::ranking::Diversity;
use crate::retrieval::{Source, merge, popular};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::Arc;

/// Users with at most this many training interactions form the `cold_users` slice.
pub const COLD_USER_MAX: usize = 5;
/// Cutoffs of the recall curves.
pub const RECALL_CUTOFFS: [usize; 6] = [10, 20, 50, 100, 150, 200];

/// Candidates a single-source baseline row asks its source for, at least.
pub const SINGLE_SOURCE_MIN_COUNT: usize = 200;

/// The ablation rows: (name, treatment), in report order: [`FULL_ROW`]; the single-source baselines
/// `only_<source>` in [`Source::ALL`] order; `without_ranker` (the blend of every source);
/// `popularity_only`; then the ablations `without_<source>`.
pub fn ablation_rows(base: &Treatment) -> Vec<(String, Treatment)> {
    let mut rows = vec![(FULL_ROW.to_string(), base.clone())];
    for s in Source::ALL {
        rows.push((
            format!("{ONLY_PREFIX}{}", s.as_str()),
            single_source(base, s),
        ));
    }
    rows.push((
        "without_ranker".into(),
        Treatment {
            use_ranker: false,
            ..base.clone()
        },
    ));
    // The historical name of the popularity baseline; the same treatment as `only_popular`, kept so
    // reports and checks that look it up by name keep working.
    rows.push((
        "popularity_only".into(),
        single_source(base, Source::Popular),
    ));
    for s in Source::ALL {
        let mut t = base.clone();
        *count_mut(&mut t.counts, s) = 0;
        rows.push((format!("without_{}", s.as_str()), t));
    }
    // The price of diversity: the full treatment, its requests under MMR or the category cap
    // (the row's name selects the settings, see [`DIVERSITY_ROWS`]).
    for (name, _) in DIVERSITY_ROWS {
        rows.push((name.to_string(), base.clone()));
    }
    // The price and the payoff of new-item exposure: off, and the same slots filled at random.
    if let Some(policy) = base.exposure.filter(|p| !p.is_off()) {
        rows.push((
            coldstart::EXPOSURE_OFF_ROW.into(),
            Treatment {
                exposure: Some(crate::ranking::ExposurePolicy::OFF),
                ..base.clone()
            },
        ));
        rows.push((
            coldstart::EXPOSURE_RANDOM_ROW.into(),
            Treatment {
                exposure: Some(coldstart::random_pick(policy)),
                ..base.clone()
            },
        ));
    }
    rows
}

/// The row of the learned first-phase blend alone (no ranker), beside `without_ranker`, which is
/// what the control serves without the ranker: the gate's best validated alternative.
pub const LEARNED_BLEND_ROW: &str = "learned_blend";

/// [`ablation_rows`] for `engine`, with the [`LEARNED_BLEND_ROW`] after `without_ranker`: the
/// first phase of users with a history, for every user (cold users' own first phase aside).
pub fn ablation_rows_for(base: &Treatment, engine: &Engine) -> Vec<(String, Treatment)> {
    let mut rows = ablation_rows(base);
    let at = rows
        .iter()
        .position(|(n, _)| n == "without_ranker")
        .map_or(rows.len(), |i| i + 1);
    rows.insert(
        at,
        (
            LEARNED_BLEND_ROW.into(),
            Treatment {
                use_ranker: false,
                weights: Some(engine.plan.first_phase),
                ..base.clone()
            },
        ),
    );
    rows
}

/// The diversity settings of the row called `name` (off for every other row).
fn diversity_of(name: &str) -> Diversity {
    DIVERSITY_ROWS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or_else(Diversity::default, |(_, d)| *d)
}

/// One source alone: its count `max(base, SINGLE_SOURCE_MIN_COUNT)`, every other count 0, no ranker,
/// blend weight 1 on it and 0 elsewhere — the list is the source's own order (min-max
/// normalisation keeps it), topped up from popularity by the pipeline like every list.
fn single_source(base: &Treatment, s: Source) -> Treatment {
    let mut counts = SourceCounts {
        cf: 0,
        content: 0,
        session: 0,
        popular: 0,
        item2item: 0,
        segment: 0,
    };
    *count_mut(&mut counts, s) = base.counts.get(s).max(SINGLE_SOURCE_MIN_COUNT);
    let mut weights = BlendWeights {
        cf: 0.0,
        content: 0.0,
        session: 0.0,
        popular: 0.0,
        item2item: 0.0,
        segment: 0.0,
    };
    *match s {
        Source::Cf => &mut weights.cf,
        Source::Content => &mut weights.content,
        Source::Session => &mut weights.session,
        Source::Popular => &mut weights.popular,
        Source::Item2Item => &mut weights.item2item,
        Source::Segment => &mut weights.segment,
    } = 1.0;
    Treatment {
        counts,
        weights: Some(weights),
        use_ranker: false,
        // The source alone, without new-item slots.
        exposure: Some(crate::ranking::ExposurePolicy::OFF),
    }
}

fn count_mut(c: &mut SourceCounts, s: Source) -> &mut usize {
    match s {
        Source::Cf => &mut c.cf,
        Source::Content => &mut c.content,
        Source::Session => &mut c.session,
        Source::Popular => &mut c.popular,
        Source::Item2Item => &mut c.item2item,
        Source::Segment => &mut c.segment,
    }
}

/// Seed of the NDCG bootstraps, derived from `EvalInput::seed` (mixed so that the resampling stream
/// is not the stream that sampled the users). Every row uses the same seed, hence the same
/// resampled user sets: the rows' intervals are comparable with each other.
fn bootstrap_seed(seed: u64) -> u64 {
    seed ^ 0x626f_6f74_7374_7270
}

/// Sets `ndcg_vs_full` of every row but the [`FULL_ROW`] (which keeps `None`): the paired bootstrap
/// CI of `NDCG_full(u) − NDCG_row(u)`. `per_user[i]` holds row `i`'s per-user NDCG@K, every row in
/// the same user order; users without a score in either row (no relevant item) are left out.
fn attach_ndcg_ci(rows: &mut [AblationRow], per_user: &[Vec<Option<f64>>], seed: u64) {
    let Some(fi) = rows.iter().position(|r| r.name == FULL_ROW) else {
        return;
    };
    let full = &per_user[fi];
    for (i, row) in rows.iter_mut().enumerate() {
        if i == fi {
            continue;
        }
        debug_assert_eq!(full.len(), per_user[i].len(), "rows scored different users");
        let (a, b): (Vec<f64>, Vec<f64>) = full
            .iter()
            .zip(&per_user[i])
            .filter_map(|(&a, &b)| Some((a?, b?)))
            .unzip();
        row.ndcg_vs_full = paired_bootstrap_ci(&a, &b, BOOTSTRAP_RESAMPLES, seed);
    }
}

/// One user's evaluation: (user, recommended items, stage latencies in ms).
type UserResult = (u32, Vec<u32>, [f64; 5]);
/// Per source name, its candidate items best first.
type SourceLists = Vec<(&'static str, Vec<u32>)>;

/// Baseline row: the most interacted items over all of training (no time window).
pub const ALL_TIME_POPULAR_ROW: &str = "only_all_time_popular";
/// Baseline row: the most interacted items over training's last `recent_days` days.
pub const RECENT_POPULAR_ROW: &str = "only_recent_popular";

/// Item ids by descending `score` (ties by id): every item, so every list can be filled.
fn order_by(score: &[f32]) -> Vec<u32> {
    let mut order: Vec<u32> = (0..score.len() as u32).collect();
    order.sort_by(|&a, &b| {
        score[b as usize]
            .total_cmp(&score[a as usize])
            .then(a.cmp(&b))
    });
    order
}

/// What scoring one row needs besides its lists.
struct RowContext<'a> {
    model: &'a crate::bundle::Model,
    k: usize,
    stats: &'a CatalogueStats,
    relevant: &'a FxHashMap<u32, FxHashSet<u32>>,
    train_len: &'a FxHashMap<u32, usize>,
    train_items: &'a FxHashSet<u32>,
    obvious: &'a FxHashMap<u32, Vec<u32>>,
    new_items: &'a crate::ranking::NewItems,
}

/// One row's metrics (all users and the cold slices) and its per-user NDCG@K, in `ranked` order.
fn score_row(
    name: &str,
    ranked: &[(u32, &[u32])],
    ctx: &RowContext,
) -> Result<(AblationRow, Vec<Option<f64>>), String> {
    let k = ctx.k;
    let mut acc = MetricAccumulator::new(k, ctx.stats.clone()).map_err(|e| e.to_string())?;
    for &(u, items) in ranked {
        let rel = &ctx.relevant[&u];
        let mut slices = vec!["all"];
        let train_len = ctx.train_len.get(&u).copied().unwrap_or(0);
        if train_len <= COLD_USER_MAX {
            slices.push("cold_users");
        }
        if train_len == 0 {
            slices.push(coldstart::FEATURES_ONLY_SLICE);
        }
        acc.add(
            &slices,
            &UserRanking {
                ranked: items,
                relevant: rel,
                obvious: ctx.obvious.get(&u).map(Vec::as_slice),
            },
        );
        let cold_rel: FxHashSet<u32> = rel
            .iter()
            .copied()
            .filter(|i| !ctx.train_items.contains(i))
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
    let per_user = ranked
        .iter()
        .map(|&(u, items)| {
            rank_metrics(&items[..items.len().min(k)], &ctx.relevant[&u], k).map(|m| m.ndcg)
        })
        .collect();
    let (mut slots, mut new) = (0usize, 0usize);
    for &(_, items) in ranked {
        for &i in &items[..items.len().min(k)] {
            slots += 1;
            new += usize::from(ctx.new_items.contains(i));
        }
    }
    let mut summaries = acc.summaries();
    let metrics = summaries.remove("all").ok_or("no users to evaluate")?;
    Ok((
        AblationRow {
            name: name.to_string(),
            metrics,
            slices: summaries,
            ndcg_vs_full: None,
            intra_list_similarity: mean_ils(ctx.model, ranked, k),
            new_item_share: (slots > 0).then(|| new as f64 / slots as f64),
        },
        per_user,
    ))
}

pub struct EvalInput<'a> {
    pub engine: Arc<Engine>,
    /// The training part (for popularity statistics, cold slices).
    pub train: &'a [Interaction],
    pub test: &'a [Interaction],
    pub k: usize,
    pub max_users: usize,
    pub seed: u64,
    pub quiet: bool,
    /// The window of the recent-popularity baseline, in days before training's last interaction.
    pub recent_days: f64,
    /// The same model with the ranker over every candidate: its row ([`RERANK_ALL_ROW`]) prices
    /// the first-phase cut.
    pub rerank_all: Option<Arc<Engine>>,
}

/// The full pipeline without the first-phase cut (the ranker re-ranks every candidate).
pub const RERANK_ALL_ROW: &str = "full_rerank_all";

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
    let ctx = RowContext {
        model,
        k,
        stats: &stats,
        relevant: &relevant,
        train_len: &train_len,
        train_items: &train_items,
        obvious: &obvious,
        new_items: &engine.new_items,
    };
    let mut out_rows = Vec::new();
    // Per row, per user (in `users` order: `par_iter().collect()` keeps it), NDCG@K on "all".
    let mut per_user_ndcg: Vec<Vec<Option<f64>>> = Vec::new();
    let mut latency: Vec<StageLatency> = Vec::new();
    // Rows with the same treatment (e.g. `only_popular` and `popularity_only`) run once.
    let mut computed: Vec<((&Treatment, Diversity), Vec<UserResult>)> = Vec::new();
    for (name, t) in rows {
        pb.set_message(name.clone());
        let diversity = diversity_of(name);
        let key = (t, diversity);
        if let Some((_, done)) = computed.iter().find(|(prev, _)| *prev == key) {
            let done = done.clone();
            pb.inc(users.len() as u64);
            computed.push((key, done));
        } else {
            let results: Vec<UserResult> = users
                .par_iter()
                .map(|&u| {
                    let q = Query {
                        diversity,
                        ..query(u)
                    };
                    let rec = engine.recommend(&q, t, Deadline::NONE);
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
            computed.push((key, results));
        }
        let results = &computed[computed.len() - 1].1;
        let ranked: Vec<(u32, &[u32])> = results
            .iter()
            .map(|(u, items, _)| (*u, items.as_slice()))
            .collect();
        let (row, per_user) = score_row(name, &ranked, &ctx)?;
        out_rows.push(row);
        per_user_ndcg.push(per_user);
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

    // The strongest simple baselines, computed here without the pipeline: popularity over all
    // of training and over its last `recent_days` days (training's own popularity statistics),
    // the user's training items removed.
    pb.set_message("popularity baselines");
    let last_ts = input.train.iter().map(|x| x.ts).max().unwrap_or(0);
    let item_stats = crate::train::popularity::item_stats(
        model.n_items(),
        input.train,
        last_ts,
        0.0,
        input.recent_days,
    );
    let mut seen: FxHashMap<u32, FxHashSet<u32>> = FxHashMap::default();
    for x in input.train {
        seen.entry(x.user).or_default().insert(x.item);
    }
    let all_time: Vec<f32> = item_stats.iter().map(|s| s.count).collect();
    let recent: Vec<f32> = item_stats.iter().map(|s| s.trend * s.count).collect();
    for (name, score) in [
        (ALL_TIME_POPULAR_ROW, all_time),
        (RECENT_POPULAR_ROW, recent),
    ] {
        let order = order_by(&score);
        let lists: Vec<(u32, Vec<u32>)> = users
            .iter()
            .map(|&u| {
                let s = seen.get(&u);
                let list = order
                    .iter()
                    .copied()
                    .filter(|i| s.is_none_or(|s| !s.contains(i)))
                    .take(k)
                    .collect();
                (u, list)
            })
            .collect();
        let ranked: Vec<(u32, &[u32])> = lists.iter().map(|(u, l)| (*u, l.as_slice())).collect();
        let (row, per_user) = score_row(name, &ranked, &ctx)?;
        out_rows.push(row);
        per_user_ndcg.push(per_user);
    }

    // Popularity within the user's segments (the cold-start baseline to beat).
    if !model.segments.is_empty() {
        pb.set_message(coldstart::SEGMENT_POPULAR_ROW);
        let lists = coldstart::segment_popular_lists(model, input.train, &users, k);
        let ranked: Vec<(u32, &[u32])> = lists.iter().map(|(u, l)| (*u, l.as_slice())).collect();
        let (row, per_user) = score_row(coldstart::SEGMENT_POPULAR_ROW, &ranked, &ctx)?;
        out_rows.push(row);
        per_user_ndcg.push(per_user);
    }

    if let Some(all) = &input.rerank_all {
        pb.set_message(RERANK_ALL_ROW);
        let t = Treatment::default();
        let lists: Vec<(u32, Vec<u32>)> = users
            .par_iter()
            .map(|&u| {
                let rec = all.recommend(&query(u), &t, Deadline::NONE);
                (u, rec.items.iter().map(|r| r.item).collect())
            })
            .collect();
        let ranked: Vec<(u32, &[u32])> = lists.iter().map(|(u, l)| (*u, l.as_slice())).collect();
        let (row, per_user) = score_row(RERANK_ALL_ROW, &ranked, &ctx)?;
        out_rows.push(row);
        per_user_ndcg.push(per_user);
    }

    attach_ndcg_ci(&mut out_rows, &per_user_ndcg, bootstrap_seed(input.seed));

    // Component evaluation: recall@K of each source and of the merged candidate set.
    pb.set_message("source recall");
    let counts = SourceCounts {
        cf: 200,
        content: 200,
        session: 200,
        popular: 200,
        item2item: 200,
        segment: 200,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::metrics::MetricSummary;

    // Cost: builds a dozen small structs; microseconds.
    #[test]
    fn ablation_rows_have_single_source_baselines_in_report_order() {
        let mut base = Treatment::default();
        base.counts.session = 0; // a source the base does not ask: its baseline still gets 200
        base.counts.cf = 350; // a source asked for more than 200: its baseline keeps that
        let rows = ablation_rows(&base);
        let names: Vec<&str> = rows.iter().map(|(n, _)| n.as_str()).collect();
        let mut want = vec![FULL_ROW.to_string()];
        want.extend(Source::ALL.iter().map(|s| format!("only_{}", s.as_str())));
        want.extend(["without_ranker".into(), "popularity_only".into()]);
        want.extend(
            Source::ALL
                .iter()
                .map(|s| format!("without_{}", s.as_str())),
        );
        want.extend(DIVERSITY_ROWS.iter().map(|(n, _)| n.to_string()));
        assert_eq!(names, want);
        // Diversity rows run the full treatment; their names select the settings.
        for (name, d) in DIVERSITY_ROWS {
            let (_, t) = rows.iter().find(|(n, _)| n == name).unwrap();
            assert_eq!(t, &base);
            assert_eq!(diversity_of(name), d);
        }
        assert!(diversity_of(FULL_ROW).is_off());

        for s in Source::ALL {
            let (_, t) = rows
                .iter()
                .find(|(n, _)| *n == format!("only_{}", s.as_str()))
                .unwrap();
            assert!(!t.use_ranker, "only_{}: ranker must be off", s.as_str());
            let nonzero: Vec<Source> = Source::ALL
                .into_iter()
                .filter(|&o| t.counts.get(o) > 0)
                .collect();
            assert_eq!(
                nonzero,
                vec![s],
                "only_{}: counts {:?}",
                s.as_str(),
                t.counts
            );
            assert_eq!(t.counts.get(s), base.counts.get(s).max(200));
            let w = t
                .weights
                .expect("explicit single-source weights")
                .as_array();
            for (i, o) in Source::ALL.into_iter().enumerate() {
                assert_eq!(w[i], if o == s { 1.0 } else { 0.0 }, "only_{}", s.as_str());
            }
        }
        assert_eq!(rows[0].1.counts, base.counts);
        assert!(rows[0].1.use_ranker);
        let blend = &rows.iter().find(|(n, _)| n == "without_ranker").unwrap().1;
        assert!(!blend.use_ranker && blend.counts == base.counts && blend.weights.is_none());
        let without_cf = &rows.iter().find(|(n, _)| n == "without_cf").unwrap().1;
        assert_eq!(
            (without_cf.counts.cf, without_cf.counts.content),
            (0, base.counts.content)
        );
    }

    fn row(name: &str) -> AblationRow {
        AblationRow {
            name: name.into(),
            metrics: MetricSummary {
                k: 10,
                users: 0,
                users_evaluated: 0,
                users_without_relevant: 0,
                users_short_list: 0,
                users_with_duplicates: 0,
                precision: 0.0,
                recall: 0.0,
                ndcg: 0.0,
                map: 0.0,
                hit_rate: 0.0,
                coverage: 0.0,
                novelty: 0.0,
                serendipity: 0.0,
                serendipity_users: 0,
            },
            slices: Default::default(),
            ndcg_vs_full: None,
            intra_list_similarity: None,
            new_item_share: None,
        }
    }

    // Cost: 3 users × 1000 resamples, microseconds.
    #[test]
    fn ndcg_ci_is_full_minus_row_paired_by_user_and_absent_for_full() {
        let mut rows = vec![row("only_cf"), row(FULL_ROW), row("same")];
        let full = vec![Some(0.5), Some(1.0), None, Some(0.25)];
        // The user without a score (index 2) is dropped from every pair.
        let per_user = vec![
            vec![Some(0.25), Some(0.75), Some(1.0), Some(0.0)],
            full.clone(),
            full,
        ];
        attach_ndcg_ci(&mut rows, &per_user, 5);
        assert_eq!(rows[1].ndcg_vs_full, None);
        let ci = rows[0].ndcg_vs_full.unwrap();
        assert_eq!(
            (ci.mean, ci.lo, ci.hi, ci.resamples),
            (0.25, 0.25, 0.25, 1000)
        );
        let same = rows[2].ndcg_vs_full.unwrap();
        assert_eq!((same.mean, same.lo, same.hi), (0.0, 0.0, 0.0));
        // Without a full row nothing is compared.
        let mut rows = vec![row("a")];
        attach_ndcg_ci(&mut rows, &[vec![Some(1.0)]], 5);
        assert_eq!(rows[0].ndcg_vs_full, None);
    }
}
