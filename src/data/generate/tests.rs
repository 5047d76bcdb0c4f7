//! Tests of the generator: determinism, exact counts, the round trip through the reader, and
//! that every planted signal is measurably there (against popularity / uniform baselines).

use std::path::Path;

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::activity::rows_per_user;
use super::world::{AGE_GROUPS, NONE, World, dot};
use super::*;
use crate::data::{Dataset, LoadOptions, load_dir};

fn small() -> GenerateConfig {
    GenerateConfig {
        users: 1500,
        items: 1500,
        interactions: 30_000,
        seed: 7,
        cold_item_share: 0.05,
        cold_user_share: 0.10,
        categories: 10,
        days: 60,
        ..Default::default()
    }
}

/// One raw row of `interactions.csv` as dense indices (ids are `u`/`i` + index).
struct RawRow {
    user: usize,
    item: usize,
    ts: i64,
    weight: f32,
}

fn raw_rows(dir: &Path) -> Vec<RawRow> {
    let text = std::fs::read_to_string(dir.join("interactions.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("user_id,item_id,timestamp,weight"));
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 4, "{l}");
            RawRow {
                user: f[0][1..].parse().unwrap(),
                item: f[1][1..].parse().unwrap(),
                ts: f[2].parse().unwrap(),
                weight: f[3].parse().unwrap(),
            }
        })
        .collect()
}

fn run(cfg: &GenerateConfig) -> (tempfile::TempDir, GenerateSummary, World) {
    let dir = tempfile::tempdir().unwrap();
    let summary = generate(cfg, dir.path()).unwrap();
    (dir, summary, World::new(cfg, END_TS))
}

fn index_of(ids: &[String], prefix: char) -> Vec<usize> {
    ids.iter()
        .map(|id| id.strip_prefix(prefix).unwrap().parse().unwrap())
        .collect()
}

#[test]
fn same_seed_gives_identical_files_and_another_seed_does_not() {
    // Cost: 6 runs of 3000 rows, ~0.03 s.
    let read = |dir: &tempfile::TempDir, name: &str| std::fs::read(dir.path().join(name)).unwrap();
    let mut by_regime = Vec::new();
    for regime in Regime::ALL {
        let cfg = GenerateConfig {
            users: 300,
            items: 200,
            interactions: 3000,
            regime,
            ..small()
        };
        let (a, sa, _) = run(&cfg);
        let (b, sb, _) = run(&cfg);
        assert_eq!(sa, sb);
        assert!(sa.bundle_events > 0 && sa.noise_events > 0, "{sa:?}");
        for name in ["interactions.csv", "items.csv", "users.csv"] {
            let (x, y) = (read(&a, name), read(&b, name));
            assert!(x.len() > 100 && x == y, "{regime}: {name} differs");
        }
        let (c, ..) = run(&GenerateConfig { seed: 8, ..cfg });
        for name in ["interactions.csv", "items.csv", "users.csv"] {
            assert_ne!(read(&a, name), read(&c, name), "{regime}: {name}");
        }
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(a.path()).unwrap().count(), 3);
        by_regime.push(a);
    }
    // The regimes differ in every file (features and interactions).
    for name in ["interactions.csv", "items.csv", "users.csv"] {
        assert_ne!(
            read(&by_regime[0], name),
            read(&by_regime[1], name),
            "{name}"
        );
    }
}

#[test]
fn regime_names_round_trip() {
    // Cost: negligible.
    for r in Regime::ALL {
        assert_eq!(r.as_str().parse::<Regime>(), Ok(r));
        assert_eq!(r.to_string(), r.as_str());
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, format!("\"{}\"", r.as_str()));
        assert_eq!(serde_json::from_str::<Regime>(&json).unwrap(), r);
    }
    assert_eq!(Regime::default(), Regime::Default);
    assert_eq!(GenerateConfig::default().regime, Regime::Default);
    assert!("weak".parse::<Regime>().is_err());
    assert!("WeakFeatures".parse::<Regime>().is_err());
    // Unset bundle knobs follow the regime; set ones win.
    let weak = GenerateConfig {
        regime: Regime::WeakFeatures,
        ..small()
    };
    assert!(weak.effective_bundle_share() > small().effective_bundle_share());
    assert!(weak.effective_bundle_follow() > small().effective_bundle_follow());
    let set = GenerateConfig {
        bundle_share: Some(0.1),
        bundle_follow: Some(0.2),
        ..weak
    };
    assert_eq!(
        (set.effective_bundle_share(), set.effective_bundle_follow()),
        (0.1, 0.2)
    );
}

