//! Writes a `Model` as a bundle directory, atomically: everything goes to a sibling temp
//! directory which is renamed into place, so a reader never sees half a bundle.

use super::{BundleError, Model, npy};
use std::io::Write;
use std::path::{Path, PathBuf};

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> BundleError + '_ {
    move |source| BundleError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn write_lines(path: &Path, lines: &[String]) -> Result<(), BundleError> {
    let f = std::fs::File::create(path).map_err(io_err(path))?;
    let mut w = std::io::BufWriter::new(f);
    for l in lines {
        writeln!(w, "{l}").map_err(io_err(path))?;
    }
    w.flush().map_err(io_err(path))
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<(), BundleError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| BundleError::Format {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    std::fs::write(path, text).map_err(io_err(path))
}

/// Writes `model` to `out` (replacing an existing bundle there). Returns the final path.
pub fn write_bundle(model: &Model, out: &Path) -> Result<PathBuf, BundleError> {
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    let name = out
        .file_name()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "bundle".into());
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
    write_files(model, &tmp)?;
    if out.exists() {
        let old = parent.join(format!(".{name}.old-{}", std::process::id()));
        std::fs::rename(out, &old).map_err(io_err(out))?;
        std::fs::rename(&tmp, out).map_err(io_err(out))?;
        std::fs::remove_dir_all(&old).map_err(io_err(&old))?;
    } else {
        std::fs::rename(&tmp, out).map_err(io_err(out))?;
    }
    Ok(out.to_path_buf())
}

fn write_files(m: &Model, dir: &Path) -> Result<(), BundleError> {
    let p = |f: &str| dir.join(f);
    write_json(&p("manifest.json"), &m.manifest)?;
    write_lines(&p("item_ids.txt"), &m.item_ids)?;
    write_lines(&p("user_ids.txt"), &m.user_ids)?;
    write_lines(&p("categories.txt"), &m.categories)?;
    let indptr: Vec<i64> = m.item_cat_indptr.iter().map(|&x| x as i64).collect();
    npy::write_i64_1d(&p("item_categories_indptr.npy"), &indptr)?;
    let cats: Vec<i32> = m.item_cat.iter().map(|&x| x as i32).collect();
    npy::write_i32_1d(&p("item_categories.npy"), &cats)?;
    npy::write_f32_2d(&p("item_cf.npy"), m.n_items(), m.cf_dim, &m.item_cf)?;
    npy::write_f32_1d(&p("item_bias.npy"), &m.item_bias)?;
    npy::write_f32_2d(&p("user_cf.npy"), m.n_users(), m.cf_dim, &m.user_cf)?;
    npy::write_f32_2d(
        &p("item_content.npy"),
        m.n_items(),
        m.content_dim,
        &m.item_content,
    )?;
    let stats: Vec<f32> = m
        .item_stats
        .iter()
        .flat_map(|s| [s.popularity, s.count, s.trend, s.age_days])
        .collect();
    npy::write_f32_2d(&p("item_stats.npy"), m.n_items(), 4, &stats)?;
    let indptr: Vec<i64> = m.hist_indptr.iter().map(|&x| x as i64).collect();
    npy::write_i64_1d(&p("user_history_indptr.npy"), &indptr)?;
    let items: Vec<i32> = m.hist_items.iter().map(|&x| x as i32).collect();
    npy::write_i32_1d(&p("user_history_items.npy"), &items)?;
    npy::write_i64_1d(&p("user_history_ts.npy"), &m.hist_ts)?;
    write_json(&p("user_features.json"), &m.user_feature_names)?;
    write_json(&p("item_features.json"), &m.item_feature_names)?;
    let d = m.cf_dim;
    npy::write_f32_2d(
        &p("user_feature_emb.npy"),
        m.user_feature_names.len(),
        d,
        &m.user_feature_emb,
    )?;
    npy::write_f32_2d(
        &p("item_feature_emb.npy"),
        m.item_feature_names.len(),
        d,
        &m.item_feature_emb,
    )?;
    if m.item2item_k > 0 {
        let k = m.item2item_k;
        npy::write_i32_2d(&p("item2item_ids.npy"), m.n_items(), k, &m.item2item_ids)?;
        npy::write_f32_2d(
            &p("item2item_weights.npy"),
            m.n_items(),
            k,
            &m.item2item_weights,
        )?;
    }
    m.segments.write(dir)?;
    if let Some(text) = &m.ranker_text {
        std::fs::write(p("ranker.txt"), text).map_err(io_err(&p("ranker.txt")))?;
    }
    Ok(())
}
