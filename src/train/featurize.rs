//! Turns entity features (categorical, text tokens, numeric columns) into one sparse feature
//! space per entity kind, shared by the hybrid factorization (plus an identity feature) and the
//! content embeddings. Numeric columns become quantile-bin features (`price=q3`).

use crate::data::dataset::EntityFeatures;
use crate::train::factorization::FeatureMatrix;

/// Sparse features of every entity, without the identity feature.
#[derive(Debug, Clone, Default)]
pub struct FeatureSpace {
    pub names: Vec<String>,
    /// Per entity: (feature id, raw weight) — term frequency for text, 1 for the rest.
    pub rows: Vec<Vec<(u32, f32)>>,
}

/// Builds the feature space of `f` with `bins` quantile bins per numeric column.
pub fn feature_space(f: &EntityFeatures, bins: usize) -> FeatureSpace {
    let n = f.len();
    let mut names: Vec<String> = f.cat_vocab.clone();
    let text_base = names.len() as u32;
    names.extend(f.token_vocab.iter().map(|t| format!("text={t}")));
    let mut rows: Vec<Vec<(u32, f32)>> = (0..n)
        .map(|i| {
            let mut row: Vec<(u32, f32)> = f.categorical[i].iter().map(|&c| (c, 1.0)).collect();
            let mut toks: Vec<u32> = f.text[i].iter().map(|&t| text_base + t).collect();
            toks.sort_unstable();
            for chunk in toks.chunk_by(|a, b| a == b) {
                row.push((chunk[0], chunk.len() as f32));
            }
            row
        })
        .collect();
    let n_num = f.numeric_names.len();
    for (col, name) in f.numeric_names.iter().enumerate() {
        let mut vals: Vec<f32> = (0..n)
            .map(|i| f.numeric[i * n_num + col])
            .filter(|v| v.is_finite())
            .collect();
        if vals.is_empty() {
            continue;
        }
        vals.sort_unstable_by(f32::total_cmp);
        let b = bins.max(1);
        let cuts: Vec<f32> = (1..b)
            .map(|k| vals[(k * vals.len() / b).min(vals.len() - 1)])
            .collect();
        let base = names.len() as u32;
        names.extend((0..b).map(|k| format!("{name}=q{k}")));
        for (i, row) in rows.iter_mut().enumerate() {
            let v = f.numeric[i * n_num + col];
            if v.is_finite() {
                let k = cuts.partition_point(|&c| c <= v);
                row.push((base + k as u32, 1.0));
            }
        }
    }
    FeatureSpace { names, rows }
}

/// LightFM-style feature matrix: identity feature `i` for entity `i`, then the entity's features
/// offset by `n`, each row normalised to sum to 1.
pub fn hybrid_matrix(
    space: &FeatureSpace,
    n: usize,
    id_prefix: &str,
    ids: &[String],
) -> (FeatureMatrix, Vec<String>) {
    let mut names: Vec<String> = ids.iter().map(|id| format!("{id_prefix}={id}")).collect();
    names.extend(space.names.iter().cloned());
    let mut indptr = Vec::with_capacity(n + 1);
    let mut indices = Vec::new();
    let mut values = Vec::new();
    indptr.push(0);
    for i in 0..n {
        let feats = space.rows.get(i).map_or(&[][..], |r| r.as_slice());
        let total = 1.0 + feats.len() as f32;
        indices.push(i as u32);
        values.push(1.0 / total);
        for &(f, _) in feats {
            indices.push(n as u32 + f);
            values.push(1.0 / total);
        }
        indptr.push(indices.len());
    }
    (
        FeatureMatrix {
            n_features: names.len(),
            indptr,
            indices,
            values,
        },
        names,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features() -> EntityFeatures {
        EntityFeatures {
            cat_vocab: vec!["genre=a".into(), "genre=b".into()],
            categorical: vec![vec![0], vec![1], vec![]],
            token_vocab: vec!["red".into(), "car".into()],
            text: vec![vec![0, 0, 1], vec![], vec![]],
            numeric_names: vec!["price".into()],
            numeric: vec![1.0, 5.0, f32::NAN],
        }
    }

    #[test]
    fn text_counts_and_numeric_bins() {
        let s = feature_space(&features(), 2);
        assert_eq!(
            s.names,
            vec![
                "genre=a", "genre=b", "text=red", "text=car", "price=q0", "price=q1"
            ]
        );
        assert_eq!(s.rows[0], vec![(0, 1.0), (2, 2.0), (3, 1.0), (4, 1.0)]);
        assert_eq!(s.rows[1], vec![(1, 1.0), (5, 1.0)]);
        assert!(s.rows[2].is_empty(), "missing numeric gives no bin");
    }

    #[test]
    fn hybrid_rows_have_identity_and_sum_to_one() {
        let s = feature_space(&features(), 2);
        let ids: Vec<String> = vec!["x".into(), "y".into(), "z".into()];
        let (m, names) = hybrid_matrix(&s, 3, "item", &ids);
        assert_eq!(names[0], "item=x");
        assert_eq!(m.n_features, 3 + s.names.len());
        for r in 0..3 {
            let (a, b) = (m.indptr[r], m.indptr[r + 1]);
            assert_eq!(m.indices[a], r as u32);
            let sum: f32 = m.values[a..b].iter().sum();
            assert!((sum - 1.0).abs() < 1e-6);
        }
        assert_eq!(
            m.indptr[3] - m.indptr[2],
            1,
            "featureless entity: identity only"
        );
    }
}
