//! Contextual bandit that learns, from feedback, which blend of candidate sources (an arm:
//! [`BlendWeights`] over `cf`, `content`, `session`, `popular`) serves each request context
//! best. It must stay cheap on the request path (one short per-context lock, no allocation)
//! and its learned state must be exactly reproducible from the logged [`BanditUpdate`]s.
//!
//! # State and determinism
//! The state is a dense table of [`NUM_CONTEXTS`] rows (one per [`Context`]), each with
//! per-arm statistics behind its own mutex. Updates use only IEEE-754 basic operations in a
//! fixed order, so applying the same sequence of updates gives the same bits; randomness is
//! confined to `choose*`. Updates to different rows commute; updates to one row do not
//! (discounting, float rounding), so the caller must apply them in the order it logs them.
//! [`Bandit::snapshot`] takes every row lock (in index order) and so is a consistent cut,
//! carrying the number of updates applied; restore + replay of the rest of the log equals
//! replaying the whole log.
//!
//! # Discounting
//! With `discount = Some(d)`, every pull in a context first multiplies all of that row's
//! statistics (discounted pulls, reward sums, successes) by `d`: one request is one time
//! step, and an observation `k` requests old in its context weighs `d^k` (effective memory
//! about `1 / (1 - d)` requests per context). Rewards add at full weight without advancing
//! time; a reward arriving `k` requests after its pull is thus overweighted by `1 / d^k`,
//! equally for every arm (negligible for `d` near 1 and short feedback delays). Other
//! rows are untouched, so rarely seen contexts keep their memory. Undiscounted lifetime
//! counters are kept alongside for reporting and for "never tried".

mod config;
mod context;
pub mod fleet;
mod propensity;
pub mod sampling;
mod snapshot;
mod state;

#[cfg(test)]
mod simulation_tests;

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use rand::{Rng, SeedableRng, rngs::SmallRng};
use serde::Serialize;

pub use config::{
    ArmConfig, BanditConfig, BlendWeights, ConfigError, MAX_ARMS, PolicyConfig, SegmentThresholds,
};
pub use context::{Context, Daypart, Device, NUM_CONTEXTS, Segment};
pub use propensity::{ArmChoice, THOMPSON_DRAWS, THOMPSON_MAX_AGE, THOMPSON_MAX_UPDATES};
pub use snapshot::{ArmSnapshot, BanditSnapshot, BanditUpdate, SNAPSHOT_FORMAT, exact_f64};

use state::ArmState;

/// Why a bandit operation was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BanditError {
    #[error("invalid bandit config: {0}")]
    Config(#[from] ConfigError),
    #[error("context index {0} is out of range (there are {NUM_CONTEXTS} contexts)")]
    ContextOutOfRange(usize),
    #[error("arm index {arm} is out of range (there are {arms} arms)")]
    ArmOutOfRange { arm: usize, arms: usize },
    #[error("reward must be finite and >= 0, got {0}")]
    BadReward(f64),
    #[error("snapshot format {found} is not supported (expected {SNAPSHOT_FORMAT})")]
    SnapshotFormat { found: u32 },
    #[error("snapshot arms {found:?} differ from the configured arms {expected:?}")]
    SnapshotArms {
        expected: Vec<String>,
        found: Vec<String>,
    },
    #[error("snapshot is malformed: {0}")]
    SnapshotMalformed(String),
}

/// Per-context, per-arm statistics for metrics and admin views.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ArmStats {
    /// `segment/device/daypart`.
    pub context: String,
    pub segment: &'static str,
    pub device: &'static str,
    pub daypart: &'static str,
    pub arm: String,
    /// Discounted pulls (equal to `lifetime_pulls` without discounting).
    pub pulls: f64,
    pub lifetime_pulls: u64,
    /// Discounted reward sum, in configured reward units.
    pub reward_sum: f64,
    /// `reward_sum / pulls`, 0 when there are no pulls.
    pub mean: f64,
}

/// One context row, on its own cache line so that rows locked by different threads do not
/// contend through false sharing.
#[repr(align(64))]
struct Row(Mutex<Box<[ArmState]>>);

/// The contextual bandit. `Send + Sync`; share it behind an `Arc`.
pub struct Bandit {
    cfg: BanditConfig,
    max_reward: f64,
    discount: f64,
    rows: Box<[Row]>,
    /// Per context: the last Monte Carlo estimate of Thompson sampling's arm probabilities.
    propensity_cache: Box<[Mutex<Option<propensity::Cached>>]>,
    /// Updates applied so far; only changed under a row lock.
    updates: AtomicU64,
    /// Draw counter of [`Bandit::choose_next`]; not part of the learned state.
    draws: AtomicU64,
}