#[test]
fn counts_match_the_config_and_survive_the_round_trip() {
    let cfg = small();
    let (dir, s, _) = run(&cfg);
    let rows = raw_rows(dir.path());
    assert_eq!(rows.len(), cfg.interactions);
    assert_eq!(s.interaction_rows, cfg.interactions as u64);
    assert_eq!(
        (s.users, s.items, s.cold_users, s.cold_items),
        (1500, 1500, 150, 75)
    );
    // Repeated (user, item) picks exist but are a minority of the rows.
    assert!(s.distinct_pairs < s.interaction_rows && s.distinct_pairs > s.interaction_rows / 2);

    let d = load_dir(dir.path(), &LoadOptions::default()).unwrap();
    assert_eq!((d.n_users(), d.n_items()), (cfg.users, cfg.items));
    assert_eq!(d.interactions.len() as u64, s.distinct_pairs);
    let total_count: u64 = d.interactions.iter().map(|x| u64::from(x.count)).sum();
    assert_eq!(total_count, cfg.interactions as u64);
    let raw_weight: f64 = rows.iter().map(|r| f64::from(r.weight)).sum();
    let loaded_weight: f64 = d.interactions.iter().map(|x| f64::from(x.weight)).sum();
    assert!((raw_weight - loaded_weight).abs() < 1e-6 * raw_weight);
    let mut active: Vec<u32> = d.interactions.iter().map(|x| x.user).collect();
    active.dedup();
    assert_eq!(active.len(), s.active_users);
    assert_eq!(
        s.active_users,
        cfg.users - s.cold_users,
        "every warm user has a row"
    );
    let mut items: Vec<u32> = d.interactions.iter().map(|x| x.item).collect();
    items.sort_unstable();
    items.dedup();
    assert_eq!(items.len(), s.interacted_items);

    // Features as the reader sees them.
    assert!(
        d.item_categories
            .iter()
            .all(|c| !c.is_empty() && c.len() <= 2)
    );
    assert!(d.category_vocab.len() <= cfg.categories);
    assert!(d.item_titles.iter().all(|t| !t.is_empty()));
    assert_eq!(d.item_features.numeric_names, ["price"]);
    assert!(
        d.item_features
            .cat_vocab
            .iter()
            .any(|f| f.starts_with("brand="))
    );
    for prefix in ["age_group=", "region=", "device_pref="] {
        assert!(
            d.user_features
                .cat_vocab
                .iter()
                .any(|f| f.starts_with(prefix)),
            "{prefix}"
        );
    }
    assert!((0..d.n_users()).all(|u| d.user_features.categorical[u].len() == 3));
    let ts_ok = d
        .interactions
        .iter()
        .all(|x| x.ts >= s.start_ts && x.ts < s.end_ts);
    assert!(ts_ok);
}

#[test]
fn cold_entities_have_features_but_no_interactions() {
    let (dir, s, world) = run(&small());
    let d = load_dir(dir.path(), &LoadOptions::default()).unwrap();
    let item_idx = index_of(&d.item_ids, 'i');
    let mut interacted = vec![false; d.n_items()];
    for x in &d.interactions {
        interacted[x.item as usize] = true;
        assert!(
            !world.item_cold[item_idx[x.item as usize]],
            "cold item interacted"
        );
    }
    let cold: Vec<usize> = (0..d.n_items())
        .filter(|&i| world.item_cold[item_idx[i]])
        .collect();
    assert_eq!(cold.len(), s.cold_items);
    for &i in &cold {
        assert!(!interacted[i] && d.item_features.has_any(i) && !d.item_categories[i].is_empty());
    }
    let mut user_active = vec![false; d.n_users()];
    for x in &d.interactions {
        user_active[x.user as usize] = true;
    }
    let cold_users: Vec<usize> = (0..d.n_users()).filter(|&u| !user_active[u]).collect();
    assert_eq!(cold_users.len(), s.cold_users);
    assert!(cold_users.iter().all(|&u| d.user_features.has_any(u)));
}

#[test]
fn activity_is_heavy_tailed_and_sums_exactly() {
    let cfg = GenerateConfig {
        users: 20_000,
        interactions: 300_000,
        ..small()
    };
    let counts = rows_per_user(&cfg);
    assert_eq!(counts.iter().sum::<u64>(), 300_000);
    assert_eq!(
        counts.iter().filter(|&&c| c == 0).count(),
        cfg.n_cold_users()
    );
    let mut warm: Vec<u64> = counts.iter().copied().filter(|&c| c > 0).collect();
    warm.sort_unstable();
    let median = warm[warm.len() / 2];
    let top_1pct: u64 = warm[warm.len() * 99 / 100..].iter().sum();
    assert!(
        *warm.last().unwrap() > 20 * median,
        "max {} median {median}",
        warm.last().unwrap()
    );
    assert!(
        top_1pct as f64 > 0.08 * 300_000.0,
        "top 1% users hold {top_1pct} rows"
    );
    // Fewer rows than warm users: some warm users get none, the total is still exact.
    let few = rows_per_user(&GenerateConfig {
        interactions: 500,
        ..cfg
    });
    assert_eq!(few.iter().sum::<u64>(), 500);
}

