//! Shared by the integration tests: the demo engine, and one small, repeatable real training run.
//! (Each test binary uses only some of these helpers.)
#![allow(dead_code)]

use recserve::bundle::Model;
use recserve::config::Config;
use recserve::data::dataset::Dataset;
use recserve::pipeline::Engine;
use recserve::train::ranker::RankerEval;
use recserve::train::{Holdout, TrainOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A port that was free a moment ago (for the real binary on a random port).
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

/// The admin token [`start_binary`] configures.
pub const ADMIN_TOKEN: &str = "binary-test-token";

/// The real binary serving the demo bundle on `port`, with its event log in `events`, generous
/// budgets (a shared machine), and `extra` environment overrides.
pub fn start_binary(port: u16, events: &Path, extra: &[(&str, &str)]) -> std::process::Child {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_recserve"));
    cmd.arg("serve")
        .current_dir(root())
        .env("RECSERVE_SERVER__ADDR", format!("127.0.0.1:{port}"))
        .env("RECSERVE_SERVER__ADMIN_TOKEN", ADMIN_TOKEN)
        .env("RECSERVE_SERVER__WARMUP_REQUESTS", "2")
        .env("RECSERVE_SERVING__TOTAL_BUDGET_MS", "5000")
        .env("RECSERVE_FEEDBACK__LOG__DIR", events)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.spawn().expect("start recserve")
}

/// Reads one HTTP/1.1 response (head and a `Content-Length` body) from a raw socket: its whole
/// text, or `None` if the server closed the connection (EOF or reset) before sending a byte.
/// Panics when the socket's read timeout passes with neither, or the connection ends mid-response.
pub fn read_http_response(s: &mut std::net::TcpStream) -> Option<String> {
    use std::io::{ErrorKind, Read};
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return Some(text);
            }
        }
        match s.read(&mut chunk) {
            Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("neither a response nor EOF within the read timeout: {text:?}")
            }
            _ if buf.is_empty() => return None,
            _ => panic!("connection ended mid-response: {text:?}"),
        }
    }
}

/// Waits (up to 30 s) until `base` answers `/readyz` with 200.
pub async fn wait_ready(client: &reqwest::Client, base: &str) {
    for _ in 0..600 {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status() == 200
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{base} never became ready");
}

/// The engine over the committed demo bundle with the shipped defaults, after `edit`.
pub fn demo_engine(edit: impl FnOnce(&mut Config)) -> Arc<Engine> {
    let mut cfg = Config::load_with_env(None, Vec::new()).expect("default config");
    edit(&mut cfg);
    let bundle = root().join("models/demo");
    let model = Model::read(&bundle).expect("demo bundle");
    Arc::new(Engine::new(model, cfg.serving.clone(), &cfg.index, Some(&bundle)).expect("engine"))
}

/// The shipped defaults, scaled down for test data, with single-threaded factorization (Hogwild
/// with several threads is not repeatable, and these tests must be).
pub fn small_train_config() -> Config {
    let mut cfg = Config::load_with_env(None, Vec::new()).expect("default config");
    cfg.train.factorization.components = 32;
    cfg.train.factorization.max_epochs = 15;
    cfg.train.factorization.threads = 1;
    cfg.train.content_dim = 32;
    cfg.train.ranker.max_users = 1200;
    cfg.train.ranker.num_iterations = 150;
    cfg
}

/// Trains on `train` with `train`'s real code (nothing written) and returns the serving engine
/// and the ranker's validation.
pub fn train_engine(
    train: &Dataset,
    dir: &Path,
    holdout: Holdout,
    seed: u64,
) -> (Arc<Engine>, RankerEval) {
    let cfg = small_train_config();
    let opts = TrainOptions {
        data: dir.to_path_buf(),
        out: dir.join("bundle"),
        holdout: Some(holdout),
        seed: Some(seed),
        skip_bad_lines: false,
        quiet: true,
    };
    let trained = recserve::train::run::train_model(
        train,
        &cfg.train,
        &cfg.serving,
        &cfg.index,
        &opts,
        &mut Vec::new(),
    )
    .expect("training");
    let engine = Engine::new(trained.model, cfg.serving.clone(), &cfg.index, None).expect("engine");
    (Arc::new(engine), trained.ranker_eval)
}

/// `GET url` under `x-variant: variant`, asserting a 200, as JSON.
pub async fn get_json(client: &reqwest::Client, url: String, variant: &str) -> serde_json::Value {
    let r = client
        .get(url)
        .header("x-variant", variant)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    r.json().await.expect("json body")
}

/// The `item_id`s of a `/recommendations` response body, in order.
pub fn item_ids(body: &serde_json::Value) -> Vec<String> {
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["item_id"].as_str().expect("item_id").to_string())
        .collect()
}
