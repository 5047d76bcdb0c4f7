//! The real binary on a random port: graceful drain on SIGTERM, and the crash test — SIGKILL
//! while clients post feedback; after restart every acknowledged event is in the log and the
//! bandit state equals a replay of the log.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

mod common;
use common::{ADMIN_TOKEN as TOKEN, free_port, wait_ready};

fn start(port: u16, events: &Path) -> Child {
    common::start_binary(port, events, &[])
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}

async fn first_user(client: &reqwest::Client, base: &str) -> String {
    // Any id from the demo bundle's user list.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let users = std::fs::read_to_string(root.join("models/demo/user_ids.txt")).unwrap();
    let _ = (client, base);
    users.lines().nth(3).unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_drains_in_flight_requests() {
    let events = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = start(port, events.path());
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    wait_ready(&client, &base).await;
    let user = first_user(&client, &base).await;
    // Clients loop on requests while SIGTERM arrives. A request whose response has started must
    // complete (status 200 and a whole JSON body); one that reached the socket after the
    // listener closed may fail to be sent at all — that is not a half-answered request.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (c, u, stop) = (
            client.clone(),
            format!("{base}/recommendations?user_id={user}&n=200"),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut complete = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok(resp) = c.get(&u).send().await else {
                    break;
                };
                assert_eq!(resp.status(), 200, "a started response is a success");
                let body: serde_json::Value = resp
                    .json()
                    .await
                    .expect("a started response is completed, never cut off");
                assert_eq!(body["items"].as_array().map(|a| a.len()), Some(200));
                complete += 1;
            }
            complete
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    signal(&child, "-TERM");
    let waited = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut served = 0;
    for t in tasks {
        served += t.await.unwrap();
    }
    assert!(waited.success(), "clean exit after the drain: {waited:?}");
    assert!(served > 0, "requests were served before the signal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_loses_no_acknowledged_event_and_bandit_state_replays() {
    let events = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = start(port, events.path());
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    wait_ready(&client, &base).await;
    let user = first_user(&client, &base).await;

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (c, b, u, stop) = (client.clone(), base.clone(), user.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                let rid = format!("w{w}-r{i}");
                let Ok(r) = c
                    .get(format!("{b}/recommendations?user_id={u}&n=5&device=mobile"))
                    .header("x-variant", "bandit")
                    .header("x-request-id", &rid)
                    .send()
                    .await
                else {
                    break;
                };
                let Ok(body) = r.json::<serde_json::Value>().await else { break };
                let Some(item) = body["items"][0]["item_id"].as_str() else { break };
                // Feedback names the server-issued impression id.
                let Some(rid) = body["request_id"].as_str().map(str::to_string) else { break };
                let ev = serde_json::json!({"request_id": rid, "user_id": u, "item_id": item, "event": "click"});
                match c.post(format!("{b}/feedback")).json(&ev).send().await {
                    Ok(r) if r.status().as_u16() == 202 => acked.push(rid),
                    _ => break,
                }
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    signal(&child, "-KILL");
    let _ = child.wait();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acked: HashSet<String> = HashSet::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    assert!(
        acked.len() >= 10,
        "the clients got acknowledgements before the kill ({})",
        acked.len()
    );

    // Restart on the same log: every acknowledged event is there.
    let mut child = start(port, events.path());
    wait_ready(&client, &base).await;
    let stats: serde_json::Value = client
        .get(format!("{base}/admin/bandit"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    signal(&child, "-KILL");
    let _ = child.wait();

    let records = recserve::feedback::log::EventLog::read_all(events.path()).unwrap();
    let mut logged: HashSet<String> = HashSet::new();
    for (_, payload) in &records {
        if let Ok(recserve::feedback::events::Record::Feedback { event, .. }) =
            serde_json::from_slice(payload)
        {
            logged.insert(event.request_id);
        }
    }
    let missing: Vec<&String> = acked.iter().filter(|r| !logged.contains(*r)).collect();
    assert!(missing.is_empty(), "acknowledged events lost: {missing:?}");

    // The restarted server's bandit equals a fresh replay of the log.
    let _ = std::fs::remove_file(events.path().join("bandit.snapshot.json"));
    let mut cfg = recserve::config::Config::load_with_env(None, Vec::new()).unwrap();
    cfg.feedback.log.dir = events.path().to_path_buf();
    let registry = prometheus::Registry::new();
    let replayed = recserve::feedback::service::FeedbackService::open_blocking(
        &cfg.feedback,
        &cfg.bandit,
        &registry,
    )
    .unwrap();
    let replay_stats = serde_json::to_value(replayed.bandit_stats()).unwrap();
    let key = |v: &serde_json::Value| -> Vec<(String, String, i64, i64)> {
        let mut rows: Vec<_> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["context"].as_str().unwrap().to_string(),
                    a["arm"].as_str().unwrap().to_string(),
                    (a["pulls"].as_f64().unwrap() * 1e6).round() as i64,
                    (a["reward_sum"].as_f64().unwrap() * 1e6).round() as i64,
                )
            })
            .collect();
        rows.sort();
        rows
    };
    let live = key(&stats["arms"]);
    assert_eq!(
        live,
        key(&replay_stats),
        "bandit state after restart == replay of the log"
    );
    assert!(
        live.iter().map(|r| r.3).sum::<i64>() > 0,
        "rewards were credited"
    );
}
