//! `recserve evaluate`: either split a data directory, train on the train part and evaluate, or
//! evaluate an existing bundle against a held-out interactions file. Writes the report.

use super::ablation::{EvalInput, ablation_rows_for, evaluate};
use super::report::write_report;
use super::split::{SplitKind, split};
use crate::data::dataset::Interaction;
use crate::pipeline::{Engine, ServingConfig, Treatment};
use crate::retrieval::index::IndexConfig;
use crate::train::{Holdout, TrainConfig, TrainOptions};
use clap::Args;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Clone, Args)]
pub struct EvaluateArgs {
    /// Data directory to split, train on and evaluate.
    #[arg(long, conflicts_with = "bundle")]
    pub data: Option<PathBuf>,
    /// temporal | leave-last | random-user | random-item
    #[arg(long, default_value = "temporal")]
    pub split: String,
    /// Training share of the split.
    #[arg(long, default_value_t = 0.75)]
    pub ratio: f64,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Report directory.
    #[arg(long, default_value = "out/eval")]
    pub out: PathBuf,
    /// Evaluate this bundle instead of training one (needs --test).
    #[arg(long, requires = "test")]
    pub bundle: Option<PathBuf>,
    /// Held-out interactions (generic interactions.csv format) for --bundle.
    #[arg(long)]
    pub test: Option<PathBuf>,
    /// Test users evaluated at most (sampled, seeded).
    #[arg(long, default_value_t = 2000)]
    pub max_users: usize,
    /// Window of the recent-popularity baseline row, in days before training's last interaction.
    #[arg(long, default_value_t = 30.0)]
    pub recent_days: f64,
    /// Share of the training users whose every training interaction moves to test (they keep
    /// their features): the `cold_users_features_only` slice. Only with --data.
    #[arg(long, default_value_t = 0.0)]
    pub cold_users: f64,
    /// Share of the training items whose every training interaction moves to test: cold items.
    #[arg(long, default_value_t = 0.0)]
    pub cold_items: f64,
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long)]
    pub quiet: bool,
}

/// The config sections an evaluation reads (training, serving, the vector index).
#[derive(Debug, Clone)]
pub struct EvalConfig {
    pub train: TrainConfig,
    pub serving: ServingConfig,
    pub index: IndexConfig,
}

