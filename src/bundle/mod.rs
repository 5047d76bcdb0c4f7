//! The model bundle: a plain, documented directory that `train` writes and `serve` loads.
//! Embeddings are `.npy` (float32, C order) so numpy and other tools read them; the ranker is a
//! LightGBM text model. Reading validates everything before an engine is built from it.
//!
//! Layout (all arrays row-aligned with `item_ids.txt` / `user_ids.txt`):
//! ```text
//! manifest.json               format/model version, data summary, dims, ranker feature names, metrics
//! item_ids.txt user_ids.txt   one id per line; the line number is the dense index
//! categories.txt              category vocabulary, one per line
//! item_categories_indptr.npy  int64 [n_items+1]   CSR of item → category ids (int32 in item_categories.npy)
//! item_cf.npy item_bias.npy   float32 [n_items, d_cf], [n_items]  hybrid MF item vectors and biases
//! user_cf.npy                 float32 [n_users, d_cf]              hybrid MF user vectors (feature-only users included)
//! item_content.npy            float32 [n_items, d_content]         L2-normalised content embeddings
//! item_stats.npy              float32 [n_items, 4]  popularity (time-decayed), count, trend, first-seen (days before ref)
//! user_history_indptr.npy     int64 [n_users+1]     CSR of each user's training interactions, oldest first
//! user_history_items.npy      int32, user_history_ts.npy int64
//! user_features.json item_features.json  feature vocabularies of the hybrid model
//! user_feature_emb.npy item_feature_emb.npy  float32 [n_features, d_cf]  the hybrid model's feature embeddings
//! item2item_ids.npy           int32 [n_items, K]   item-to-item neighbours of each item, best first, -1 = none (optional)
//! item2item_weights.npy       float32 [n_items, K] their weights: a candidate's item2item score is the sum of
//!                             the weights pointing to it from the user's history and session items
//! segments.txt user_segments*.npy segment_pop_*.npy  user segments and their popular items
//!                             (optional; see `segments.rs`)
//! ranker.txt                  LightGBM lambdarank model (text format), optional
//! index/                      stored HNSW graphs (optional; built at load when absent)
//! ```

pub mod demo;
mod manifest;
mod model;
mod npy;
mod segments;
mod validate;
mod write;

pub use manifest::{DataSummary, FORMAT_VERSION, Manifest, ServingPlan};
pub use model::{ItemStat, Model};
pub use segments::Segments;
pub use write::write_bundle;

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("bundle file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("bundle file {path} is missing")]
    Missing { path: PathBuf },
    #[error("bundle file {path}: {message}")]
    Format { path: PathBuf, message: String },
    #[error("bundle is inconsistent: {0}")]
    Invalid(String),
}
