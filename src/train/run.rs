//! `recserve train`: the whole offline run with progress bars and a summary — read, fit the
//! sources without the held-out interactions, build labelled candidate lists, train and validate
//! the ranker, refit the sources on everything, write the bundle.

use super::ranker::{self, Group};
use super::{Holdout, TrainConfig, TrainError, fit_sources, prepare};
use crate::data::dataset::Dataset;
use crate::pipeline::Engine;
use crate::pipeline::ServingConfig;
use crate::ranking::lgbm::LabeledRows;
use crate::retrieval::index::{IndexConfig, VectorIndex};
use indicatif::{ProgressBar, ProgressStyle};
use rand::{SeedableRng, rngs::StdRng, seq::SliceRandom};
use rayon::prelude::*;
use rustc_hash::FxHashSet;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub data: PathBuf,
    pub out: PathBuf,
    pub holdout: Option<Holdout>,
    pub seed: Option<u64>,
    pub skip_bad_lines: bool,
    /// Hide progress bars (tests, CI logs).
    pub quiet: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct TrainSummary {
    pub bundle: PathBuf,
    pub model_version: String,
    pub users: usize,
    pub items: usize,
    pub interactions: usize,
    pub phases: Vec<(String, f64)>,
    pub ranker: ranker::RankerEval,
    pub ranker_best_iteration: usize,
    pub factorization_valid_recall: Option<f64>,
}

fn spinner(quiet: bool, msg: &str) -> ProgressBar {
    let pb = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner()
    };
    pb.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    pb.set_message(msg.to_string());
    pb.enable_steady_tick(std::time::Duration::from_millis(120));
    pb
}

/// Trains a bundle from the data directory in `opts` and writes it to `opts.out`.
pub fn train_dir(
    opts: &TrainOptions,
    cfg: &TrainConfig,
    serving: &ServingConfig,
    index: &IndexConfig,
) -> Result<TrainSummary, TrainError> {
    let mut phases: Vec<(String, f64)> = Vec::new();
    let mut phase =
        |name: &str, t: Instant| phases.push((name.to_string(), t.elapsed().as_secs_f64()));

    let t = Instant::now();
    let pb = spinner(opts.quiet, &format!("reading {}", opts.data.display()));
    let ds = crate::data::load_dir(
        &opts.data,
        &crate::data::LoadOptions {
            skip_bad_lines: opts.skip_bad_lines,
        },
    )?;
    pb.finish_with_message(format!(
        "read {} users, {} items, {} interactions",
        ds.n_users(),
        ds.n_items(),
        ds.interactions.len()
    ));
    phase("read", t);
    let summary = train_dataset(&ds, &opts.out, cfg, serving, index, opts, &mut phases)?;
    Ok(summary)
}

/// Trains from an in-memory data set (used by `train_dir` and by the evaluator).
pub fn train_dataset(
    ds: &Dataset,
    out: &Path,
    cfg: &TrainConfig,
    serving: &ServingConfig,
    index: &IndexConfig,
    opts: &TrainOptions,
    phases: &mut Vec<(String, f64)>,
) -> Result<TrainSummary, TrainError> {
    let trained = train_model(ds, cfg, serving, index, opts, phases)?;
    let t = Instant::now();
    crate::bundle::write_bundle(&trained.model, out)?;
    phases.push(("write bundle".into(), t.elapsed().as_secs_f64()));
    if trained.model.n_items() >= index.exact_below {
        // Large catalogues are served by HNSW: build the graphs here, once, and store them in the
        // bundle so `serve` loads them instead of building them at start-up.
        let t = Instant::now();
        let pb = spinner(opts.quiet, "building and storing the HNSW indexes");
        let m = &trained.model;
        let dir = out.join("index");
        for (name, vectors, bias, dim) in [
            ("cf", m.item_cf.clone(), Some(m.item_bias.clone()), m.cf_dim),
            ("content", m.item_content.clone(), None, m.content_dim),
        ] {
            let idx = VectorIndex::build(vectors, bias, dim, index)?;
            idx.dump(&dir, name)?;
        }
        pb.finish_with_message("HNSW indexes stored");
        phases.push(("hnsw indexes".into(), t.elapsed().as_secs_f64()));
    }
    Ok(TrainSummary {
        bundle: out.to_path_buf(),
        model_version: trained.model.manifest.model_version.clone(),
        users: ds.n_users(),
        items: ds.n_items(),
        interactions: ds.interactions.len(),
        phases: phases.clone(),
        ranker: trained.ranker_eval,
        ranker_best_iteration: trained.best_iteration,
        factorization_valid_recall: trained.factorization_valid_recall,
    })
}

