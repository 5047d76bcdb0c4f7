//! Fleet sums of the bandit's statistics, for replicas that share them (the Redis state
//! backend): a replica sends what it learned since its last flush as a delta, and installs
//! the fleet's totals plus what it learned since. Only undiscounted statistics are sums that
//! replicas can add up, so this is for bandits without `discount`. Pure math under the row
//! locks: no I/O here; arm choice keeps reading the local rows and never waits on the fleet.

use super::{Bandit, NUM_CONTEXTS};

/// Undiscounted statistics of one (context, arm), as the fleet adds them up.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ArmTotals {
    pub pulls: f64,
    pub reward_sum: f64,
    pub successes: f64,
    /// Reward events.
    pub rewards: f64,
}

impl ArmTotals {
    fn minus(self, o: ArmTotals) -> ArmTotals {
        ArmTotals {
            pulls: self.pulls - o.pulls,
            reward_sum: self.reward_sum - o.reward_sum,
            successes: self.successes - o.successes,
            rewards: self.rewards - o.rewards,
        }
    }

    fn plus(self, o: ArmTotals) -> ArmTotals {
        ArmTotals {
            pulls: self.pulls + o.pulls,
            reward_sum: self.reward_sum + o.reward_sum,
            successes: self.successes + o.successes,
            rewards: self.rewards + o.rewards,
        }
    }

    pub fn is_zero(&self) -> bool {
        *self == ArmTotals::default()
    }
}

/// One [`ArmTotals`] per (context, arm), context-major: `index = context * arms + arm`.
#[derive(Clone, Debug, PartialEq)]
pub struct FleetTable {
    pub arms: usize,
    pub cells: Vec<ArmTotals>,
}

impl FleetTable {
    pub fn zeros(arms: usize) -> Self {
        Self {
            arms,
            cells: vec![ArmTotals::default(); NUM_CONTEXTS * arms],
        }
    }

    pub fn get_mut(&mut self, context: usize, arm: usize) -> Option<&mut ArmTotals> {
        if arm >= self.arms {
            return None;
        }
        self.cells.get_mut(context * self.arms + arm)
    }
}

impl Bandit {
    /// The local statistics as fleet totals (e.g. the base at start: nothing to send yet).
    pub fn fleet_table(&self) -> FleetTable {
        let arms = self.cfg.arms.len();
        let mut t = FleetTable::zeros(arms);
        for (c, row) in self.rows.iter().enumerate() {
            for (a, s) in row.0.lock().iter().enumerate() {
                t.cells[c * arms + a] = totals_of(s);
            }
        }
        t
    }

    /// What was learned locally since `base` (which becomes the current state).
    pub fn fleet_delta(&self, base: &mut FleetTable) -> FleetTable {
        let arms = self.cfg.arms.len();
        let mut delta = FleetTable::zeros(arms);
        for (c, row) in self.rows.iter().enumerate() {
            let state = row.0.lock();
            for (a, s) in state.iter().enumerate() {
                let i = c * arms + a;
                let now = totals_of(s);
                delta.cells[i] = now.minus(base.cells[i]);
                base.cells[i] = now;
            }
        }
        delta
    }

    /// Installs the fleet's `totals` plus what was learned locally since `base`; `totals`
    /// becomes the base. Each row is replaced under its lock, so a choice sees either state.
    pub fn fleet_install(&self, base: &mut FleetTable, totals: &FleetTable) {
        let arms = self.cfg.arms.len();
        for (c, row) in self.rows.iter().enumerate() {
            let mut state = row.0.lock();
            for (a, s) in state.iter_mut().enumerate() {
                let i = c * arms + a;
                let local = totals_of(s).minus(base.cells[i]);
                let merged = totals.cells[i].plus(local);
                let nonneg = |x: f64| if x.is_finite() && x > 0.0 { x } else { 0.0 };
                s.pulls = nonneg(merged.pulls);
                s.reward_sum = nonneg(merged.reward_sum);
                s.successes = nonneg(merged.successes);
                s.lifetime_pulls = s.pulls.round() as u64;
                s.lifetime_rewards = nonneg(merged.rewards).round() as u64;
                base.cells[i] = totals.cells[i];
            }
        }
    }
}

fn totals_of(s: &super::state::ArmState) -> ArmTotals {
    ArmTotals {
        pulls: s.lifetime_pulls as f64,
        reward_sum: s.reward_sum,
        successes: s.successes,
        rewards: s.lifetime_rewards as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{BanditConfig, Context};
    use super::*;

    fn bandit() -> Bandit {
        let cfg: BanditConfig = toml::from_str("").unwrap();
        Bandit::new(cfg).unwrap()
    }

    /// Two replicas exchanging deltas through a shared table end with the sum of what
    /// each learned, and a replica keeps what it learned between its flush and the install.
    #[test]
    fn deltas_add_up_across_replicas_and_late_updates_survive_an_install() {
        let (a, b) = (bandit(), bandit());
        let ctx = Context::from_index(3).unwrap();
        let mut shared = FleetTable::zeros(a.arms().len());
        let (mut base_a, mut base_b) = (a.fleet_table(), b.fleet_table());
        let add = |t: &mut FleetTable, d: &FleetTable| {
            for (x, y) in t.cells.iter_mut().zip(&d.cells) {
                *x = x.plus(*y);
            }
        };
        for _ in 0..3 {
            a.record_pull(&ctx, 0).unwrap();
        }
        a.record_reward(&ctx, 0, 1.0).unwrap();
        b.record_pull(&ctx, 0).unwrap();
        b.record_pull(&ctx, 1).unwrap();
        b.record_reward(&ctx, 1, 5.0).unwrap();
        let da = a.fleet_delta(&mut base_a);
        add(&mut shared, &da);
        let db = b.fleet_delta(&mut base_b);
        add(&mut shared, &db);
        // A pull on `a` after its flush and before its install must not be lost.
        a.record_pull(&ctx, 1).unwrap();
        a.fleet_install(&mut base_a, &shared);
        b.fleet_install(&mut base_b, &shared);
        let row = |bd: &Bandit| {
            bd.stats()
                .into_iter()
                .filter(|s| s.context == ctx.label())
                .map(|s| (s.lifetime_pulls, s.reward_sum))
                .collect::<Vec<_>>()
        };
        assert_eq!(&row(&a)[..2], &[(4, 1.0), (2, 5.0)]);
        assert_eq!(&row(&b)[..2], &[(4, 1.0), (1, 5.0)]);
        // The late pull is sent with the next delta, and nothing is sent twice.
        let next = a.fleet_delta(&mut base_a);
        let sent: f64 = next.cells.iter().map(|c| c.pulls).sum();
        assert_eq!(sent, 1.0);
        assert!(
            b.fleet_delta(&mut base_b)
                .cells
                .iter()
                .all(ArmTotals::is_zero)
        );
    }
}
