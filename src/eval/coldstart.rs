//! Cold start in `recserve evaluate`: hiding a share of users (they keep their features) and of
//! items from training so the test holds real cold cases, the segment-popularity baseline (the
//! strongest simple answer for a user known only by features), the exposure rows (off, and a
//! random pick at the same share), and the report's cold-start table. It computes lists and
//! formats numbers; the pipeline itself is run by the ablation runner.

use super::report::{AblationRow, EvalReport, FULL_ROW};
use crate::bundle::Model;
use crate::data::dataset::Interaction;
use crate::ranking::ExposurePolicy;
use crate::ranking::exposure::Pick;
use rand::{SeedableRng, rngs::StdRng, seq::SliceRandom};
use rustc_hash::{FxHashMap, FxHashSet};
use std::fmt::Write as _;

/// Users with no training interaction at all (known only by their features).
pub const FEATURES_ONLY_SLICE: &str = "cold_users_features_only";
/// The baseline row: popularity within the user's segments.
pub const SEGMENT_POPULAR_ROW: &str = "only_segment_popular";
/// The full pipeline without new-item exposure.
pub const EXPOSURE_OFF_ROW: &str = "exposure_off";
/// The full pipeline with the exposure slots filled by uniformly random new items.
pub const EXPOSURE_RANDOM_ROW: &str = "exposure_random_pick";

/// Moves every training interaction of `user_share` of the training users and of `item_share`
/// of the training items into the test set (seeded): cold users keep their features and are
/// tested on all their interactions; cold items are tested on all of theirs.
pub fn hide_cold(
    train: Vec<Interaction>,
    mut test: Vec<Interaction>,
    user_share: f64,
    item_share: f64,
    seed: u64,
) -> (Vec<Interaction>, Vec<Interaction>) {
    if user_share <= 0.0 && item_share <= 0.0 {
        return (train, test);
    }
    let mut rng = StdRng::seed_from_u64(seed ^ 0xC0_1D5);
    let pick = |mut ids: Vec<u32>, share: f64, rng: &mut StdRng| -> FxHashSet<u32> {
        ids.sort_unstable();
        ids.dedup();
        ids.shuffle(rng);
        let k = ((ids.len() as f64) * share.clamp(0.0, 1.0)).round() as usize;
        ids.into_iter().take(k).collect()
    };
    let users = pick(train.iter().map(|x| x.user).collect(), user_share, &mut rng);
    let items = pick(train.iter().map(|x| x.item).collect(), item_share, &mut rng);
    let (hidden, kept): (Vec<Interaction>, Vec<Interaction>) = train
        .into_iter()
        .partition(|x| users.contains(&x.user) || items.contains(&x.item));
    test.extend(hidden);
    (kept, test)
}

/// Per user, the top `k` items by segment popularity over `train`: the sum over the user's
/// segments of ln(1 + the item's interaction count among the segment's users), the user's
/// training items removed. Users without segments get global popularity (plain counts).
pub fn segment_popular_lists(
    model: &Model,
    train: &[Interaction],
    users: &[u32],
    k: usize,
) -> Vec<(u32, Vec<u32>)> {
    let seg = &model.segments;
    let n_seg = seg.names.len();
    let mut counts: Vec<FxHashMap<u32, f64>> = vec![FxHashMap::default(); n_seg];
    let mut global = vec![0f64; model.n_items()];
    let mut seen: FxHashMap<u32, FxHashSet<u32>> = FxHashMap::default();
    for x in train {
        for &s in seg.of_user(x.user) {
            *counts[s as usize].entry(x.item).or_default() += 1.0;
        }
        global[x.item as usize] += 1.0;
        seen.entry(x.user).or_default().insert(x.item);
    }
    let mut global_order: Vec<u32> = (0..model.n_items() as u32).collect();
    global_order.sort_by(|&a, &b| {
        global[b as usize]
            .total_cmp(&global[a as usize])
            .then(a.cmp(&b))
    });
    users
        .iter()
        .map(|&u| {
            let s = seen.get(&u);
            let unseen = |i: &u32| s.is_none_or(|s| !s.contains(i));
            let mut score: FxHashMap<u32, f64> = FxHashMap::default();
            for &sg in seg.of_user(u) {
                for (&i, &c) in &counts[sg as usize] {
                    *score.entry(i).or_default() += c.ln_1p();
                }
            }
            let mut ranked: Vec<(u32, f64)> =
                score.into_iter().filter(|(i, _)| unseen(i)).collect();
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let mut list: Vec<u32> = ranked.into_iter().take(k).map(|(i, _)| i).collect();
            // Fill from global popularity (users without segments get only that).
            for &i in &global_order {
                if list.len() >= k {
                    break;
                }
                if unseen(&i) && !list.contains(&i) {
                    list.push(i);
                }
            }
            (u, list)
        })
        .collect()
}

