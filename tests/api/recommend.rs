//! `GET /recommendations`: full lists, exclusions, cold paths, variants and the fallback chain.

use crate::helpers::*;
use std::collections::HashSet;

fn item_ids(body: &serde_json::Value) -> Vec<String> {
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["item_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn known_user_gets_n_distinct_ranked_items_without_seen_ones() {
    let app = TestApp::spawn().await;
    let user = app.user_with_history(5);
    let (status, body) = app
        .get_json(&format!("/recommendations?user_id={user}&n=20"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["strategy"], "ranked", "{body}");
    assert_eq!(body["variant"], "control");
    assert!(body["degraded"].as_array().unwrap().is_empty(), "{body}");
    let ids = item_ids(&body);
    assert_eq!(ids.len(), 20);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 20, "distinct");
    let seen: HashSet<String> = app.history_ids(&user).into_iter().collect();
    assert!(ids.iter().all(|i| !seen.contains(i)), "exclude_seen holds");
    let scores: Vec<f64> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["score"].as_f64().unwrap())
        .collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "rank order: {scores:?}"
    );
    for it in body["items"].as_array().unwrap() {
        assert!(!it["sources"].as_array().unwrap().is_empty());
    }
    // The body is written by the handler itself: it still says what it is.
    let r = app
        .get(&format!("/recommendations?user_id={user}&n=20"))
        .await;
    assert_eq!(r.headers()["content-type"], "application/json");
    app.shutdown().await;
}

#[tokio::test]
async fn exclude_list_and_exclude_seen_false() {
    let app = TestApp::spawn().await;
    let user = app.user_with_history(5);
    let (_, first) = app
        .get_json(&format!("/recommendations?user_id={user}&n=10"))
        .await;
    let top: Vec<String> = item_ids(&first);
    let excl = top[..3].join(",");
    let (status, body) = app
        .get_json(&format!(
            "/recommendations?user_id={user}&n=10&exclude={excl},no-such-item"
        ))
        .await;
    assert_eq!(status, 200, "unknown ids in filters are ignored: {body}");
    let ids = item_ids(&body);
    assert_eq!(ids.len(), 10);
    for x in &top[..3] {
        assert!(!ids.contains(x), "{x} was excluded");
    }
    // With exclude_seen=false, seen items may come back; the list is still full.
    let (status, body) = app
        .get_json(&format!(
            "/recommendations?user_id={user}&n=50&exclude_seen=false"
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(item_ids(&body).len(), 50);
    app.shutdown().await;
}

#[tokio::test]
async fn unknown_and_anonymous_users_get_full_lists() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .get_json("/recommendations?user_id=never-seen-user&n=15")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(item_ids(&body).len(), 15);
    let sources: HashSet<String> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| {
            i["sources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
        })
        .collect();
    assert!(
        !sources.contains("cf"),
        "no CF vector for an unknown user: {sources:?}"
    );

    let user = app.user_with_history(5);
    let recent = app.history_ids(&user)[..2].join(",");
    let (status, body) = app
        .get_json(&format!("/recommendations?recent={recent}&n=15"))
        .await;
    assert_eq!(status, 200, "{body}");
    let ids = item_ids(&body);
    assert_eq!(ids.len(), 15);
    assert!(body["user_id"].is_null());
    assert!(
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["sources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s == "session")),
        "session source contributes for an anonymous request with recent items: {body}"
    );
    for r in recent.split(',') {
        assert!(
            !ids.contains(&r.to_string()),
            "session items are not recommended back"
        );
    }
    app.shutdown().await;
}

#[tokio::test]
async fn category_filter_restricts_items() {
    let app = TestApp::spawn().await;
    let engine = app.state.current().unwrap();
    let cat = engine.model.categories[0].clone();
    let user = app.user_with_history(5);
    let (status, body) = app
        .get_json(&format!(
            "/recommendations?user_id={user}&n=5&category={cat}"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    let ids = item_ids(&body);
    assert_eq!(ids.len(), 5);
    let c = engine.model.category_index[&cat];
    for id in ids {
        let i = engine.model.item_index[&id];
        assert!(
            engine.model.item_categories(i).contains(&c),
            "{id} is in {cat}"
        );
    }
    let (status, body) = app
        .get_json(&format!(
            "/recommendations?user_id={user}&n=5&category=no-such-category"
        ))
        .await;
    assert_eq!(status, 200, "an unknown category is not an error");
    assert!(
        item_ids(&body).is_empty(),
        "no item is in an unknown category: {body}"
    );
    assert!(
        body["degraded"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d == "category:unknown"),
        "{body}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn variant_header_selects_treatment_and_is_echoed() {
    let app = TestApp::spawn().await;
    let user = app.user_with_history(5);
    let url = format!("{}/recommendations?user_id={user}&n=10", app.base);
    let r = app
        .client
        .get(&url)
        .header("x-variant", "blend")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-variant"], "blend");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["variant"], "blend");
    assert_eq!(body["strategy"], "blend", "ranker off in this variant");

    let r = app
        .client
        .get(&url)
        .header("x-variant", "no-such-variant")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-variant"], "control");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["variant"], "control");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("recserve_variant_resolutions_total{resolution=\"unknown\"} 1"),
        "unknown variant counted"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn zero_budgets_fall_back_to_popularity_and_say_so() {
    let app = TestApp::spawn_with(|c| {
        c.serving.source_budget_ms = recserve::pipeline::SourceBudgets {
            cf: 0,
            content: 0,
            session: 0,
            popular: 0,
            item2item: 0,
            segment: 0,
        };
    })
    .await;
    let user = app.user_with_history(5);
    let (status, body) = app
        .get_json(&format!("/recommendations?user_id={user}&n=12"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["strategy"], "popular", "{body}");
    assert_eq!(item_ids(&body).len(), 12);
    let degraded: Vec<String> = body["degraded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect();
    assert!(
        degraded.iter().any(|d| d == "cf:over_budget"),
        "{degraded:?}"
    );
    assert!(
        degraded.iter().any(|d| d == "retrieval:no_candidates"),
        "{degraded:?}"
    );
    let seen: HashSet<String> = app.history_ids(&user).into_iter().collect();
    assert!(
        item_ids(&body).iter().all(|i| !seen.contains(i)),
        "filters still hold on the fallback"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn unusable_ranker_falls_back_to_blend_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    copy_dir(&demo_bundle(), &bundle);
    std::fs::write(bundle.join("ranker.txt"), "this is not a LightGBM model\n").unwrap();
    let app = TestApp::spawn_with(|c| c.server.bundle = bundle.clone()).await;
    let user = app.user_with_history(5);
    let (status, body) = app
        .get_json(&format!("/recommendations?user_id={user}&n=10"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["strategy"], "blend", "{body}");
    assert_eq!(item_ids(&body).len(), 10);
    assert!(
        body["degraded"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d == "ranker:unavailable"),
        "{body}"
    );
    app.shutdown().await;
}

pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}
