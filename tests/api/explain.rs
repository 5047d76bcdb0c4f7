//! `explain=true`: every item says why it was shown (sources, path, first-phase cut, TreeSHAP
//! contributions that add up to the ranker's score); the list itself does not change; the
//! impression log holds explanations only for requests that asked for them.

use super::common::item_ids as ids;
use super::helpers::TestApp;
use recserve::feedback::events::Record;
use recserve::pipeline::{Explanation, ServedPath};

#[tokio::test]
async fn explanations_add_up_and_leave_the_list_unchanged() {
    let app = TestApp::spawn().await;
    let user = app.user_with_history(20);
    let path = format!("/recommendations?user_id={user}&n=30");
    let (status, plain) = app.get_json(&path).await;
    assert_eq!(status, 200, "{plain}");
    assert!(
        plain["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i.get("explanation").is_none()),
        "no explanation unless asked"
    );
    let (status, body) = app.get_json(&format!("{path}&explain=true")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["strategy"], "ranked", "{body}");
    assert_eq!(
        ids(&body),
        ids(&plain),
        "explaining does not change the list"
    );

    let engine = app.state.current().unwrap();
    let depth = engine.cfg.rerank_depth;
    let mut ranked = 0;
    for item in body["items"].as_array().unwrap() {
        let e: Explanation = serde_json::from_value(item["explanation"].clone()).unwrap();
        // The sources listed are exactly the item's sources, each with a score and a rank.
        let names: Vec<&str> = e.sources.iter().map(|s| s.source.as_str()).collect();
        let listed: Vec<&str> = item["sources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert_eq!(names, listed, "{item}");
        if e.path == ServedPath::Exposure {
            // A new-item slot: the policy's evidence last, matching the response's propensity.
            let ev = e.sources.last().unwrap();
            assert_eq!(ev.source, "exposure", "{item}");
            assert_eq!(
                f64::from(ev.score),
                item["exposure"]["propensity"].as_f64().unwrap() as f32 as f64
            );
            continue;
        }
        let fp = e
            .first_phase
            .as_ref()
            .expect("ranked lists explain the cut");
        assert_eq!(fp.rerank_depth, depth);
        assert_eq!(fp.in_cut, e.path == ServedPath::Ranked, "{item}");
        if depth > 0 {
            assert_eq!(fp.in_cut, (fp.rank as usize) < depth, "{item}");
        }
        let Some(r) = &e.ranker else {
            assert_ne!(
                e.path,
                ServedPath::Ranked,
                "ranked items carry contributions"
            );
            continue;
        };
        ranked += 1;
        // The demo bundle's ranker reads every feature (26 since the cold-start retrain).
        assert_eq!(r.features.len(), recserve::ranking::features::N_FEATURES);
        let sum: f64 = r.bias + r.features.iter().map(|f| f.contribution).sum::<f64>();
        assert!((sum - r.raw_score).abs() <= 1e-9, "{item}");
        // The served score is the ranker's raw score (plus the first-phase base it corrects).
        let served = item["score"].as_f64().unwrap();
        let explained = r.raw_score + r.first_phase_base.unwrap_or(0.0);
        assert!(
            (served - explained).abs() <= 1e-4 * explained.abs().max(1.0),
            "served {served} vs explained {explained}"
        );
        assert!(
            r.features.iter().any(|f| f.contribution != 0.0),
            "some feature matters: {item}"
        );
    }
    assert!(ranked > 0, "the ranker ordered some items: {body}");
}

#[tokio::test]
async fn explain_is_validated_and_popular_lists_are_explained() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .get_json("/recommendations?user_id=nobody-at-all&n=5&explain=maybe")
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_explain", "{body}");
    // An anonymous request without session items is answered from popularity.
    let (status, body) = app.get_json("/recommendations?n=5&explain=1").await;
    assert_eq!(status, 200, "{body}");
    for item in body["items"].as_array().unwrap() {
        let e: Explanation = serde_json::from_value(item["explanation"].clone()).unwrap();
        if body["strategy"] == "popular" {
            assert_eq!(e.path, ServedPath::Popular, "{item}");
        }
        assert!(e.ranker.is_none() || e.path == ServedPath::Ranked);
        assert!(!e.sources.is_empty(), "{item}");
    }
}

#[tokio::test]
async fn impressions_hold_explanations_only_when_asked() {
    let app = TestApp::spawn().await;
    let user = app.user_with_history(20);
    let (_, plain) = app
        .get_json(&format!("/recommendations?user_id={user}&n=5"))
        .await;
    let (_, explained) = app
        .get_json(&format!("/recommendations?user_id={user}&n=5&explain=true"))
        .await;
    let dir = app.shutdown().await;
    let records = recserve::feedback::log::EventLog::read_all(dir.path()).unwrap();
    let mut seen = 0;
    for (_, payload) in records {
        let Ok(Record::Impression {
            request_id, items, ..
        }) = serde_json::from_slice::<Record>(&payload)
        else {
            continue;
        };
        if request_id == plain["request_id"] {
            assert!(items.iter().all(|i| i.explanation.is_none()));
            assert!(!String::from_utf8_lossy(&payload).contains("explanation"));
            seen += 1;
        } else if request_id == explained["request_id"] {
            let served = explained["items"].as_array().unwrap();
            assert_eq!(items.len(), served.len());
            for (logged, shown) in items.iter().zip(served) {
                let e: Explanation = serde_json::from_value(shown["explanation"].clone()).unwrap();
                assert_eq!(logged.explanation.as_ref(), Some(&e));
            }
            seen += 1;
        }
    }
    assert_eq!(seen, 2, "both impressions were logged");
}
