//! Helpers for the real binary: a free port, a start in any directory, readiness, signals.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub async fn wait_ready(client: &reqwest::Client, base: &str) {
    for _ in 0..600 {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("binary never became ready");
}

pub fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}

/// The tools venv's Python (`RECSERVE_PYTHON`, set by scripts/test.sh); the test fails without it.
pub fn python() -> PathBuf {
    PathBuf::from(std::env::var("RECSERVE_PYTHON").expect(
        "RECSERVE_PYTHON is not set: run the tests through scripts/test.sh, which installs the tools",
    ))
}

/// `recserve serve` with `args` and `env`, in `cwd`, on `port`; nothing from the repository's
/// working directory.
pub fn start_in(cwd: &Path, port: u16, args: &[&str], env: &[(&str, &Path)]) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_recserve"));
    cmd.arg("serve")
        .args(args)
        .current_dir(cwd)
        .env("RECSERVE_SERVER__ADDR", format!("127.0.0.1:{port}"))
        .env("RECSERVE_SERVER__WARMUP_REQUESTS", "2")
        .env("RECSERVE_SERVING__TOTAL_BUDGET_MS", "5000")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("start recserve")
}

/// A ready server answers a recommendation with the variant asked for (the variants file is
/// embedded) and items from the demo bundle.
pub async fn assert_serves_demo(client: &reqwest::Client, base: &str) {
    wait_ready(client, base).await;
    let resp = client
        .get(format!("{base}/recommendations?user_id=u000042&n=5"))
        .header("x-variant", "blend")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["variant"], "blend", "the embedded variants are loaded");
    let demo_items = std::fs::read_to_string(root().join("models/demo/item_ids.txt")).unwrap();
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    for it in items {
        let id = it["item_id"].as_str().unwrap();
        assert!(demo_items.lines().any(|l| l == id), "{id} is a demo item");
    }
}
