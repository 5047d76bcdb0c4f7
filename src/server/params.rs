//! Parsing and validating `GET /recommendations` query strings into a typed request, with a
//! precise 400 for every malformed parameter. Hand-written so each error has a stable code.

use super::error::ApiError;

/// Longest accepted id (user, item, category), in characters.
pub const MAX_ID_LEN: usize = 256;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecParams {
    pub user_id: Option<String>,
    pub n: Option<usize>,
    pub recent: Vec<String>,
    pub exclude: Vec<String>,
    pub exclude_seen: bool,
    pub category: Option<String>,
    pub device: Option<String>,
    pub ts: Option<i64>,
    /// `explain=true`: an explanation per item (off by default).
    pub explain: bool,
    /// `diversity=λ` in [0, 1]: MMR over content vectors (overrides the variant's).
    pub diversity: Option<f32>,
    /// `max_per_category=k` (k ≥ 1): at most k items per primary category (overrides the variant's).
    pub max_per_category: Option<usize>,
}

/// Percent-decodes one `application/x-www-form-urlencoded` component (`+` is a space).
pub fn decode_component(s: &str) -> Result<String, ApiError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .ok_or_else(|| ApiError::bad("invalid_query", "truncated %-escape"))?;
                let hex = std::str::from_utf8(hex)
                    .map_err(|_| ApiError::bad("invalid_query", "invalid %-escape"))?;
                let b = u8::from_str_radix(hex, 16)
                    .map_err(|_| ApiError::bad("invalid_query", "invalid %-escape"))?;
                out.push(b);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| ApiError::bad("invalid_query", "query is not valid UTF-8"))
}

fn check_id(kind: &'static str, code: &'static str, s: &str) -> Result<(), ApiError> {
    if s.is_empty() {
        return Err(ApiError::bad(code, format!("{kind} must not be empty")));
    }
    if s.chars().count() > MAX_ID_LEN || s.chars().any(char::is_control) {
        return Err(ApiError::bad(
            code,
            format!("{kind} must be at most {MAX_ID_LEN} characters without control characters"),
        ));
    }
    Ok(())
}

pub fn parse_list(
    name: &'static str,
    code: &'static str,
    v: &str,
    max: usize,
) -> Result<Vec<String>, ApiError> {
    if v.is_empty() {
        return Ok(Vec::new());
    }
    let items: Vec<String> = v.split(',').map(|s| s.trim().to_string()).collect();
    if items.len() > max {
        return Err(ApiError::bad(
            code,
            format!("{name} holds {} ids, at most {max} allowed", items.len()),
        ));
    }
    for it in &items {
        check_id(name, code, it).map_err(|_| {
            ApiError::bad(code, format!("{name} must be a comma-separated list of non-empty ids (at most {MAX_ID_LEN} characters each)"))
        })?;
    }
    Ok(items)
}

fn parse_bool(name: &str, code: &'static str, v: &str) -> Result<bool, ApiError> {
    match v.to_ascii_lowercase().as_str() {
        "" | "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(ApiError::bad(code, format!("{name} must be true or false"))),
    }
}