/// Training groups of users known only by features needed to fit their own first phase.
const MIN_COLD_GROUPS: usize = 30;

/// One regime's gate decision (see [`gate`]).
struct Gate {
    passed: bool,
    /// What the control treatment serves this regime when the gate failed.
    fallback: crate::bandit::BlendWeights,
    reason: String,
}

/// The gate, decided on one regime's report users with paired bootstrap 95% CIs. The
/// alternative to the ranker is the best single source, unless the learned blend beats it with
/// the CI above zero. Against a single source the ranker must win with the CI above zero: a
/// ranker (and a blend) that tied with its best source on validation lost to it on the test sets
/// we measured (README, Evaluation). Against the learned blend a tie goes to the ranker, which
/// re-ranks the blend's cut starting from the blend's score, so it is refused only when it is
/// significantly worse.
fn gate(eval: &ranker::RankerEval, learned: &crate::bandit::BlendWeights, regime: &str) -> Gate {
    let blend_beats_source = eval
        .best_source_vs_blend
        .as_ref()
        .is_some_and(|c| c.below_zero());
    let source = ranker::single_source_weights(&eval.best_source);
    let (alt_name, alt_ndcg, fallback, vs_alt, tie_serves) = match source {
        Some(w) if !blend_beats_source => (
            format!("the {} source alone", eval.best_source),
            eval.best_source_ndcg,
            w,
            eval.ranker_vs_best_source,
            false,
        ),
        _ => (
            "the learned blend".to_string(),
            eval.blend_ndcg,
            *learned,
            eval.ranker_vs_blend,
            true,
        ),
    };
    let passed = vs_alt.is_some_and(|c| {
        if tie_serves {
            !c.below_zero()
        } else {
            c.above_zero()
        }
    });
    let ci = vs_alt.map_or("no CI".to_string(), |c| {
        format!("Δ {:+.4}, CI [{:+.4}, {:+.4}]", c.mean, c.lo, c.hi)
    });
    let reason = if passed {
        format!(
            "{regime}: the ranker (NDCG {:.4}) holds against its best alternative, {alt_name} ({alt_ndcg:.4}), on {} report users ({ci})",
            eval.ranker_ndcg, eval.users
        )
    } else {
        format!(
            "{regime}: the ranker (NDCG {:.4}) does not hold against {alt_name} ({alt_ndcg:.4}) on {} report users ({ci}): the control treatment serves {alt_name}",
            eval.ranker_ndcg, eval.users
        )
    };
    Gate {
        passed,
        fallback,
        reason,
    }
}

/// The serving plan from the gates: `warm` decides for users with a history (and for everyone
/// when there is no `cold` decision), `cold` for users known only by their features.
fn serving_plan(
    warm: &Gate,
    cold: Option<&Gate>,
    learned: &crate::bandit::BlendWeights,
    cold_first_phase: Option<&crate::bandit::BlendWeights>,
    depth: usize,
) -> crate::bundle::ServingPlan {
    let mut reason = warm.reason.clone();
    if let Some(c) = cold {
        reason.push_str("; ");
        reason.push_str(&c.reason);
    }
    crate::bundle::ServingPlan {
        ranker_adds_first_phase: true,
        first_phase_weights: learned.to_named(),
        cold_first_phase_weights: cold_first_phase.map(|w| w.to_named()),
        rerank_depth: depth,
        ranker_gate_passed: warm.passed,
        fallback_weights: warm.fallback.to_named(),
        cold_ranker_gate_passed: cold.map(|c| c.passed),
        cold_fallback_weights: cold.map(|c| c.fallback.to_named()),
        reason,
    }
}