/// The exposure policy of the random-pick row: the engine's own placement and share, random items.
pub fn random_pick(policy: ExposurePolicy) -> ExposurePolicy {
    ExposurePolicy {
        pick: Pick::Random,
        ..policy
    }
}

/// The report's cold-start table: per row, NDCG on the users known only by features, the
/// cold-items slice's hit rate, and the share of the top-K slots held by new items.
pub fn cold_start_table(md: &mut String, r: &EvalReport) {
    let wanted = [
        FULL_ROW,
        EXPOSURE_OFF_ROW,
        EXPOSURE_RANDOM_ROW,
        SEGMENT_POPULAR_ROW,
        "only_segment",
        "only_popular",
        "only_cf",
        "without_ranker",
    ];
    let rows: Vec<&AblationRow> = wanted
        .iter()
        .filter_map(|n| r.rows.iter().find(|row| row.name == *n))
        .collect();
    if rows.len() < 2 {
        return;
    }
    let k = r.k;
    let _ = writeln!(md, "## Cold start (K = {k})\n");
    let _ = writeln!(
        md,
        "| variant | NDCG@{k} features-only users (n) | HitRate@{k} cold items (n) | new-item share of slots | NDCG@{k} all | Δ NDCG vs full (95% CI) |"
    );
    md.push_str("|---|---|---|---|---|---|\n");
    let slice = |row: &AblationRow, name: &str| {
        row.slices.get(name).map_or("n/a".to_string(), |m| {
            format!("{:.4} ({})", m.ndcg, m.users_evaluated)
        })
    };
    let hit = |row: &AblationRow| {
        row.slices.get("cold_items").map_or("n/a".to_string(), |m| {
            format!("{:.4} ({})", m.hit_rate, m.users_evaluated)
        })
    };
    for row in rows {
        let ci = row.ndcg_vs_full.map_or("(reference)".to_string(), |c| {
            format!("{:+.4} [{:+.4}, {:+.4}]", c.mean, c.lo, c.hi)
        });
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {:.4} | {ci} |",
            row.name,
            slice(row, FEATURES_ONLY_SLICE),
            hit(row),
            row.new_item_share
                .map_or("n/a".to_string(), |s| format!("{:.3}", s)),
            row.metrics.ndcg,
        );
    }
    md.push_str(
        "\nnew-item share = share of the top-K slots held by items with at most \
`serving.exposure.new_item_max_interactions` training interactions. The cold-items hit rate \
counts a user as hit when a test item unseen in training is in their top K.\n\n",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x(user: u32, item: u32) -> Interaction {
        Interaction::at0(user, item)
    }

    // Cost: a hundred interactions, microseconds.
    #[test]
    fn hiding_moves_whole_users_and_items_to_test() {
        let train: Vec<Interaction> = (0..10)
            .flat_map(|u| (0..10).map(move |i| x(u, i)))
            .collect();
        let (tr, te) = hide_cold(train.clone(), Vec::new(), 0.2, 0.1, 3);
        assert_eq!(tr.len() + te.len(), 100);
        let hidden_users: FxHashSet<u32> = (0..10)
            .filter(|u| !tr.iter().any(|x| x.user == *u))
            .collect();
        let hidden_items: FxHashSet<u32> = (0..10)
            .filter(|i| !tr.iter().any(|x| x.item == *i))
            .collect();
        assert_eq!((hidden_users.len(), hidden_items.len()), (2, 1));
        assert!(
            te.iter()
                .all(|x| hidden_users.contains(&x.user) || hidden_items.contains(&x.item))
        );
        assert_eq!(hide_cold(train.clone(), Vec::new(), 0.0, 0.0, 3).0, train);
    }
}
