//! Content embeddings: one vector per item from its features alone (categories, attributes, title
//! tokens), TF-IDF weighted, reduced to a fixed dimension by a seeded Gaussian random projection
//! (Johnson–Lindenstrauss: cosines are preserved in expectation), then L2-normalised. Items with
//! no interactions get one like every other item; an item without any feature gets the zero vector.

use super::featurize::FeatureSpace;
use rand::{RngExt, SeedableRng, rngs::StdRng};
use rayon::prelude::*;

/// Returns `n_items × dim` row-major.
pub fn content_embeddings(space: &FeatureSpace, dim: usize, seed: u64) -> Vec<f32> {
    let n = space.rows.len();
    let nf = space.names.len();
    // Smoothed IDF, as scikit-learn's TfidfTransformer: ln((1+n)/(1+df)) + 1.
    let mut df = vec![0u32; nf];
    for row in &space.rows {
        for &(f, _) in row {
            df[f as usize] += 1;
        }
    }
    let idf: Vec<f32> = df
        .iter()
        .map(|&d| ((1.0 + n as f32) / (1.0 + d as f32)).ln() + 1.0)
        .collect();
    // Projection matrix: nf × dim, N(0, 1/dim), generated from the seed (Box–Muller).
    let mut rng = StdRng::seed_from_u64(seed);
    let proj: Vec<f32> = (0..nf * dim)
        .map(|_| {
            let u1: f32 = rng.random::<f32>().max(f32::MIN_POSITIVE);
            let u2: f32 = rng.random::<f32>();
            (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos() / (dim as f32).sqrt()
        })
        .collect();
    let mut out = vec![0f32; n * dim];
    out.par_chunks_mut(dim.max(1))
        .zip(space.rows.par_iter())
        .for_each(|(v, row)| {
            // TF-IDF with sublinear tf, then the row is L2-normalised before projection.
            let weights: Vec<(usize, f32)> = row
                .iter()
                .map(|&(f, tf)| (f as usize, (1.0 + tf.ln()) * idf[f as usize]))
                .collect();
            let norm = weights.iter().map(|(_, w)| w * w).sum::<f32>().sqrt();
            if norm == 0.0 {
                return;
            }
            for (f, w) in weights {
                let p = &proj[f * dim..(f + 1) * dim];
                for (a, b) in v.iter_mut().zip(p) {
                    *a += w / norm * b;
                }
            }
            let n2 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            if n2 > 0.0 {
                v.iter_mut().for_each(|x| *x /= n2);
            }
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cos(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn shared_features_mean_closer_vectors_and_rows_are_unit_or_zero() {
        let names: Vec<String> = (0..50).map(|i| format!("f{i}")).collect();
        let rows = vec![
            vec![(0, 1.0), (1, 1.0), (2, 1.0)],
            vec![(0, 1.0), (1, 1.0), (3, 1.0)],
            vec![(10, 1.0), (11, 1.0), (12, 1.0)],
            vec![],
        ];
        let space = FeatureSpace { names, rows };
        let e = content_embeddings(&space, 64, 7);
        let row = |i: usize| &e[i * 64..(i + 1) * 64];
        for i in 0..3 {
            assert!((cos(row(i), row(i)) - 1.0).abs() < 1e-4);
        }
        assert!(row(3).iter().all(|&x| x == 0.0));
        assert!(
            cos(row(0), row(1)) > cos(row(0), row(2)) + 0.3,
            "{} vs {}",
            cos(row(0), row(1)),
            cos(row(0), row(2))
        );
        assert_eq!(
            e,
            content_embeddings(&space, 64, 7),
            "deterministic for a seed"
        );
    }
}
