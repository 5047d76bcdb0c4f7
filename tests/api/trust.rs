//! Feedback you can trust, through the HTTP API: server-issued impression ids, the user check,
//! credit caps, duplicates, outcomes per variant, propensities in the export, and the three
//! trust models (open, token, signed). ~6 s in all.

use crate::helpers::*;
use serde_json::{Value, json};

async fn serve(app: &TestApp, user: &str, variant: &str, client_rid: &str) -> Value {
    let r = app
        .client
        .get(format!(
            "{}/recommendations?user_id={user}&n=10&device=mobile&ts=1700000000",
            app.base
        ))
        .header("x-variant", variant)
        .header("x-request-id", client_rid)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["x-request-id"], client_rid);
    r.json().await.unwrap()
}

async fn post(app: &TestApp, ev: &Value) -> (u16, Value) {
    let r = app
        .client
        .post(format!("{}/feedback", app.base))
        .json(ev)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn item(list: &Value, i: usize) -> String {
    list["items"][i]["item_id"].as_str().unwrap().to_string()
}

/// Sum of `reward_sum` over every context for `arm`.
async fn arm_reward(app: &TestApp, arm: &str) -> f64 {
    let stats: Value = app
        .client
        .get(format!("{}/admin/bandit", app.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    stats["arms"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["arm"] == arm)
        .map(|a| a["reward_sum"].as_f64().unwrap())
        .sum()
}

fn metric(text: &str, line_prefix: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(line_prefix)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn impression_ids_are_the_servers_and_attribution_cannot_be_poisoned() {
    let app = TestApp::spawn().await;
    let user = app.user_with_history(5);
    // The same client request id twice: two impressions, each with its own server-issued id.
    let a = serve(&app, &user, "bandit", "resent-id").await;
    let b = serve(&app, &user, "bandit", "resent-id").await;
    let (ida, idb) = (
        a["request_id"].as_str().unwrap(),
        b["request_id"].as_str().unwrap(),
    );
    assert_ne!(ida, idb);
    assert_eq!(a["client_request_id"], "resent-id");
    assert!(ida.len() == 32 && ida.bytes().all(|c| c.is_ascii_hexdigit()));

    // Feedback naming the client's id attributes to nothing.
    let click_a =
        json!({"request_id": ida, "user_id": user, "item_id": item(&a, 0), "event": "click"});
    let (s, ack) = post(&app, &json!({"request_id": "resent-id", "user_id": user, "item_id": item(&a, 0), "event": "click"})).await;
    assert_eq!((s, ack["attributed"].as_u64()), (202, Some(0)));

    let arm_a = a["arm"].as_str().unwrap().to_string();
    let before = arm_reward(&app, &arm_a).await;
    let (s, ack) = post(&app, &click_a).await;
    assert_eq!(
        (s, ack["attributed"].as_u64(), ack["duplicates"].as_u64()),
        (202, Some(1), Some(0))
    );
    // A retried click is a duplicate: acknowledged, counted as such, credited once.
    let (s, ack) = post(&app, &click_a).await;
    assert_eq!(
        (s, ack["attributed"].as_u64(), ack["duplicates"].as_u64()),
        (202, Some(0), Some(1))
    );
    assert!((arm_reward(&app, &arm_a).await - before - 1.0).abs() < 1e-9);
    // Serving again under the same client id did not reset anything.
    let _ = serve(&app, &user, "bandit", "resent-id").await;
    let (_, ack) = post(&app, &click_a).await;
    assert_eq!(ack["duplicates"].as_u64(), Some(1));

    // Another user cannot claim the list.
    let (s, ack) = post(&app, &json!({"request_id": ida, "user_id": "someone-else", "item_id": item(&a, 1), "event": "purchase"})).await;
    assert_eq!((s, ack["attributed"].as_u64()), (202, Some(0)));
    // An item the list did not show is not attributed either.
    let (_, ack) = post(&app, &json!({"request_id": ida, "user_id": user, "item_id": "not-shown-anywhere", "event": "click"})).await;
    assert_eq!(ack["attributed"].as_u64(), Some(0));

    // Credit is capped per list: purchases on every item of b earn its arm one purchase (5.0,
    // the largest configured reward), however many arrive.
    let arm_b = b["arm"].as_str().unwrap().to_string();
    let before = arm_reward(&app, &arm_b).await;
    for i in 0..10 {
        for ev in ["purchase", "add_to_cart", "click"] {
            let (s, ack) = post(
                &app,
                &json!({"request_id": idb, "user_id": user, "item_id": item(&b, i), "event": ev}),
            )
            .await;
            assert_eq!(
                (s, ack["attributed"].as_u64()),
                (202, Some(1)),
                "{ev} on item {i}"
            );
        }
    }
    let credited = arm_reward(&app, &arm_b).await - before;
    assert!((credited - 5.0).abs() < 1e-9, "credited {credited}");
    // The bandit's successes never exceed its pulls.
    let stats: Value = app
        .client
        .get(format!("{}/admin/bandit", app.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for a in stats["arms"].as_array().unwrap() {
        let (pulls, mean) = (a["pulls"].as_f64().unwrap(), a["mean"].as_f64().unwrap());
        assert!(mean <= 5.0 + 1e-9, "{a}");
        assert!(
            a["reward_sum"].as_f64().unwrap() <= 5.0 * pulls + 1e-9,
            "{a}"
        );
    }

    let m = app.get("/metrics").await.text().await.unwrap();
    let attr = |result: &str, variant: &str| {
        metric(
            &m,
            &format!(
                r#"recserve_feedback_attribution_total{{result="{result}",variant="{variant}"}}"#
            ),
        )
    };
    assert_eq!(attr("attributed", "bandit"), 31.0, "{m}");
    assert_eq!(attr("duplicate", "bandit"), 2.0);
    assert_eq!(attr("user_mismatch", "bandit"), 1.0);
    assert_eq!(attr("not_shown", "bandit"), 1.0);
    assert_eq!(attr("unknown_impression", "none"), 1.0);
    // The reward metric carries the variant and the arm, after the caps.
    let reward: f64 = m
        .lines()
        .filter(|l| {
            l.starts_with(r#"recserve_feedback_reward_total{arm=""#)
                && l.contains(r#"variant="bandit""#)
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!((reward - 6.0).abs() < 1e-9, "{reward}");
}

#[tokio::test]
async fn outcomes_per_variant_and_exact_epsilon_greedy_propensities_in_the_export() {
    let epsilon = 0.2;
    let app = TestApp::spawn_with(|c| {
        c.bandit.policy = recserve::bandit::PolicyConfig::EpsilonGreedy { epsilon };
    })
    .await;
    let user = app.user_with_history(5);
    for i in 0..15 {
        for variant in ["control", "bandit"] {
            let list = serve(&app, &user, variant, &format!("{variant}-{i}")).await;
            let ev = json!({"request_id": list["request_id"], "user_id": user, "item_id": item(&list, 0), "event": "click"});
            let (s, ack) = post(&app, &ev).await;
            assert_eq!((s, ack["attributed"].as_u64()), (202, Some(1)));
        }
    }
    let m = app.get("/metrics").await.text().await.unwrap();
    for variant in ["control", "bandit"] {
        assert_eq!(
            metric(
                &m,
                &format!(r#"recserve_feedback_events_total{{event="click",variant="{variant}"}}"#)
            ),
            15.0,
            "{m}"
        );
        assert_eq!(
            metric(
                &m,
                &format!(
                    r#"recserve_feedback_attribution_total{{result="attributed",variant="{variant}"}}"#
                )
            ),
            15.0
        );
    }
    let cfg = test_config(app.events_dir.path());
    let dir = app.shutdown().await;
    let out = tempfile::tempdir().unwrap();
    let mut fcfg = cfg.feedback.clone();
    fcfg.log.dir = dir.path().to_path_buf();
    let summary = recserve::feedback::export::export_events(
        &fcfg,
        &cfg.bandit.rewards,
        out.path(),
        recserve::feedback::export::ExportOptions {
            attributed_only: true,
            impressions: true,
        },
    )
    .unwrap();
    assert_eq!(summary.written, 30, "{summary:?}");
    assert_eq!(summary.impression_rows, 300, "{summary:?}");
    let mut rd = csv::Reader::from_path(out.path().join("impressions.csv")).unwrap();
    let head = rd.headers().unwrap().clone();
    let col = |name: &str| head.iter().position(|h| h == name).unwrap();
    let (variant, prop, pos, clicked, probs) = (
        col("variant"),
        col("propensity"),
        col("position"),
        col("clicked"),
        col("arm_probabilities"),
    );
    let k = 3.0;
    let mut bandit_rows = 0;
    for row in rd.records() {
        let row = row.unwrap();
        assert_eq!(
            &row[clicked],
            if &row[pos] == "0" { "1" } else { "0" },
            "{row:?}"
        );
        let p: f64 = row[prop].parse().unwrap();
        if &row[variant] == "control" {
            assert_eq!(p, 1.0);
            continue;
        }
        bandit_rows += 1;
        let all: Vec<f64> = row[probs].split('|').map(|x| x.parse().unwrap()).collect();
        assert_eq!(all.len(), 3);
        assert!((all.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{all:?}");
        // Either untried arms first (uniform among them, 0 for the rest) or the epsilon-greedy
        // rule: every arm epsilon/K, and the best ones share 1 - epsilon.
        let nonzero: Vec<f64> = all.iter().copied().filter(|&q| q > 0.0).collect();
        let uniform = nonzero
            .iter()
            .all(|&q| (q - 1.0 / nonzero.len() as f64).abs() < 1e-12);
        if uniform {
            assert!((p - 1.0 / nonzero.len() as f64).abs() < 1e-12, "{all:?}");
        } else {
            let lo = all.iter().copied().fold(f64::INFINITY, f64::min);
            assert!((lo - epsilon / k).abs() < 1e-12, "{all:?}");
            let ties = all.iter().filter(|&&q| q > lo + 1e-12).count().max(1) as f64;
            let expected_best = epsilon / k + (1.0 - epsilon) / ties;
            assert!(
                (p - epsilon / k).abs() < 1e-12 || (p - expected_best).abs() < 1e-12,
                "propensity {p} of {all:?}"
            );
        }
    }
    assert_eq!(bandit_rows, 150);
}

#[tokio::test]
async fn thompson_propensities_are_estimates_summing_to_one() {
    let app = TestApp::spawn().await;
    let user = app.user_with_history(5);
    for i in 0..10 {
        let list = serve(&app, &user, "bandit", &format!("t{i}")).await;
        let ev = json!({"request_id": list["request_id"], "user_id": user, "item_id": item(&list, 0), "event": "click"});
        assert_eq!(post(&app, &ev).await.0, 202);
    }
    let dir = app.shutdown().await;
    let mut n = 0;
    for (_, payload) in recserve::feedback::log::EventLog::read_all(dir.path()).unwrap() {
        let Ok(recserve::feedback::events::Record::Impression {
            arm_probabilities: Some(p),
            propensity: Some(chosen),
            arm: Some(arm),
            ..
        }) = serde_json::from_slice(&payload)
        else {
            continue;
        };
        n += 1;
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{p:?}");
        assert_eq!(p[arm.arm], chosen);
        // An estimate from THOMPSON_DRAWS draws: multiples of 1/draws.
        let draws = recserve::bandit::THOMPSON_DRAWS as f64;
        assert!(
            p.iter()
                .all(|q| ((q * draws).round() - q * draws).abs() < 1e-6)
        );
    }
    assert_eq!(n, 10);
}

#[tokio::test]
async fn signed_and_token_trust_models() {
    let app = TestApp::spawn_with(|c| {
        c.feedback.auth = recserve::feedback::FeedbackAuth::Signed;
        c.feedback.signing_key = "00112233445566778899aabbccddeeff".into();
    })
    .await;
    let user = app.user_with_history(5);
    let list = serve(&app, &user, "control", "s1").await;
    let token = list["impression_token"].as_str().unwrap().to_string();
    let ev = |u: &str, t: Option<&str>| {
        let mut e = json!({"request_id": list["request_id"], "user_id": u, "item_id": item(&list, 0), "event": "click"});
        if let Some(t) = t {
            e["impression_token"] = t.into();
        }
        e
    };
    assert_eq!(post(&app, &ev(&user, None)).await.0, 403);
    assert_eq!(post(&app, &ev("someone-else", Some(&token))).await.0, 403);
    assert_eq!(post(&app, &ev(&user, Some("00ff"))).await.0, 403);
    let (s, ack) = post(&app, &ev(&user, Some(&token))).await;
    assert_eq!((s, ack["attributed"].as_u64()), (202, Some(1)));
    let _ = app.shutdown().await;

    let secret = "a-shared-feedback-token";
    let app = TestApp::spawn_with(|c| {
        c.feedback.auth = recserve::feedback::FeedbackAuth::Token;
        c.feedback.token = secret.into();
    })
    .await;
    let list = serve(&app, &user, "control", "t1").await;
    assert!(list.get("impression_token").is_none());
    let e = json!({"request_id": list["request_id"], "user_id": user, "item_id": item(&list, 0), "event": "click"});
    assert_eq!(post(&app, &e).await.0, 401);
    let r = app
        .client
        .post(format!("{}/feedback", app.base))
        .bearer_auth(secret)
        .json(&e)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
}

#[tokio::test]
async fn clicks_on_exposure_slots_count_as_new_item_clicks_per_variant() {
    // Every request gets the slots (the default draws a quarter of them).
    let app = TestApp::spawn_with(|c| c.serving.exposure.traffic_share = 1.0).await;
    let user = app.user_with_history(5);
    let mut clicked = 0;
    for i in 0..5 {
        let list = serve(&app, &user, "control", &format!("x{i}")).await;
        let Some(pos) = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .position(|it| it.get("exposure").is_some())
        else {
            continue;
        };
        // A click on an established item is not a new-item click.
        let other = if pos == 0 { 1 } else { 0 };
        for p in [other, pos] {
            let ev = json!({"request_id": list["request_id"], "user_id": user, "item_id": item(&list, p), "event": "click"});
            assert_eq!(post(&app, &ev).await.1["attributed"].as_u64(), Some(1));
        }
        clicked += 1;
    }
    assert!(
        clicked > 0,
        "the demo bundle's lists carry an exposure slot"
    );
    let m = app.get("/metrics").await.text().await.unwrap();
    assert_eq!(
        metric(&m, r#"recserve_new_item_clicks_total{variant="control"}"#),
        clicked as f64,
        "{m}"
    );
    let dir = app.shutdown().await;
    let out = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    cfg.feedback.log.dir = dir.path().to_path_buf();
    recserve::feedback::export::export_events(
        &cfg.feedback,
        &cfg.bandit.rewards,
        out.path(),
        recserve::feedback::export::ExportOptions {
            attributed_only: false,
            impressions: true,
        },
    )
    .unwrap();
    let mut rd = csv::Reader::from_path(out.path().join("impressions.csv")).unwrap();
    let head = rd.headers().unwrap().clone();
    let col = |name: &str| head.iter().position(|h| h == name).unwrap();
    let (exp, clicked_col) = (col("exposure_propensity"), col("clicked"));
    let exposed_clicks = rd
        .records()
        .map(Result::unwrap)
        .filter(|r| !r[exp].is_empty() && &r[clicked_col] == "1")
        .inspect(|r| assert!(r[exp].parse::<f64>().unwrap() > 0.0))
        .count();
    assert_eq!(exposed_clicks, clicked);
}
