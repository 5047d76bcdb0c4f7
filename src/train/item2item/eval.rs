//! Leave-one-out validation of a pruned neighbour table, as serving will see it: EASE uses it to
//! choose λ. A seeded sample of users with ≥ 2 items each hold out one random item; a user's
//! candidates are the items reached through the neighbour rows of their remaining ("fit") items,
//! scored by summed weights, fit items excluded.

use rand::{RngExt, SeedableRng, rngs::StdRng};
use rayon::prelude::*;

use super::Neighbours;
use super::data::Csr;

/// Ranking cut-off of the validation metrics.
pub(super) const CUTOFF: usize = 20;

/// Held-out users (rows of the user lists, ascending) and the item each one holds out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Holdouts {
    pub(super) users: Vec<u32>,
    pub(super) items: Vec<u32>,
}

impl Holdouts {
    /// Up to `max_users` users with at least two items, one held-out item each, from `seed`.
    pub(super) fn sample(users: &Csr, max_users: usize, seed: u64) -> Self {
        let eligible: Vec<u32> = (0..users.n_rows())
            .filter(|&u| users.row(u).len() >= 2)
            .map(|u| u as u32)
            .collect();
        let mut rng = StdRng::seed_from_u64(seed);
        let mut picked: Vec<u32> = if eligible.len() > max_users {
            rand::seq::index::sample(&mut rng, eligible.len(), max_users)
                .into_iter()
                .map(|p| eligible[p])
                .collect()
        } else {
            eligible
        };
        picked.sort_unstable();
        let items = picked
            .iter()
            .map(|&u| {
                let row = users.row(u as usize);
                row[rng.random_range(0..row.len())]
            })
            .collect();
        Self {
            users: picked,
            items,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.users.len()
    }
}

/// (recall@20, ndcg@20) of the held-out items under `nb`, averaged over the held-out users; a
/// held-out item no fit item reaches is a miss. Candidates rank by score descending, ties by lower
/// id (deterministic, and independent of the thread count).
pub(super) fn evaluate(nb: &Neighbours, users: &Csr, holdouts: &Holdouts) -> (f64, f64) {
    if holdouts.len() == 0 {
        return (0.0, 0.0);
    }
    let n_items = nb.n_items();
    let per_user: Vec<(f64, f64)> = holdouts
        .users
        .par_iter()
        .zip(&holdouts.items)
        .map_init(
            || (vec![0f32; n_items], Vec::<u32>::new()),
            |(scores, touched), (&user, &held)| {
                let all = users.row(user as usize);
                for &i in all.iter().filter(|&&i| i != held) {
                    let (ids, weights) = nb.row(i as usize);
                    for (&j, &w) in ids.iter().zip(weights).take_while(|(j, _)| **j >= 0) {
                        let s = &mut scores[j as usize];
                        // Weights are > 0, so a zero score means "not reached yet".
                        if *s == 0.0 {
                            touched.push(j as u32);
                        }
                        *s += w;
                    }
                }
                let target = scores[held as usize];
                let mut rank = 0usize;
                for &j in touched.iter() {
                    let s = scores[j as usize];
                    if (s > target || (s == target && j < held)) && all.binary_search(&j).is_err() {
                        rank += 1;
                    }
                    scores[j as usize] = 0.0;
                }
                touched.clear();
                if target > 0.0 && rank < CUTOFF {
                    (1.0, 1.0 / ((rank + 2) as f64).log2())
                } else {
                    (0.0, 0.0)
                }
            },
        )
        .collect();
    let n = per_user.len() as f64;
    let (recall, ndcg) = per_user
        .iter()
        .fold((0.0, 0.0), |(r, d), &(hr, hd)| (r + hr, d + hd));
    (recall / n, ndcg / n)
}
