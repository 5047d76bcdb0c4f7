//! Operations: health, readiness, metrics format, OpenAPI against the real routes, admin reload.

use crate::helpers::*;
use crate::recommend::copy_dir;
use std::sync::Arc;

#[tokio::test]
async fn health_ready_and_openapi_cover_real_routes() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    let (status, ready) = app.get_json("/readyz").await;
    assert_eq!(status, 200);
    assert_eq!(ready["status"], "ready");
    let (_, spec) = app.get_json("/openapi.json").await;
    let paths = spec["paths"].as_object().unwrap();
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let req = app.client.request(
                method.to_uppercase().parse().unwrap(),
                format!("{}{}", app.base, path),
            );
            let r = req.send().await.unwrap();
            assert_ne!(
                r.status().as_u16(),
                404,
                "{method} {path} is documented but not routed"
            );
            assert_ne!(
                r.status().as_u16(),
                405,
                "{method} {path} is documented with the wrong method"
            );
        }
    }
    app.shutdown().await;
}

#[tokio::test]
async fn metrics_carry_the_families_with_help_and_bounded_labels() {
    let app = TestApp::spawn().await;
    let user = app.user_with_history(5);
    for _ in 0..3 {
        app.get(&format!("/recommendations?user_id={user}&n=10"))
            .await;
    }
    app.get("/recommendations?n=0").await;
    let r = app.get("/metrics").await;
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = r.text().await.unwrap();
    for family in [
        "recserve_http_requests_total",
        "recserve_http_request_duration_seconds",
        "recserve_http_requests_in_flight",
        "recserve_pipeline_stage_duration_seconds",
        "recserve_source_duration_seconds",
        "recserve_source_candidates",
        "recserve_model_info",
        "recserve_variant_resolutions_total",
    ] {
        assert!(
            text.contains(&format!("# HELP {family} ")),
            "missing HELP for {family}"
        );
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "missing TYPE for {family}"
        );
    }
    assert!(
        text.contains(
            r#"route="/recommendations",status="2xx",strategy="ranked",variant="control""#
        ),
        "{text}"
    );
    assert!(text.contains(r#"route="/recommendations",status="4xx""#));
    assert!(!text.contains(&user), "no user ids in labels");
    // Every sample line parses as `name{labels} value`.
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let value = line.rsplit(' ').next().unwrap();
        assert!(
            value.parse::<f64>().is_ok() || value == "+Inf" || value == "NaN",
            "bad sample line {line}"
        );
    }
    // promtool (Debian's prometheus package) is the reference checker when installed.
    if let Ok(out) = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(text.as_bytes())?;
            child.wait_with_output()
        })
    {
        let msg = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "promtool check metrics failed: {msg}");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn reload_needs_the_token_refuses_corrupt_bundles_and_swaps_good_ones() {
    let app = TestApp::spawn().await;
    let url = format!("{}/admin/reload", app.base);
    let r = app.client.post(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = app
        .client
        .post(&url)
        .bearer_auth("wrong-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    let before = app.state.current().unwrap().version().to_string();
    let dir = tempfile::tempdir().unwrap();
    let corrupt = dir.path().join("corrupt");
    copy_dir(&demo_bundle(), &corrupt);
    std::fs::write(corrupt.join("item_cf.npy"), b"garbage").unwrap();

    // Keep traffic flowing during the refused reload: no request may fail.
    let user = app.user_with_history(5);
    let rec_url = format!("{}/recommendations?user_id={user}&n=10", app.base);
    let client = app.client.clone();
    let traffic = tokio::spawn(async move {
        let mut statuses = Vec::new();
        for _ in 0..30 {
            statuses.push(
                client
                    .get(&rec_url)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0),
            );
        }
        statuses
    });
    expect_refused(&app, &corrupt, "item_cf.npy").await;
    assert_eq!(
        app.state.current().unwrap().version(),
        before,
        "the old engine keeps serving"
    );

    let good = dir.path().join("good");
    copy_dir(&demo_bundle(), &good);
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(good.join("manifest.json")).unwrap())
            .unwrap();
    manifest["model_version"] = serde_json::json!("reloaded-test-version");
    std::fs::write(good.join("manifest.json"), manifest.to_string()).unwrap();
    let r = app
        .client
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"bundle": good}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let statuses = traffic.await.unwrap();
    assert!(
        statuses.iter().all(|&s| s == 200),
        "no failed request during reloads: {statuses:?}"
    );
    let (_, body) = app
        .get_json(&format!("/recommendations?user_id={user}&n=3"))
        .await;
    assert_eq!(body["model_version"], "reloaded-test-version");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains(r#"recserve_model_info{model_version="reloaded-test-version""#));
    assert!(metrics.contains(r#"recserve_reloads_total{result="refused"} 1"#));
    app.shutdown().await;
}

#[tokio::test]
async fn reload_refuses_a_bundle_whose_ranker_does_not_load() {
    let app = TestApp::spawn().await;
    let before = app.state.current().unwrap().version().to_string();
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken-ranker");
    copy_dir(&demo_bundle(), &broken);
    std::fs::write(broken.join("ranker.txt"), "this is not a LightGBM model\n").unwrap();
    expect_refused(&app, &broken, "ranker").await;
    let engine = app.state.current().unwrap();
    assert_eq!(engine.version(), before, "the old engine keeps serving");
    assert!(engine.ranker.is_some(), "with its ranker");
    app.shutdown().await;
}

#[tokio::test]
async fn a_full_admission_limit_sheds_business_routes_but_not_ops_or_admin() {
    let app = TestApp::spawn_with(|c| {
        c.server.max_concurrency = 3;
        c.server.admission_queue = 0;
    })
    .await;
    // Hold every slot, as three long requests would; one limit for all business routes.
    let held = Arc::clone(app.state.admission.slots())
        .try_acquire_many_owned(3)
        .unwrap();
    let user = app.user_with_history(5);
    assert_shed(&app, &user).await;
    let r = app
        .client
        .post(format!("{}/feedback", app.base))
        .json(&serde_json::json!({"user_id": user, "item_id": "x", "event": "click"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503, "feedback shares the one limit");
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(app.get(path).await.status().as_u16(), 200, "{path}");
    }
    let r = app
        .client
        .get(format!("{}/admin/bandit", app.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_ne!(
        r.status().as_u16(),
        503,
        "admin routes sit outside the limit"
    );
    drop(held);
    let r = recommend(&app, &user).await;
    assert_eq!(r.status().as_u16(), 200, "slots free again once released");
    app.shutdown().await;
}

/// The one slot held, requests queue in FIFO order; one that finds the queue full is refused at
/// once (while the queued one still waits), one that waits past the queue timeout is refused then;
/// both with 503 + Retry-After and a `reason` on the shed counter. Cost: < 1 s.
#[tokio::test]
async fn the_admission_queue_sheds_when_full_and_at_its_deadline() {
    let app = TestApp::spawn_with(|c| {
        c.server.max_concurrency = 1;
        c.server.admission_queue = 1;
        c.server.admission_queue_timeout_ms = 60_000;
    })
    .await;
    let user = app.user_with_history(5);
    let url = format!("{}/recommendations?user_id={user}", app.base);
    let held = Arc::clone(app.state.admission.slots())
        .try_acquire_owned()
        .unwrap();
    let (c, u) = (app.client.clone(), url.clone());
    let queued = tokio::spawn(async move { c.get(&u).send().await.unwrap().status().as_u16() });
    while app.state.admission.queued() == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let r = app.client.get(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(r.headers().get("retry-after").unwrap(), "1");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "overloaded");
    assert_eq!(
        app.state.admission.queued(),
        1,
        "refused at once: the queued request is still waiting"
    );
    drop(held);
    assert_eq!(queued.await.unwrap(), 200, "the queued request is served");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains(r#"recserve_requests_shed_total{reason="queue_full"} 1"#));
    assert!(metrics.contains("recserve_admission_queue_wait_seconds_count"));
    assert!(metrics.contains("recserve_admission_queue_depth 0"));
    app.shutdown().await;

    // A short queue deadline: the queued request is refused when it passes.
    let app = TestApp::spawn_with(|c| {
        c.server.max_concurrency = 1;
        c.server.admission_queue_timeout_ms = 30;
    })
    .await;
    let held = Arc::clone(app.state.admission.slots())
        .try_acquire_owned()
        .unwrap();
    assert_shed(&app, &user).await;
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains(r#"recserve_requests_shed_total{reason="queue_timeout"} 1"#));
    drop(held);
    app.shutdown().await;
}

/// The default sizing (`max_concurrency = 0`: four per pipeline thread, a 64-deep queue) has room
/// for 16 concurrent connections: none finds the queue full. (The queue timeout is lifted here, as
/// a timing bound has no place in a test; `scripts/loadtest.sh` shows c=16 with the defaults.)
/// Cost: < 1 s.
#[tokio::test]
async fn the_default_admission_takes_sixteen_concurrent_connections() {
    let app = TestApp::spawn_with(|c| c.server.admission_queue_timeout_ms = 60_000).await;
    let cfg = &app.state.cfg.server;
    assert_eq!(cfg.max_concurrency, 0, "the shipped default");
    assert!(cfg.in_flight_limit() + cfg.admission_queue >= 16);
    let user = app.user_with_history(5);
    let url = format!("{}/recommendations?user_id={user}", app.base);
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (c, u) = (app.client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for _ in 0..10 {
                statuses.push(c.get(&u).send().await.unwrap().status().as_u16());
            }
            statuses
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap().iter().all(|&s| s == 200));
    }
    app.shutdown().await;
}

/// `POST /admin/reload` of `bundle` is refused with 422 `bundle_refused`, naming `mentions`.
async fn expect_refused(app: &TestApp, bundle: &std::path::Path, mentions: &str) {
    let r = app
        .client
        .post(format!("{}/admin/reload", app.base))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({ "bundle": bundle }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(error_code(&body), "bundle_refused");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(mentions),
        "{body}"
    );
}

async fn recommend(app: &TestApp, user: &str) -> reqwest::Response {
    app.client
        .get(format!("{}/recommendations?user_id={user}", app.base))
        .send()
        .await
        .unwrap()
}

/// A recommendation request for `user` is shed: 503 with `Retry-After`.
async fn assert_shed(app: &TestApp, user: &str) {
    let r = recommend(app, user).await;
    assert_eq!(r.status().as_u16(), 503);
    assert!(r.headers().get("retry-after").is_some());
}

/// With `server.close_on_shed` a shed 503 closes its connection: after the response the server
/// sends EOF, so a client re-sending at once must reconnect first. Without it (the default), the
/// same connection carries a second request. Cost: < 1 s.
#[tokio::test]
async fn a_shed_response_closes_its_connection_unless_configured_not_to() {
    for close in [true, false] {
        let app = TestApp::spawn_with(|c| {
            c.server.max_concurrency = 1;
            c.server.admission_queue = 0;
            c.server.close_on_shed = close;
        })
        .await;
        let held = Arc::clone(app.state.admission.slots())
            .try_acquire_many_owned(1)
            .unwrap();
        let user = app.user_with_history(5);
        let addr = app.base.trim_start_matches("http://").to_string();
        let req = format!("GET /recommendations?user_id={user}&n=5 HTTP/1.1\r\nHost: t\r\n\r\n");
        // Blocking socket I/O off the runtime that serves the app; the second request goes on the
        // same connection and is answered only when it was kept open.
        let (first, second) = tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut s = std::net::TcpStream::connect(&addr).unwrap();
            s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .unwrap();
            s.write_all(req.as_bytes()).unwrap();
            let first = crate::common::read_http_response(&mut s);
            let _ = s.write_all(req.as_bytes());
            (first, crate::common::read_http_response(&mut s))
        })
        .await
        .unwrap();
        let first = first.expect("a 503");
        assert!(first.starts_with("HTTP/1.1 503"), "{first}");
        let says_close = first.to_ascii_lowercase().contains("connection: close");
        assert_eq!(
            says_close, close,
            "Connection: close iff configured: {first}"
        );
        if close {
            assert!(second.is_none(), "closed after the 503: {second:?}");
        } else {
            let second = second.expect("kept alive");
            assert!(second.starts_with("HTTP/1.1 503"), "{second}");
        }
        drop(held);
        app.shutdown().await;
    }
}
