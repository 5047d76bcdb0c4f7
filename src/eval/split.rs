//! Train/test splits for offline evaluation. Each split is deterministic for a seed and never lets a
//! test interaction leak into training: the same (user, item) row goes to exactly one side.

use std::fmt;
use std::str::FromStr;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::data::dataset::Interaction;

/// How interactions are divided into training and test sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SplitKind {
    /// Global time cut at the `ratio` quantile of timestamps: everything strictly before the cut
    /// timestamp trains, everything at or after it tests (ties stay together, so no future leaks).
    Temporal,
    /// Each user's latest interaction goes to test, for users with at least two interactions
    /// (ties on the timestamp: the one appearing last in the input). `ratio` is ignored.
    LeaveLast,
    /// Per user, a random `ratio` share (rounded, at least one) of the interactions trains and the
    /// rest tests; users with a single interaction stay in training.
    RandomUser,
    /// A random `1 - ratio` share of the *items* is held out entirely: all their interactions test,
    /// so test holds cold items only.
    RandomItem,
}

impl SplitKind {
    pub const ALL: [SplitKind; 4] = [
        SplitKind::Temporal,
        SplitKind::LeaveLast,
        SplitKind::RandomUser,
        SplitKind::RandomItem,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SplitKind::Temporal => "temporal",
            SplitKind::LeaveLast => "leave-last",
            SplitKind::RandomUser => "random-user",
            SplitKind::RandomItem => "random-item",
        }
    }
}

impl fmt::Display for SplitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a split could not be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SplitError {
    #[error("unknown split {0:?}; expected one of: temporal, leave-last, random-user, random-item")]
    UnknownKind(String),
    #[error("split ratio must be a training share strictly between 0 and 1, got {0}")]
    InvalidRatio(f64),
}

impl FromStr for SplitKind {
    type Err = SplitError;

    /// Accepts the kebab-case names (`leave-last`) and their snake_case spelling, any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase().replace('_', "-");
        SplitKind::ALL
            .into_iter()
            .find(|k| k.as_str() == norm)
            .ok_or_else(|| SplitError::UnknownKind(s.to_string()))
    }
}

/// Splits `interactions` into `(train, test)`, both in input order. `ratio` is the training share
/// (validated for every kind but `LeaveLast`, which ignores it).
pub fn split(
    interactions: &[Interaction],
    kind: SplitKind,
    ratio: f64,
    seed: u64,
) -> Result<(Vec<Interaction>, Vec<Interaction>), SplitError> {
    if kind != SplitKind::LeaveLast && !(ratio > 0.0 && ratio < 1.0) {
        return Err(SplitError::InvalidRatio(ratio));
    }
    let to_test = match kind {
        SplitKind::Temporal => temporal(interactions, ratio),
        SplitKind::LeaveLast => leave_last(interactions),
        SplitKind::RandomUser => random_user(interactions, ratio, seed),
        SplitKind::RandomItem => random_item(interactions, ratio, seed),
    };
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (x, &is_test) in interactions.iter().zip(&to_test) {
        if is_test {
            test.push(*x)
        } else {
            train.push(*x)
        }
    }
    Ok((train, test))
}

fn temporal(xs: &[Interaction], ratio: f64) -> Vec<bool> {
    let mut ts: Vec<i64> = xs.iter().map(|x| x.ts).collect();
    ts.sort_unstable();
    let idx = ((ratio * ts.len() as f64).floor() as usize).min(ts.len().saturating_sub(1));
    match ts.get(idx) {
        Some(&cut) => xs.iter().map(|x| x.ts >= cut).collect(),
        None => Vec::new(),
    }
}

fn leave_last(xs: &[Interaction]) -> Vec<bool> {
    let mut to_test = vec![false; xs.len()];
    for group in user_groups(xs) {
        if group.len() >= 2 {
            let last = group.iter().copied().max_by_key(|&i| (xs[i].ts, i));
            if let Some(i) = last {
                to_test[i] = true;
            }
        }
    }
    to_test
}