#[test]
fn users_concentrate_on_their_favourite_categories() {
    let (dir, _, world) = run(&small());
    let rows = raw_rows(dir.path());
    let (mut observed, mut baseline, mut n) = (0.0, 0.0, 0usize);
    let mut by_user = vec![Vec::new(); small().users];
    for r in &rows {
        by_user[r.user].push(r.item);
    }
    for (u, items) in by_user
        .iter()
        .enumerate()
        .filter(|(_, items)| items.len() >= 20)
    {
        let (p, _) = world.user(u);
        let favs = &p.favourites[..p.n_favourites];
        let hits = items
            .iter()
            .filter(|&&i| favs.iter().any(|f| f.0 == world.item_primary[i]))
            .count();
        observed += hits as f64 / items.len() as f64;
        baseline += favs.iter().map(|f| world.category_share(f.0)).sum::<f64>();
        n += 1;
    }
    let (observed, baseline) = (observed / n as f64, baseline / n as f64);
    assert!(n > 200, "{n} users with >= 20 rows");
    assert!(
        observed > 0.6 && observed > 2.0 * baseline,
        "observed {observed}, baseline {baseline}"
    );
}

#[test]
fn picks_follow_latent_affinity_beyond_popularity() {
    let (dir, _, world) = run(&small());
    let rows = raw_rows(dir.path());
    let mut rng = StdRng::seed_from_u64(1);
    let (mut chosen, mut popular, mut n) = (0.0, 0.0, 0usize);
    let mut last_user = usize::MAX;
    let mut profile = world.user(0).0;
    for r in &rows {
        if r.user != last_user {
            profile = world.user(r.user).0;
            last_user = r.user;
        }
        // Items with one category are only reachable through that category's table, so the
        // popularity-only baseline is a draw from the same table restricted the same way.
        if world.item_secondary[r.item] != NONE {
            continue;
        }
        let c = world.item_primary[r.item];
        let alt = (0..1000)
            .filter_map(|_| world.popular_item(c, r.ts, &mut rng))
            .find(|&i| world.item_secondary[i as usize] == NONE);
        let Some(alt) = alt else { continue };
        chosen += dot(&profile.vector, &world.item_vector[r.item]);
        popular += dot(&profile.vector, &world.item_vector[alt as usize]);
        n += 1;
    }
    let gap = (chosen - popular) / n as f64;
    assert!(gap > 0.15, "mean affinity gap over popularity picks: {gap}");
}

#[test]
fn rows_respect_release_times_join_times_and_the_period() {
    let (dir, s, world) = run(&small());
    let mut joins = vec![None; small().users];
    for r in raw_rows(dir.path()) {
        assert!(r.ts >= s.start_ts && r.ts < s.end_ts);
        assert!(
            world.item_release[r.item] <= r.ts,
            "item used before release"
        );
        let join = *joins[r.user].get_or_insert_with(|| world.user(r.user).0.join);
        assert!(r.ts >= join);
        assert!([1.0, 2.0, 3.0, 5.0].contains(&r.weight));
    }
    // Items are released over the period, not all up front.
    let in_period = world
        .item_release
        .iter()
        .filter(|&&t| t >= s.start_ts)
        .count();
    assert!(in_period > world.item_release.len() / 2);
}

#[test]
fn tastes_drift_and_sessions_stay_on_topic() {
    let cfg = GenerateConfig {
        users: 3000,
        interactions: 60_000,
        ..small()
    };
    let (dir, s, world) = run(&cfg);
    let rows = raw_rows(dir.path());
    let third = (s.end_ts - s.start_ts) / 3;
    let (mut early, mut early_n, mut late, mut late_n) = (0usize, 0usize, 0usize, 0usize);
    // Consecutive events of one session vs consecutive events of one user a day or more apart.
    // Only pairs whose first item is in no bundle: bundle follow-ups leave the category on
    // purpose (see `bundle_members_are_consumed_together_beyond_popularity_and_category`).
    let (mut same, mut pairs, mut apart_same, mut apart_pairs) = (0usize, 0usize, 0usize, 0usize);
    for (k, r) in rows.iter().enumerate() {
        let (p, _) = world.user(r.user);
        let is_fav = p.favourites[..p.n_favourites]
            .iter()
            .any(|f| f.0 == p.drift_category);
        if p.drift > 0.0 && !is_fav {
            let hit = usize::from(world.item_primary[r.item] == p.drift_category);
            if r.ts < s.start_ts + third {
                (early, early_n) = (early + hit, early_n + 1);
            } else if r.ts >= s.end_ts - third {
                (late, late_n) = (late + hit, late_n + 1);
            }
        }
        if let Some(prev) = k.checked_sub(1).map(|j| &rows[j])
            && prev.user == r.user
            && world.bundles.of(prev.item as u32).is_none()
        {
            let hit = usize::from(world.item_primary[prev.item] == world.item_primary[r.item]);
            if r.ts - prev.ts <= 900 {
                (same, pairs) = (same + hit, pairs + 1);
            } else if r.ts - prev.ts >= 86_400 {
                (apart_same, apart_pairs) = (apart_same + hit, apart_pairs + 1);
            }
        }
    }
    let (early, late) = (early as f64 / early_n as f64, late as f64 / late_n as f64);
    assert!(late > early + 0.1, "drift share early {early}, late {late}");
    let (same, apart) = (
        same as f64 / pairs as f64,
        apart_same as f64 / apart_pairs as f64,
    );
    assert!(
        same > apart + 0.15,
        "same category: within a session {same}, across sessions {apart}"
    );
}