impl std::fmt::Debug for Bandit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bandit")
            .field("policy", &self.cfg.policy)
            .field("arms", &self.cfg.arms.len())
            .field("updates", &self.updates_applied())
            .finish_non_exhaustive()
    }
}

impl Bandit {
    /// A bandit with no observations.
    pub fn new(cfg: BanditConfig) -> Result<Self, BanditError> {
        cfg.validate()?;
        let arms = cfg.arms.len();
        let rows = (0..NUM_CONTEXTS)
            .map(|_| {
                Row(Mutex::new(
                    vec![ArmState::default(); arms].into_boxed_slice(),
                ))
            })
            .collect();
        Ok(Self {
            max_reward: cfg.max_reward(),
            discount: cfg.discount.unwrap_or(1.0),
            rows,
            propensity_cache: (0..NUM_CONTEXTS).map(|_| Mutex::new(None)).collect(),
            updates: AtomicU64::new(0),
            draws: AtomicU64::new(0),
            cfg,
        })
    }

    /// Rebuilds a bandit from a snapshot taken with the same arms (same names, same order).
    /// Policy, rewards and discount may differ from the snapshot's config; note that
    /// Thompson successes were normalised with the max reward in force when recorded.
    pub fn restore(cfg: BanditConfig, snapshot: &BanditSnapshot) -> Result<Self, BanditError> {
        let bandit = Self::new(cfg)?;
        if snapshot.format != SNAPSHOT_FORMAT {
            return Err(BanditError::SnapshotFormat {
                found: snapshot.format,
            });
        }
        let expected: Vec<String> = bandit.cfg.arm_names().map(str::to_owned).collect();
        if snapshot.arms != expected {
            return Err(BanditError::SnapshotArms {
                expected,
                found: snapshot.arms.clone(),
            });
        }
        if snapshot.rows.len() != NUM_CONTEXTS {
            return Err(BanditError::SnapshotMalformed(format!(
                "{} rows, expected {NUM_CONTEXTS}",
                snapshot.rows.len()
            )));
        }
        for (index, (row, saved)) in bandit.rows.iter().zip(&snapshot.rows).enumerate() {
            if saved.len() != expected.len() {
                return Err(BanditError::SnapshotMalformed(format!(
                    "row {index} has {} arms, expected {}",
                    saved.len(),
                    expected.len()
                )));
            }
            let mut arms = row.0.lock();
            for (state, s) in arms.iter_mut().zip(saved) {
                let valid = |x: f64| x.is_finite() && x >= 0.0;
                if !(valid(s.pulls) && valid(s.reward_sum) && valid(s.successes)) {
                    return Err(BanditError::SnapshotMalformed(format!(
                        "row {index} holds a negative or non-finite statistic"
                    )));
                }
                *state = ArmState {
                    pulls: s.pulls,
                    reward_sum: s.reward_sum,
                    successes: s.successes,
                    lifetime_pulls: s.lifetime_pulls,
                    lifetime_rewards: s.lifetime_rewards,
                };
            }
        }
        bandit.updates.store(snapshot.updates, Ordering::Relaxed);
        Ok(bandit)
    }

    pub fn config(&self) -> &BanditConfig {
        &self.cfg
    }

    pub fn arms(&self) -> &[ArmConfig] {
        &self.cfg.arms
    }

    /// Blend weights of arm `arm`, `None` when out of range.
    pub fn weights(&self, arm: usize) -> Option<&BlendWeights> {
        self.cfg.arms.get(arm).map(|a| &a.weights)
    }

    /// Total number of updates applied (including those restored from a snapshot).
    pub fn updates_applied(&self) -> u64 {
        self.updates.load(Ordering::Relaxed)
    }

    /// Picks an arm for a request in `ctx`. Reads the context row under its lock; Thompson
    /// draws happen after the lock is released. Does not change state: log and apply a
    /// [`BanditUpdate::Pull`] (or call [`Bandit::record_pull`]) once the arm is served.
    pub fn choose<R: Rng + ?Sized>(&self, ctx: &Context, rng: &mut R) -> usize {
        let row = &self.rows[ctx.index()].0;
        match self.cfg.policy {
            PolicyConfig::EpsilonGreedy { epsilon } => {
                state::choose_epsilon_greedy(&row.lock(), epsilon, rng)
            }
            PolicyConfig::Thompson => {
                let mut params = [(1.0, 1.0); MAX_ARMS];
                let n = {
                    let arms = row.lock();
                    for (p, a) in params.iter_mut().zip(arms.iter()) {
                        *p = a.beta_params();
                    }
                    arms.len()
                };
                state::choose_thompson(&params[..n], rng)
            }
        }
    }

