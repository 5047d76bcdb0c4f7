//! Disk faults at the HTTP edge: the event log on a simulated disk that fills up. `/readyz`
//! turns not ready and feedback gets 503 with `Retry-After`; once space returns both
//! recover, and every 202'd event is in the log.

use crate::helpers::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use recserve::feedback::log::sim::SimFs;
use recserve::feedback::service::FeedbackService;
use recserve::server::state::AppState;
use std::sync::Arc;
use tower::ServiceExt;

async fn call(st: &Arc<AppState>, req: Request<Body>) -> (StatusCode, Option<String>) {
    let resp = recserve::server::router(Arc::clone(st))
        .oneshot(req)
        .await
        .unwrap();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (resp.status(), retry)
}

fn feedback(i: usize) -> Request<Body> {
    let ev = serde_json::json!({"request_id": format!("r{i}"), "user_id": "u1", "item_id": "i1", "event": "click"});
    Request::post("/feedback")
        .header("content-type", "application/json")
        .body(Body::from(ev.to_string()))
        .unwrap()
}

fn readyz() -> Request<Body> {
    Request::get("/readyz").body(Body::empty()).unwrap()
}

#[tokio::test]
async fn full_disk_turns_readyz_and_feedback_503_until_space_returns() {
    let mut cfg = test_config(std::path::Path::new("/srv/events"));
    cfg.feedback.log.retry_ms = 5;
    let svc_cfg = cfg.service();
    let fs = SimFs::new();
    let metrics = Arc::new(recserve::server::metrics::Metrics::new().unwrap());
    let fb = FeedbackService::open_on(
        &svc_cfg.feedback,
        &svc_cfg.bandit,
        &metrics.registry,
        fs.clone(),
    )
    .unwrap();
    fb.replay_pending().unwrap();
    let variants = recserve::server::variants::Variants::load(&svc_cfg.variants_file).unwrap();
    let bundle = svc_cfg.server.bundle.clone();
    let st = AppState::new(svc_cfg, variants, metrics, bundle).unwrap();
    assert!(st.feedback.set(Arc::new(fb)).is_ok());
    let st = Arc::new(st);
    st.reload(None).await.expect("demo bundle loads");

    let mut acked = 0;
    for i in 0..3 {
        assert_eq!(call(&st, feedback(i)).await.0, StatusCode::ACCEPTED);
        acked += 1;
    }
    assert_eq!(call(&st, readyz()).await.0, StatusCode::OK);

    fs.set_full(true);
    let (status, retry) = call(&st, feedback(100)).await;
    assert_eq!(
        (status, retry.as_deref()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("1"))
    );
    let (status, retry) = call(&st, readyz()).await;
    assert_eq!(
        (status, retry.as_deref()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("1"))
    );
    let metrics_text = st.metrics.render().unwrap();
    assert!(
        metrics_text.contains("feedback_log_healthy 0"),
        "{metrics_text}"
    );

    fs.set_full(false);
    let mut accepted_again = false;
    for i in 0..500 {
        if call(&st, feedback(200 + i)).await.0 == StatusCode::ACCEPTED {
            accepted_again = true;
            acked += 1;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(
        accepted_again,
        "feedback never accepted again after space returned"
    );
    assert_eq!(call(&st, readyz()).await.0, StatusCode::OK);

    // Every 202'd event survives a power loss now.
    let image = fs.crash_image(3);
    let st_cfg = st.cfg.clone();
    drop(st);
    let restarted = FeedbackService::open_on(
        &st_cfg.feedback,
        &st_cfg.bandit,
        &prometheus::Registry::new(),
        image,
    )
    .unwrap();
    assert_eq!(restarted.replay_pending().unwrap(), acked);
    assert_eq!(restarted.log_stats().durable_seq, Some(acked));
}

#[tokio::test]
async fn healthz_answers_while_the_log_replays_and_readyz_and_feedback_wait() {
    let cfg = test_config(std::path::Path::new("/srv/events"));
    let svc_cfg = cfg.service();
    let metrics = Arc::new(recserve::server::metrics::Metrics::new().unwrap());
    let variants = recserve::server::variants::Variants::load(&svc_cfg.variants_file).unwrap();
    let bundle = svc_cfg.server.bundle.clone();
    let fb_cfg = (svc_cfg.feedback.clone(), svc_cfg.bandit.clone());
    let st = Arc::new(AppState::new(svc_cfg, variants, Arc::clone(&metrics), bundle).unwrap());
    st.reload(None).await.expect("demo bundle loads");
    let healthz = || Request::get("/healthz").body(Body::empty()).unwrap();

    // Before the log has opened.
    assert_eq!(call(&st, healthz()).await.0, StatusCode::OK);
    assert_eq!(call(&st, readyz()).await.0, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        call(&st, feedback(1)).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );

    // Opened, replay not yet done.
    let fb = Arc::new(
        FeedbackService::open_on(&fb_cfg.0, &fb_cfg.1, &metrics.registry, SimFs::new()).unwrap(),
    );
    assert!(st.feedback.set(Arc::clone(&fb)).is_ok());
    assert_eq!(call(&st, healthz()).await.0, StatusCode::OK);
    let (status, retry) = call(&st, readyz()).await;
    assert_eq!(
        (status, retry.as_deref()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("1"))
    );
    let (status, retry) = call(&st, feedback(2)).await;
    assert_eq!(
        (status, retry.as_deref()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("1"))
    );

    fb.replay_pending().unwrap();
    assert_eq!(call(&st, readyz()).await.0, StatusCode::OK);
    assert_eq!(call(&st, feedback(3)).await.0, StatusCode::ACCEPTED);
}
