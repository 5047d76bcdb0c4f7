//! Request context for the bandit: user segment × device × daypart, bucketed into a small
//! dense table so that each context learns its own best blend. Parsing is lenient and never
//! fails: whatever a client sends maps to some bucket (`unknown` device at worst).

use serde::{Deserialize, Serialize};

use super::config::{BanditConfig, SegmentThresholds};

/// User segment by interaction-history length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Segment {
    /// No history: cold start.
    New,
    /// `1..=light_max_history` interactions.
    Light,
    /// More than `light_max_history` interactions.
    Heavy,
}

impl Segment {
    pub const ALL: [Segment; 3] = [Segment::New, Segment::Light, Segment::Heavy];

    pub fn from_history(history_len: usize, thresholds: &SegmentThresholds) -> Self {
        match history_len {
            0 => Segment::New,
            n if n <= thresholds.light_max_history => Segment::Light,
            _ => Segment::Heavy,
        }
    }

    /// Metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Segment::New => "new",
            Segment::Light => "light",
            Segment::Heavy => "heavy",
        }
    }
}

/// Client device class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Device {
    Mobile,
    Desktop,
    Tablet,
    Unknown,
}

impl Device {
    pub const ALL: [Device; 4] = [
        Device::Mobile,
        Device::Desktop,
        Device::Tablet,
        Device::Unknown,
    ];

    /// Lenient parse of a device hint: a class name (`mobile`, `Desktop`, `tablet`), a
    /// common alias (`phone`, `ios`, `web`, `ipad`…) or a raw User-Agent string. Anything
    /// else is [`Device::Unknown`].
    pub fn parse(raw: &str) -> Self {
        let s = raw.trim().to_ascii_lowercase();
        match s.as_str() {
            "mobile" | "phone" | "smartphone" | "iphone" | "android" | "ios" | "mweb"
            | "mobile_web" | "mobile-web" => return Device::Mobile,
            "desktop" | "pc" | "web" | "laptop" | "computer" | "mac" | "macos" | "windows"
            | "linux" => return Device::Desktop,
            "tablet" | "ipad" | "tab" => return Device::Tablet,
            _ => {}
        }
        // User-Agent heuristics. Android tablets omit "Mobile" from their UA, phones send it.
        if s.contains("ipad") || s.contains("tablet") {
            Device::Tablet
        } else if s.contains("mobi") || s.contains("iphone") {
            Device::Mobile
        } else if s.contains("android") {
            Device::Tablet
        } else if s.contains("windows nt")
            || s.contains("macintosh")
            || s.contains("x11")
            || s.contains("cros")
        {
            Device::Desktop
        } else {
            Device::Unknown
        }
    }

    /// Metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Device::Mobile => "mobile",
            Device::Desktop => "desktop",
            Device::Tablet => "tablet",
            Device::Unknown => "unknown",
        }
    }
}

/// Part of the day in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Daypart {
    /// 00:00–05:59
    Night,
    /// 06:00–11:59
    Morning,
    /// 12:00–17:59
    Afternoon,
    /// 18:00–23:59
    Evening,
}

impl Daypart {
    pub const ALL: [Daypart; 4] = [
        Daypart::Night,
        Daypart::Morning,
        Daypart::Afternoon,
        Daypart::Evening,
    ];

    /// Daypart of a Unix timestamp (seconds, UTC); any `i64`, including pre-1970, is valid.
    pub fn from_unix(ts: i64) -> Self {
        match ts.rem_euclid(86_400) / 3_600 {
            0..=5 => Daypart::Night,
            6..=11 => Daypart::Morning,
            12..=17 => Daypart::Afternoon,
            _ => Daypart::Evening,
        }
    }

    /// Metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Daypart::Night => "night",
            Daypart::Morning => "morning",
            Daypart::Afternoon => "afternoon",
            Daypart::Evening => "evening",
        }
    }
}

/// Number of distinct contexts (rows of the bandit's table).
pub const NUM_CONTEXTS: usize = Segment::ALL.len() * Device::ALL.len() * Daypart::ALL.len();

/// The bandit's view of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Context {
    pub segment: Segment,
    pub device: Device,
    pub daypart: Daypart,
}

impl Context {
    /// Buckets a request: `history_len` interactions of the user, an optional device hint
    /// (see [`Device::parse`]) and the request's Unix timestamp in seconds.
    pub fn new(history_len: usize, device: Option<&str>, ts: i64, cfg: &BanditConfig) -> Self {
        Self {
            segment: Segment::from_history(history_len, &cfg.segment_thresholds),
            device: device.map_or(Device::Unknown, Device::parse),
            daypart: Daypart::from_unix(ts),
        }
    }

    /// Dense row index in `0..NUM_CONTEXTS`; stable across versions as long as the enums
    /// keep their order (snapshots and update logs store it).
    pub fn index(&self) -> usize {
        ((self.segment as usize) * Device::ALL.len() + self.device as usize) * Daypart::ALL.len()
            + self.daypart as usize
    }

    /// Inverse of [`Context::index`].
    pub fn from_index(index: usize) -> Option<Self> {
        if index >= NUM_CONTEXTS {
            return None;
        }
        let dayparts = Daypart::ALL.len();
        let devices = Device::ALL.len();
        Some(Self {
            segment: Segment::ALL[index / (dayparts * devices)],
            device: Device::ALL[(index / dayparts) % devices],
            daypart: Daypart::ALL[index % dayparts],
        })
    }

