//! The runtime catalogue on the real binary (demo bundle, embedded state): items added through
//! `POST /admin/catalogue` reach the users whose taste matches their features, survive a
//! restart and are exported as `items.csv`; items taken down never appear in any strategy's
//! output (ranked, blend, bandit, diverse, sessions, the popularity fallback) from the first
//! request after the 202, also after a restart, and come back when restored.
//!
//! Cost: two to three server starts of the demo bundle and ~1,300 requests, ~10 s.

use std::collections::{HashMap, HashSet};
use std::process::Child;

use recserve::bundle::Model;
use serde_json::{Value, json};

mod common;
use common::{ADMIN_TOKEN, free_port, get_json, item_ids as ids, root, start_binary, wait_ready};

struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(port: u16, events: &std::path::Path, extra: &[(&str, &str)]) -> Self {
        Self {
            child: start_binary(port, events, extra),
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    /// SIGTERM and wait (the log is flushed and snapshotted).
    fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn change(c: &reqwest::Client, s: &Server, changes: Value) -> Value {
    let r = c
        .post(format!("{}/admin/catalogue", s.base))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "changes": changes }))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 202, "{body}");
    body
}

async fn get(c: &reqwest::Client, s: &Server, query: &str, variant: &str) -> Value {
    get_json(c, format!("{}/recommendations?{query}", s.base), variant).await
}

