//! Bandit configuration: the arms (blend weights over candidate sources), the policy, the
//! feedback-event → reward map, drift discounting and context bucketing. Validated once when
//! a [`super::Bandit`] is built; nothing here runs on the request path.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Upper bound on the number of arms. Arm selection copies a context row onto the stack, so
/// the bound keeps `choose` allocation-free; blend configurations are a handful in practice.
pub const MAX_ARMS: usize = 32;

/// Weights of the normalised candidate-source scores in the fallback blend.
///
/// A missing field deserializes as `0.0` (the source does not contribute). `Default` is an
/// equal blend, not all zeros: an all-zero blend ranks nothing and is rejected by
/// [`BanditConfig::validate`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlendWeights {
    #[serde(default)]
    pub cf: f32,
    #[serde(default)]
    pub content: f32,
    #[serde(default)]
    pub session: f32,
    #[serde(default)]
    pub popular: f32,
    #[serde(default)]
    pub item2item: f32,
    /// Segment popularity (absent in older configs and bundles: 0, the source does not count).
    #[serde(default)]
    pub segment: f32,
}

impl Default for BlendWeights {
    fn default() -> Self {
        Self {
            cf: 0.25,
            content: 0.25,
            session: 0.25,
            popular: 0.25,
            item2item: 0.25,
            segment: 0.25,
        }
    }
}

impl BlendWeights {
    /// `(source name, weight)` pairs in a fixed order; the names match the candidate sources.
    pub fn named(&self) -> [(&'static str, f32); 6] {
        [
            ("cf", self.cf),
            ("content", self.content),
            ("session", self.session),
            ("popular", self.popular),
            ("item2item", self.item2item),
            ("segment", self.segment),
        ]
    }

    /// Weights by source name (unknown names are ignored, missing ones are 0).
    pub fn from_named(map: &std::collections::BTreeMap<String, f32>) -> Self {
        let get = |k: &str| map.get(k).copied().filter(|w| w.is_finite()).unwrap_or(0.0);
        Self {
            cf: get("cf"),
            content: get("content"),
            session: get("session"),
            popular: get("popular"),
            item2item: get("item2item"),
            segment: get("segment"),
        }
    }

    /// Weights by source name, for the bundle's manifest.
    pub fn to_named(&self) -> std::collections::BTreeMap<String, f32> {
        self.named()
            .into_iter()
            .map(|(k, w)| (k.to_string(), w))
            .collect()
    }

    /// From weights in the candidate sources' column order (the inverse of [`Self::as_array`]).
    pub fn from_array(w: [f32; 6]) -> Self {
        let [cf, content, session, popular, item2item, segment] = w;
        Self {
            cf,
            content,
            session,
            popular,
            item2item,
            segment,
        }
    }

    /// The weights in the candidate sources' column order (`retrieval::Source::ALL`).
    pub fn as_array(&self) -> [f32; 6] {
        self.named().map(|(_, w)| w)
    }
}

/// One arm: a named blend configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArmConfig {
    pub name: String,
    pub weights: BlendWeights,
}

/// How the bandit trades exploration for exploitation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "policy", rename_all = "snake_case")]
pub enum PolicyConfig {
    /// With probability `epsilon` pick an arm uniformly, otherwise the arm with the best mean
    /// reward; arms never pulled in a context are tried first.
    EpsilonGreedy { epsilon: f64 },
    /// Beta-Bernoulli Thompson sampling on rewards normalised into `[0, 1]`.
    #[default]
    Thompson,
}

/// History-length bounds of the user segments (see [`super::Segment`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SegmentThresholds {
    /// Users with `1..=light_max_history` interactions are `light`; more is `heavy`.
    pub light_max_history: usize,
}

impl Default for SegmentThresholds {
    fn default() -> Self {
        Self {
            light_max_history: 20,
        }
    }
}

/// Epsilon used when `policy = "epsilon_greedy"` gives none.
pub const DEFAULT_EPSILON: f64 = 0.1;

/// Everything that shapes the bandit. Serialized flat, with unknown keys refused and every
/// key optional (defaults from [`BanditConfig::default`]):
///
/// ```toml
/// policy = "epsilon_greedy"   # or "thompson" (default)
/// epsilon = 0.1               # only with epsilon_greedy
/// discount = 0.999            # optional
/// seed = 42
/// [segment_thresholds]
/// light_max_history = 20
/// [rewards]
/// click = 1.0
/// purchase = 5.0
/// [[arms]]
/// name = "cf_heavy"
/// weights = { cf = 0.6, content = 0.15, session = 0.15, popular = 0.1 }
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawBanditConfig", into = "RawBanditConfig")]
pub struct BanditConfig {
    pub policy: PolicyConfig,
    pub arms: Vec<ArmConfig>,
    /// Feedback event type → reward. Events not listed are ignored by the bandit.
    pub rewards: BTreeMap<String, f64>,
    /// Per-request decay of a context's statistics, in `(0, 1]`; `None` keeps full history.
    /// See [`super::Bandit`] for the exact semantics.
    pub discount: Option<f64>,
    pub segment_thresholds: SegmentThresholds,
    /// Seed of the bandit's own draw sequence ([`super::Bandit::choose_next`]).
    pub seed: u64,
}

