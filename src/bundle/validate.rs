//! Reads a bundle directory into a `Model` and refuses inconsistent ones: missing files, wrong
//! format version, dimension mismatches, NaN/inf values, ids out of range, a ranker whose feature
//! list differs from the manifest. (Whether the features match this build's definition is checked by
//! the engine that serves the bundle, which owns that definition through `ranking`.)

use super::{BundleError, FORMAT_VERSION, ItemStat, Manifest, Model, npy};
use std::path::Path;

fn read_text(path: &Path) -> Result<String, BundleError> {
    std::fs::read_to_string(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            BundleError::Missing {
                path: path.to_path_buf(),
            }
        } else {
            BundleError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    })
}

fn read_lines(path: &Path) -> Result<Vec<String>, BundleError> {
    Ok(read_text(path)?.lines().map(str::to_string).collect())
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, BundleError> {
    serde_json::from_str(&read_text(path)?).map_err(|e| BundleError::Format {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn invalid(msg: String) -> BundleError {
    BundleError::Invalid(msg)
}

fn check_shape(
    name: &str,
    rows: usize,
    cols: usize,
    want_rows: usize,
    want_cols: usize,
) -> Result<(), BundleError> {
    if rows != want_rows || cols != want_cols {
        return Err(invalid(format!(
            "{name} has shape [{rows}, {cols}], expected [{want_rows}, {want_cols}]"
        )));
    }
    Ok(())
}

fn check_finite(name: &str, data: &[f32]) -> Result<(), BundleError> {
    if let Some(pos) = data.iter().position(|v| !v.is_finite()) {
        return Err(invalid(format!(
            "{name} holds a non-finite value at flat position {pos}"
        )));
    }
    Ok(())
}

fn to_indptr(
    name: &str,
    raw: Vec<i64>,
    rows: usize,
    len: usize,
) -> Result<Vec<usize>, BundleError> {
    if raw.len() != rows + 1 {
        return Err(invalid(format!(
            "{name} has {} entries, expected {}",
            raw.len(),
            rows + 1
        )));
    }
    if raw.first() != Some(&0)
        || raw.windows(2).any(|w| w[1] < w[0])
        || raw.last().copied() != Some(len as i64)
    {
        return Err(invalid(format!(
            "{name} is not a monotone CSR index from 0 to {len}"
        )));
    }
    Ok(raw.into_iter().map(|x| x as usize).collect())
}

fn to_ids(name: &str, raw: Vec<i32>, bound: usize) -> Result<Vec<u32>, BundleError> {
    if let Some(bad) = raw.iter().find(|&&x| x < 0 || x as usize >= bound) {
        return Err(invalid(format!(
            "{name} holds id {bad}, out of range 0..{bound}"
        )));
    }
    Ok(raw.into_iter().map(|x| x as u32).collect())
}

/// The `feature_names=` line of a LightGBM text model, if it has one.
pub fn ranker_feature_names(text: &str) -> Option<Vec<String>> {
    text.lines()
        .find_map(|l| l.strip_prefix("feature_names="))
        .map(|rest| rest.split_whitespace().map(str::to_string).collect())
}

impl Model {
    /// Reads and validates the bundle at `dir`.
    pub fn read(dir: &Path) -> Result<Model, BundleError> {
        let p = |f: &str| dir.join(f);
        let manifest: Manifest = read_json(&p("manifest.json"))?;
        if manifest.format_version != FORMAT_VERSION {
            return Err(invalid(format!(
                "format_version {} is not supported (this build reads {FORMAT_VERSION})",
                manifest.format_version
            )));
        }
        let item_ids = read_lines(&p("item_ids.txt"))?;
        let user_ids = read_lines(&p("user_ids.txt"))?;
        let categories = read_lines(&p("categories.txt"))?;
        let (ni, nu) = (item_ids.len(), user_ids.len());
        if ni == 0 {
            return Err(invalid("the bundle has no items".into()));
        }
        if ni != manifest.data.items || nu != manifest.data.users {
            return Err(invalid(format!(
                "id files list {ni} items / {nu} users, manifest says {} / {}",
                manifest.data.items, manifest.data.users
            )));
        }
        for (name, ids) in [("item_ids.txt", &item_ids), ("user_ids.txt", &user_ids)] {
            let mut seen = rustc_hash::FxHashSet::default();
            if let Some(dup) = ids.iter().find(|s| !seen.insert(s.as_str())) {
                return Err(invalid(format!("{name} lists {dup:?} twice")));
            }
        }
        let item_cat = to_ids(
            "item_categories.npy",
            npy::read_i32_1d(&p("item_categories.npy"))?,
            categories.len(),
        )?;
        let item_cat_indptr = to_indptr(
            "item_categories_indptr.npy",
            npy::read_i64_1d(&p("item_categories_indptr.npy"))?,
            ni,
            item_cat.len(),
        )?;

        let (r, cf_dim, item_cf) = npy::read_f32_2d_shared(&p("item_cf.npy"))?;
        check_shape("item_cf.npy", r, cf_dim, ni, manifest.cf_dim)?;
        check_finite("item_cf.npy", &item_cf)?;
        let item_bias = npy::read_f32_1d(&p("item_bias.npy"))?;
        check_shape("item_bias.npy", item_bias.len(), 1, ni, 1)?;
        check_finite("item_bias.npy", &item_bias)?;
        let (r, c, user_cf) = npy::read_f32_2d(&p("user_cf.npy"))?;
        check_shape("user_cf.npy", r, c, nu, cf_dim)?;
        check_finite("user_cf.npy", &user_cf)?;
        let (r, content_dim, item_content) = npy::read_f32_2d_shared(&p("item_content.npy"))?;
        check_shape("item_content.npy", r, content_dim, ni, manifest.content_dim)?;
        check_finite("item_content.npy", &item_content)?;
        let (r, c, stats) = npy::read_f32_2d(&p("item_stats.npy"))?;
        check_shape("item_stats.npy", r, c, ni, 4)?;
        // age_days may be NaN (unknown); the other columns must be finite.
        if let Some(pos) = stats
            .chunks_exact(4)
            .position(|s| !(s[0].is_finite() && s[1].is_finite() && s[2].is_finite()))
        {
            return Err(invalid(format!(
                "item_stats.npy row {pos} holds a non-finite value"
            )));
        }
        let item_stats = stats
            .chunks_exact(4)
            .map(|s| ItemStat {
                popularity: s[0],
                count: s[1],
                trend: s[2],
                age_days: s[3],
            })
            .collect();

        let hist_items = to_ids(
            "user_history_items.npy",
            npy::read_i32_1d(&p("user_history_items.npy"))?,
            ni,
        )?;
        let hist_ts = npy::read_i64_1d(&p("user_history_ts.npy"))?;
        if hist_ts.len() != hist_items.len() {
            return Err(invalid(format!(
                "user_history_ts.npy has {} entries, user_history_items.npy {}",
                hist_ts.len(),
                hist_items.len()
            )));
        }
        let hist_indptr = to_indptr(
            "user_history_indptr.npy",
            npy::read_i64_1d(&p("user_history_indptr.npy"))?,
            nu,
            hist_items.len(),
        )?;

        let user_feature_names: Vec<String> = read_json(&p("user_features.json"))?;
        let item_feature_names: Vec<String> = read_json(&p("item_features.json"))?;
        let (r, c, user_feature_emb) = npy::read_f32_2d(&p("user_feature_emb.npy"))?;
        check_shape(
            "user_feature_emb.npy",
            r,
            c,
            user_feature_names.len(),
            cf_dim,
        )?;
        let (r, c, item_feature_emb) = npy::read_f32_2d(&p("item_feature_emb.npy"))?;
        check_shape(
            "item_feature_emb.npy",
            r,
            c,
            item_feature_names.len(),
            cf_dim,
        )?;

        // Optional: bundles without an item-to-item model have neither file.
        let (item2item_k, item2item_ids, item2item_weights) =
            match npy::read_i32_2d(&p("item2item_ids.npy")) {
                Err(BundleError::Missing { .. }) => (0, Vec::new(), Vec::new()),
                Err(e) => return Err(e),
                Ok((r, k, ids)) => {
                    check_shape("item2item_ids.npy", r, k, ni, k)?;
                    if let Some(bad) = ids.iter().find(|&&j| j < -1 || j >= ni as i32) {
                        return Err(invalid(format!(
                            "item2item_ids.npy holds {bad}, not an item id or -1"
                        )));
                    }
                    let (r, c, w) = npy::read_f32_2d(&p("item2item_weights.npy"))?;
                    check_shape("item2item_weights.npy", r, c, ni, k)?;
                    check_finite("item2item_weights.npy", &w)?;
                    (k, ids, w)
                }
            };

        let ranker_text = if manifest.has_ranker {
            let text = read_text(&p("ranker.txt"))?;
            if let Some(names) = ranker_feature_names(&text)
                && names != manifest.feature_names
            {
                return Err(invalid(format!(
                    "ranker.txt feature_names {names:?} differ from the manifest's {:?}",
                    manifest.feature_names
                )));
            }
            Some(text)
        } else {
            None
        };

        let mut model = Model {
            manifest,
            item_ids,
            user_ids,
            item_index: Default::default(),
            user_index: Default::default(),
            categories,
            category_index: Default::default(),
            item_cat_indptr,
            item_cat,
            cf_dim,
            item_cf,
            item_bias,
            user_cf,
            content_dim,
            item_content,
            item_stats,
            popular_order: Vec::new(),
            popular_by_category: Vec::new(),
            popularity_pct: Vec::new(),
            hist_indptr,
            hist_items,
            hist_ts,
            user_feature_names,
            item_feature_names,
            user_feature_emb,
            item_feature_emb,
            item2item_k,
            item2item_ids,
            item2item_weights,
            segments: super::Segments::read(dir, nu, ni)?,
            ranker_text,
        };
        model.derive_indexes();
        model.derive_popularity();
        Ok(model)
    }
}