/// The sections an evaluation ran with, as the JSON of their config keys (the `[train]`,
/// `[serving]` and `[index]` tables of the TOML, key for key).
pub fn config_json(cfg: &EvalConfig) -> serde_json::Value {
    let value = |v: Result<serde_json::Value, serde_json::Error>| {
        v.unwrap_or_else(|e| serde_json::Value::String(format!("unserialisable: {e}")))
    };
    serde_json::json!({
        "train": value(serde_json::to_value(&cfg.train)),
        "serving": value(serde_json::to_value(&cfg.serving)),
        "index": value(serde_json::to_value(&cfg.index)),
    })
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Train(#[from] crate::train::TrainError),
    #[error(transparent)]
    Data(#[from] crate::data::error::DataError),
    #[error(transparent)]
    Bundle(#[from] crate::bundle::BundleError),
    #[error(transparent)]
    Engine(#[from] crate::pipeline::EngineError),
    #[error("evaluation: {0}")]
    Eval(String),
    #[error("writing the report: {0}")]
    Io(#[from] std::io::Error),
}

/// Runs `recserve evaluate` with the sections of the configuration `args.config` names (the
/// caller loads it: configuration is assembled above this layer).
pub fn run(args: &EvaluateArgs, cfg: &EvalConfig) -> Result<(), EvalError> {
    if args.k == 0 {
        return Err(EvalError::Usage("--k must be at least 1".into()));
    }
    let report = match (&args.data, &args.bundle, &args.test) {
        (Some(data), None, _) => evaluate_data(data, args, cfg)?,
        (None, Some(bundle), Some(test)) => evaluate_bundle(bundle, test, args, cfg)?,
        _ => {
            return Err(EvalError::Usage(
                "give --data DIR, or --bundle DIR with --test FILE".into(),
            ));
        }
    };
    write_report(&report, &args.out)?;
    print!("{}", super::report::render_markdown(&report));
    println!("\nreport written to {}", args.out.display());
    Ok(())
}

/// Split, train with `recserve train`'s code, evaluate. Returns the report.
pub fn evaluate_data(
    data: &Path,
    args: &EvaluateArgs,
    cfg: &EvalConfig,
) -> Result<super::report::EvalReport, EvalError> {
    let kind: SplitKind = args
        .split
        .parse()
        .map_err(|e| EvalError::Usage(format!("{e}")))?;
    let ds = crate::data::load_dir(data, &Default::default())?;
    let (train, test) = split(&ds.interactions, kind, args.ratio, args.seed)
        .map_err(|e| EvalError::Usage(e.to_string()))?;
    for (flag, share) in [
        ("--cold-users", args.cold_users),
        ("--cold-items", args.cold_items),
    ] {
        if !(0.0..1.0).contains(&share) {
            return Err(EvalError::Usage(format!(
                "{flag} must be a share in [0, 1), got {share}"
            )));
        }
    }
    let (train, test) =
        super::coldstart::hide_cold(train, test, args.cold_users, args.cold_items, args.seed);
    let train_ds = ds.with_interactions(train.clone());
    // The ranker's holdout follows the split: random for random splits, temporal otherwise.
    let holdout = match kind {
        SplitKind::RandomUser | SplitKind::RandomItem => Holdout::Random,
        SplitKind::Temporal | SplitKind::LeaveLast => Holdout::Temporal,
    };
    let opts = TrainOptions {
        data: data.to_path_buf(),
        out: args.out.join("bundle"),
        holdout: Some(holdout),
        seed: Some(args.seed),
        skip_bad_lines: false,
        quiet: args.quiet,
    };
    let mut phases = Vec::new();
    let trained = crate::train::run::train_model(
        &train_ds,
        &cfg.train,
        &cfg.serving,
        &cfg.index,
        &opts,
        &mut phases,
    )?;
    let ranker_eval = trained.ranker_eval;
    // The same model with the ranker over every candidate, to price the first-phase cut.
    let rerank_all = rerank_all_engine(&trained.model, cfg, None)?;
    let engine = Arc::new(Engine::new(
        trained.model,
        cfg.serving.clone(),
        &cfg.index,
        None,
    )?);
    let mut summary = BTreeMap::new();
    summary.insert("data".into(), serde_json::json!(data.display().to_string()));
    summary.insert("users".into(), serde_json::json!(ds.n_users()));
    summary.insert("items".into(), serde_json::json!(ds.n_items()));
    summary.insert(
        "interactions".into(),
        serde_json::json!(ds.interactions.len()),
    );
    summary.insert(
        "split".into(),
        serde_json::json!(format!("{} (ratio {})", kind.as_str(), args.ratio)),
    );
    summary.insert(
        "cold_hidden".into(),
        serde_json::json!(format!(
            "users {}, items {}",
            args.cold_users, args.cold_items
        )),
    );
    summary.insert(
        "ranker_validation_ndcg".into(),
        serde_json::json!(ranker_eval.ranker_ndcg),
    );
    let rows = ablation_rows_for(&base_treatment(cfg), &engine);
    let mut input = eval_input(engine, &train, &test, args);
    input.rerank_all = rerank_all;
    let mut report = evaluate(&input, &rows, summary).map_err(EvalError::Eval)?;
    report.config = config_json(cfg);
    Ok(report)
}

/// Evaluates an existing bundle against held-out interactions (ids the bundle does not know are skipped).
pub fn evaluate_bundle(
    bundle: &Path,
    test_file: &Path,
    args: &EvaluateArgs,
    cfg: &EvalConfig,
) -> Result<super::report::EvalReport, EvalError> {
    let model = crate::bundle::Model::read(bundle)?;
    let mut train = Vec::with_capacity(model.hist_items.len());
    for u in 0..model.n_users() as u32 {
        let (items, ts) = model.history(u);
        train.extend(items.iter().zip(ts).map(|(&item, &ts)| Interaction {
            user: u,
            item,
            ts,
            weight: 1.0,
            count: 1,
        }));
    }
    let mut rdr = csv::Reader::from_path(test_file)
        .map_err(|e| EvalError::Usage(format!("{}: {e}", test_file.display())))?;
    let headers = rdr
        .headers()
        .map_err(|e| EvalError::Usage(format!("{}: {e}", test_file.display())))?
        .clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| EvalError::Usage(format!("{}: no {name} column", test_file.display())))
    };
    let (cu, ci, ct) = (col("user_id")?, col("item_id")?, col("timestamp")?);
    let mut test = Vec::new();
    let mut skipped = 0u64;
    for (line, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| {
            EvalError::Usage(format!("{} line {}: {e}", test_file.display(), line + 2))
        })?;
        let (Some(u), Some(i)) = (
            rec.get(cu).and_then(|u| model.user_index.get(u)),
            rec.get(ci).and_then(|i| model.item_index.get(i)),
        ) else {
            skipped += 1;
            continue;
        };
        let ts = rec.get(ct).and_then(|t| t.parse().ok()).unwrap_or(0);
        test.push(Interaction {
            user: *u,
            item: *i,
            ts,
            weight: 1.0,
            count: 1,
        });
    }
    let mut summary = BTreeMap::new();
    summary.insert(
        "bundle".into(),
        serde_json::json!(bundle.display().to_string()),
    );
    summary.insert(
        "test_file".into(),
        serde_json::json!(test_file.display().to_string()),
    );
    summary.insert("users".into(), serde_json::json!(model.n_users()));
    summary.insert("items".into(), serde_json::json!(model.n_items()));
    summary.insert(
        "test_rows_skipped_unknown_ids".into(),
        serde_json::json!(skipped),
    );
    let rerank_all = rerank_all_engine(&model, cfg, Some(bundle))?;
    let engine = Arc::new(Engine::new(
        model,
        cfg.serving.clone(),
        &cfg.index,
        Some(bundle),
    )?);
    let rows = ablation_rows_for(&base_treatment(cfg), &engine);
    let mut input = eval_input(engine, &train, &test, args);
    input.rerank_all = rerank_all;
    evaluate(&input, &rows, summary).map_err(EvalError::Eval)
}

/// The full row's treatment: the shipped defaults with the serving config's exposure policy
/// made explicit, so the exposure rows can vary it.
pub fn base_treatment(cfg: &EvalConfig) -> Treatment {
    Treatment {
        exposure: Some(cfg.serving.exposure.policy()),
        ..Treatment::default()
    }
}

/// A twin engine whose ranker re-ranks every candidate (`rerank_depth = 0`), when the serving
/// config cuts; `None` when it already ranks everything or there is no ranker.
fn rerank_all_engine(
    model: &crate::bundle::Model,
    cfg: &EvalConfig,
    bundle: Option<&std::path::Path>,
) -> Result<Option<Arc<Engine>>, EvalError> {
    if cfg.serving.rerank_depth == 0 || model.ranker_text.is_none() {
        return Ok(None);
    }
    let mut serving = cfg.serving.clone();
    serving.rerank_depth = 0;
    Ok(Some(Arc::new(Engine::new(
        model.clone(),
        serving,
        &cfg.index,
        bundle,
    )?)))
}

fn eval_input<'a>(
    engine: Arc<Engine>,
    train: &'a [Interaction],
    test: &'a [Interaction],
    args: &EvaluateArgs,
) -> EvalInput<'a> {
    EvalInput {
        engine,
        train,
        test,
        k: args.k,
        max_users: args.max_users,
        seed: args.seed,
        quiet: args.quiet,
        recent_days: args.recent_days,
        rerank_all: None,
    }
}