/// Categorical feature values of entity `e` whose name starts with `prefix`.
fn feature<'a>(f: &'a crate::data::EntityFeatures, e: usize, prefix: &str) -> Option<&'a str> {
    f.categorical[e]
        .iter()
        .find_map(|&id| f.cat_vocab[id as usize].strip_prefix(prefix))
}

#[test]
fn demographics_brands_and_titles_carry_category_signal() {
    let (dir, _, world) = run(&small());
    let d: Dataset = load_dir(dir.path(), &LoadOptions::default()).unwrap();
    let users = index_of(&d.user_ids, 'u');
    let matches = (0..d.n_users())
        .filter(|&e| {
            let (p, _) = world.user(users[e]);
            let top = &world.categories[p.favourites[0].0 as usize];
            feature(&d.user_features, e, "age_group=") == Some(AGE_GROUPS[top.age_group])
        })
        .count();
    let share = matches as f64 / d.n_users() as f64;
    assert!(
        share > 0.5,
        "age group follows taste for {share} of users (uniform: 0.2)"
    );

    let items = index_of(&d.item_ids, 'i');
    let primary: Vec<u32> = items.iter().map(|&i| world.item_primary[i]).collect();
    let own_brand = (0..d.n_items())
        .filter(|&e| {
            let brand = feature(&d.item_features, e, "brand=").unwrap();
            world.categories[primary[e] as usize]
                .brands
                .iter()
                .any(|b| b == brand)
        })
        .count();
    assert!(own_brand as f64 > 0.85 * d.n_items() as f64);

    // Items of one category share title tokens far more often than items of two categories.
    let token_sets: Vec<Vec<u32>> = d
        .item_features
        .text
        .iter()
        .map(|t| {
            let mut t = t.clone();
            t.sort_unstable();
            t.dedup();
            t
        })
        .collect();
    let (mut same, mut same_n, mut diff, mut diff_n) = (0usize, 0usize, 0usize, 0usize);
    for a in 0..d.n_items() {
        for b in a + 1..d.n_items() {
            let shared = token_sets[a]
                .iter()
                .any(|t| token_sets[b].binary_search(t).is_ok());
            if primary[a] == primary[b] {
                (same, same_n) = (same + usize::from(shared), same_n + 1);
            } else {
                (diff, diff_n) = (diff + usize::from(shared), diff_n + 1);
            }
        }
    }
    let (same, diff) = (same as f64 / same_n as f64, diff as f64 / diff_n as f64);
    assert!(
        same > 3.0 * diff,
        "token sharing: same category {same}, different {diff}"
    );
}

#[test]
fn popularity_is_skewed() {
    let (dir, ..) = run(&small());
    let mut per_item = vec![0u64; small().items];
    for r in raw_rows(dir.path()) {
        per_item[r.item] += 1;
    }
    per_item.sort_unstable_by(|a, b| b.cmp(a));
    let top: u64 = per_item[..per_item.len() / 20].iter().sum();
    let total: u64 = per_item.iter().sum();
    assert!(
        top as f64 > 0.2 * total as f64,
        "top 5% of items hold {top} of {total} rows"
    );
}

/// Per-user hit rate@10 on the rows after 80% of the period, for users active before and after
/// that cut, of the 10 unseen items most popular over all of the history before the cut, and
/// over its last 30 days (the `recserve evaluate` popularity rows, in miniature).
fn popularity_hit_rates(cfg: &GenerateConfig) -> (f64, f64) {
    let (dir, ..) = run(cfg);
    let rows = raw_rows(dir.path());
    let start = END_TS - cfg.days as i64 * 86_400;
    let cut = start + (END_TS - start) * 4 / 5;
    let recent_from = cut - 30 * 86_400;
    let mut all_time = vec![0u64; cfg.items];
    let mut recent = vec![0u64; cfg.items];
    let mut seen = vec![std::collections::HashSet::new(); cfg.users];
    let mut future = vec![std::collections::HashSet::new(); cfg.users];
    for r in &rows {
        if r.ts < cut {
            all_time[r.item] += 1;
            if r.ts >= recent_from {
                recent[r.item] += 1;
            }
            seen[r.user].insert(r.item);
        } else {
            future[r.user].insert(r.item);
        }
    }
    let order = |counts: &[u64]| {
        let mut ix: Vec<usize> = (0..counts.len()).collect();
        ix.sort_by_key(|&i| (std::cmp::Reverse(counts[i]), i));
        ix
    };
    let (a, r) = (order(&all_time), order(&recent));
    let hit_rate = |ranked: &[usize]| {
        let users: Vec<usize> = (0..cfg.users)
            .filter(|&u| !seen[u].is_empty() && !future[u].is_empty())
            .collect();
        let hits = users.iter().filter(|&&u| {
            ranked
                .iter()
                .filter(|i| !seen[u].contains(i))
                .take(10)
                .any(|i| future[u].contains(i))
        });
        hits.count() as f64 / users.len() as f64
    };
    (hit_rate(&a), hit_rate(&r))
}