/// The flat serialized form of [`BanditConfig`].
#[derive(Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawBanditConfig {
    policy: PolicyKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    epsilon: Option<f64>,
    arms: Vec<ArmConfig>,
    rewards: BTreeMap<String, f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    discount: Option<f64>,
    segment_thresholds: SegmentThresholds,
    seed: u64,
}

#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum PolicyKind {
    EpsilonGreedy,
    Thompson,
}

impl Default for RawBanditConfig {
    fn default() -> Self {
        BanditConfig::default().into()
    }
}

impl From<BanditConfig> for RawBanditConfig {
    fn from(cfg: BanditConfig) -> Self {
        let (policy, epsilon) = match cfg.policy {
            PolicyConfig::EpsilonGreedy { epsilon } => (PolicyKind::EpsilonGreedy, Some(epsilon)),
            PolicyConfig::Thompson => (PolicyKind::Thompson, None),
        };
        Self {
            policy,
            epsilon,
            arms: cfg.arms,
            rewards: cfg.rewards,
            discount: cfg.discount,
            segment_thresholds: cfg.segment_thresholds,
            seed: cfg.seed,
        }
    }
}

impl TryFrom<RawBanditConfig> for BanditConfig {
    type Error = ConfigError;

    fn try_from(raw: RawBanditConfig) -> Result<Self, ConfigError> {
        let policy = match (raw.policy, raw.epsilon) {
            (PolicyKind::EpsilonGreedy, epsilon) => PolicyConfig::EpsilonGreedy {
                epsilon: epsilon.unwrap_or(DEFAULT_EPSILON),
            },
            (PolicyKind::Thompson, None) => PolicyConfig::Thompson,
            (PolicyKind::Thompson, Some(_)) => {
                return Err(ConfigError::EpsilonWithoutEpsilonGreedy);
            }
        };
        Ok(Self {
            policy,
            arms: raw.arms,
            rewards: raw.rewards,
            discount: raw.discount,
            segment_thresholds: raw.segment_thresholds,
            seed: raw.seed,
        })
    }
}

impl Default for BanditConfig {
    fn default() -> Self {
        let arm = |name: &str, cf, content, session, popular, item2item| ArmConfig {
            name: name.to_owned(),
            weights: BlendWeights {
                cf,
                content,
                session,
                popular,
                item2item,
                segment: 0.0,
            },
        };
        let rewards = [
            ("impression", 0.0),
            ("click", 1.0),
            ("add_to_cart", 2.0),
            ("purchase", 5.0),
            ("dismiss", 0.0),
        ]
        .into_iter()
        .map(|(event, reward)| (event.to_owned(), reward))
        .collect();
        Self {
            policy: PolicyConfig::default(),
            arms: vec![
                arm("cf_heavy", 0.5, 0.1, 0.1, 0.1, 0.2),
                arm("content_heavy", 0.1, 0.5, 0.1, 0.1, 0.2),
                arm("balanced", 0.2, 0.2, 0.15, 0.15, 0.3),
            ],
            rewards,
            discount: None,
            segment_thresholds: SegmentThresholds::default(),
            seed: 0x5eed_ba4d,
        }
    }
}

/// Why a [`BanditConfig`] was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("the bandit needs at least one arm")]
    NoArms,
    #[error("the bandit has {0} arms; at most {MAX_ARMS} are supported")]
    TooManyArms(usize),
    #[error("arm #{0} has an empty name")]
    EmptyArmName(usize),
    #[error("arm name `{0}` is used more than once")]
    DuplicateArm(String),
    #[error("arm `{arm}`: weight `{weight}` must be finite and >= 0, got {value}")]
    BadWeight {
        arm: String,
        weight: &'static str,
        value: f32,
    },
    #[error("arm `{0}`: all blend weights are zero")]
    ZeroWeights(String),
    #[error("`epsilon` is set but `policy` is not \"epsilon_greedy\"")]
    EpsilonWithoutEpsilonGreedy,
    #[error("epsilon must be within [0, 1], got {0}")]
    BadEpsilon(f64),
    #[error("reward of event `{event}` must be finite and >= 0, got {value}")]
    BadReward { event: String, value: f64 },
    #[error("an event type in the rewards map is empty")]
    EmptyEvent,
    #[error("the rewards map needs at least one event with a positive reward")]
    NoPositiveReward,
    #[error("discount must be within (0, 1], got {0}")]
    BadDiscount(f64),
}