/// Parses the raw query string. `max_n` bounds `n`; `max_list` bounds `recent` and `exclude`.
pub fn parse(raw: Option<&str>, max_n: usize, max_list: usize) -> Result<RecParams, ApiError> {
    let mut p = RecParams {
        exclude_seen: true,
        ..Default::default()
    };
    let Some(raw) = raw else { return Ok(p) };
    let mut seen_keys: Vec<String> = Vec::new();
    for pair in raw.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = decode_component(k)?;
        let v = decode_component(v)?;
        if seen_keys.contains(&k) {
            return Err(ApiError::bad(
                "duplicate_parameter",
                format!("parameter {k:?} given twice"),
            ));
        }
        seen_keys.push(k.clone());
        match k.as_str() {
            "user_id" => {
                check_id("user_id", "invalid_user_id", &v)?;
                p.user_id = Some(v);
            }
            "n" => {
                let n: usize = v.parse().map_err(|_| {
                    ApiError::bad(
                        "invalid_n",
                        format!("n must be an integer in 1..={max_n}, got {v:?}"),
                    )
                })?;
                if n == 0 || n > max_n {
                    return Err(ApiError::bad(
                        "invalid_n",
                        format!("n must be in 1..={max_n}, got {n}"),
                    ));
                }
                p.n = Some(n);
            }
            "recent" => p.recent = parse_list("recent", "invalid_recent", &v, max_list)?,
            "exclude" => p.exclude = parse_list("exclude", "invalid_exclude", &v, max_list)?,
            "exclude_seen" => {
                p.exclude_seen = parse_bool("exclude_seen", "invalid_exclude_seen", &v)?;
            }
            "explain" => p.explain = parse_bool("explain", "invalid_explain", &v)?,
            "diversity" => {
                let l: f32 = v.parse().map_err(|_| {
                    ApiError::bad(
                        "invalid_diversity",
                        format!("diversity must be a number in [0, 1], got {v:?}"),
                    )
                })?;
                if !(0.0..=1.0).contains(&l) {
                    return Err(ApiError::bad(
                        "invalid_diversity",
                        format!("diversity must be in [0, 1], got {v}"),
                    ));
                }
                p.diversity = Some(l);
            }
            "max_per_category" => {
                let k: usize = v
                    .parse()
                    .ok()
                    .filter(|&k| (1..=max_n).contains(&k))
                    .ok_or_else(|| {
                        ApiError::bad(
                            "invalid_max_per_category",
                            format!(
                                "max_per_category must be an integer in 1..={max_n}, got {v:?}"
                            ),
                        )
                    })?;
                p.max_per_category = Some(k);
            }
            "category" => {
                check_id("category", "invalid_category", &v)?;
                p.category = Some(v);
            }
            "device" => {
                if v.len() > 32
                    || !v
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                {
                    return Err(ApiError::bad(
                        "invalid_device",
                        "device must be at most 32 chars of [A-Za-z0-9_-]",
                    ));
                }
                p.device = Some(v);
            }
            "ts" => {
                let ts: i64 = v.parse().map_err(|_| {
                    ApiError::bad("invalid_ts", format!("ts must be Unix seconds, got {v:?}"))
                })?;
                if !(0..=4_102_444_800).contains(&ts) {
                    return Err(ApiError::bad(
                        "invalid_ts",
                        "ts must be Unix seconds between 1970 and 2100",
                    ));
                }
                p.ts = Some(ts);
            }
            other => {
                return Err(ApiError::bad(
                    "unknown_parameter",
                    format!(
                        "unknown parameter {other:?}; accepted: user_id, n, recent, exclude, exclude_seen, category, device, ts, explain, diversity, max_per_category"
                    ),
                ));
            }
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn code(e: ApiError) -> &'static str {
        match e {
            ApiError::BadRequest { code, .. } => code,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn parses_every_parameter() {
        let p = parse(
            Some("user_id=u%2042&n=5&recent=i1,i2&exclude=i3&exclude_seen=false&category=c01&device=mobile&ts=1700000000"),
            200,
            50,
        )
        .unwrap();
        assert_eq!(p.user_id.as_deref(), Some("u 42"));
        assert_eq!(p.n, Some(5));
        assert_eq!(p.recent, vec!["i1", "i2"]);
        assert_eq!(p.exclude, vec!["i3"]);
        assert!(!p.exclude_seen);
        assert_eq!(p.category.as_deref(), Some("c01"));
        assert_eq!(p.device.as_deref(), Some("mobile"));
        assert_eq!(p.ts, Some(1_700_000_000));
        assert!(!p.explain, "explain is off unless asked for");
        let defaults = parse(None, 200, 50).unwrap();
        assert!(defaults.exclude_seen, "exclude_seen defaults to true");
        assert!(!defaults.explain, "explain defaults to false");
        assert!(parse(Some("explain=true"), 200, 50).unwrap().explain);
        assert!(!parse(Some("explain=false"), 200, 50).unwrap().explain);
        let d = parse(Some("diversity=0.3&max_per_category=2"), 200, 50).unwrap();
        assert_eq!((d.diversity, d.max_per_category), (Some(0.3), Some(2)));
        assert_eq!(
            (defaults.diversity, defaults.max_per_category),
            (None, None)
        );
    }

    #[test]
    fn rejects_bad_input_with_stable_codes() {
        let cases = [
            ("n=0", "invalid_n"),
            ("n=201", "invalid_n"),
            ("n=abc", "invalid_n"),
            ("n=-1", "invalid_n"),
            ("recent=a,,b", "invalid_recent"),
            ("exclude=,", "invalid_exclude"),
            ("user_id=", "invalid_user_id"),
            ("exclude_seen=maybe", "invalid_exclude_seen"),
            ("explain=please", "invalid_explain"),
            ("diversity=1.5", "invalid_diversity"),
            ("diversity=-0.1", "invalid_diversity"),
            ("diversity=NaN", "invalid_diversity"),
            ("diversity=lots", "invalid_diversity"),
            ("max_per_category=0", "invalid_max_per_category"),
            ("max_per_category=201", "invalid_max_per_category"),
            ("max_per_category=two", "invalid_max_per_category"),
            ("ts=yesterday", "invalid_ts"),
            ("device=a%20b", "invalid_device"),
            ("bogus=1", "unknown_parameter"),
            ("n=1&n=2", "duplicate_parameter"),
            ("user_id=%zz", "invalid_query"),
            ("user_id=%ff", "invalid_query"),
            ("user_id=%4", "invalid_query"),
        ];
        for (q, want) in cases {
            assert_eq!(code(parse(Some(q), 200, 50).unwrap_err()), want, "{q}");
        }
        let long: String = (0..51)
            .map(|i| format!("i{i}"))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(
            code(parse(Some(&format!("recent={long}")), 200, 50).unwrap_err()),
            "invalid_recent"
        );
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_queries(q in ".{0,200}") {
            let _ = parse(Some(&q), 200, 50);
        }
    }
}