#[test]
fn lifecycles_make_recent_popularity_beat_all_time_popularity_on_the_future() {
    // Cost: 2 runs of 60k rows, ~0.3 s.
    let cfg = GenerateConfig {
        users: 3000,
        items: 3000,
        interactions: 60_000,
        seed: 11,
        days: 180,
        ..Default::default()
    };
    let (on_all, on_recent) = popularity_hit_rates(&cfg);
    let (off_all, off_recent) = popularity_hit_rates(&GenerateConfig {
        item_lifecycle: false,
        ..cfg.clone()
    });
    let (lift_on, lift_off) = (on_recent / on_all, off_recent / off_all);
    eprintln!(
        "hit rate@10 on the last 20%: lifecycles all-time {on_all:.4} recent {on_recent:.4} \
         (x{lift_on:.2}); without all-time {off_all:.4} recent {off_recent:.4} (x{lift_off:.2})"
    );
    // Measured x1.28 with lifecycles and x1.09 without (seed 11).
    assert!(
        lift_on > 1.15,
        "recent popularity must beat all-time: x{lift_on:.2}"
    );
    assert!(
        lift_on > lift_off + 0.08,
        "lifecycles must add drift beyond release times: x{lift_on:.2} vs x{lift_off:.2}"
    );
}

#[test]
fn edge_configs_work_and_invalid_ones_are_refused() {
    for cfg in [
        GenerateConfig {
            users: 1,
            items: 1,
            interactions: 5,
            categories: 3,
            ..small()
        },
        GenerateConfig {
            users: 5,
            items: 3,
            interactions: 0,
            ..small()
        },
        GenerateConfig {
            users: 50,
            items: 5,
            interactions: 100,
            categories: 40,
            days: 1,
            ..small()
        },
        // Extreme but valid knobs: everything bundled and always followed, pairs only; no noise.
        GenerateConfig {
            users: 40,
            items: 30,
            interactions: 500,
            bundle_share: Some(1.0),
            bundle_follow: Some(1.0),
            bundle_cross_share: 1.0,
            max_bundle_size: 2,
            noise_share: 0.0,
            regime: Regime::WeakFeatures,
            ..small()
        },
        GenerateConfig {
            users: 40,
            items: 30,
            interactions: 500,
            bundle_share: Some(0.0),
            bundle_cross_share: 0.0,
            max_bundle_size: 64,
            noise_share: 0.99,
            ..small()
        },
    ] {
        let (dir, s, _) = run(&cfg);
        assert_eq!(raw_rows(dir.path()).len(), cfg.interactions);
        assert_eq!(s.interaction_rows, cfg.interactions as u64);
        let d = load_dir(dir.path(), &LoadOptions::default()).unwrap();
        assert_eq!((d.n_users(), d.n_items()), (cfg.users, cfg.items));
    }
    for cfg in [
        GenerateConfig {
            users: 0,
            ..small()
        },
        GenerateConfig {
            items: 0,
            ..small()
        },
        GenerateConfig {
            categories: 0,
            ..small()
        },
        GenerateConfig { days: 0, ..small() },
        GenerateConfig {
            cold_item_share: 1.0,
            ..small()
        },
        GenerateConfig {
            cold_user_share: f64::NAN,
            ..small()
        },
        GenerateConfig {
            cold_user_share: -0.1,
            ..small()
        },
        GenerateConfig {
            noise_share: 1.0,
            ..small()
        },
        GenerateConfig {
            noise_share: -0.01,
            ..small()
        },
        GenerateConfig {
            bundle_share: Some(1.5),
            ..small()
        },
        GenerateConfig {
            bundle_share: Some(f64::NAN),
            ..small()
        },
        GenerateConfig {
            bundle_follow: Some(-0.1),
            ..small()
        },
        GenerateConfig {
            bundle_follow: Some(1.01),
            ..small()
        },
        GenerateConfig {
            bundle_cross_share: f64::NAN,
            ..small()
        },
        GenerateConfig {
            bundle_cross_share: 2.0,
            ..small()
        },
        GenerateConfig {
            max_bundle_size: 1,
            ..small()
        },
        GenerateConfig {
            max_bundle_size: 65,
            ..small()
        },
    ] {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            generate(&cfg, dir.path()),
            Err(DataError::InvalidConfig { .. })
        ));
    }
}

/// Consecutive rows of one user at most 900 s apart (the largest gap inside a session): the
/// (previous, next) item pairs, in file order.
fn session_pairs(rows: &[RawRow]) -> Vec<(usize, usize)> {
    rows.windows(2)
        .filter(|w| w[0].user == w[1].user && w[1].ts - w[0].ts <= 900)
        .map(|w| (w[0].item, w[1].item))
        .collect()
}