/// Each demo user's most frequent category in their training history.
fn dominant_categories(m: &Model) -> Vec<Option<u32>> {
    (0..m.n_users() as u32)
        .map(|u| {
            let mut counts: HashMap<u32, usize> = HashMap::new();
            for &i in m.history(u).0 {
                for &c in m.item_categories(i) {
                    *counts.entry(c).or_default() += 1;
                }
            }
            counts
                .into_iter()
                .max_by_key(|&(c, n)| (n, std::cmp::Reverse(c)))
                .map(|(c, _)| c)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_items_reach_matching_users_survive_a_restart_and_are_exported() {
    let model = Model::read(&root().join("models/demo")).unwrap();
    let dom = dominant_categories(&model);
    let mut freq: HashMap<u32, usize> = HashMap::new();
    for c in dom.iter().flatten() {
        *freq.entry(*c).or_default() += 1;
    }
    let mut by_freq: Vec<(u32, usize)> = freq.into_iter().collect();
    by_freq.sort_by_key(|&(c, n)| (std::cmp::Reverse(n), c));
    let (ca, cb) = (by_freq[0].0, by_freq[1].0);
    let group = |c: u32| -> Vec<String> {
        (0..model.n_users())
            .filter(|&u| dom[u] == Some(c))
            .take(20)
            .map(|u| model.user_ids[u].clone())
            .collect()
    };
    let (users_a, users_b) = (group(ca), group(cb));
    let (name_a, name_b) = (
        model.categories[ca as usize].clone(),
        model.categories[cb as usize].clone(),
    );

    let events = tempfile::tempdir().unwrap();
    let port = free_port();
    // The bundle's own new items are left out of the exposure pool, so its slot shows which
    // of the two added items the model prefers for each user; every request gets the slot.
    let env = [
        ("RECSERVE_SERVING__EXPOSURE__POOL_MAX", "0"),
        ("RECSERVE_SERVING__EXPOSURE__TRAFFIC_SHARE", "1"),
    ];
    let c = reqwest::Client::new();
    let s = Server::start(port, events.path(), &env);
    wait_ready(&c, &s.base).await;
    let body = change(
        &c,
        &s,
        json!([
            { "op": "upsert", "item_id": "added-a", "features": { "category": name_a, "title": "Brand new A" } },
            { "op": "upsert", "item_id": "added-b", "features": { "category": name_b, "title": "Brand new B" } },
        ]),
    )
    .await;
    assert_eq!(body["accepted"], 2);
    assert_eq!(body["changed"], true);
    // Idempotent: the same upsert again changes nothing.
    let again = change(
        &c,
        &s,
        json!([{ "op": "upsert", "item_id": "added-a", "features": { "category": name_a, "title": "Brand new A" } }]),
    )
    .await;
    assert_eq!(again["changed"], false, "{again}");

    let shown = |lists: &[Value], id: &str| {
        lists
            .iter()
            .filter(|v| {
                v["items"].as_array().unwrap().iter().any(|i| {
                    i["item_id"] == id
                        && i["sources"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|s| s == "exposure")
                })
            })
            .count()
    };
    let mut lists_a = Vec::new();
    for u in &users_a {
        lists_a.push(get(&c, &s, &format!("user_id={u}&n=10"), "control").await);
    }
    let mut lists_b = Vec::new();
    for u in &users_b {
        lists_b.push(get(&c, &s, &format!("user_id={u}&n=10"), "control").await);
    }
    let (a_in_a, b_in_a) = (shown(&lists_a, "added-a"), shown(&lists_a, "added-b"));
    let (a_in_b, b_in_b) = (shown(&lists_b, "added-a"), shown(&lists_b, "added-b"));
    println!(
        "category {name_a} users: added-a {a_in_a}, added-b {b_in_a}; category {name_b} users: added-a {a_in_b}, added-b {b_in_b} (of 20 each)"
    );
    assert!(
        a_in_a >= 14 && b_in_b >= 14,
        "added items should reach the users whose taste matches their features"
    );
    assert!(a_in_a > b_in_a && b_in_b > a_in_b);
    // The recommendation answer is reproducible for the same request.
    let before_restart = get(&c, &s, &format!("user_id={}&n=10", users_a[0]), "control").await;

    // Feedback on an added item is known (it becomes history: excluded next time).
    let rid = before_restart["request_id"].as_str().unwrap();
    let fb = c
        .post(format!("{}/feedback", s.base))
        .json(&json!({ "request_id": rid, "user_id": users_a[0], "item_id": "added-a", "event": "click" }))
        .send()
        .await
        .unwrap();
    assert_eq!(fb.status(), 202);
    let after_click = get(&c, &s, &format!("user_id={}&n=10", users_a[0]), "control").await;
    assert!(
        !ids(&after_click).contains(&"added-a".to_string()),
        "a clicked added item is seen, so excluded"
    );

    s.stop();
    let s = Server::start(port, events.path(), &env);
    wait_ready(&c, &s.base).await;
    let after = get(&c, &s, &format!("user_id={}&n=10", users_a[1]), "control").await;
    let before = &lists_a[1];
    assert_eq!(
        ids(&after),
        ids(before),
        "the overlay is rebuilt from the log"
    );
    let view = c
        .get(format!("{}/admin/catalogue", s.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(view["added_served"], 2, "{view}");
    s.stop();

    // Export for retraining: the added items as items.csv rows with their features.
    let out = tempfile::tempdir().unwrap();
    let st = std::process::Command::new(env!("CARGO_BIN_EXE_recserve"))
        .args(["export-events", "--out"])
        .arg(out.path())
        .current_dir(root())
        .env("RECSERVE_FEEDBACK__LOG__DIR", events.path())
        .status()
        .unwrap();
    assert!(st.success());
    let csv = std::fs::read_to_string(out.path().join("items.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("item_id,category,title"));
    let rows: HashSet<&str> = lines.collect();
    assert!(
        rows.contains(format!("added-a,{name_a},Brand new A").as_str()),
        "{csv}"
    );
    assert!(
        rows.contains(format!("added-b,{name_b},Brand new B").as_str()),
        "{csv}"
    );
    let interactions = std::fs::read_to_string(out.path().join("interactions.csv")).unwrap();
    assert!(interactions.contains(&format!("{},added-a,", users_a[0])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taken_down_items_never_appear_in_any_strategy_and_come_back_when_restored() {
    let model = Model::read(&root().join("models/demo")).unwrap();
    let events = tempfile::tempdir().unwrap();
    let port = free_port();
    let c = reqwest::Client::new();
    let s = Server::start(port, events.path(), &[]);
    wait_ready(&c, &s.base).await;

    let variants = [
        "control",
        "blend",
        "bandit",
        "lean",
        "diverse",
        "no_exposure",
    ];
    let user = |k: usize| model.user_ids[(k * 7919) % model.n_users()].clone();
    let item = |k: usize| model.item_ids[(k * 104_729) % model.n_items()].clone();
    let query = |k: usize| match k % 4 {
        // An anonymous session (its items may be taken down themselves).
        0 => format!("recent={},{}&n=20", item(k), item(k + 1)),
        1 => format!("user_id={}&n=20&exclude_seen=false", user(k)),
        _ => format!("user_id={}&n=20", user(k)),
    };
    // What the service serves most: the items a takedown must reach.
    let mut counts: HashMap<String, usize> = HashMap::new();
    for k in 0..120 {
        let v = get(&c, &s, &query(k), variants[k % variants.len()]).await;
        for id in ids(&v) {
            *counts.entry(id).or_default() += 1;
        }
    }
    let mut top: Vec<(String, usize)> = counts.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let down: Vec<String> = top.iter().take(40).map(|(i, _)| i.clone()).collect();
    let changes: Vec<Value> = down
        .iter()
        .map(|i| json!({ "op": "take_down", "item_id": i }))
        .collect();
    change(&c, &s, Value::Array(changes)).await;
    let down_set: HashSet<&String> = down.iter().collect();

    // From the first request after the 202: 1,000 requests over every variant and kind.
    let mut strategies: HashMap<String, usize> = HashMap::new();
    for k in 0..1000 {
        let v = get(&c, &s, &query(k + 7), variants[k % variants.len()]).await;
        *strategies
            .entry(v["strategy"].as_str().unwrap().to_string())
            .or_default() += 1;
        let got = ids(&v);
        assert_eq!(got.len(), 20, "lists stay full");
        for id in &got {
            assert!(
                !down_set.contains(id),
                "request {k}: taken-down {id} served"
            );
        }
    }
    println!("strategies after the takedown: {strategies:?}");
    assert!(strategies.get("ranked").copied().unwrap_or(0) > 0);
    assert!(strategies.get("blend").copied().unwrap_or(0) > 0);
    s.stop();

    // After a restart, with every request past its budget (the popularity fallback only).
    let s = Server::start(
        port,
        events.path(),
        &[("RECSERVE_SERVING__TOTAL_BUDGET_MS", "0")],
    );
    wait_ready(&c, &s.base).await;
    for k in 0..100 {
        let v = get(&c, &s, &query(k + 3), variants[k % variants.len()]).await;
        assert_eq!(v["strategy"], "popular");
        for id in ids(&v) {
            assert!(!down_set.contains(&id), "fallback served taken-down {id}");
        }
    }
    // Restored items come back: the most served one is in the popularity fallback again.
    let back = &down[0];
    change(&c, &s, json!([{ "op": "restore", "item_id": back }])).await;
    let mut seen_again = false;
    for k in 0..100 {
        let v = get(&c, &s, &query(k + 3), variants[k % variants.len()]).await;
        seen_again |= ids(&v).contains(back);
    }
    assert!(
        seen_again,
        "{back} should be served again after its restore"
    );
}

#[tokio::test]
async fn bad_catalogue_requests_get_a_clear_4xx() {
    let events = tempfile::tempdir().unwrap();
    let port = free_port();
    let c = reqwest::Client::new();
    let s = Server::start(port, events.path(), &[]);
    wait_ready(&c, &s.base).await;
    let url = format!("{}/admin/catalogue", s.base);
    let no_token = c
        .post(&url)
        .json(&json!({ "changes": [] }))
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), 401);
    for body in [
        json!({ "changes": [] }),
        json!({ "changes": [{ "op": "explode", "item_id": "x" }] }),
        json!({ "changes": [{ "op": "take_down", "item_id": "" }] }),
        json!({ "changes": [{ "op": "upsert", "item_id": "x", "features": { "item_id": "y" } }] }),
        json!({ "items": [] }),
    ] {
        let r = c
            .post(&url)
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{body}");
        let e: Value = r.json().await.unwrap();
        assert!(e["error"]["message"].as_str().is_some(), "{e}");
    }
}