/// What a training run produced, before anything is written.
pub struct TrainedModel {
    /// The final model, refitted on all data, with its ranker.
    pub model: crate::bundle::Model,
    /// The ranker's validation on held-out users against the blend and every single source.
    pub ranker_eval: ranker::RankerEval,
    /// Trees the ranker kept (early stopping's best iteration).
    pub best_iteration: usize,
    /// The holdout factorization's validation recall, when it was measured.
    pub factorization_valid_recall: Option<f64>,
}

/// The configs of a refit that reuses what a validated fit chose (its best epoch and item2item
/// λ): no per-epoch validation and no second λ search. Later folds and the final refit use it.
fn reuse_validated(
    cfg: &TrainConfig,
    fcfg: &super::factorization::FactorizationConfig,
    validated: &super::FitReport,
) -> (TrainConfig, super::factorization::FactorizationConfig) {
    let mut fcfg = fcfg.clone();
    fcfg.max_epochs = validated.best_epoch.max(1);
    let mut cfg = cfg.clone();
    if let Some(lambda) = validated.item2item.lambda {
        cfg.item2item.lambdas = vec![lambda];
    }
    (cfg, fcfg)
}

/// The training run without writing.
pub fn train_model(
    ds: &Dataset,
    cfg: &TrainConfig,
    serving: &ServingConfig,
    index: &IndexConfig,
    opts: &TrainOptions,
    phases: &mut Vec<(String, f64)>,
) -> Result<TrainedModel, TrainError> {
    if ds.interactions.is_empty() {
        return Err(TrainError::Invalid("no interactions to train on".into()));
    }
    let seed = opts.seed.unwrap_or(cfg.seed);
    let mut rcfg = cfg.ranker.clone();
    if let Some(h) = opts.holdout {
        rcfg.holdout = h;
    }
    let mut fcfg = cfg.factorization.clone();
    fcfg.seed = seed;

    let t = Instant::now();
    let pb = spinner(
        opts.quiet,
        "featurizing users and items; content embeddings",
    );
    let prep = prepare(ds, cfg);
    pb.finish_with_message(format!(
        "features: {} user, {} item; content dim {}",
        prep.user_feature_names.len(),
        prep.item_feature_names.len(),
        cfg.content_dim
    ));
    phases.push(("features + content".into(), t.elapsed().as_secs_f64()));

    // 1–2. Per holdout fold: fit the sources without the fold's held-out interactions, then
    //      run the real stage-1 sources for the sampled users, labelled by those held-out items.
    //      Users keep one role (training, early stopping, report) across folds, so no user's
    //      labels are on both sides of a comparison.
    let folds = if ds.interactions.len() > rcfg.folds_max_interactions {
        1
    } else {
        rcfg.folds.max(1)
    };
    let mut groups: Vec<Group> = Vec::new();
    let mut users: Vec<u32> = Vec::new();
    let mut cold_cases = ranker::ColdCases::default();
    let mut fit_report = None;
    let mut fold_seconds = Vec::with_capacity(folds);
    // Offline, exact search is affordable and spares building a graph that is thrown away.
    let exact = IndexConfig {
        exact_below: usize::MAX,
        ..index.clone()
    };
    for fold in 0..folds {
        let t = Instant::now();
        let (fit, targets) = ranker::holdout_split(&ds.interactions, &rcfg, seed, fold);
        if fold == 0 {
            users = targets.iter().map(|x| x.user).collect();
            users.dedup();
            users.shuffle(&mut StdRng::seed_from_u64(seed ^ 0x5EED));
            let spare = users.split_off(users.len().min(rcfg.max_users));
            cold_cases = ranker::ColdCases::pick(&users, &spare, &ds.interactions, &rcfg, seed);
            // Cold users from outside the sample join it (their groups add to the warm ones);
            // a second shuffle spreads them over the training, early-stopping and report roles.
            users.extend(spare.iter().filter(|u| cold_cases.users.contains(u)));
            users.shuffle(&mut StdRng::seed_from_u64(seed ^ 0x5EED ^ 1));
        }
        // Cold cases: the chosen users and items are hidden from this fold's fit.
        let (fit, targets) = cold_cases.apply(fit, targets);
        if targets.is_empty() {
            continue;
        }
        let epochs_bar = if opts.quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(fcfg.max_epochs as u64)
        };
        epochs_bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} epochs {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let progress = |r: super::factorization::EpochReport| {
            epochs_bar.inc(1);
            epochs_bar.set_message(format!("{r:?}"));
        };
        // Later folds reuse what fold 1 validated, as the final refit does.
        let (holdout_model, report) = match &fit_report {
            None => fit_sources(ds, &prep, &fit, Some(&targets), cfg, &fcfg, &progress)?,
            Some(first) => {
                let (fold_cfg, fold_fcfg) = reuse_validated(cfg, &fcfg, first);
                fit_sources(ds, &prep, &fit, None, &fold_cfg, &fold_fcfg, &progress)?
            }
        };
        epochs_bar.finish_with_message(format!(
            "fold {}/{folds} factorization: best epoch {} (recall {:?})",
            fold + 1,
            report.best_epoch,
            report.valid_metric
        ));
        let fit_secs = t.elapsed().as_secs_f64();
        phases.push((
            format!("factorization (holdout fit, fold {})", fold + 1),
            fit_secs,
        ));
        let t = Instant::now();
        let pb = spinner(opts.quiet, "generating labelled candidate lists");
        let engine = Arc::new(Engine::new(holdout_model, serving.clone(), &exact, None)?);
        groups.extend(ranker::build_groups(
            &engine,
            &targets,
            &users,
            &rcfg.counts,
        ));
        pb.finish_and_clear();
        let list_secs = t.elapsed().as_secs_f64();
        phases.push((format!("candidate lists, fold {}", fold + 1), list_secs));
        fold_seconds.push(fit_secs + list_secs);
        if fold == 0 {
            fit_report = Some(report);
        }
    }
    let Some(fit_report) = fit_report else {
        return Err(TrainError::Invalid(
            "no user has enough interactions for a ranker holdout".into(),
        ));
    };
    // Three disjoint sets of users: training (the learned blend and the ranker), early stopping,
    // and report (the comparison and the gate; never seen by any fit).
    let n_valid = ((users.len() as f64) * rcfg.valid_share).round() as usize;
    let (valid_users, _) = users.split_at(n_valid.min(users.len()));
    let (es_users, report_users) = valid_users.split_at(valid_users.len() / 2);
    let es_users: FxHashSet<u32> = es_users.iter().copied().collect();
    let report_users: FxHashSet<u32> = report_users.iter().copied().collect();
    let has_pos = |g: &&Group| g.labels.iter().any(|&l| l > 0.0);
    let es: Vec<&Group> = groups
        .iter()
        .filter(|g| es_users.contains(&g.user))
        .collect();
    let report: Vec<&Group> = groups
        .iter()
        .filter(|g| report_users.contains(&g.user))
        .collect();
    let train: Vec<&Group> = groups
        .iter()
        .filter(|g| !es_users.contains(&g.user) && !report_users.contains(&g.user))
        .filter(has_pos)
        .collect();
    let (es, report) = (&es[..], &report[..]);
    let valid_len = es.len() + report.len();
    spinner(opts.quiet, "").finish_with_message(format!(
        "candidate lists ({folds} folds): {} train groups, {} early-stopping groups, {} report groups",
        train.len(),
        es.len(),
        report.len()
    ));
    if train.is_empty() || es.is_empty() || report.is_empty() {
        return Err(TrainError::Invalid(format!(
            "too little data for the ranker: {} training groups with a positive, {} validation users",
            train.len(),
            valid_len
        )));
    }

    // 3. The learned first-phase blend, then LightGBM lambdarank on exactly its cut, with
    //    early stopping on the early-stopping users.
    let t = Instant::now();
    let pb = spinner(
        opts.quiet,
        "fitting the blend; training the LightGBM lambdarank ranker",
    );
    // Users known only by their features get their own first phase when there are enough of
    // them to fit one; the learned blend is then fitted on the users with a history alone (the
    // ones it serves), so the cold users' best weights do not pull it.
    let is_cold = |g: &&Group| crate::ranking::phase::is_features_only(&g.profile);
    let (cold_train, warm_train): (Vec<&Group>, Vec<&Group>) =
        train.iter().copied().partition(|g| is_cold(g));
    let cold_blend =
        (cold_train.len() >= MIN_COLD_GROUPS).then(|| ranker::fit_blend(&cold_train, rcfg.ndcg_at));
    let blend_groups = if cold_blend.is_some() && !warm_train.is_empty() {
        &warm_train
    } else {
        &train
    };
    let (learned, learned_train_ndcg) = ranker::fit_blend(blend_groups, rcfg.ndcg_at);
    let t_blend = t.elapsed().as_secs_f64();
    let cold = cold_blend.as_ref().map(|(w, _)| w);
    let depth = serving.rerank_depth;
    let cut = |gs: &[&Group]| -> Vec<Group> {
        gs.par_iter()
            .map(|g| ranker::cut_group(g, ranker::first_phase_of(g, &learned, cold), depth))
            .filter(|g| g.labels.iter().any(|&l| l > 0.0))
            .collect()
    };
    let (train_owned, es_owned) = (cut(&train), cut(es));
    let train_cut: Vec<&Group> = train_owned.iter().collect();
    let es_cut: Vec<&Group> = es_owned.iter().collect();
    if train_cut.is_empty() || es_cut.is_empty() {
        return Err(TrainError::Invalid(
            "no held-out item survives the first-phase cut: raise serving.rerank_depth".into(),
        ));
    }
    let t_cut = t.elapsed().as_secs_f64();
    let tr = ranker::flatten(&train_cut, rcfg.max_group, seed);
    let va = ranker::flatten(&es_cut, 0, seed);
    let mut params = ranker::lgbm_params(&rcfg, seed);
    params["early_stopping_round"] = serde_json::json!(rcfg.early_stopping_rounds);
    let n_features = crate::ranking::features::N_FEATURES;
    let trained = crate::ranking::lgbm::train_lambdarank(
        // Boosting starts from the first phase's score: the trees learn corrections to it, so
        // early stopping at few trees means "the blend, barely changed", never worse.
        &LabeledRows {
            features: &tr.rows,
            n_features,
            labels: &tr.labels,
            groups: Some(&tr.sizes),
            init_score: Some(&tr.base),
        },
        // `early_stopping_rounds = 0` keeps every iteration (no validation-driven cut); the
        // held-out users still measure the result below.
        Some(&LabeledRows {
            features: &va.rows,
            n_features,
            labels: &va.labels,
            groups: Some(&va.sizes),
            init_score: Some(&va.base),
        })
        .filter(|_| rcfg.early_stopping_rounds > 0),
        &params,
        Some(&crate::ranking::features::FEATURE_NAMES[..]),
    )?;
    let t_lgbm = t.elapsed().as_secs_f64();
    let ranker_text = trained.model_text;
    let best_iteration = trained.log.best_iteration;
    let ranker = crate::ranking::Ranker::load(
        &ranker_text,
        crate::ranking::RankerBackend::Native,
        crate::ranking::features::N_FEATURES,
    )?;
    let eval = ranker::evaluate(&ranker, report, rcfg.ndcg_at, &learned, cold, depth)?;
    pb.finish_with_message(format!(
        "ranker: {} trees; NDCG@{} on {} report users: ranker {:.4} vs best source {} {:.4}, learned blend {:.4}",
        best_iteration,
        rcfg.ndcg_at,
        eval.users,
        eval.ranker_ndcg,
        eval.best_source,
        eval.best_source_ndcg,
        eval.blend_ndcg
    ));
    // The gate per regime: users with a history, and (when enough report users are) users
    // known only by their features, whose best alternative is usually another one.
    let (cold_report, warm_report): (Vec<&Group>, Vec<&Group>) =
        report.iter().copied().partition(|g| is_cold(g));
    let (warm_eval, cold_eval) = if cold_report.len() >= MIN_COLD_GROUPS && !warm_report.is_empty()
    {
        let on = |gs: &[&Group]| ranker::evaluate(&ranker, gs, rcfg.ndcg_at, &learned, cold, depth);
        (Some(on(&warm_report)?), Some(on(&cold_report)?))
    } else {
        (None, None)
    };
    let warm_gate = gate(
        warm_eval.as_ref().unwrap_or(&eval),
        &learned,
        if warm_eval.is_some() {
            "users with a history"
        } else {
            "all users"
        },
    );
    let cold_gate = cold_eval
        .as_ref()
        .map(|e| gate(e, cold.unwrap_or(&learned), "users known only by features"));
    let plan = serving_plan(&warm_gate, cold_gate.as_ref(), &learned, cold, depth);
    for g in std::iter::once(&warm_gate).chain(cold_gate.as_ref()) {
        if g.passed {
            if !opts.quiet {
                eprintln!("gate: {}", g.reason);
            }
            tracing::info!(reason = %g.reason, "ranker gate passed");
        } else {
            // Loudly: shipping a second stage worse than its first is the failure to prevent.
            eprintln!("WARNING: {}", g.reason);
            tracing::warn!(reason = %g.reason, "ranker gate failed");
        }
    }
    let (n_train_groups, n_cold_groups) = (train.len(), cold_train.len());
    // The candidate lists (and the fold engines they hold) are done with: free them before the
    // final refit, so its memory does not stack on theirs.
    drop((train_cut, es_cut, train, cold_train));
    drop((train_owned, es_owned, groups));
    let t_all = t.elapsed().as_secs_f64();
    phases.push(("ranker".into(), t_all));
    // Where the ranker phase goes (indented under it in the summary).
    for (name, secs) in [
        ("blend fits", t_blend),
        ("first-phase cut", t_cut - t_blend),
        ("lightgbm", t_lgbm - t_cut),
        ("evaluation", t_all - t_lgbm),
    ] {
        phases.push((format!("ranker: {name}"), secs));
    }

    // 4. Refit the sources on all data for serving, with the epochs early stopping chose and the
    //    item2item penalty the holdout fit validated (no second λ search).
    let t = Instant::now();
    let (final_train_cfg, final_cfg) = reuse_validated(cfg, &fcfg, &fit_report);
    let epochs_bar2 = if opts.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(final_cfg.max_epochs as u64)
    };
    let progress2 = |_r: super::factorization::EpochReport| epochs_bar2.inc(1);
    let (mut model, final_fit) = fit_sources(
        ds,
        &prep,
        &ds.interactions,
        None,
        &final_train_cfg,
        &final_cfg,
        &progress2,
    )?;
    epochs_bar2.finish_with_message("refit on all data");
    phases.push((
        "factorization (final refit)".into(),
        t.elapsed().as_secs_f64(),
    ));

    model.ranker_text = Some(ranker_text);
    model.manifest.has_ranker = true;
    model.manifest.serving_plan = Some(plan);
    model.manifest.training = serde_json::json!({
        "seed": seed,
        "ranker_holdout": rcfg.holdout,
        "factorization": { "holdout_fit": fit_report, "final_fit": final_fit, "config": fcfg },
        "ranker": {
            "best_iteration": best_iteration,
            "validation": eval,
            "validation_by_regime": warm_eval.as_ref().map(|w| serde_json::json!({
                "with_history": w, "features_only": cold_eval,
            })),
            "learned_blend": { "weights": learned.to_named(), "train_ndcg": learned_train_ndcg },
            "cold_blend": cold_blend.as_ref().map(|(w, n)| serde_json::json!({
                "weights": w.to_named(), "train_ndcg": n, "groups": n_cold_groups,
            })),
            "rerank_depth": depth,
            "config": rcfg,
            "train_groups": n_train_groups,
            "folds": folds,
            "cold_users": cold_cases.users.len(),
            "cold_items": cold_cases.items.len(),
            "fold_seconds": fold_seconds,
            "train_rows": tr.labels.len(),
        },
        "phases_seconds": phases,
    });
    Ok(TrainedModel {
        model,
        ranker_eval: eval,
        best_iteration,
        factorization_valid_recall: fit_report.valid_metric,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn eval(ranker: f64, blend: f64, best: (&str, f64)) -> ranker::RankerEval {
        let ci = |d: f64| crate::ranking::bootstrap::DiffCi {
            mean: d,
            lo: d - 0.005,
            hi: d + 0.005,
            resamples: 1000,
        };
        ranker::RankerEval {
            users: 100,
            ranker_ndcg: ranker,
            source_ndcg: BTreeMap::from([(best.0.to_string(), best.1)]),
            blend_ndcg: blend,
            default_blend_ndcg: 0.0,
            best_source: best.0.to_string(),
            best_source_ndcg: best.1,
            candidate_recall: 1.0,
            cut_recall: 1.0,
            ranker_vs_blend: Some(ci(ranker - blend)),
            ranker_vs_best_source: Some(ci(ranker - best.1)),
            best_source_vs_blend: Some(ci(best.1 - blend)),
        }
    }

    #[test]
    fn the_gate_wants_a_significant_win_over_a_source_and_no_loss_to_the_blend() {
        let learned = crate::bandit::BlendWeights::default();
        let one = |w: &crate::bandit::BlendWeights| (w.item2item, w.cf, w.content);
        // The blend beats the best source significantly; the ranker beats the blend: it serves.
        let g = gate(&eval(0.30, 0.25, ("cf", 0.20)), &learned, "all users");
        assert!(g.passed, "{}", g.reason);
        assert_eq!(g.fallback, learned);

        // The ranker is significantly worse than the blend: the blend serves.
        let g = gate(&eval(0.24, 0.25, ("cf", 0.20)), &learned, "all users");
        assert!(
            !g.passed && g.reason.contains("learned blend"),
            "{}",
            g.reason
        );
        assert_eq!(g.fallback, learned);

        // A single source beats the blend and the ranker: it serves alone.
        let g = gate(
            &eval(0.26, 0.25, ("item2item", 0.275)),
            &learned,
            "all users",
        );
        assert!(!g.passed && g.reason.contains("item2item"), "{}", g.reason);
        assert_eq!(one(&g.fallback), (1.0, 0.0, 0.0));

        // The blend and the source tie: the simpler one, the source, is the alternative; a
        // ranker ahead of both by less than the noise does not serve.
        let g = gate(
            &eval(0.256, 0.252, ("item2item", 0.253)),
            &learned,
            "all users",
        );
        assert!(!g.passed && g.reason.contains("item2item"), "{}", g.reason);
        assert_eq!(one(&g.fallback), (1.0, 0.0, 0.0));

        // Within the noise of the blend it re-ranks: the ranker serves.
        let g = gate(&eval(0.252, 0.25, ("cf", 0.20)), &learned, "all users");
        assert!(g.passed, "{}", g.reason);
        let g = gate(&eval(0.248, 0.25, ("cf", 0.20)), &learned, "all users");
        assert!(g.passed, "{}", g.reason);
    }

    #[test]
    fn the_plan_carries_a_decision_per_regime() {
        let learned = crate::bandit::BlendWeights::default();
        let warm = gate(
            &eval(0.30, 0.25, ("cf", 0.20)),
            &learned,
            "users with a history",
        );
        let cold = gate(
            &eval(0.10, 0.09, ("segment", 0.12)),
            &learned,
            "users known only by features",
        );
        let p = serving_plan(&warm, Some(&cold), &learned, None, 64);
        assert!(p.ranker_gate_passed);
        assert_eq!(p.cold_ranker_gate_passed, Some(false));
        let w = crate::bandit::BlendWeights::from_named(p.cold_fallback_weights.as_ref().unwrap());
        assert_eq!((w.segment, w.cf, w.item2item), (1.0, 0.0, 0.0));
        assert!(p.reason.contains("users with a history") && p.reason.contains("segment"));
        let p = serving_plan(&warm, None, &learned, None, 64);
        assert_eq!(
            (p.cold_ranker_gate_passed, p.cold_fallback_weights),
            (None, None)
        );
    }
}