/// Pairs of distinct items `(a, b)` with `key(a) == key(b)` (both `Some`) expected among
/// `pairs` if the two positions were independent with the observed marginals; pairs of one
/// item with itself are excluded from the expectation as from the count.
fn expected_pairs(
    pairs: &[(usize, usize)],
    n_items: usize,
    key: impl Fn(usize) -> Option<u64>,
) -> f64 {
    let n = pairs.len() as f64;
    let (mut first, mut second) = (vec![0f64; n_items], vec![0f64; n_items]);
    for &(a, b) in pairs {
        first[a] += 1.0 / n;
        second[b] += 1.0 / n;
    }
    let mut groups: rustc_hash::FxHashMap<u64, (f64, f64)> = Default::default();
    let mut own = 0.0;
    for i in 0..n_items {
        if let Some(k) = key(i) {
            let g = groups.entry(k).or_default();
            g.0 += first[i];
            g.1 += second[i];
            own += first[i] * second[i];
        }
    }
    n * (groups.values().map(|g| g.0 * g.1).sum::<f64>() - own)
}

/// Co-occurrence lift of same-bundle pairs and of same-category pairs outside bundles in the
/// sessions of `rows`: observed / expected under independence with matched popularity.
fn co_consumption_lifts(rows: &[RawRow], world: &World) -> (f64, f64) {
    let pairs: Vec<(usize, usize)> = session_pairs(rows)
        .into_iter()
        .filter(|(a, b)| a != b)
        .collect();
    let n_items = world.item_primary.len();
    let bundle = |i: usize| world.bundles.of(i as u32).map(u64::from);
    let category = |i: usize| Some(u64::from(world.item_primary[i]));
    let both = |i: usize| bundle(i).map(|b| b << 32 | u64::from(world.item_primary[i]));
    let same_bundle = pairs
        .iter()
        .filter(|&&(a, b)| bundle(a).is_some() && bundle(a) == bundle(b))
        .count() as f64;
    let same_category_only = pairs
        .iter()
        .filter(|&&(a, b)| {
            category(a) == category(b) && !(bundle(a).is_some() && bundle(a) == bundle(b))
        })
        .count() as f64;
    let expected_bundle = expected_pairs(&pairs, n_items, bundle);
    let expected_category =
        expected_pairs(&pairs, n_items, category) - expected_pairs(&pairs, n_items, both);
    (
        same_bundle / expected_bundle,
        same_category_only / expected_category,
    )
}

#[test]
fn bundles_are_small_cross_category_and_cover_the_configured_share() {
    // Cost: three worlds of 1500 items, no files, ~5 ms.
    for (share, cross) in [(None, 0.7), (Some(0.8), 0.7), (Some(0.4), 0.0)] {
        let cfg = GenerateConfig {
            bundle_share: share,
            bundle_cross_share: cross,
            ..small()
        };
        let world = World::new(&cfg, END_TS);
        let b = &world.bundles;
        let warm = world.item_cold.iter().filter(|&&c| !c).count();
        let mut times_bundled = vec![0u32; cfg.items];
        let (mut multi_category, mut same_as_first, mut later) = (0usize, 0usize, 0usize);
        let (mut bundle_dot, mut bundle_n) = (0.0, 0usize);
        for k in 0..b.len() as u32 {
            let m = b.members(k);
            assert!(
                (2..=cfg.max_bundle_size).contains(&m.len()),
                "size {}",
                m.len()
            );
            for &i in m {
                times_bundled[i as usize] += 1;
                assert!(!world.item_cold[i as usize], "cold item {i} in a bundle");
                assert_eq!(b.of(i), Some(k));
            }
            let first = world.item_primary[m[0] as usize];
            let mut cats: Vec<u32> = m.iter().map(|&i| world.item_primary[i as usize]).collect();
            cats.sort_unstable();
            cats.dedup();
            multi_category += usize::from(cats.len() >= 2);
            same_as_first += m[1..]
                .iter()
                .filter(|&&i| world.item_primary[i as usize] == first)
                .count();
            later += m.len() - 1;
            for (x, &i) in m.iter().enumerate() {
                for &j in &m[x + 1..] {
                    bundle_dot += dot(
                        &world.item_vector[i as usize],
                        &world.item_vector[j as usize],
                    );
                    bundle_n += 1;
                }
            }
        }
        assert!(
            times_bundled.iter().all(|&c| c <= 1),
            "an item in two bundles"
        );
        let bundled = times_bundled.iter().filter(|&&c| c == 1).count();
        assert_eq!(b.n_members(), bundled);
        assert!(
            (0..cfg.items as u32).all(|i| (b.of(i).is_some()) == (times_bundled[i as usize] == 1))
        );
        let covered = bundled as f64 / warm as f64;
        assert!(
            (covered - cfg.effective_bundle_share()).abs() < 0.01,
            "bundled share of warm items {covered}"
        );
        let multi = multi_category as f64 / b.len() as f64;
        let same = same_as_first as f64 / later as f64;
        // Latent vectors: same-category pairs are close, same-bundle pairs (mostly across
        // categories) much less so; taste alone does not explain bundles.
        let (mut cat_dot, mut cat_n) = (0.0, 0usize);
        for i in (0..cfg.items).step_by(7) {
            for j in (i + 1..cfg.items).step_by(5) {
                if world.item_primary[i] == world.item_primary[j] {
                    cat_dot += dot(&world.item_vector[i], &world.item_vector[j]);
                    cat_n += 1;
                }
            }
        }
        let (bundle_dot, cat_dot) = (bundle_dot / bundle_n as f64, cat_dot / cat_n as f64);
        eprintln!(
            "share {share:?} cross {cross}: bundles {} covered {covered:.3} multi {multi:.3} same-as-first {same:.3} dot bundle {bundle_dot:.3} category {cat_dot:.3}",
            b.len()
        );
        if cross > 0.0 {
            assert!(multi > 0.75, "{multi} of bundles span >= 2 categories");
            assert!(
                same < 0.45,
                "{same} of later members share the first's category"
            );
            assert!(
                bundle_dot < 0.6 * cat_dot,
                "latent dot: bundle {bundle_dot}, category {cat_dot}"
            );
        } else {
            assert!(
                multi < 0.05 && same > 0.95,
                "cross 0: multi {multi}, same {same}"
            );
        }
    }
}

