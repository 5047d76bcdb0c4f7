//! The generated document against the code it describes: every route, the parser's parameter
//! names, and each pattern against its validator on generated strings.

use super::*;
use crate::server::params;
use proptest::prelude::*;

fn cfg() -> ServiceConfig {
    let mut c = crate::config::Config::load_with_env(None, Vec::new())
        .unwrap()
        .service();
    c.serving.max_list_len = 3;
    c
}

fn param_pattern(doc: &Value, name: &str) -> regex::Regex {
    let params = doc
        .pointer("/paths/~1recommendations/get/parameters")
        .and_then(Value::as_array)
        .unwrap();
    let p = params.iter().find(|p| p["name"] == name).unwrap();
    regex::RegexBuilder::new(p["schema"]["pattern"].as_str().unwrap())
        .size_limit(1 << 26)
        .build()
        .unwrap()
}

/// Percent-encodes every byte, as a client would send any string.
fn enc(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

#[test]
fn documents_every_route_the_router_serves() {
    let ops = operations(&document(&cfg()));
    let mut want: Vec<(String, String)> = [
        ("get", "/recommendations"),
        ("post", "/feedback"),
        ("post", "/feedback/batch"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
        ("get", "/openapi.json"),
        ("post", "/admin/reload"),
        ("get", "/admin/bandit"),
        ("post", "/admin/state/sync"),
        ("get", "/admin/fleet"),
        ("post", "/admin/catalogue"),
        ("get", "/admin/catalogue"),
        ("get", "/"),
        ("get", "/items"),
    ]
    .iter()
    .map(|(m, p)| (m.to_string(), p.to_string()))
    .collect();
    want.sort();
    assert_eq!(ops, want);
    let doc = document(&cfg());
    assert_eq!(doc["info"]["title"], "recserve");
    assert_eq!(doc["openapi"], "3.1.0");
}

#[test]
fn query_parameters_are_the_parsers() {
    let doc = document(&cfg());
    let params = doc
        .pointer("/paths/~1recommendations/get/parameters")
        .and_then(Value::as_array)
        .unwrap();
    let names: Vec<&str> = params
        .iter()
        .filter(|p| p["in"] == "query")
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    let err = match params::parse(Some("no_such_parameter=1"), 200, 50) {
        Err(crate::server::error::ApiError::BadRequest { message, .. }) => message,
        other => panic!("{other:?}"),
    };
    let accepted = err.rsplit("accepted: ").next().unwrap();
    let accepted: Vec<&str> = accepted.split(", ").collect();
    assert_eq!(names, accepted, "documented query parameters = parsed ones");
}

#[test]
fn limits_and_event_types_come_from_the_configuration() {
    let mut c = cfg();
    c.serving.max_n = 33;
    c.feedback.max_batch = 7;
    c.feedback.events = vec!["click".into(), "purchase".into()];
    let doc = document(&c);
    let params = doc
        .pointer("/paths/~1recommendations/get/parameters")
        .and_then(Value::as_array)
        .unwrap();
    let n = params.iter().find(|p| p["name"] == "n").unwrap();
    assert_eq!(n["schema"]["maximum"], 33);
    assert_eq!(
        doc.pointer("/components/schemas/Batch/properties/events/maxItems"),
        Some(&Value::from(7))
    );
    assert_eq!(
        doc.pointer("/components/schemas/FeedbackIn/properties/event/enum"),
        Some(&serde_json::json!(["click", "purchase"]))
    );
    let fb = doc.pointer("/components/schemas/FeedbackIn").unwrap();
    assert_eq!(
        fb["additionalProperties"], false,
        "unknown fields are refused"
    );
    let list = param_pattern(&doc, "recent");
    assert!(list.is_match("a,b,c") && !list.is_match("a,b,c,d"));
}

/// Characters that matter to the validators: controls, the whitespace `trim` removes (control
/// and not), commas, multi-byte characters, ordinary ones.
fn tricky() -> impl Strategy<Value = String> {
    let chars = prop::sample::select(vec![
        'a',
        'Z',
        '7',
        '_',
        '-',
        ',',
        ' ',
        '\t',
        '\n',
        '\r',
        '\u{0b}',
        '\u{0c}',
        '\u{1c}',
        '\u{85}',
        '\u{a0}',
        '\u{2003}',
        '\u{3000}',
        '\u{feff}',
        '\u{7f}',
        '\u{9f}',
        '\0',
        'é',
        '\u{1F600}',
        '%',
        '+',
        '&',
    ]);
    prop::collection::vec(chars, 0..8).prop_map(|v| v.into_iter().collect())
}

fn long(c: char, n: usize) -> String {
    std::iter::repeat_n(c, n).collect()
}

/// The query parameters' patterns, compiled once.
static QUERY_PATTERNS: std::sync::LazyLock<Vec<(&'static str, regex::Regex)>> =
    std::sync::LazyLock::new(|| {
        let doc = document(&cfg());
        [
            "user_id",
            "category",
            "device",
            "exclude_seen",
            "recent",
            "exclude",
        ]
        .into_iter()
        .map(|n| (n, param_pattern(&doc, n)))
        .collect()
    });

fn query_pattern(name: &str) -> &'static regex::Regex {
    &QUERY_PATTERNS.iter().find(|(n, _)| *n == name).unwrap().1
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn query_patterns_agree_with_the_parser(s in tricky(), pad in 0usize..3) {
        // Lengths around the 256-character limit.
        let s = match pad { 1 => format!("{}{s}", long('é', 250)), 2 => format!("{s}{}", long('x', 256)), _ => s };
        for (name, max_len) in [("user_id", 256), ("category", 256), ("device", 32)] {
            let re = query_pattern(name);
            let schema_ok = re.is_match(&s) && s.chars().count() <= max_len;
            let parsed = params::parse(Some(&format!("{name}={}", enc(&s))), 200, 3);
            prop_assert_eq!(schema_ok, parsed.is_ok(), "{} = {:?}", name, s);
        }
        let re = query_pattern("exclude_seen");
        let parsed = params::parse(Some(&format!("exclude_seen={}", enc(&s))), 200, 3);
        prop_assert_eq!(re.is_match(&s), parsed.is_ok(), "exclude_seen = {:?}", s);
        for name in ["recent", "exclude"] {
            let re = query_pattern(name);
            let parsed = params::parse(Some(&format!("{name}={}", enc(&s))), 200, 3);
            prop_assert_eq!(re.is_match(&s), parsed.is_ok(), "{} = {:?}", name, s);
        }
    }

    #[test]
    fn body_patterns_agree_with_the_feedback_validator(s in tricky(), pad in 0usize..3) {
        let doc = document(&cfg());
        let s = match pad { 1 => format!("{s}{}", long('é', 125)), 2 => format!("{}{s}", long('ü', 250)), _ => s };
        let props = doc.pointer("/components/schemas/FeedbackIn/properties").unwrap();
        let base = crate::feedback::events::FeedbackIn {
            request_id: "r".into(),
            user_id: "u".into(),
            item_id: "i".into(),
            event: "click".into(),
            value: None,
            ts: None,
            impression_token: None,
        };
        for field in ["request_id", "user_id", "item_id"] {
            let p = &props[field];
            let re = regex::Regex::new(p["pattern"].as_str().unwrap()).unwrap();
            let max = p["maxLength"].as_u64().unwrap() as usize;
            let schema_ok = re.is_match(&s) && s.chars().count() <= max;
            let mut ev = base.clone();
            match field {
                "request_id" => ev.request_id = s.clone(),
                "user_id" => ev.user_id = s.clone(),
                _ => ev.item_id = s.clone(),
            }
            let valid = crate::feedback::events::validate(&ev, &["click".to_string()]).is_ok();
            prop_assert_eq!(schema_ok, valid, "{} = {:?}", field, s);
        }
    }
}
