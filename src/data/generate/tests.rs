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
    let cfg = GenerateConfig {
        users: 300,
        items: 200,
        interactions: 3000,
        ..small()
    };
    let (a, ..) = run(&cfg);
    let (b, ..) = run(&cfg);
    for name in ["interactions.csv", "items.csv", "users.csv"] {
        let x = std::fs::read(a.path().join(name)).unwrap();
        let y = std::fs::read(b.path().join(name)).unwrap();
        assert!(x.len() > 100 && x == y, "{name} differs");
    }
    let (c, ..) = run(&GenerateConfig { seed: 8, ..cfg });
    for name in ["interactions.csv", "items.csv", "users.csv"] {
        assert_ne!(
            std::fs::read(a.path().join(name)).unwrap(),
            std::fs::read(c.path().join(name)).unwrap()
        );
    }
    // No temporary file is left behind.
    assert_eq!(std::fs::read_dir(a.path()).unwrap().count(), 3);
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
    ] {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            generate(&cfg, dir.path()),
            Err(DataError::InvalidConfig { .. })
        ));
    }
}