#[test]
fn bundle_members_are_consumed_together_beyond_popularity_and_category() {
    // Cost: one run of 30k rows, ~0.05 s.
    let (dir, _, world) = run(&small());
    let rows = raw_rows(dir.path());
    let (bundle_lift, category_lift) = co_consumption_lifts(&rows, &world);
    eprintln!("lift bundle {bundle_lift:.2} category {category_lift:.2}");
    assert!(
        bundle_lift > 10.0 && bundle_lift > 3.0 * category_lift,
        "co-occurrence lift over popularity: same bundle {bundle_lift}, same category {category_lift}"
    );
}

#[test]
fn noise_and_bundle_follow_rates_match_the_config() {
    // Cost: one run of 30k rows and two of 3000, ~0.04 s.
    let cfg = small();
    let (dir, s, world) = run(&cfg);
    let rows = raw_rows(dir.path());
    let noise = s.noise_events as f64 / s.interaction_rows as f64;
    // Binomial sd at 30k rows: 0.0013 (this seed: 0.0551; 0.0501 at 1M rows).
    assert!(
        (noise - cfg.noise_share).abs() < 0.01,
        "noise share {noise}"
    );
    assert_eq!(s.bundles, world.bundles.len());
    assert_eq!(s.bundled_items, world.bundles.n_members());
    // In the files: after a bundle member, the next event of the session is another member of
    // the bundle with about the follow probability (less the noise; less when no other member
    // is released yet).
    let (mut after_member, mut followed) = (0usize, 0usize);
    for (a, b) in session_pairs(&rows) {
        if let Some(k) = world.bundles.of(a as u32) {
            after_member += 1;
            followed += usize::from(a != b && world.bundles.of(b as u32) == Some(k));
        }
    }
    let rate = followed as f64 / after_member as f64;
    let nominal = cfg.effective_bundle_follow() * (1.0 - cfg.noise_share);
    let share = s.bundle_events as f64 / s.interaction_rows as f64;
    eprintln!(
        "follow rate {rate:.3} nominal {nominal:.3}; bundle events {} ({share:.3}) vs followed pairs in files {followed}; noise {noise:.4}",
        s.bundle_events
    );
    assert!(
        rate > 0.75 * nominal && rate < nominal + 0.04,
        "follow rate {rate} (nominal {nominal})"
    );
    // The summary's count is what the files show (up to chance pairs and overlapping sessions).
    let ratio = s.bundle_events as f64 / followed as f64;
    assert!(
        (0.9..1.1).contains(&ratio),
        "bundle events {} vs {followed}",
        s.bundle_events
    );

    // The knobs drive the counts.
    let tiny = GenerateConfig {
        users: 300,
        items: 200,
        interactions: 3000,
        ..small()
    };
    let (_, off, _) = run(&GenerateConfig {
        noise_share: 0.0,
        bundle_share: Some(0.0),
        ..tiny.clone()
    });
    assert_eq!(
        (off.noise_events, off.bundle_events, off.bundles),
        (0, 0, 0)
    );
    let (_, loud, _) = run(&GenerateConfig {
        noise_share: 0.3,
        bundle_follow: Some(0.0),
        ..tiny
    });
    let noise = loud.noise_events as f64 / loud.interaction_rows as f64;
    assert!(
        (noise - 0.3).abs() < 0.03 && loud.bundle_events == 0,
        "{loud:?}"
    );
}

/// `items.csv` as (item index, lower-cased title words, brand, price).
fn raw_items(dir: &Path) -> Vec<(usize, Vec<String>, String, Option<f64>)> {
    let text = std::fs::read_to_string(dir.join("items.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 5, "{l}");
            let title = f[1].split(' ').map(str::to_lowercase).collect();
            (
                f[0][1..].parse().unwrap(),
                title,
                f[3].to_lowercase(),
                f[4].parse().ok(),
            )
        })
        .collect()
}

