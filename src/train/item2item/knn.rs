//! Sparse item-kNN for catalogues too large for EASE's dense inverse: cosine with shrinkage,
//! sim(i, j) = c_ij / (sqrt(n_i · n_j) + shrinkage), c_ij = users with both, n_i = users of i.
//!
//! Parallel over items: item i's co-counts are accumulated over the item lists of i's users into
//! a dense per-thread scratch (`n_items` u32, reused), then the top K are kept. Time is
//! Σ_i Σ_{u ∋ i} |items(u)| = Σ_u |items(u)|², so users with more than `knn_max_user_items` items
//! are sampled down to that many first, which bounds it by `cap · n_pairs`; memory is the two
//! sparse lists, one scratch per thread and the output. Both c_ij and n_i use the sampled lists.

use std::time::Instant;

use rayon::prelude::*;

use super::data::Csr;
use super::{Item2ItemConfig, Item2ItemReport, Neighbours, write_row};

pub(super) fn fit(
    n_items: usize,
    users: &Csr,
    cfg: &Item2ItemConfig,
    report: &mut Item2ItemReport,
) -> Neighbours {
    let start = Instant::now();
    let (users, capped) = users.cap_rows(cfg.knn_max_user_items, cfg.seed);
    let items = users.transpose(n_items);
    report.capped_users = capped;
    report.seconds.prepare += start.elapsed().as_secs_f64();

    let start = Instant::now();
    let nb = neighbours(n_items, &users, &items, cfg.neighbours, cfg.knn_shrinkage);
    report.seconds.neighbours = start.elapsed().as_secs_f64();
    nb
}

/// The kNN table from (possibly capped) user lists and their transpose.
pub(super) fn neighbours(
    n_items: usize,
    users: &Csr,
    items: &Csr,
    k: usize,
    shrinkage: f64,
) -> Neighbours {
    let mut ids = vec![-1i32; n_items * k];
    let mut weights = vec![0f32; n_items * k];
    ids.par_chunks_mut(k)
        .zip(weights.par_chunks_mut(k))
        .enumerate()
        .for_each_init(
            || {
                (
                    vec![0u32; n_items],
                    Vec::<u32>::new(),
                    Vec::<(f32, u32)>::new(),
                )
            },
            |(counts, touched, cands), (i, (ids, ws))| {
                for &u in items.row(i) {
                    for &j in users.row(u as usize) {
                        let c = &mut counts[j as usize];
                        if *c == 0 {
                            touched.push(j);
                        }
                        *c += 1;
                    }
                }
                let n_i = items.row(i).len() as f64;
                cands.clear();
                for &j in touched.iter() {
                    let c = std::mem::take(&mut counts[j as usize]);
                    if j as usize != i {
                        let n_j = items.row(j as usize).len() as f64;
                        let sim = f64::from(c) / ((n_i * n_j).sqrt() + shrinkage);
                        cands.push((sim as f32, j));
                    }
                }
                touched.clear();
                write_row(cands, ids, ws);
            },
        );
    Neighbours { k, ids, weights }
}
