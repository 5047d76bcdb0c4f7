//! Bad input gets a 4xx with a JSON error body, never a panic or a 5xx.

use crate::helpers::*;

#[tokio::test]
async fn bad_parameters_get_400_with_codes() {
    let app = TestApp::spawn().await;
    let cases = [
        ("/recommendations?n=0", 400, "invalid_n"),
        ("/recommendations?n=100000", 400, "invalid_n"),
        ("/recommendations?n=ten", 400, "invalid_n"),
        ("/recommendations?recent=a,,b", 400, "invalid_recent"),
        (
            "/recommendations?exclude_seen=perhaps",
            400,
            "invalid_exclude_seen",
        ),
        ("/recommendations?ts=tomorrow", 400, "invalid_ts"),
        ("/recommendations?colour=red", 400, "unknown_parameter"),
        ("/recommendations?user_id=%ZZ", 400, "invalid_query"),
        ("/no/such/route", 404, "not_found"),
    ];
    for (path, status, code) in cases {
        let r = app.get(path).await;
        assert_eq!(r.status().as_u16(), status, "{path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{path}"
        );
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(error_code(&body), code, "{path}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    let long = "x".repeat(10_000);
    let r = app.get(&format!("/recommendations?user_id={long}")).await;
    assert_eq!(r.status().as_u16(), 414);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(error_code(&body), "uri_too_long");
    let r = app
        .client
        .delete(format!("{}/recommendations", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
    app.shutdown().await;
}

#[tokio::test]
async fn bad_feedback_bodies_get_4xx() {
    let app = TestApp::spawn().await;
    let url = format!("{}/feedback", app.base);
    let post = |body: String, ct: &'static str| {
        app.client
            .post(&url)
            .header("content-type", ct)
            .body(body)
            .send()
    };
    let cases: Vec<(String, &str, u16, &str)> = vec![
        ("{not json".into(), "application/json", 400, "invalid_json"),
        (
            r#"{"request_id":"r","user_id":"u","item_id":"i","event":"teleport"}"#.into(),
            "application/json",
            400,
            "invalid_event",
        ),
        (
            r#"{"request_id":"r","user_id":"","item_id":"i","event":"click"}"#.into(),
            "application/json",
            400,
            "invalid_event",
        ),
        (
            r#"{"request_id":"r","item_id":"i","event":"click"}"#.into(),
            "application/json",
            400,
            "invalid_json",
        ),
        (
            r#"{"request_id":"r","user_id":"u","item_id":"i","event":"click"}"#.into(),
            "text/plain",
            415,
            "unsupported_media_type",
        ),
        (
            "x".repeat(2_000_000),
            "application/json",
            413,
            "payload_too_large",
        ),
    ];
    for (body, ct, status, code) in cases {
        let r = post(body.clone(), ct).await.unwrap();
        assert_eq!(
            r.status().as_u16(),
            status,
            "{}",
            &body[..body.len().min(80)]
        );
        let b: serde_json::Value = r.json().await.unwrap();
        assert_eq!(error_code(&b), code, "{b}");
    }
    let r = app
        .client
        .post(format!("{}/feedback/batch", app.base))
        .header("content-type", "application/json")
        .body(r#"{"events":[]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    app.shutdown().await;
}

#[tokio::test]
async fn overload_is_shed_with_503_and_retry_after() {
    // One slot and a slow pipeline (forced sequential, large candidate counts) make concurrent
    // requests collide; the excess must be shed at once, not queued.
    let app = TestApp::spawn_with(|c| {
        c.server.max_concurrency = 1;
        c.server.admission_queue = 0;
    })
    .await;
    let user = app.user_with_history(5);
    let url = format!("{}/recommendations?user_id={user}&n=200", app.base);
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let (c, u) = (app.client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let r = c.get(&u).send().await.unwrap();
            let retry = r.headers().get("retry-after").is_some();
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.unwrap();
            (status, retry, body)
        }));
    }
    let mut shed = 0;
    let mut ok = 0;
    for t in tasks {
        let (status, retry, body) = t.await.unwrap();
        match status {
            200 => ok += 1,
            503 => {
                shed += 1;
                assert!(retry, "503 carries Retry-After");
                assert_eq!(error_code(&body), "overloaded");
            }
            other => panic!("unexpected status {other}: {body}"),
        }
    }
    assert!(ok >= 1, "some requests are served");
    assert!(shed >= 1, "excess requests are shed (ok={ok})");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("recserve_requests_shed_total"),
        "shed counter exported"
    );
    app.shutdown().await;
}
