//! The feedback loop end to end: a served list, a click on one of its items, and what it changes.

use crate::helpers::*;

#[tokio::test]
async fn click_is_durable_attributed_credits_the_arm_and_updates_exclude_seen() {
    let app = TestApp::spawn().await;
    let user = app.user_with_history(5);
    let url = format!(
        "{}/recommendations?user_id={user}&n=10&device=mobile",
        app.base
    );
    let r = app
        .client
        .get(&url)
        .header("x-variant", "bandit")
        .header("x-request-id", "req-under-test")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "req-under-test");
    let served: serde_json::Value = r.json().await.unwrap();
    // The body's request_id is the server-issued impression id; the client's id is echoed.
    assert_eq!(served["client_request_id"], "req-under-test");
    let impression = served["request_id"].as_str().unwrap().to_string();
    assert_ne!(impression, "req-under-test");
    let arm = served["arm"]
        .as_str()
        .expect("the bandit variant names its arm")
        .to_string();
    let clicked = served["items"][0]["item_id"].as_str().unwrap().to_string();

    let ev = serde_json::json!({"request_id": impression, "user_id": user, "item_id": clicked, "event": "click"});
    let r = app
        .client
        .post(format!("{}/feedback", app.base))
        .json(&ev)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let ack: serde_json::Value = r.json().await.unwrap();
    assert_eq!(ack["accepted"], 1);
    assert_eq!(
        ack["attributed"], 1,
        "the click is attributed to the served list"
    );

    // Unknown request ids are kept and counted as unattributed.
    let ev2 = serde_json::json!({"request_id": "never-served", "user_id": user, "item_id": clicked, "event": "purchase"});
    let r = app
        .client
        .post(format!("{}/feedback", app.base))
        .json(&ev2)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let ack: serde_json::Value = r.json().await.unwrap();
    assert_eq!(ack["attributed"], 0);

    // The arm's statistics show the reward.
    let arm_reward = || async {
        let r = app
            .client
            .get(format!("{}/admin/bandit", app.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let stats: serde_json::Value = r.json().await.unwrap();
        stats["arms"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["arm"] == arm.as_str())
            .map(|a| a["reward_sum"].as_f64().unwrap())
            .sum::<f64>()
    };
    let credited = arm_reward().await;
    assert!(
        credited >= 1.0,
        "arm {arm} credited with the click: {credited}"
    );
    // A retried click is stored (and acknowledged) but earns the arm nothing twice.
    let r = app
        .client
        .post(format!("{}/feedback", app.base))
        .json(&ev)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    assert_eq!(
        arm_reward().await,
        credited,
        "duplicate feedback is not credited twice"
    );

    // The clicked item is now seen: excluded from the next list.
    for _ in 0..3 {
        let (_, next) = app
            .get_json(&format!("/recommendations?user_id={user}&n=50"))
            .await;
        let ids: Vec<&str> = next["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["item_id"].as_str().unwrap())
            .collect();
        assert!(
            !ids.contains(&clicked.as_str()),
            "clicked item excluded from the next list"
        );
    }

    // Durable: the events are in the log on disk.
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(
            r#"recserve_feedback_attribution_total{result="attributed",variant="bandit"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"recserve_feedback_attribution_total{result="duplicate",variant="bandit"} 1"#
        )
    );
    assert!(metrics.contains(
        r#"recserve_feedback_attribution_total{result="unknown_impression",variant="none"} 1"#
    ));
    let dir = app.shutdown().await;
    let records = recserve::feedback::log::EventLog::read_all(dir.path()).unwrap();
    let texts: Vec<String> = records
        .iter()
        .map(|(_, p)| String::from_utf8_lossy(p).to_string())
        .collect();
    assert!(texts.iter().any(|t| t.contains("\"kind\":\"impression\"")
        && t.contains(&impression)
        && t.contains("\"client_request_id\":\"req-under-test\"")));
    assert!(
        texts
            .iter()
            .any(|t| t.contains("\"kind\":\"feedback\"") && t.contains("never-served"))
    );
}

#[tokio::test]
async fn batch_is_all_or_nothing() {
    let app = TestApp::spawn().await;
    let good =
        serde_json::json!({"request_id": "r1", "user_id": "u1", "item_id": "i1", "event": "click"});
    let bad =
        serde_json::json!({"request_id": "r2", "user_id": "u1", "item_id": "i2", "event": "nope"});
    let url = format!("{}/feedback/batch", app.base);
    let r = app
        .client
        .post(&url)
        .json(&serde_json::json!({"events": [good, bad]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("events[1]"),
        "{body}"
    );
    let r = app
        .client
        .post(&url)
        .json(&serde_json::json!({"events": [good, good]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let dir = app.shutdown().await;
    let records = recserve::feedback::log::EventLog::read_all(dir.path()).unwrap();
    let feedback = records
        .iter()
        .filter(|(_, p)| String::from_utf8_lossy(p).contains("\"kind\":\"feedback\""))
        .count();
    assert_eq!(feedback, 2, "nothing of the refused batch was written");
}
