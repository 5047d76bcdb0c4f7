//! Serializable bandit state and the logged update records. Floats are written as
//! shortest round-trip decimal strings (`"0.30000000000000004"`) and parsed with Rust's
//! correctly rounded parser, because serde_json's default float parser can be one ULP off
//! for 17-digit values and a restored state must equal a replayed one bit for bit.

use serde::{Deserialize, Serialize};

/// Version of the [`BanditSnapshot`] layout.
pub const SNAPSHOT_FORMAT: u32 = 1;

/// One state change, in the order it was applied. Logging these (and applying them in log
/// order) is what makes the bandit's state reproducible.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BanditUpdate {
    /// `arm` was served for a request in context row `ctx_index`.
    Pull { ctx_index: usize, arm: usize },
    /// Feedback worth `reward` arrived for an earlier pull of `arm` in row `ctx_index`.
    Reward {
        ctx_index: usize,
        arm: usize,
        #[serde(with = "exact_f64")]
        reward: f64,
    },
}

/// The bandit's learned state: a consistent cut over all context rows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BanditSnapshot {
    pub format: u32,
    /// Arm names in index order; restore refuses a config whose arms differ.
    pub arms: Vec<String>,
    /// Number of updates applied when the snapshot was taken (a log position when the
    /// updates are applied in log order).
    pub updates: u64,
    /// `NUM_CONTEXTS` rows of `arms.len()` entries, indexed by `Context::index`.
    pub rows: Vec<Vec<ArmSnapshot>>,
}

/// Statistics of one arm in one context row.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArmSnapshot {
    #[serde(with = "exact_f64")]
    pub pulls: f64,
    #[serde(with = "exact_f64")]
    pub reward_sum: f64,
    #[serde(with = "exact_f64")]
    pub successes: f64,
    pub lifetime_pulls: u64,
    pub lifetime_rewards: u64,
}

/// Serde adapter: an `f64` as its shortest round-trip decimal string. Plain numbers are
/// accepted on input too, for hand-written records.
pub mod exact_f64 {
    use std::fmt;

    use serde::{Deserializer, Serializer, de};

    pub fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        // `Debug` prints the shortest string that parses back to the same bits.
        serializer.collect_str(&format_args!("{value:?}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        deserializer.deserialize_any(ExactF64)
    }

    struct ExactF64;

    impl de::Visitor<'_> for ExactF64 {
        type Value = f64;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a float as a decimal string or a number")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
            v.trim()
                .parse()
                .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
            Ok(v)
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
            Ok(v as f64)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
            Ok(v as f64)
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn exact_f64_round_trips_every_finite_value(bits in any::<u64>()) {
            let reward = f64::from_bits(bits);
            prop_assume!(reward.is_finite());
            let update = BanditUpdate::Reward { ctx_index: 3, arm: 1, reward };
            let json = serde_json::to_string(&update).unwrap();
            let back: BanditUpdate = serde_json::from_str(&json).unwrap();
            let BanditUpdate::Reward { reward: parsed, .. } = back else {
                panic!("wrong variant: {json}");
            };
            prop_assert_eq!(parsed.to_bits(), reward.to_bits(), "{}", json);
        }
    }

    #[test]
    fn update_json_shape_is_stable() {
        let pull = BanditUpdate::Pull {
            ctx_index: 5,
            arm: 2,
        };
        assert_eq!(
            serde_json::to_string(&pull).unwrap(),
            r#"{"kind":"pull","ctx_index":5,"arm":2}"#
        );
        let reward = BanditUpdate::Reward {
            ctx_index: 5,
            arm: 2,
            reward: 0.1 + 0.2,
        };
        assert_eq!(
            serde_json::to_string(&reward).unwrap(),
            r#"{"kind":"reward","ctx_index":5,"arm":2,"reward":"0.30000000000000004"}"#
        );
        // Hand-written numbers are accepted.
        let parsed: BanditUpdate =
            serde_json::from_str(r#"{"kind":"reward","ctx_index":0,"arm":1,"reward":5}"#).unwrap();
        assert_eq!(
            parsed,
            BanditUpdate::Reward {
                ctx_index: 0,
                arm: 1,
                reward: 5.0
            }
        );
        assert!(
            serde_json::from_str::<BanditUpdate>(
                r#"{"kind":"reward","ctx_index":0,"arm":1,"reward":"lots"}"#
            )
            .is_err()
        );
    }
}