    /// [`Bandit::choose`] with a generator seeded from `seed` (e.g. a hash of the request
    /// id), for reproducible per-request decisions.
    pub fn choose_seeded(&self, ctx: &Context, seed: u64) -> usize {
        self.choose(ctx, &mut SmallRng::seed_from_u64(seed))
    }

    /// [`Bandit::choose`] with the bandit's own draw sequence: the config seed plus a shared
    /// atomic counter, so single-threaded callers get a reproducible sequence of decisions.
    pub fn choose_next(&self, ctx: &Context) -> usize {
        let n = self.draws.fetch_add(1, Ordering::Relaxed);
        self.choose_seeded(ctx, self.cfg.seed ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }

    /// Records that `arm` was served in `ctx`: `apply(&BanditUpdate::Pull { .. })`.
    pub fn record_pull(&self, ctx: &Context, arm: usize) -> Result<(), BanditError> {
        self.apply(&BanditUpdate::Pull {
            ctx_index: ctx.index(),
            arm,
        })
    }

    /// Records feedback worth `reward` for an earlier pull of `arm` in `ctx`.
    pub fn record_reward(&self, ctx: &Context, arm: usize, reward: f64) -> Result<(), BanditError> {
        self.apply(&BanditUpdate::Reward {
            ctx_index: ctx.index(),
            arm,
            reward,
        })
    }

    /// Applies one logged update. Invalid updates are refused without changing state.
    pub fn apply(&self, update: &BanditUpdate) -> Result<(), BanditError> {
        let (ctx_index, arm) = match *update {
            BanditUpdate::Pull { ctx_index, arm } => (ctx_index, arm),
            BanditUpdate::Reward {
                ctx_index,
                arm,
                reward,
            } => {
                if !(reward.is_finite() && reward >= 0.0) {
                    return Err(BanditError::BadReward(reward));
                }
                (ctx_index, arm)
            }
        };
        let row = self
            .rows
            .get(ctx_index)
            .ok_or(BanditError::ContextOutOfRange(ctx_index))?;
        let arms = self.cfg.arms.len();
        if arm >= arms {
            return Err(BanditError::ArmOutOfRange { arm, arms });
        }
        let mut state = row.0.lock();
        match *update {
            BanditUpdate::Pull { .. } => state::apply_pull(&mut state, arm, self.discount),
            BanditUpdate::Reward { reward, .. } => {
                state::apply_reward(&mut state, arm, reward, self.max_reward);
            }
        }
        // Under the row lock, so a snapshot holding every row lock sees a matching count.
        self.updates.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Statistics of every (context, arm) pair, context-major. Rows are read one at a time,
    /// so under concurrent updates this is not a consistent cut (use `snapshot` for that).
    pub fn stats(&self) -> Vec<ArmStats> {
        let mut out = Vec::with_capacity(NUM_CONTEXTS * self.cfg.arms.len());
        for (index, row) in self.rows.iter().enumerate() {
            let Some(ctx) = Context::from_index(index) else {
                continue;
            };
            let label = ctx.label();
            let arms = row.0.lock().to_vec();
            for (cfg, a) in self.cfg.arms.iter().zip(arms) {
                out.push(ArmStats {
                    context: label.clone(),
                    segment: ctx.segment.as_str(),
                    device: ctx.device.as_str(),
                    daypart: ctx.daypart.as_str(),
                    arm: cfg.name.clone(),
                    pulls: a.pulls,
                    lifetime_pulls: a.lifetime_pulls,
                    reward_sum: a.reward_sum,
                    mean: a.mean(),
                });
            }
        }
        out
    }

    /// A consistent cut of the learned state: all row locks are held (taken in index
    /// order, so concurrent snapshots cannot deadlock) while copying.
    pub fn snapshot(&self) -> BanditSnapshot {
        let guards: Vec<_> = self.rows.iter().map(|row| row.0.lock()).collect();
        let rows = guards
            .iter()
            .map(|arms| {
                arms.iter()
                    .map(|a| ArmSnapshot {
                        pulls: a.pulls,
                        reward_sum: a.reward_sum,
                        successes: a.successes,
                        lifetime_pulls: a.lifetime_pulls,
                        lifetime_rewards: a.lifetime_rewards,
                    })
                    .collect()
            })
            .collect();
        let updates = self.updates.load(Ordering::Relaxed);
        drop(guards);
        BanditSnapshot {
            format: SNAPSHOT_FORMAT,
            arms: self.cfg.arm_names().map(str::to_owned).collect(),
            updates,
            rows,
        }
    }
}