fn random_user(xs: &[Interaction], ratio: f64, seed: u64) -> Vec<bool> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut to_test = vec![false; xs.len()];
    for mut group in user_groups(xs) {
        let n_train = ((ratio * group.len() as f64).round() as usize).clamp(1, group.len());
        group.shuffle(&mut rng);
        for &i in &group[n_train..] {
            to_test[i] = true;
        }
    }
    to_test
}

fn random_item(xs: &[Interaction], ratio: f64, seed: u64) -> Vec<bool> {
    let mut items: Vec<u32> = xs.iter().map(|x| x.item).collect();
    items.sort_unstable();
    items.dedup();
    items.shuffle(&mut StdRng::seed_from_u64(seed));
    let n_test = ((1.0 - ratio) * items.len() as f64).round() as usize;
    let mut held_out = items[..n_test.min(items.len())].to_vec();
    held_out.sort_unstable();
    xs.iter()
        .map(|x| held_out.binary_search(&x.item).is_ok())
        .collect()
}

/// Input positions grouped by user (users ascending, positions ascending within a user).
fn user_groups(xs: &[Interaction]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..xs.len()).collect();
    order.sort_by_key(|&i| (xs[i].user, i));
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut prev = None;
    for i in order {
        if prev != Some(xs[i].user) {
            groups.push(Vec::new());
            prev = Some(xs[i].user);
        }
        if let Some(g) = groups.last_mut() {
            g.push(i);
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustc_hash::{FxHashMap, FxHashSet};

    fn ix(user: u32, item: u32, ts: i64) -> Interaction {
        Interaction {
            user,
            item,
            ts,
            weight: 1.0,
            count: 1,
        }
    }

    /// 40 users × 1..=12 interactions with varied timestamps (some ties) over 60 items.
    fn fixture() -> Vec<Interaction> {
        let mut xs = Vec::new();
        for u in 0..40u32 {
            for j in 0..(u % 12 + 1) {
                xs.push(ix(
                    u,
                    (u * 7 + j * 13) % 60,
                    i64::from((u * 31 + j * 17) % 97),
                ));
            }
        }
        xs
    }

    fn pairs(xs: &[Interaction]) -> FxHashSet<(u32, u32, i64)> {
        xs.iter().map(|x| (x.user, x.item, x.ts)).collect()
    }

    /// Train and test partition the input exactly (as multisets, order preserved).
    fn assert_partition(xs: &[Interaction], train: &[Interaction], test: &[Interaction]) {
        assert_eq!(train.len() + test.len(), xs.len());
        let mut merged: Vec<_> = train
            .iter()
            .chain(test)
            .map(|x| (x.user, x.item, x.ts))
            .collect();
        let mut all: Vec<_> = xs.iter().map(|x| (x.user, x.item, x.ts)).collect();
        merged.sort_unstable();
        all.sort_unstable();
        assert_eq!(merged, all);
        assert!(pairs(train).is_disjoint(&pairs(test)));
    }

    #[test]
    fn parses_names_with_clear_errors() {
        for k in SplitKind::ALL {
            assert_eq!(k.to_string().parse::<SplitKind>(), Ok(k));
        }
        assert_eq!("Leave_Last".parse::<SplitKind>(), Ok(SplitKind::LeaveLast));
        let err = "chrono".parse::<SplitKind>().unwrap_err();
        assert!(
            err.to_string()
                .contains("temporal, leave-last, random-user, random-item")
        );
    }

    #[test]
    fn rejects_bad_ratios_except_for_leave_last() {
        let xs = fixture();
        for r in [0.0, 1.0, -0.5, 1.5, f64::NAN] {
            assert!(matches!(
                split(&xs, SplitKind::Temporal, r, 1),
                Err(SplitError::InvalidRatio(_))
            ));
            assert!(split(&xs, SplitKind::RandomItem, r, 1).is_err());
        }
        assert!(split(&xs, SplitKind::LeaveLast, f64::NAN, 1).is_ok());
    }

    #[test]
    fn temporal_cuts_globally_without_leakage() {
        let xs = fixture();
        let (train, test) = split(&xs, SplitKind::Temporal, 0.8, 0).unwrap();
        assert_partition(&xs, &train, &test);
        let max_train = train.iter().map(|x| x.ts).max().unwrap();
        let min_test = test.iter().map(|x| x.ts).min().unwrap();
        assert!(max_train < min_test);
        // The cut is the 0.8 quantile timestamp: train holds exactly the rows strictly before it.
        let mut ts: Vec<i64> = xs.iter().map(|x| x.ts).collect();
        ts.sort_unstable();
        let cut = ts[(0.8 * ts.len() as f64) as usize];
        assert_eq!(min_test, cut);
        assert_eq!(train.len(), ts.iter().filter(|&&t| t < cut).count());
        assert!(split(&[], SplitKind::Temporal, 0.8, 0).unwrap() == (vec![], vec![]));
    }

    #[test]
    fn leave_last_moves_each_users_latest() {
        let mut xs = fixture();
        xs.push(ix(99, 1, 5)); // single interaction: stays in train
        xs.push(ix(98, 1, 7));
        xs.push(ix(98, 2, 7)); // tie on ts: the later input row goes to test
        let (train, test) = split(&xs, SplitKind::LeaveLast, 0.8, 0).unwrap();
        assert_partition(&xs, &train, &test);
        let mut counts: FxHashMap<u32, usize> = FxHashMap::default();
        for x in &xs {
            *counts.entry(x.user).or_default() += 1;
        }
        let multi = counts.values().filter(|&&c| c >= 2).count();
        assert_eq!(test.len(), multi);
        for t in &test {
            let latest = xs
                .iter()
                .filter(|x| x.user == t.user)
                .map(|x| x.ts)
                .max()
                .unwrap();
            assert_eq!(t.ts, latest);
            assert!(train.iter().all(|x| x.user != t.user || x.ts <= t.ts));
        }
        assert!(test.contains(&ix(98, 2, 7)));
        assert!(train.contains(&ix(99, 1, 5)));
    }

    #[test]
    fn random_user_keeps_ratio_per_user_and_is_deterministic() {
        let xs = fixture();
        let (train, test) = split(&xs, SplitKind::RandomUser, 0.75, 42).unwrap();
        assert_partition(&xs, &train, &test);
        for u in 0..40u32 {
            let n = xs.iter().filter(|x| x.user == u).count();
            let n_train = train.iter().filter(|x| x.user == u).count();
            assert_eq!(
                n_train,
                ((0.75 * n as f64).round() as usize).clamp(1, n),
                "user {u}"
            );
        }
        assert_eq!(
            split(&xs, SplitKind::RandomUser, 0.75, 42).unwrap(),
            (train.clone(), test.clone())
        );
        let other = split(&xs, SplitKind::RandomUser, 0.75, 43).unwrap();
        assert_ne!(other.1, test, "a different seed should pick different rows");
    }

    #[test]
    fn random_item_holds_out_whole_items() {
        let xs = fixture();
        let (train, test) = split(&xs, SplitKind::RandomItem, 0.8, 7).unwrap();
        assert_partition(&xs, &train, &test);
        let train_items: FxHashSet<u32> = train.iter().map(|x| x.item).collect();
        let test_items: FxHashSet<u32> = test.iter().map(|x| x.item).collect();
        assert!(
            train_items.is_disjoint(&test_items),
            "test items must be cold"
        );
        let n_items = xs.iter().map(|x| x.item).collect::<FxHashSet<_>>().len();
        assert_eq!(test_items.len(), (0.2 * n_items as f64).round() as usize);
        assert_eq!(
            split(&xs, SplitKind::RandomItem, 0.8, 7).unwrap(),
            (train, test.clone())
        );
        assert_ne!(split(&xs, SplitKind::RandomItem, 0.8, 8).unwrap().1, test);
    }
}
