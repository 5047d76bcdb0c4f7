//! Offline training: data set → hybrid factorization, content embeddings, popularity → ranker
//! trained on the real stage-1 candidates of held-out interactions → bundle. `fit_sources` is the
//! one place the stage-1 model is fitted, used for the ranker's holdout fit, the final refit and
//! the evaluator.

pub mod content;
pub mod factorization;
pub mod featurize;
pub mod item2item;
pub mod popularity;
pub mod ranker;
pub mod run;
pub mod segments;

pub use run::{TrainOptions, TrainSummary, train_dir};

use crate::bundle::{DataSummary, FORMAT_VERSION, Manifest, Model};
use crate::clock::{model_version, now_unix};
use crate::data::dataset::{Dataset, Interaction};
use crate::ranking::features::FEATURE_NAMES;
use factorization::{FactorizationConfig, FeatureMatrix, TrainInteractions};
use featurize::FeatureSpace;
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Data(#[from] crate::data::error::DataError),
    #[error(transparent)]
    Factorization(#[from] factorization::FactorizationError),
    #[error(transparent)]
    Ranker(#[from] crate::ranking::gbdt::RankerError),
    #[error(transparent)]
    Bundle(#[from] crate::bundle::BundleError),
    #[error(transparent)]
    Engine(#[from] crate::pipeline::EngineError),
    #[error(transparent)]
    Item2Item(#[from] item2item::Item2ItemError),
    #[error("vector index: {0}")]
    Index(#[from] crate::retrieval::index::IndexError),
    #[error("training data: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Holdout {
    Temporal,
    Random,
}

impl std::str::FromStr for Holdout {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "temporal" => Ok(Holdout::Temporal),
            "random" => Ok(Holdout::Random),
            other => Err(format!(
                "unknown holdout {other:?}: expected temporal or random"
            )),
        }
    }
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub factorization: FactorizationConfig,
    pub content_dim: usize,
    pub numeric_bins: usize,
    /// Half-life of the popularity decay in days (0 = plain counts).
    pub popularity_half_life_days: f64,
    pub trend_days: f64,
    pub ranker: ranker::RankerConfig,
    /// The item-to-item model (EASE / item-kNN); every key has a default.
    #[serde(default)]
    pub item2item: item2item::Item2ItemConfig,
    /// Segment popularity (user feature values); every key has a default.
    #[serde(default)]
    pub segments: segments::SegmentConfig,
    pub seed: u64,
}

/// Feature spaces computed once per data set (they do not depend on interactions).
pub struct Prepared {
    pub user_space: FeatureSpace,
    pub item_space: FeatureSpace,
    pub user_matrix: FeatureMatrix,
    pub item_matrix: FeatureMatrix,
    pub user_feature_names: Vec<String>,
    pub item_feature_names: Vec<String>,
    pub item_content: std::sync::Arc<[f32]>,
}

pub fn prepare(ds: &Dataset, cfg: &TrainConfig) -> Prepared {
    let user_space = featurize::feature_space(&ds.user_features, cfg.numeric_bins);
    let item_space = featurize::feature_space(&ds.item_features, cfg.numeric_bins);
    let (user_matrix, user_feature_names) =
        featurize::hybrid_matrix(&user_space, ds.n_users(), "user", &ds.user_ids);
    let (item_matrix, item_feature_names) =
        featurize::hybrid_matrix(&item_space, ds.n_items(), "item", &ds.item_ids);
    let item_content: std::sync::Arc<[f32]> =
        content::content_embeddings(&item_space, cfg.content_dim, cfg.seed ^ 0xC0FFEE).into();
    Prepared {
        user_space,
        item_space,
        user_matrix,
        item_matrix,
        user_feature_names,
        item_feature_names,
        item_content,
    }
}

/// What fitting the sources reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FitReport {
    pub epochs_run: usize,
    pub best_epoch: usize,
    pub valid_metric: Option<f64>,
    pub seconds: f64,
    /// How the item-to-item model was fitted (method, λ and its validation, timings).
    pub item2item: item2item::Item2ItemReport,
}

/// Fits the stage-1 sources on `inter` (sorted by user, ts) and returns a servable model without a
/// ranker. `valid` drives the factorization's early stopping.
pub fn fit_sources(
    ds: &Dataset,
    prep: &Prepared,
    inter: &[Interaction],
    valid: Option<&[Interaction]>,
    cfg: &TrainConfig,
    fcfg: &FactorizationConfig,
    progress: &dyn Fn(factorization::EpochReport),
) -> Result<(Model, FitReport), TrainError> {
    let t = std::time::Instant::now();
    let to_pairs = |xs: &[Interaction]| TrainInteractions {
        n_users: ds.n_users(),
        n_items: ds.n_items(),
        pairs: xs.iter().map(|x| (x.user, x.item)).collect(),
        weights: xs.iter().map(|x| x.weight).collect(),
    };
    let train = to_pairs(inter);
    let valid_pairs = valid.map(to_pairs);
    let (mf, report) = factorization::train(
        fcfg,
        &prep.user_matrix,
        &prep.item_matrix,
        &train,
        valid_pairs.as_ref(),
        progress,
    )?;
    let (neighbours, i2i_report) = item2item::fit(ds.n_items(), inter, &cfg.item2item)?;
    let user_cf = mf.user_vectors(&prep.user_matrix);
    let (item_cf, item_bias) = mf.item_vectors(&prep.item_matrix);

    let reference_ts = inter.iter().map(|x| x.ts).max().unwrap_or(0);
    let first_ts = inter.iter().map(|x| x.ts).min().unwrap_or(0);
    let item_stats = popularity::item_stats(
        ds.n_items(),
        inter,
        reference_ts,
        cfg.popularity_half_life_days,
        cfg.trend_days,
    );

    let segments = segments::fit(
        &prep.user_space,
        ds.n_users(),
        inter,
        reference_ts,
        cfg.popularity_half_life_days,
        &cfg.segments,
    );

    let mut hist_indptr = vec![0usize; ds.n_users() + 1];
    for x in inter {
        hist_indptr[x.user as usize + 1] += 1;
    }
    for u in 0..ds.n_users() {
        hist_indptr[u + 1] += hist_indptr[u];
    }
    let mut by_user: Vec<&Interaction> = inter.iter().collect();
    by_user.sort_by_key(|x| (x.user, x.ts, x.item));
    let hist_items: Vec<u32> = by_user.iter().map(|x| x.item).collect();
    let hist_ts: Vec<i64> = by_user.iter().map(|x| x.ts).collect();

    let mut item_cat_indptr = vec![0usize];
    let mut item_cat = Vec::new();
    for i in 0..ds.n_items() {
        item_cat.extend(ds.item_categories.get(i).map_or(&[][..], |c| c.as_slice()));
        item_cat_indptr.push(item_cat.len());
    }
    let users_with: rustc_hash::FxHashSet<u32> = inter.iter().map(|x| x.user).collect();
    let items_with: rustc_hash::FxHashSet<u32> = inter.iter().map(|x| x.item).collect();
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        model_version: model_version(cfg.seed),
        created_at: now_unix(),
        data: DataSummary {
            users: ds.n_users(),
            items: ds.n_items(),
            interactions: inter.len(),
            users_without_interactions: ds.n_users() - users_with.len(),
            items_without_interactions: ds.n_items() - items_with.len(),
            categories: ds.category_vocab.len(),
            first_ts,
            last_ts: reference_ts,
        },
        cf_dim: mf.components,
        content_dim: cfg.content_dim,
        reference_ts,
        feature_names: FEATURE_NAMES.iter().map(|s| s.to_string()).collect(),
        has_ranker: false,
        training: serde_json::Value::Null,
        serving_plan: None,
    };
    let mut model = Model {
        manifest,
        item_ids: ds.item_ids.clone(),
        user_ids: ds.user_ids.clone(),
        item_index: Default::default(),
        user_index: Default::default(),
        categories: ds.category_vocab.clone(),
        category_index: Default::default(),
        item_cat_indptr,
        item_cat,
        cf_dim: mf.components,
        item_cf: item_cf.into(),
        item_bias,
        user_cf,
        content_dim: cfg.content_dim,
        item_content: std::sync::Arc::clone(&prep.item_content),
        item_stats,
        popular_order: Vec::new(),
        popular_by_category: Vec::new(),
        popularity_pct: Vec::new(),
        hist_indptr,
        hist_items,
        hist_ts,
        user_feature_names: prep.user_feature_names.clone(),
        item_feature_names: prep.item_feature_names.clone(),
        user_feature_emb: mf.user_feature_emb.clone(),
        item_feature_emb: mf.item_feature_emb.clone(),
        item2item_k: neighbours.k,
        item2item_ids: neighbours.ids,
        item2item_weights: neighbours.weights,
        segments,
        ranker_text: None,
    };
    model.derive_indexes();
    model.derive_popularity();
    let fit = FitReport {
        epochs_run: report.epochs_run,
        best_epoch: report.best_epoch,
        valid_metric: report
            .history
            .iter()
            .map(|&(_, m)| f64::from(m))
            .fold(None, |a: Option<f64>, m| Some(a.map_or(m, |a| a.max(m)))),
        seconds: t.elapsed().as_secs_f64(),
        item2item: i2i_report,
    };
    Ok((model, fit))
}
