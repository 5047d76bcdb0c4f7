//! The records the event log holds (JSON payloads): feedback events, impressions and runtime
//! catalogue changes.
//! Stable on disk: fields are only ever added, with defaults.

use crate::pipeline::Explanation;
use serde::{Deserialize, Serialize};

/// A client's feedback event as posted. The `schema` attributes document [`validate`]'s rules
/// for the OpenAPI document (lengths in characters).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackIn {
    /// The `request_id` of the recommendation response the event refers to: the
    /// server-issued impression id (not the client's `X-Request-Id`).
    #[schema(max_length = 128)]
    pub request_id: String,
    #[schema(max_length = 256)]
    pub user_id: String,
    #[schema(max_length = 256)]
    pub item_id: String,
    /// One of `feedback.events` (configuration).
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Event time, Unix seconds (default: when it was received).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "integral_ts"
    )]
    #[schema(minimum = 0, maximum = 4102444800.0)]
    pub ts: Option<i64>,
    /// The response's `impression_token`; required when `feedback.auth = "signed"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 64)]
    pub impression_token: Option<String>,
}

/// JSON Schema's `integer` includes `1.0`: accept integral numbers written as floats.
fn integral_ts<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Num {
        I(i64),
        F(f64),
    }
    match Option::<Num>::deserialize(d)? {
        None => Ok(None),
        Some(Num::I(i)) => Ok(Some(i)),
        Some(Num::F(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(f as i64)),
        Some(Num::F(_)) => Err(serde::de::Error::custom(
            "ts must be an integer (Unix seconds)",
        )),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ServedItem {
    pub item_id: String,
    pub position: u32,
    pub score: f32,
    /// Why the item was shown: recorded only for `explain=true` requests, so an offline
    /// analysis can join contributions with outcomes. Absent in older records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Explanation>,
    /// Set when the new-item exposure policy placed the item: the probability that this
    /// position was an exposure slot. Absent in older records and for ranked items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposure_propensity: Option<f64>,
}

/// Bandit decision recorded with an impression.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ArmRef {
    pub context: usize,
    pub arm: usize,
    pub arm_name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    Feedback {
        #[serde(flatten)]
        event: FeedbackIn,
        /// Server receive time (unix seconds); `event.ts` defaults to it.
        received_at: i64,
    },
    Impression {
        /// The server-issued impression id (the response's `request_id`).
        request_id: String,
        /// The client's `X-Request-Id`, for tracing only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_request_id: Option<String>,
        user_id: Option<String>,
        variant: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        arm: Option<ArmRef>,
        /// The probability with which the logging policy chose what decided this list (the
        /// bandit's arm; 1 for a fixed variant): exact for epsilon-greedy, a Monte Carlo
        /// estimate for Thompson sampling. Absent in older records.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        propensity: Option<f64>,
        /// The policy's probability of every arm (bandit variants only), in arm order.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        arm_probabilities: Option<Vec<f64>>,
        strategy: String,
        model_version: String,
        items: Vec<ServedItem>,
        ts: i64,
    },
    /// A list another replica served, read from the shared store because feedback here named
    /// it: logged before that feedback so the replay attributes the same way. It counts no
    /// bandit pull (the serving replica did).
    ImpressionImport {
        request_id: String,
        served: super::impressions::Served,
    },
    /// Runtime catalogue changes (`POST /admin/catalogue`, or merged from the fleet), each with
    /// the stamp that orders it: replayed at start, they rebuild the overlay.
    Catalogue {
        changes: Vec<crate::catalogue::StampedChange>,
    },
}

/// Validates a posted event against the configured event types; returns a client-facing message.
pub fn validate(e: &FeedbackIn, allowed: &[String]) -> Result<(), String> {
    for (name, v, max) in [
        ("request_id", &e.request_id, 128),
        ("user_id", &e.user_id, 256),
        ("item_id", &e.item_id, 256),
    ] {
        if v.trim().is_empty() {
            return Err(format!("{name} must not be empty"));
        }
        if v.chars().count() > max || v.chars().any(char::is_control) {
            return Err(format!(
                "{name} must be at most {max} characters without control characters"
            ));
        }
    }
    if !allowed.iter().any(|a| a == &e.event) {
        return Err(format!(
            "unknown event type {:?}; accepted: {}",
            e.event,
            allowed.join(", ")
        ));
    }
    if let Some(v) = e.value
        && !v.is_finite()
    {
        return Err("value must be a finite number".into());
    }
    if let Some(ts) = e.ts
        && !(0..=4_102_444_800).contains(&ts)
    {
        return Err("ts must be Unix seconds between 1970 and 2100".into());
    }
    if let Some(t) = &e.impression_token
        && (t.is_empty() || t.len() > 64 || !t.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err("impression_token must be 1..=64 hex digits".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev() -> FeedbackIn {
        FeedbackIn {
            request_id: "r".into(),
            user_id: "u".into(),
            item_id: "i".into(),
            event: "click".into(),
            value: None,
            ts: None,
            impression_token: None,
        }
    }

    #[test]
    fn validation_and_round_trip() {
        let allowed = vec!["click".to_string()];
        assert!(validate(&ev(), &allowed).is_ok());
        assert!(
            validate(
                &FeedbackIn {
                    event: "like".into(),
                    ..ev()
                },
                &allowed
            )
            .unwrap_err()
            .contains("unknown event")
        );
        assert!(
            validate(
                &FeedbackIn {
                    user_id: " ".into(),
                    ..ev()
                },
                &allowed
            )
            .is_err()
        );
        assert!(
            validate(
                &FeedbackIn {
                    ts: Some(-5),
                    ..ev()
                },
                &allowed
            )
            .is_err()
        );
        let r = Record::Feedback {
            event: ev(),
            received_at: 7,
        };
        let float_ts: FeedbackIn = serde_json::from_str(
            r#"{"request_id":"r","user_id":"u","item_id":"i","event":"click","ts":5.0}"#,
        )
        .unwrap();
        assert_eq!(float_ts.ts, Some(5));
        assert!(
            serde_json::from_str::<FeedbackIn>(
                r#"{"request_id":"r","user_id":"u","item_id":"i","event":"click","ts":5.5}"#
            )
            .is_err()
        );
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains("\"kind\":\"feedback\""));
        assert_eq!(serde_json::from_str::<Record>(&text).unwrap(), r);
    }

    #[test]
    fn impressions_without_explanations_keep_the_old_encoding() {
        use crate::pipeline::{Explanation, ServedPath, SourceEvidence};
        // A record as written before explanations existed still reads.
        let old = r#"{"kind":"impression","request_id":"r","user_id":"u","variant":"control",
            "strategy":"ranked","model_version":"v1","ts":5,
            "items":[{"item_id":"i1","position":0,"score":0.5}]}"#;
        let Record::Impression { items, .. } = serde_json::from_str::<Record>(old).unwrap() else {
            panic!("an impression");
        };
        assert_eq!(items[0].explanation, None);
        // Without an explanation the encoding is the old one, byte for byte.
        let plain = ServedItem {
            item_id: "i1".into(),
            position: 0,
            score: 0.5,
            explanation: None,
            exposure_propensity: None,
        };
        assert_eq!(
            serde_json::to_string(&plain).unwrap(),
            r#"{"item_id":"i1","position":0,"score":0.5}"#
        );
        let explained = ServedItem {
            explanation: Some(Explanation {
                path: ServedPath::Popular,
                sources: vec![SourceEvidence {
                    source: "popular".into(),
                    score: 0.9,
                    rank: 3,
                }],
                first_phase: None,
                ranker: None,
            }),
            ..plain
        };
        let text = serde_json::to_string(&explained).unwrap();
        assert!(text.contains(r#""path":"popular""#), "{text}");
        assert_eq!(
            serde_json::from_str::<ServedItem>(&text).unwrap(),
            explained
        );
    }
}