/// What the observable features say about categories and taste, measured from the files.
#[derive(Debug)]
struct FeatureSignal {
    /// Items whose title holds a word of their primary category (words are unique per category).
    title_has_own_word: f64,
    /// Items whose brand is one of their primary category's brands.
    own_brand: f64,
    /// Share of the variance of log price explained by the primary category.
    price_r2: f64,
    /// Users (>= 10 rows) whose age group / region is the preferred one of the category they
    /// interact with most.
    age_matches_taste: f64,
    region_matches_taste: f64,
    bundle_event_share: f64,
}

fn feature_signal(cfg: &GenerateConfig) -> FeatureSignal {
    let (dir, s, world) = run(cfg);
    let items = raw_items(dir.path());
    let category = |i: usize| &world.categories[world.item_primary[i] as usize];
    let share = |hits: usize, n: usize| hits as f64 / n as f64;
    let title_hits = items
        .iter()
        .filter(|(i, title, ..)| title.iter().any(|w| category(*i).words.contains(w)))
        .count();
    let brand_hits = items
        .iter()
        .filter(|(i, _, brand, _)| category(*i).brands.contains(brand))
        .count();
    let priced: Vec<(u32, f64)> = items
        .iter()
        .filter_map(|(i, _, _, p)| p.map(|p| (world.item_primary[*i], p.ln())))
        .collect();
    let mean = priced.iter().map(|x| x.1).sum::<f64>() / priced.len() as f64;
    let n_cat = world.categories.len();
    let (mut sum, mut count) = (vec![0.0; n_cat], vec![0usize; n_cat]);
    for &(c, x) in &priced {
        sum[c as usize] += x;
        count[c as usize] += 1;
    }
    let (mut within, mut total) = (0.0, 0.0);
    for &(c, x) in &priced {
        let m = sum[c as usize] / count[c as usize] as f64;
        within += (x - m) * (x - m);
        total += (x - mean) * (x - mean);
    }

    let mut by_user = vec![vec![0usize; n_cat]; cfg.users];
    for r in raw_rows(dir.path()) {
        by_user[r.user][world.item_primary[r.item] as usize] += 1;
    }
    let users = std::fs::read_to_string(dir.path().join("users.csv")).unwrap();
    let (mut age_hits, mut region_hits, mut n) = (0usize, 0usize, 0usize);
    for (u, line) in users.lines().skip(1).enumerate() {
        let counts = &by_user[u];
        if counts.iter().sum::<usize>() < 10 {
            continue;
        }
        let modal = (0..n_cat)
            .max_by_key(|&c| (counts[c], std::cmp::Reverse(c)))
            .unwrap();
        let f: Vec<&str> = line.split(',').collect();
        let c = &world.categories[modal];
        age_hits += usize::from(f[1] == AGE_GROUPS[c.age_group]);
        region_hits += usize::from(f[2] == super::world::REGIONS[c.region]);
        n += 1;
    }
    assert!(n > 200, "{n} users with >= 10 rows");
    FeatureSignal {
        title_has_own_word: share(title_hits, items.len()),
        own_brand: share(brand_hits, items.len()),
        price_r2: 1.0 - within / total,
        age_matches_taste: share(age_hits, n),
        region_matches_taste: share(region_hits, n),
        bundle_event_share: s.bundle_events as f64 / s.interaction_rows as f64,
    }
}

#[test]
fn weak_features_regime_hides_taste_in_features_and_strengthens_bundles() {
    // Cost: two runs of 30k rows, ~0.06 s.
    let strong = feature_signal(&small());
    let weak = feature_signal(&GenerateConfig {
        regime: Regime::WeakFeatures,
        ..small()
    });
    eprintln!("default {strong:?}\nweak {weak:?}");
    assert!(
        strong.title_has_own_word > 0.95
            && weak.title_has_own_word < strong.title_has_own_word / 2.5,
        "titles with a word of the primary category: default {}, weak {}",
        strong.title_has_own_word,
        weak.title_has_own_word
    );
    assert!(
        strong.own_brand > 0.85 && weak.own_brand < 0.35,
        "own-category brands: default {}, weak {}",
        strong.own_brand,
        weak.own_brand
    );
    assert!(
        strong.price_r2 > 0.8 && weak.price_r2 < 0.15,
        "log price variance explained by category: default {}, weak {}",
        strong.price_r2,
        weak.price_r2
    );
    // Excess over chance (5 age groups, 5 regions: 0.2) at least halves.
    for (what, s, w) in [
        (
            "age group",
            strong.age_matches_taste,
            weak.age_matches_taste,
        ),
        (
            "region",
            strong.region_matches_taste,
            weak.region_matches_taste,
        ),
    ] {
        assert!(
            s > 0.4 && w - 0.2 < 0.5 * (s - 0.2),
            "{what} matches the most-used category's audience: default {s}, weak {w} (chance 0.2)"
        );
    }
    assert!(
        weak.bundle_event_share > 1.5 * strong.bundle_event_share,
        "bundle events: default {}, weak {}",
        strong.bundle_event_share,
        weak.bundle_event_share
    );
}