impl BanditConfig {
    /// Checks every invariant the bandit relies on; call once at startup.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.arms.is_empty() {
            return Err(ConfigError::NoArms);
        }
        if self.arms.len() > MAX_ARMS {
            return Err(ConfigError::TooManyArms(self.arms.len()));
        }
        let mut names = BTreeSet::new();
        for (index, arm) in self.arms.iter().enumerate() {
            if arm.name.trim().is_empty() {
                return Err(ConfigError::EmptyArmName(index));
            }
            if !names.insert(arm.name.as_str()) {
                return Err(ConfigError::DuplicateArm(arm.name.clone()));
            }
            for (weight, value) in arm.weights.named() {
                if !value.is_finite() || value < 0.0 {
                    return Err(ConfigError::BadWeight {
                        arm: arm.name.clone(),
                        weight,
                        value,
                    });
                }
            }
            if arm.weights.named().iter().all(|&(_, w)| w == 0.0) {
                return Err(ConfigError::ZeroWeights(arm.name.clone()));
            }
        }
        if let PolicyConfig::EpsilonGreedy { epsilon } = self.policy
            && !(0.0..=1.0).contains(&epsilon)
        {
            return Err(ConfigError::BadEpsilon(epsilon));
        }
        for (event, &value) in &self.rewards {
            if event.trim().is_empty() {
                return Err(ConfigError::EmptyEvent);
            }
            if !value.is_finite() || value < 0.0 {
                return Err(ConfigError::BadReward {
                    event: event.clone(),
                    value,
                });
            }
        }
        if self.max_reward() <= 0.0 {
            return Err(ConfigError::NoPositiveReward);
        }
        if let Some(d) = self.discount
            && !(d > 0.0 && d <= 1.0)
        {
            return Err(ConfigError::BadDiscount(d));
        }
        Ok(())
    }

    /// The largest configured reward: Thompson sampling divides rewards by it.
    pub fn max_reward(&self) -> f64 {
        self.rewards.values().copied().fold(0.0, f64::max)
    }

    /// Reward of a feedback event type (exact match first, then ASCII case-insensitive);
    /// `None` when the event does not feed the bandit.
    pub fn reward_for(&self, event: &str) -> Option<f64> {
        self.rewards.get(event).copied().or_else(|| {
            self.rewards
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(event))
                .map(|(_, &r)| r)
        })
    }

    /// Arm names in arm-index order.
    pub fn arm_names(&self) -> impl Iterator<Item = &str> {
        self.arms.iter().map(|a| a.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_with_three_named_arms() {
        let cfg = BanditConfig::default();
        cfg.validate().unwrap();
        let names: Vec<_> = cfg.arm_names().collect();
        assert_eq!(names, ["cf_heavy", "content_heavy", "balanced"]);
        assert_eq!(cfg.max_reward(), 5.0);
        assert_eq!(cfg.reward_for("purchase"), Some(5.0));
        assert_eq!(cfg.reward_for("CLICK"), Some(1.0));
        assert_eq!(cfg.reward_for("share"), None);
    }

    #[test]
    fn toml_round_trip_and_flattened_policy() {
        let text = r#"
            policy = "epsilon_greedy"
            epsilon = 0.2
            discount = 0.999
            seed = 7
            [segment_thresholds]
            light_max_history = 5
            [rewards]
            click = 1.0
            purchase = 4.0
            [[arms]]
            name = "only_cf"
            weights = { cf = 1.0 }
        "#;
        let cfg: BanditConfig = toml::from_str(text).unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.policy, PolicyConfig::EpsilonGreedy { epsilon: 0.2 });
        assert_eq!(cfg.discount, Some(0.999));
        assert_eq!(cfg.segment_thresholds.light_max_history, 5);
        assert_eq!(cfg.arms.len(), 1);
        // Missing weights are zero, not the equal-blend default.
        assert_eq!(
            cfg.arms[0].weights,
            BlendWeights {
                cf: 1.0,
                content: 0.0,
                session: 0.0,
                popular: 0.0,
                item2item: 0.0,
                segment: 0.0,
            }
        );
        let back: BanditConfig = toml::from_str(&toml::to_string(&cfg).unwrap()).unwrap();
        assert_eq!(back, cfg);

        let thompson: BanditConfig = toml::from_str("policy = \"thompson\"").unwrap();
        assert_eq!(thompson.policy, PolicyConfig::Thompson);
        assert_eq!(thompson.arms, BanditConfig::default().arms);
    }

    #[test]
    fn empty_table_gives_the_default_config() {
        let cfg: BanditConfig = toml::from_str("").unwrap();
        assert_eq!(cfg, BanditConfig::default());
        let json: BanditConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(json, BanditConfig::default());
    }

    #[test]
    fn unknown_policy_keys_and_stray_epsilon_are_rejected() {
        assert!(toml::from_str::<BanditConfig>("policy = \"ucb\"").is_err());
        assert!(toml::from_str::<BanditConfig>("discont = 0.9").is_err());
        let stray = toml::from_str::<BanditConfig>("policy = \"thompson\"\nepsilon = 0.1");
        assert!(stray.unwrap_err().to_string().contains("epsilon"));
        let implicit = toml::from_str::<BanditConfig>("epsilon = 0.1");
        assert!(implicit.is_err(), "the default policy is thompson");
        let eps: BanditConfig = toml::from_str("policy = \"epsilon_greedy\"").unwrap();
        assert_eq!(
            eps.policy,
            PolicyConfig::EpsilonGreedy {
                epsilon: DEFAULT_EPSILON
            }
        );
    }

    #[test]
    fn policy_config_alone_uses_the_policy_tag() {
        let p: PolicyConfig =
            serde_json::from_str(r#"{"policy":"epsilon_greedy","epsilon":0.2}"#).unwrap();
        assert_eq!(p, PolicyConfig::EpsilonGreedy { epsilon: 0.2 });
        assert_eq!(
            serde_json::to_string(&PolicyConfig::Thompson).unwrap(),
            r#"{"policy":"thompson"}"#
        );
    }

    #[test]
    fn validate_rejects_each_broken_invariant() {
        let base = BanditConfig::default();
        let check = |f: &dyn Fn(&mut BanditConfig), expected: ConfigError| {
            let mut cfg = base.clone();
            f(&mut cfg);
            assert_eq!(cfg.validate(), Err(expected));
        };
        check(&|c| c.arms.clear(), ConfigError::NoArms);
        check(
            &|c| {
                let arm = c.arms[0].clone();
                c.arms = (0..=MAX_ARMS)
                    .map(|i| ArmConfig {
                        name: format!("a{i}"),
                        ..arm.clone()
                    })
                    .collect();
            },
            ConfigError::TooManyArms(MAX_ARMS + 1),
        );
        check(
            &|c| c.arms[1].name = " ".into(),
            ConfigError::EmptyArmName(1),
        );
        check(
            &|c| c.arms[2].name = "cf_heavy".into(),
            ConfigError::DuplicateArm("cf_heavy".into()),
        );
        check(
            &|c| c.arms[0].weights.session = -0.1,
            ConfigError::BadWeight {
                arm: "cf_heavy".into(),
                weight: "session",
                value: -0.1,
            },
        );
        check(
            &|c| {
                c.arms[0].weights = BlendWeights {
                    cf: 0.0,
                    content: 0.0,
                    session: 0.0,
                    popular: 0.0,
                    item2item: 0.0,
                    segment: 0.0,
                }
            },
            ConfigError::ZeroWeights("cf_heavy".into()),
        );
        check(
            &|c| c.policy = PolicyConfig::EpsilonGreedy { epsilon: 1.5 },
            ConfigError::BadEpsilon(1.5),
        );
        check(
            &|c| {
                c.rewards.insert("click".into(), -1.0);
            },
            ConfigError::BadReward {
                event: "click".into(),
                value: -1.0,
            },
        );
        check(
            &|c| {
                c.rewards.insert(String::new(), 1.0);
            },
            ConfigError::EmptyEvent,
        );
        check(
            &|c| c.rewards.values_mut().for_each(|r| *r = 0.0),
            ConfigError::NoPositiveReward,
        );
        check(&|c| c.discount = Some(0.0), ConfigError::BadDiscount(0.0));
        check(&|c| c.discount = Some(1.01), ConfigError::BadDiscount(1.01));

        let mut nan = base.clone();
        nan.policy = PolicyConfig::EpsilonGreedy { epsilon: f64::NAN };
        assert!(matches!(nan.validate(), Err(ConfigError::BadEpsilon(_))));
        let mut nan = base;
        nan.discount = Some(f64::NAN);
        assert!(matches!(nan.validate(), Err(ConfigError::BadDiscount(_))));
    }
}
