//! The bandit's fleet statistics: one hash (`bandit`, fields `<context>|<arm name>|<stat>`)
//! that every replica adds its deltas to with `HINCRBYFLOAT`, in a script that applies each
//! flush once (a flush id above this replica's last applied one, `bandit:flushed:<replica>`)
//! and returns the fleet's totals in the same round trip. A flush whose reply is lost is sent
//! again unchanged, so it is counted once. Every `bandit_flush_ms` the replica flushes and
//! installs the totals into its local rows; arm choice only ever reads the local rows.

use std::sync::Arc;

use redis::Script;

use super::{Family, Redis, RedisError};
use crate::bandit::fleet::FleetTable;
use crate::bandit::{Bandit, Context, NUM_CONTEXTS};

const FLUSH_LUA: &str = r#"
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[1]) > last then
  for i = 3, #ARGV, 2 do
    redis.call('HINCRBYFLOAT', KEYS[1], ARGV[i], ARGV[i + 1])
  end
  redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return redis.call('HGETALL', KEYS[1])
"#;

const STATS: [&str; 4] = ["p", "r", "s", "n"];

struct SyncState {
    /// The fleet totals last installed plus what was flushed since.
    base: FleetTable,
    /// A flush sent but not confirmed: sent again, unchanged, until it is.
    outstanding: Option<(u64, Vec<(String, f64)>)>,
    last_id: u64,
}

pub struct FleetBandit {
    redis: Arc<Redis>,
    state: tokio::sync::Mutex<SyncState>,
    script: Script,
}

impl FleetBandit {
    /// Starts from the local state: what the replica restored is taken as already shared.
    pub fn new(redis: Arc<Redis>, bandit: &Bandit) -> Self {
        Self {
            redis,
            state: tokio::sync::Mutex::new(SyncState {
                base: bandit.fleet_table(),
                outstanding: None,
                last_id: 0,
            }),
            script: Script::new(FLUSH_LUA),
        }
    }

    /// Flushes what was learned since the last flush and installs the fleet's totals.
    pub async fn sync(&self, bandit: &Bandit) -> Result<(), RedisError> {
        let mut st = self.state.lock().await;
        if st.outstanding.is_none() {
            let delta = bandit.fleet_delta(&mut st.base);
            let mut fields = Vec::new();
            for c in 0..NUM_CONTEXTS {
                for (a, arm) in bandit.arms().iter().enumerate() {
                    let d = delta.cells[c * delta.arms + a];
                    for (stat, v) in
                        STATS
                            .iter()
                            .zip([d.pulls, d.reward_sum, d.successes, d.rewards])
                    {
                        if v != 0.0 {
                            fields.push((format!("{c}|{}|{stat}", arm.name), v));
                        }
                    }
                }
            }
            // Ids only grow: the clock in ms, or one more than the last.
            let id = (crate::clock::now_unix().max(0) as u64 * 1000).max(st.last_id + 1);
            st.last_id = id;
            st.outstanding = Some((id, fields));
        }
        let Some((id, fields)) = st.outstanding.clone() else {
            return Ok(());
        };
        let r = &self.redis;
        let mut inv = self.script.prepare_invoke();
        inv.key(r.keys.bandit())
            .key(r.keys.bandit_flushed(&r.replica))
            .arg(id)
            .arg(r.cfg.bandit_ttl_secs);
        for (f, v) in &fields {
            inv.arg(f).arg(format!("{v:?}"));
        }
        let totals: Vec<(String, String)> = r
            .run(Family::Bandit, r.command_budget(), |mut c| async move {
                inv.invoke_async(&mut c).await
            })
            .await?;
        st.outstanding = None;
        let table = parse_totals(bandit, &totals);
        let SyncState { base, .. } = &mut *st;
        bandit.fleet_install(base, &table);
        Ok(())
    }

    /// Syncs every `bandit_flush_ms` until the bandit is dropped.
    pub async fn run(
        self: Arc<Self>,
        fb: std::sync::Weak<crate::feedback::service::FeedbackService>,
    ) {
        let every = std::time::Duration::from_millis(self.redis.cfg.bandit_flush_ms);
        loop {
            tokio::time::sleep(every).await;
            let Some(fb) = fb.upgrade() else { return };
            if let Err(e) = self.sync(&fb.bandit).await {
                tracing::debug!(error = %e, "bandit fleet sync failed; the local statistics keep serving");
            }
        }
    }
}

/// The hash's `<context>|<arm name>|<stat>` fields as a table; unknown arms and contexts
/// (another deployment's config) are ignored.
fn parse_totals(bandit: &Bandit, fields: &[(String, String)]) -> FleetTable {
    let mut t = FleetTable::zeros(bandit.arms().len());
    for (k, v) in fields {
        let mut parts = k.splitn(3, '|');
        let (Some(c), Some(arm), Some(stat)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let Some(c) = c
            .parse::<usize>()
            .ok()
            .filter(|&c| Context::from_index(c).is_some())
        else {
            continue;
        };
        let Some(a) = bandit.arms().iter().position(|x| x.name == arm) else {
            continue;
        };
        let Ok(v) = v.parse::<f64>() else { continue };
        if let Some(cell) = t.get_mut(c, a) {
            match stat {
                "p" => cell.pulls = v,
                "r" => cell.reward_sum = v,
                "s" => cell.successes = v,
                "n" => cell.rewards = v,
                _ => {}
            }
        }
    }
    t
}