    /// `segment/device/daypart`, e.g. `light/mobile/evening`; bounded (48 values).
    pub fn label(&self) -> String {
        format!(
            "{}/{}/{}",
            self.segment.as_str(),
            self.device.as_str(),
            self.daypart.as_str()
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    const HOUR: i64 = 3_600;

    #[test]
    fn segment_boundaries() {
        let th = SegmentThresholds {
            light_max_history: 20,
        };
        assert_eq!(Segment::from_history(0, &th), Segment::New);
        assert_eq!(Segment::from_history(1, &th), Segment::Light);
        assert_eq!(Segment::from_history(20, &th), Segment::Light);
        assert_eq!(Segment::from_history(21, &th), Segment::Heavy);
        assert_eq!(Segment::from_history(usize::MAX, &th), Segment::Heavy);
        // With no light band, any history is heavy, but empty history stays new.
        let none = SegmentThresholds {
            light_max_history: 0,
        };
        assert_eq!(Segment::from_history(0, &none), Segment::New);
        assert_eq!(Segment::from_history(1, &none), Segment::Heavy);
    }

    #[test]
    fn daypart_boundaries_in_utc() {
        let day = 19_000 * 86_400; // a midnight, UTC
        assert_eq!(Daypart::from_unix(0), Daypart::Night);
        assert_eq!(Daypart::from_unix(day), Daypart::Night);
        assert_eq!(Daypart::from_unix(day + 6 * HOUR - 1), Daypart::Night);
        assert_eq!(Daypart::from_unix(day + 6 * HOUR), Daypart::Morning);
        assert_eq!(Daypart::from_unix(day + 12 * HOUR - 1), Daypart::Morning);
        assert_eq!(Daypart::from_unix(day + 12 * HOUR), Daypart::Afternoon);
        assert_eq!(Daypart::from_unix(day + 18 * HOUR - 1), Daypart::Afternoon);
        assert_eq!(Daypart::from_unix(day + 18 * HOUR), Daypart::Evening);
        assert_eq!(Daypart::from_unix(day + 24 * HOUR - 1), Daypart::Evening);
        assert_eq!(Daypart::from_unix(day + 24 * HOUR), Daypart::Night);
        // Before 1970: 1969-12-31T23:59:59Z is evening, not a negative hour.
        assert_eq!(Daypart::from_unix(-1), Daypart::Evening);
        assert_eq!(Daypart::from_unix(-6 * HOUR), Daypart::Evening);
        assert_eq!(Daypart::from_unix(-18 * HOUR), Daypart::Morning);
        assert_eq!(Daypart::from_unix(-18 * HOUR - 1), Daypart::Night);
        // Extremes do not overflow.
        Daypart::from_unix(i64::MIN);
        Daypart::from_unix(i64::MAX);
        // Agrees with a naive hour computation over a whole day in 7-minute steps.
        for t in (0..86_400).step_by(420) {
            let hour = t / HOUR;
            let naive = [
                Daypart::Night,
                Daypart::Morning,
                Daypart::Afternoon,
                Daypart::Evening,
            ][(hour / 6) as usize];
            assert_eq!(Daypart::from_unix(day + t), naive, "t={t}");
        }
    }

    #[test]
    fn device_parsing_is_lenient() {
        let cases = [
            ("mobile", Device::Mobile),
            ("  MOBILE ", Device::Mobile),
            ("Phone", Device::Mobile),
            ("iOS", Device::Mobile),
            ("desktop", Device::Desktop),
            ("Web", Device::Desktop),
            ("tablet", Device::Tablet),
            ("iPad", Device::Tablet),
            ("", Device::Unknown),
            ("   ", Device::Unknown),
            ("toaster", Device::Unknown),
            ("smart-tv", Device::Unknown),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
                Device::Mobile,
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36",
                Device::Mobile,
            ),
            (
                "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
                Device::Tablet,
            ),
            (
                "Mozilla/5.0 (iPad; CPU OS 16_0 like Mac OS X) AppleWebKit/605.1.15",
                Device::Tablet,
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0",
                Device::Desktop,
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Safari/605.1.15",
                Device::Desktop,
            ),
        ];
        for (raw, expected) in cases {
            assert_eq!(Device::parse(raw), expected, "{raw:?}");
        }
        let cfg = BanditConfig::default();
        assert_eq!(Context::new(3, None, 0, &cfg).device, Device::Unknown);
    }

    #[test]
    fn index_is_a_bijection_onto_the_dense_table() {
        let mut seen = HashSet::new();
        for segment in Segment::ALL {
            for device in Device::ALL {
                for daypart in Daypart::ALL {
                    let ctx = Context {
                        segment,
                        device,
                        daypart,
                    };
                    let i = ctx.index();
                    assert!(i < NUM_CONTEXTS);
                    assert!(seen.insert(i), "duplicate index {i}");
                    assert_eq!(Context::from_index(i), Some(ctx));
                }
            }
        }
        assert_eq!(seen.len(), NUM_CONTEXTS);
        assert_eq!(NUM_CONTEXTS, 48);
        assert_eq!(Context::from_index(NUM_CONTEXTS), None);
        let labels: HashSet<_> = (0..NUM_CONTEXTS)
            .map(|i| Context::from_index(i).unwrap().label())
            .collect();
        assert_eq!(labels.len(), NUM_CONTEXTS);
    }

    #[test]
    fn new_combines_all_three_dimensions() {
        let cfg = BanditConfig::default();
        let ctx = Context::new(25, Some("tablet"), 19 * HOUR, &cfg);
        assert_eq!(
            ctx,
            Context {
                segment: Segment::Heavy,
                device: Device::Tablet,
                daypart: Daypart::Evening
            }
        );
        assert_eq!(ctx.label(), "heavy/tablet/evening");
    }
}
