//! How much and when users interact: heavy-tailed activity split exactly into the requested
//! number of rows, and sessions of related picks over the user's active window (taste-driven
//! picks, bundle follow-ups and uniform noise).

use rand::RngExt;
use rand::rngs::StdRng;
use rustc_hash::FxHashSet;

use super::GenerateConfig;
use super::world::{BETA, Stream, UserProfile, World, cumulative, rng_for};

/// Pareto shape of user activity (lower = heavier tail) and its cap (in units of the minimum).
const ACTIVITY_SHAPE: f64 = 1.2;
const ACTIVITY_CAP: f64 = 300.0;
/// Session length is geometric with this stop probability (mean 1 / p), capped.
const SESSION_STOP: f64 = 0.25;
const MAX_SESSION: u64 = 50;
/// Probability that a pick inside a session stays in the session's category.
const SESSION_STICKINESS: f64 = 0.75;
/// Seconds between consecutive events of a session.
const GAP_SECONDS: std::ops::RangeInclusive<i64> = 20..=900;

/// One generated interaction row of a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Row {
    pub(super) ts: i64,
    pub(super) item: u32,
    pub(super) weight: u8,
}

/// Rows per user summing to exactly `cfg.interactions`: cold users get none, every other user
/// gets at least one when there are enough rows, the rest is split ∝ a capped Pareto activity.
pub(super) fn rows_per_user(cfg: &GenerateConfig) -> Vec<u64> {
    let mut rng = rng_for(cfg.seed, Stream::Activity, 0);
    let mut cold = vec![false; cfg.users];
    for u in rand::seq::index::sample(&mut rng, cfg.users, cfg.n_cold_users()) {
        cold[u] = true;
    }
    let activity: Vec<f64> = cold
        .iter()
        .map(|&c| {
            let a = (1.0 - rng.random::<f64>())
                .powf(-1.0 / ACTIVITY_SHAPE)
                .min(ACTIVITY_CAP);
            if c { 0.0 } else { a }
        })
        .collect();
    let warm = (cfg.users - cfg.n_cold_users()) as u64;
    let total_rows = cfg.interactions as u64;
    let mut counts = vec![0u64; cfg.users];
    let mut left = total_rows;
    if total_rows >= warm {
        let total: f64 = activity.iter().sum();
        let mut budget = total_rows - warm;
        let extra = budget as f64;
        for (count, &a) in counts.iter_mut().zip(&activity) {
            if a > 0.0 {
                let share = ((extra * a / total).floor() as u64).min(budget);
                budget -= share;
                *count = 1 + share;
            }
        }
        left = budget;
    }
    let cum = cumulative(activity.iter().copied());
    let total = cum.last().copied().unwrap_or(0.0);
    for _ in 0..left {
        let x = rng.random::<f64>() * total;
        let u = cum.partition_point(|&c| c <= x).min(cfg.users - 1);
        counts[u] += 1;
    }
    counts
}

/// Buffers of [`simulate_user`], reused across users, and counts of its event kinds.
#[derive(Default)]
pub(super) struct Simulation {
    /// The last simulated user's rows, sorted by time.
    pub(super) rows: Vec<Row>,
    /// (start, length) of the user's sessions.
    sessions: Vec<(i64, u64)>,
    /// Items the user has interacted with so far.
    seen: FxHashSet<u32>,
    /// Rows, over all calls, chosen by following the previous event's bundle.
    pub(super) bundle_events: u64,
    /// Rows, over all calls, that are uniform picks ignoring taste.
    pub(super) noise_events: u64,
}

/// Fills `sim.rows` with `n` interactions of user `p`, sorted by time: sessions starting
/// uniformly over the user's active window, simulated in order of their start. Each event is,
/// with probability `noise_share`, a uniform pick among the released items; else, when the
/// previous event of the session is a bundle member, with probability `bundle_follow` another
/// member of that bundle (see [`World::follow_bundle`]); else a pick by taste, mostly in the
/// session's category.
pub(super) fn simulate_user(
    world: &World,
    p: &UserProfile,
    n: u64,
    rng: &mut StdRng,
    sim: &mut Simulation,
) {
    let Simulation {
        rows,
        sessions,
        seen,
        bundle_events,
        noise_events,
    } = sim;
    rows.clear();
    sessions.clear();
    seen.clear();
    let mut left = n;
    while left > 0 {
        let len = session_length(rng).min(left);
        sessions.push((rng.random_range(p.join..world.end), len));
        left -= len;
    }
    sessions.sort_unstable();
    for &(start, len) in sessions.iter() {
        let mut t = start;
        let session_category = world.pick_category(p, t, rng);
        let mut prev: Option<u32> = None;
        for _ in 0..len {
            let (item, affinity) = if rng.random_bool(world.noise_share) {
                *noise_events += 1;
                world.uniform_item(p, t, rng)
            } else if let Some(next) =
                prev.and_then(|prev| world.follow_bundle(p, prev, t, seen, rng))
            {
                *bundle_events += 1;
                next
            } else {
                let c = if rng.random_bool(SESSION_STICKINESS) {
                    session_category
                } else {
                    world.pick_category(p, t, rng)
                };
                world.pick_item(p, c, t, rng)
            };
            rows.push(Row {
                ts: t,
                item,
                weight: event_weight(affinity, rng),
            });
            seen.insert(item);
            prev = Some(item);
            t = (t + rng.random_range(GAP_SECONDS)).min(world.end - 1);
        }
    }
    rows.sort_unstable();
}

fn session_length(rng: &mut StdRng) -> u64 {
    let u = 1.0 - rng.random::<f64>(); // (0, 1]
    let extra = (u.ln() / (1.0 - SESSION_STOP).ln()).floor();
    (1 + extra as u64).min(MAX_SESSION)
}

/// The event's weight: 1 view, 2 like, 3 add-to-cart, 5 purchase; purchases are likelier for
/// items close to the user's taste.
fn event_weight(affinity: f64, rng: &mut StdRng) -> u8 {
    let p_purchase = 0.01 + 0.10 / (1.0 + (3.0 - BETA * affinity).exp());
    match rng.random::<f64>() {
        x if x < p_purchase => 5,
        x if x < p_purchase + 0.06 => 3,
        x if x < p_purchase + 0.12 => 2,
        _ => 1,
    }
}
